"""Causes found by looking inside the implementation: its weights, their dtype, its graph.

Why: some mistakes cannot be reproduced by re-running the reference, but leave traces in
what the factory returned. A module loaded with `strict=False` and non-matching keys
holds none of the checkpoint's values for those tensors; a module cast to float16 or
bfloat16 holds weights of that dtype; an ONNX file exported from another checkpoint has
an output layer of another width (J*D) or other values. When nothing can be inspected (a
plain callable), reduced precision is recognised by its size: the reference with every
weight and every layer output rounded to float16/bfloat16 differs from itself by about
as much, and as evenly, as the implementation does.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from reference_model import ArchSpec

#: relative tolerance for "this module tensor holds that checkpoint tensor" (bfloat16 keeps 8 bits)
VALUE_RTOL = 1e-2
#: a simulated precision explains an error when the mean errors agree within this factor
PRECISION_FACTOR = 4.0
REDUCED_DTYPES = ("float16", "bfloat16")


def _module_state(obj: Any) -> Optional[dict[str, Any]]:
    try:
        import torch

        if not isinstance(obj, torch.nn.Module):
            return None
        return {k: v for k, v in obj.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()}
    except Exception:  # a module whose state_dict raises is simply not inspected
        return None


def reduced_dtype(obj: Any, path: Optional[Path] = None) -> Optional[str]:
    """'float16' or 'bfloat16' when most of the floating-point weights of a module (or of the ONNX
    graph at `path`) are of that dtype."""
    counts: dict[str, int] = defaultdict(int)
    state = _module_state(obj)
    for v in (state or {}).values():
        counts[str(v.dtype).removeprefix("torch.")] += v.numel()
    if path is not None and not counts:
        counts = _onnx_weight_dtypes(path)
    if not counts:
        return None
    dtype = max(counts, key=counts.get)
    return dtype if dtype in REDUCED_DTYPES else None


def _onnx_weight_dtypes(path: Path) -> dict[str, int]:
    """Element counts of an ONNX graph's floating-point initializers, by dtype name."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}
    names = {
        onnx.TensorProto.FLOAT: "float32",
        onnx.TensorProto.FLOAT16: "float16",
        onnx.TensorProto.BFLOAT16: "bfloat16",
        onnx.TensorProto.DOUBLE: "float64",
    }
    counts: dict[str, int] = defaultdict(int)
    for init in model.graph.initializer:
        if init.data_type in names:
            n = 1
            for d in init.dims:
                n *= d
            counts[names[init.data_type]] += n
    return counts


def unloaded_tensors(obj: Any, state_dict: Mapping[str, Any]) -> Optional[list[str]]:
    """Checkpoint keys whose values are in none of the module's tensors (None when `obj` is no
    module). Compared by value, flattened (a Linear holds a 1x1 conv's weight in the same order),
    so the module's own names and layouts do not matter."""
    import torch

    state = _module_state(obj)
    if state is None:
        return None
    by_size: dict[int, list[Any]] = defaultdict(list)
    for v in state.values():
        by_size[v.numel()].append(v.detach().float().cpu().reshape(-1))
    missing = []
    for key, t in state_dict.items():
        if not torch.is_tensor(t) or not t.is_floating_point() or t.numel() < 2:
            continue
        ref = t.detach().float().cpu().reshape(-1)
        if float(ref.abs().max()) == 0.0 or float(ref.std()) == 0.0:
            continue  # zeros and constants (fresh BN statistics) prove nothing
        tol = VALUE_RTOL * ref.abs() + 1e-6
        if not any(bool(((c - ref).abs() <= tol).all()) for c in by_size.get(ref.numel(), [])):
            missing.append(key)
    return missing


def unloaded_text(missing: list[str], total: int) -> str:
    """The cause sentence for checkpoint tensors a module does not hold."""
    groups: dict[str, int] = defaultdict(int)
    for key in missing:
        groups[".".join(key.split(".")[:2])] += 1
    where = ", ".join(f"{g}.* ({n})" for g, n in sorted(groups.items())[:6])
    what = "head weights" if all(k.startswith("head.") for k in missing) else "weights"
    return (
        f"{what} never loaded: {len(missing)} of {total} checkpoint tensors have no equal in your module's "
        f"state_dict ({where}; e.g. {missing[0]}): load_state_dict(strict=False) skips keys that do not match, "
        "silently (the checkpoint's head.deconv_layers_N vs a ModuleList head's head.deconv_layers.(N-1)); "
        "rename the keys and load strictly"
    )


