"""The pieces of the implementation-conformance tests: inputs, reference outputs, failure text.

Kept out of `conformance/test_impl.py` so the tests read as statements of invariants,
and so the messages can be unit-tested without running pytest.
"""
from __future__ import annotations

import textwrap
from typing import Any, Optional, Sequence

import numpy as np

from reference_model import H36M_FLIP_PAIRS, ArchSpec

from .compare import ParityStats, per_coordinate_max, repro_snippet
from .inputs import GoldenCase, InputCase, golden_cases, seeded_cases


def build_cases(impl: Any, golden: Optional[GoldenCase], default_size: tuple[int, int]) -> dict[str, InputCase]:
    """Seeded cases at the implementation's fixed size (else `default_size`), golden ones when present."""
    size = tuple(impl.input_size) if impl.input_size else tuple(default_size)
    cases = {c.name: c for c in seeded_cases(int(size[0]), int(size[1]))}
    if golden is not None and golden.input is not None:
        cases.update({c.name: c for c in golden_cases(golden)})
    return cases


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


def composed_flip_test(impl: Any, spec: ArchSpec, images: np.ndarray) -> np.ndarray:
    """The authors' flip test with the implementation in place of the network."""
    import torch

    from reference_model import flip_back

    width = spec.heatmap_size((images.shape[2], images.shape[3]))[1]
    coords = torch.from_numpy(np.asarray(impl(images), dtype=np.float64))
    flipped = torch.from_numpy(np.asarray(impl(np.ascontiguousarray(images[..., ::-1])), dtype=np.float64))
    return ((coords + flip_back(flipped, width, H36M_FLIP_PAIRS)) / 2.0).numpy()


def flip_diagnosis(impl: Any, spec: ArchSpec, images: np.ndarray, actual: np.ndarray, atol: float) -> str:
    """Separate a wrong flip-test procedure from a wrong network, using the implementation's own outputs."""
    from .compare import compare_coords
    from .diagnose import diagnose_flip

    composed = composed_flip_test(impl, spec, images)
    if compare_coords(actual, composed, atol=atol, rtol=0.0).ok:
        return ("the flip-test procedure is right (it equals the authors' flip test around your network); the "
                "network's own outputs differ: see test_matches_reference_model")
    coords = np.asarray(impl(images), dtype=np.float64)
    flipped = np.asarray(impl(np.ascontiguousarray(images[..., ::-1])), dtype=np.float64)
    width = spec.heatmap_size((images.shape[2], images.shape[3]))[1]
    return diagnose_flip(actual, coords, flipped, width, H36M_FLIP_PAIRS, composed, atol).text()


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
