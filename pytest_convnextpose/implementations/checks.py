"""The pieces of the implementation-conformance tests: inputs, reference outputs, failure text.

Kept out of `conformance/test_impl.py` so the tests read as statements of invariants,
and so the messages can be unit-tested without running pytest.
"""
from __future__ import annotations

import textwrap
from typing import Any, Optional, Sequence

import numpy as np

from reference_model import H36M_FLIP_PAIRS, ArchSpec

from .compare import ParityStats, compare_coords, per_coordinate_max, repro_snippet
from .inputs import GoldenCase, InputCase, golden_cases, other_size_case, seeded_cases

OTHER_SIZE = "seeded-second-size"


class ImplFailure(Exception):
    """The implementation could not be compared at all (it raised, or returned another shape).

    `headline` says what happened, `cause` (or None) why; `str()` is both, for
    `pytest.fail(..., pytrace=False)`."""

    def __init__(self, headline: str, cause: Optional[str] = None) -> None:
        super().__init__(headline if cause is None else f"{headline}\n{cause}")
        self.headline, self.cause = headline, cause


def build_cases(impl: Any, golden: Optional[GoldenCase], default_size: tuple[int, int]) -> dict[str, InputCase]:
    """Seeded cases at the implementation's fixed size (else `default_size`), golden ones when present,
    and for a graph that declares a dynamic height and width, the seeded case at a second size."""
    size = tuple(impl.input_size) if impl.input_size else tuple(default_size)
    cases = {c.name: c for c in seeded_cases(int(size[0]), int(size[1]))}
    if golden is not None and golden.input is not None:
        cases.update({c.name: c for c in golden_cases(golden)})
    if impl.dynamic_size:
        used = {tuple(c.images.shape[2:]) for c in cases.values()}
        cases[OTHER_SIZE] = other_size_case(used, OTHER_SIZE)
    return cases


def other_size_unusable(impl: Any) -> Optional[str]:
    """Why the second-size case does not apply to this implementation, or None."""
    if impl.dynamic_size:
        return None
    if impl.input_size:
        return f"{impl.name} takes one input size ({impl.fixed_axes}): a second size does not apply"
    return (f"{impl.name} declares no dynamic height x width: only ONNX graphs that do are run at a second size "
            "(a Python implementation with one size sets input_size)")


def _describe_batch(images: np.ndarray) -> str:
    b, _, h, w = images.shape
    return f"{b} image{'s' if b != 1 else ''} {h}x{w}"


def checked_outputs(impl: Any, images: np.ndarray, spec: ArchSpec, *, what: str, ref_model: Any = None,
                    tolerance: float = 1e-3, call: Any = None) -> np.ndarray:
    """`impl(images)` (or `call(images)`), as long as it runs and returns `(B, J, 3)`; else ImplFailure.

    A wrong shape is explained (diagnose_shape) with the reference's heatmaps when `ref_model`
    is given, so a batch k times the input's is traced to the soft-argmax constant behind it."""
    from .adapter import one_line_error
    from .diagnose_shape import diagnose_shape

    run = call if call is not None else impl
    try:
        out = np.asarray(run(images))
    except Exception as exc:
        raise ImplFailure(f"{impl.name} raised {one_line_error(exc)} on {what} ({_describe_batch(images)}"
                          f"{impl.axes_note})") from None
    want = (images.shape[0], spec.joint_num, 3)
    if out.shape == want:
        return out
    heatmaps = None
    if ref_model is not None:
        import torch

        device = next(ref_model.parameters()).device
        with torch.no_grad():
            heatmaps = ref_model.heatmaps(torch.from_numpy(np.ascontiguousarray(images)).to(device)).cpu()
    cause = diagnose_shape(out.shape, images.shape, spec, heatmaps=heatmaps,
                           actual=out.astype(np.float32) if out.dtype.kind == "f" else None, tolerance=tolerance)
    raise ImplFailure(f"{impl.name}: output shape {tuple(out.shape)} on {what} ({_describe_batch(images)}), "
                      f"expected (B, J, 3) = {want}", cause)


def size_dependence(impl: Any, cases: dict[str, InputCase], ref_model: Any, failing: np.ndarray, atol: float,
                    rtol: float) -> Optional[str]:
    """For a graph that declares a dynamic height x width and fails on `failing` images: the cause,
    when it matches the reference on a case of another size (its export size, as far as it shows)."""
    from ..checkpoint.model import run_reference

    if not impl.dynamic_size:
        return None
    size = tuple(failing.shape[2:])
    for case in cases.values():
        other = tuple(case.images.shape[2:])
        if other == size:
            continue
        try:
            ok = compare_coords(impl(case.images), run_reference(ref_model, case.images), atol=atol, rtol=rtol).ok
        except Exception:
            continue
        if ok:
            return (f"likely cause: declared dynamic but depends on the export size: the graph declares its height and "
                    f"width dynamic and matches the reference at {other[0]}x{other[1]} (the '{case.name}' inputs), not "
                    f"at {size[0]}x{size[1]}: shapes traced at export time (a reshape to depth_dim*output_shape, "
                    "torch.arange(output_shape) from the configuration) were stored as constants. Export with a fixed "
                    "height x width (no dynamic axes 2, 3), or compute those sizes from the tensor's own shape")
    return None


def golden_unusable(impl: Any, golden: Optional[GoldenCase], ckpt_id: str) -> Optional[str]:
    """Why the golden cases cannot run for this checkpoint and implementation, or None."""
    if golden is None:
        return (f"{ckpt_id} is not a golden case (no manifest.json entry with its sha256 beside it "
                f"or in a --golden-dir)")
    if impl.input_size and tuple(impl.input_size) != tuple(golden.input.shape[2:]):
        h, w = impl.input_size
        return (f"{impl.name} takes only {h}x{w} inputs; the golden input is "
                f"{golden.input.shape[2]}x{golden.input.shape[3]} (export with --input-size to test it)")
    return None