def onnx_output_layer(path: Optional[Path], spec: ArchSpec, state_dict: Mapping[str, Any]) -> Optional[str]:
    """How an ONNX graph's output layer differs from the checkpoint's final_layer, in words, or None.

    The final layer is a 1x1 conv with J*D outputs: an initializer of shape (R, C, 1, 1) with R a
    multiple of J. A graph with no such initializer of the checkpoint's shape has another J*D; one
    whose initializer of that shape holds other values was exported from other weights."""
    if path is None:
        return None
    try:
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    weight = state_dict.get("head.final_layer.weight")
    if weight is None:
        return None
    want = tuple(weight.shape)
    j, d = spec.joint_num, spec.depth_dim
    heads = []
    for init in model.graph.initializer:
        dims = tuple(init.dims)
        if len(dims) == 4 and dims[2:] == (1, 1) and dims[0] % j == 0 and dims[0] >= j * 2 and dims[0] != dims[1]:
            heads.append(init)
    same = [i for i in heads if tuple(i.dims) == want]
    if same:
        ref = weight.detach().float().numpy()
        if any(np.allclose(numpy_helper.to_array(i).astype(np.float32), ref, rtol=VALUE_RTOL, atol=1e-6) for i in same):
            return None
        return (
            f"its output layer ({want[0]} = {j} joints x {d} depth bins) holds other values than this "
            "checkpoint's head.final_layer: it was exported from other weights"
        )
    if heads:
        r = heads[-1].dims[0]
        return (
            f"its output layer has {r} = {j} joints x {r // j} depth bins (J*D), this checkpoint's final_layer "
            f"{want[0]} = {j} x {d}"
        )
    return None


def _rounding_copy(model: Any, dtype: Any) -> Any:
    """A copy of `model` whose weights, and every leaf module's output, are rounded to `dtype`."""
    import torch

    clone = copy.deepcopy(model)
    with torch.no_grad():
        for t in list(clone.parameters()) + list(clone.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(dtype).float())

    def hook(module: Any, args: Any, out: Any) -> Any:
        return out.to(dtype).float() if torch.is_tensor(out) and out.is_floating_point() else out

    for m in clone.modules():
        if not list(m.children()):
            m.register_forward_hook(hook)
    return clone


def reduced_precision(
    model: Any, images: np.ndarray, actual: np.ndarray, reference: np.ndarray, tolerance: float
) -> Optional[tuple[str, float, float]]:
    """(dtype, simulated mean error, your mean error) when the error looks like float16/bfloat16 inference:
    spread over most values and about as large as that precision's rounding gives."""
    import torch

    if actual.shape != reference.shape:
        return None
    err = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
    if not np.isfinite(err).all() or float((err > tolerance).mean()) < 0.5:
        return None
    mine = float(err.mean())
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
    best = None
    for name, dtype in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        with torch.no_grad():
            sim = _rounding_copy(model, dtype)(x.to(dtype).float()).cpu().numpy()
        theirs = float(np.abs(sim.astype(np.float64) - reference).mean())
        if theirs <= 0:
            continue
        gap = abs(np.log(mine / theirs))
        if gap <= np.log(PRECISION_FACTOR) and (best is None or gap < best[0]):
            best = (gap, name, theirs)
    return None if best is None else (best[1], best[2], mine)


def precision_text(dtype: str, certain: bool, what: str = "module") -> str:
    how = (
        f"your {what}'s weights are {dtype}" if certain else f"the error has the size and spread {dtype} rounding gives"
    )
    return (
        f"{dtype} inference cast back to float32: {how}; reduced precision gives a small error spread over "
        "every joint and coordinate (typically below one heatmap cell); run in float32, or accept it with "
        "--atol / @pytest.mark.convnextpose_tolerance"
    )