def reference_flip_test(ref_model: Any, spec: ArchSpec, images: np.ndarray) -> np.ndarray:
    import torch

    from reference_model import flip_test

    device = next(ref_model.parameters()).device
    width = spec.heatmap_size((images.shape[2], images.shape[3]))[1]
    with torch.no_grad():
        return flip_test(ref_model, torch.from_numpy(np.ascontiguousarray(images)).to(device), width,
                         H36M_FLIP_PAIRS).cpu().numpy()


def composed_flip_test(impl: Any, spec: ArchSpec, images: np.ndarray, *, coords: Optional[np.ndarray] = None,
                       flipped: Optional[np.ndarray] = None) -> np.ndarray:
    """The authors' flip test with the implementation in place of the network (its outputs on
    `images` and on their horizontal flip, computed here unless given)."""
    import torch

    from reference_model import flip_back

    width = spec.heatmap_size((images.shape[2], images.shape[3]))[1]
    if coords is None:
        coords = impl(images)
    if flipped is None:
        flipped = impl(np.ascontiguousarray(images[..., ::-1]))
    coords_t = torch.from_numpy(np.asarray(coords, dtype=np.float64))
    flipped_t = torch.from_numpy(np.asarray(flipped, dtype=np.float64))
    return ((coords_t + flip_back(flipped_t, width, H36M_FLIP_PAIRS)) / 2.0).numpy()


def flip_diagnosis(impl: Any, spec: ArchSpec, images: np.ndarray, actual: np.ndarray, atol: float, *,
                   coords: Optional[np.ndarray] = None, flipped: Optional[np.ndarray] = None) -> str:
    """Separate a wrong flip-test procedure from a wrong network, using the implementation's own outputs
    (`coords`, `flipped`: its outputs on `images` and their horizontal flip, when already computed)."""
    from .compare import compare_coords
    from .diagnose import diagnose_flip

    if coords is None:
        coords = impl(images)
    if flipped is None:
        flipped = impl(np.ascontiguousarray(images[..., ::-1]))
    coords, flipped = np.asarray(coords, dtype=np.float64), np.asarray(flipped, dtype=np.float64)
    composed = composed_flip_test(impl, spec, images, coords=coords, flipped=flipped)
    if compare_coords(actual, composed, atol=atol, rtol=0.0).ok:
        return ("the flip-test procedure is right (it equals the authors' flip test around your network); the "
                "network's own outputs differ: see test_matches_reference_model")
    vflipped = np.asarray(impl(np.ascontiguousarray(images[..., ::-1, :])), dtype=np.float64)
    height, width = spec.heatmap_size((images.shape[2], images.shape[3]))
    return diagnose_flip(actual, coords, flipped, width, H36M_FLIP_PAIRS, composed, atol,
                         vflipped_coords=vflipped, height=height).text()


def load_kwargs(joints: Optional[int], head_upsample: Optional[Sequence[bool]]) -> str:
    parts = []
    if joints is not None:
        parts.append(f"joint_num={joints}")
    if head_upsample is not None:
        parts.append(f"head_upsample={tuple(bool(u) for u in head_upsample)}")
    return ", ".join(parts)


def failure_message(*, headline: str, stats: ParityStats, actual: np.ndarray, expected: np.ndarray,
                    diagnosis: Optional[str], tolerance_source: str, snippet: Optional[str]) -> str:
    """The full text of a parity failure: where, how much, likely cause, how to reproduce."""
    per = per_coordinate_max(actual, expected)
    lines = [headline, stats.summary(),
             "max error per coordinate: " + ", ".join(f"{k} {v:.3g}" for k, v in per.items())]
    if diagnosis:
        lines.append(diagnosis)
    lines.append(f"tolerance from {tolerance_source}; change with --atol/--rtol or "
                 "@pytest.mark.convnextpose_tolerance(atol=..., rtol=...)")
    if snippet:
        lines += ["reproduce:", textwrap.indent(snippet, "    ")]
    return "\n".join(lines)


def snippet_for(*, ckpt_path: Any, target: str, case: InputCase, stats: ParityStats, kwargs: str,
                expected_expr: Optional[str] = None, actual_expr: Optional[str] = None,
                imports: Sequence[str] = ()) -> str:
    extra = {} if expected_expr is None else {"expected_expr": expected_expr}
    if actual_expr is not None:
        extra["actual_expr"] = actual_expr
    return repro_snippet(ckpt_path=str(ckpt_path), target=target, images_expr=case.recipe,
                         sample=stats.worst_sample, joint=stats.worst_joint, coord=stats.worst_coord,
                         load_kwargs=kwargs, setup=(*imports, *case.setup), **extra)


def flip_snippet_exprs(spec: ArchSpec, images: np.ndarray, own: bool) -> dict[str, Any]:
    """Expressions for a flip-test snippet: reference flip test vs the implementation's."""
    width = spec.heatmap_size((images.shape[2], images.shape[3]))[1]
    actual = ("impl.flip_test(x)" if own else
              f"(impl(x) + flip_back(torch.from_numpy(impl(np.ascontiguousarray(x[..., ::-1]))), {width}, "
              "H36M_FLIP_PAIRS).numpy()) / 2")
    return {"expected_expr": f"flip_test(ref, torch.from_numpy(x), {width}, H36M_FLIP_PAIRS).numpy()",
            "actual_expr": actual,
            "imports": ("from reference_model import flip_back, flip_test, H36M_FLIP_PAIRS",)}
