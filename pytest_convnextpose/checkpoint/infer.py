"""Layer 3: canonical tensors -> `ArchSpec`, variant, and problems (docs/spec.md §4).

The architecture is read from tensor shapes alone. Every dimension is decided by a vote
over all tensors that reveal it (the stem conv, the downsampler BatchNorms, each block's
convolutions...), so one missing or wrong-shaped tensor does not hide the structure: the
spec still comes out and the defect is reported as a `Problem` against the canonical key.
Only when the structure itself cannot be determined (no head, no final layer, J*D that
no prior explains) is the file refused with `ArchitectureError`.

`head_upsample` has no parameters, so it comes from, in order: the user; a converted
file's own `convnextpose.spec` metadata (only when it agrees with the shapes); the
published variant the shapes match; the layout (ModuleList fork -> all up); the authors'
default (all up except the last).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, Iterable, Mapping, Optional

import torch

from reference_model import VARIANTS, ArchSpec, count_parameters, format_head_upsample

from ..errors import ArchitectureError
from .metadata_keys import SPEC as SPEC_METADATA_KEY
from .problems import Problem
from .shapes import canonical_shapes

#: docs/spec.md §4 prior on the joint count; depth_dim must be a power of two.
KNOWN_JOINT_COUNTS = (18, 17, 21, 14, 16)
#: metadata key a converted safetensors file stores its spec under
#: sanity bounds: beyond these the file is not a plausible ConvNeXtPose
MAX_BLOCKS_PER_STAGE = 256
MAX_HEAD_LAYERS = 32

# at most 9 digits: longer numbers stay unmatched (unexpected keys) instead of reaching int()
_STAGE_KEY = re.compile(r"^backbone\.stages\.(\d{1,9})\.(\d{1,9})\.")
_HEAD_KEY = re.compile(r"^head\.deconv_layers_(\d{1,9})\.")


@dataclass
class Inference:
    """What the tensors say: the spec, where `head_upsample` came from, variant, problems."""

    spec: ArchSpec
    head_upsample_source: str
    variant: Optional[str]
    nearest_variant: Optional[str]
    variant_differences: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def infer(
    sd: Mapping[str, torch.Tensor],
    *,
    joint_num: Optional[int] = None,
    head_upsample: Optional[Iterable[bool]] = None,
    head_layout: str = "named",
    metadata: Optional[Mapping[str, Any]] = None,
) -> Inference:
    """Infer the architecture of canonical state dict `sd` and check every tensor against it."""
    shapes = {k: tuple(v.shape) for k, v in sd.items() if isinstance(v, torch.Tensor)}
    try:
        skeleton = infer_shape_fields(shapes, joint_num)
    except ArchitectureError:
        # A converted file remembers the joint count the user gave once (--joints); use it only
        # when the shape prior cannot decide. `_metadata_spec` still cross-checks every field.
        hint = _metadata_joint_num(metadata or {})
        if joint_num is not None or hint is None:
            raise
        skeleton = infer_shape_fields(shapes, hint)
    problems: list[Problem] = []
    user_joints = joints_problem(skeleton.joint_num * skeleton.depth_dim, joint_num)
    if user_joints is not None:
        problems.append(user_joints)
    meta_spec = _metadata_spec(metadata or {}, skeleton, problems)
    flags, source = choose_head_upsample(skeleton, head_upsample, meta_spec, head_layout)
    spec = _make_spec(skeleton, flags)
    problems += check_tensors(sd, spec)
    variant, nearest, diffs = match_variant(spec)
    return Inference(spec, source, variant, nearest, diffs, problems)


# --------------------------------------------------------------------------- shapes -> fields
def _vote(evidence: list[Optional[int]]) -> Optional[int]:
    """Most common value among the evidence; ties go to the earliest (primary) source."""
    counts = Counter(e for e in evidence if e is not None and e > 0)
    return counts.most_common(1)[0][0] if counts else None


def _dim(shapes: Mapping[str, tuple], key: str, axis: int, ndim: Optional[int] = None) -> Optional[int]:
    s = shapes.get(key)
    if s is None or (ndim is not None and len(s) != ndim) or len(s) <= axis:
        return None
    return int(s[axis])


def _bn_dim(shapes: Mapping[str, tuple], prefix: str) -> list[Optional[int]]:
    return [_dim(shapes, f"{prefix}.{leaf}", 0, 1) for leaf in ("weight", "bias", "running_mean", "running_var")]


def infer_depths(shapes: Mapping[str, tuple]) -> tuple[int, ...]:
    """Blocks per stage = highest block index + 1, so a missing middle block shows as `missing`."""
    blocks: dict[int, set[int]] = {}
    for k in shapes:
        if m := _STAGE_KEY.match(k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    depths = tuple(max(blocks[s]) + 1 if s in blocks else 0 for s in range(4))
    if any(d > MAX_BLOCKS_PER_STAGE for d in depths) or any(s > 3 for s in blocks):
        raise ArchitectureError(f"implausible backbone: blocks per stage {depths}, stages {sorted(blocks)}")
    return depths


def infer_dims(shapes: Mapping[str, tuple], depths: tuple[int, ...]) -> tuple[int, ...]:
    dims = []
    for i in range(4):
        ev: list[Optional[int]] = []
        if i == 0:
            ev += [
                _dim(shapes, "backbone.downsample_layers.0.0.weight", 0, 4),
                _dim(shapes, "backbone.downsample_layers.0.0.bias", 0, 1),
            ]
            ev += _bn_dim(shapes, "backbone.downsample_layers.0.1")
        else:
            ev += [
                _dim(shapes, f"backbone.downsample_layers.{i}.1.weight", 0, 4),
                _dim(shapes, f"backbone.downsample_layers.{i}.1.bias", 0, 1),
            ]
        if i < 3:
            ev += _bn_dim(shapes, f"backbone.downsample_layers.{i + 1}.0")
            ev.append(_dim(shapes, f"backbone.downsample_layers.{i + 1}.1.weight", 1, 4))
        else:
            ev += _bn_dim(shapes, "backbone.norm")
            ev += [
                _dim(shapes, "head.deconv_layers_1.dwconv.weight", 0, 4),
                _dim(shapes, "head.deconv_layers_1.pwconv.weight", 1, 4),
            ]
        for b in range(depths[i]):
            p = f"backbone.stages.{i}.{b}"
            ev += [
                _dim(shapes, f"{p}.dwconv.weight", 0, 4),
                _dim(shapes, f"{p}.pwconv1.weight", 1, 4),
                _dim(shapes, f"{p}.pwconv2.weight", 0, 4),
            ] + _bn_dim(shapes, f"{p}.norm")
        d = _vote(ev)
        if d is None:
            raise ArchitectureError(
                f"cannot determine the width of backbone stage {i}: no tensor shows it",
                key=f"backbone.downsample_layers.{i}",
            )
        dims.append(d)
    return tuple(dims)


def infer_head(shapes: Mapping[str, tuple]) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """(channels, kernels, J*D) of the head."""
    layers = {int(m.group(1)) for k in shapes if (m := _HEAD_KEY.match(k))}
    if not layers:
        raise ArchitectureError(
            "no head.deconv_layers_N tensors: the head cannot be determined", key="head.deconv_layers_1"
        )
    n = max(layers)
    if n > MAX_HEAD_LAYERS or min(layers) < 1:
        raise ArchitectureError(
            f"implausible head: layer numbers {sorted(layers)[:5]}...", key=f"head.deconv_layers_{n}"
        )
    channels, kernels = [], []
    for i in range(1, n + 1):
        p, q = f"head.deconv_layers_{i}", f"head.deconv_layers_{i + 1}"
        ev = [_dim(shapes, f"{p}.pwconv.weight", 0, 4), _dim(shapes, f"{p}.pwconv.bias", 0, 1)]
        if i < n:
            ev += [_dim(shapes, f"{q}.dwconv.weight", 0, 4), _dim(shapes, f"{q}.pwconv.weight", 1, 4)] + _bn_dim(
                shapes, f"{q}.norm"
            )
        else:
            ev.append(_dim(shapes, "head.final_layer.weight", 1, 4))
        c = _vote(ev)
        if c is None:
            raise ArchitectureError(f"cannot determine the output channels of head layer {i}", key=f"{p}.pwconv.weight")
        channels.append(c)
        ks = shapes.get(f"{p}.dwconv.weight")
        k = int(ks[-1]) if ks is not None and len(ks) == 4 and ks[-1] == ks[-2] and ks[-1] % 2 == 1 else 3
        kernels.append(k)
    jd = _vote([_dim(shapes, "head.final_layer.weight", 0, 4), _dim(shapes, "head.final_layer.bias", 0, 1)])
    if jd is None:
        raise ArchitectureError(
            "no head.final_layer tensor: joints x depth cannot be determined", key="head.final_layer.weight"
        )
    return tuple(channels), tuple(kernels), jd


def factor_joints_depth(channels: int, joint_num: Optional[int] = None) -> tuple[int, int]:
    """Split `channels = J * D` with the docs/spec.md §4 prior, or with the user's joint count."""
    cands = _clean_splits(channels)
    if joint_num is not None:
        if joint_num <= 0 or channels % joint_num:
            raise ArchitectureError(
                f"final_layer has {channels} channels (joints x depth bins), not a multiple of "
                f"--joints {joint_num}{_fits(cands)}",
                key="head.final_layer.weight",
            )
        return joint_num, channels // joint_num
    if len(cands) != 1:
        found = ", ".join(f"J={j} D={d}" for j, d in cands) or "no known joint count with a power-of-two depth"
        raise ArchitectureError(
            f"final_layer has {channels} = joints x depth channels ({found}); pass --joints N (joint_num=N)",
            key="head.final_layer.weight",
        )
    return cands[0]


def joints_problem(channels: int, joint_num: Optional[int]) -> Optional[Problem]:
    """The user's joint count is honoured, but never silently: when it leaves a depth that is no
    power of two while the channels split cleanly another way, say so (`--joints 16` on an
    18 x 32 file would otherwise read as 16 x 36)."""
    cands = _clean_splits(channels)
    if joint_num is None or not cands or _is_pow2(channels // joint_num):
        return None
    return Problem(
        "joints",
        "head.final_layer.weight",
        f"--joints {joint_num} gives {channels} / {joint_num} = {channels // joint_num} depth bins, not a "
        f"power of two as every ConvNeXtPose depth_dim is{_fits(cands)}",
    )


def _clean_splits(channels: int) -> list[tuple[int, int]]:
    """(J, D) with J a known joint count and D a power of two."""
    return [(j, channels // j) for j in KNOWN_JOINT_COUNTS if channels % j == 0 and _is_pow2(channels // j)]


def _fits(cands: list[tuple[int, int]]) -> str:
    return "; the tensors fit " + " or ".join(f"{j} joints x {d} depth bins" for j, d in cands) if cands else ""


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


#: Every ArchSpec field except `head_upsample` (the one no tensor shows): what shapes alone determine.
#: Derived from ArchSpec, so a field added there is inferred (or fails loudly) here too.
ShapeFields = make_dataclass(
    "ShapeFields", [(f.name, f.type) for f in fields(ArchSpec) if f.name != "head_upsample"], frozen=True
)
ShapeFields.__module__ = __name__  # picklable, and named where it is defined


def infer_shape_fields(shapes: Mapping[str, tuple], joint_num: Optional[int] = None) -> ShapeFields:
    depths = infer_depths(shapes)
    dims = infer_dims(shapes, depths)
    channels, kernels, jd = infer_head(shapes)
    j, d = factor_joints_depth(jd, joint_num)
    return ShapeFields(depths=depths, dims=dims, head_channels=channels, head_kernels=kernels, depth_dim=d, joint_num=j)


def _make_spec(sf: ShapeFields, flags: tuple[bool, ...]) -> ArchSpec:
    try:
        return ArchSpec(
            depths=sf.depths,
            dims=sf.dims,
            head_channels=sf.head_channels,
            head_kernels=sf.head_kernels,
            head_upsample=flags,
            depth_dim=sf.depth_dim,
            joint_num=sf.joint_num,
        )
    except ValueError as exc:
        raise ArchitectureError(f"tensor shapes describe no buildable network: {exc}") from None


# --------------------------------------------------------------------------- head_upsample
def _same_shape_fields(spec: ArchSpec, sf: ShapeFields) -> bool:
    return all(getattr(spec, f.name) == getattr(sf, f.name) for f in fields(ShapeFields))


def choose_head_upsample(
    sf: ShapeFields, user: Optional[Iterable[bool]], meta: Optional[ArchSpec], head_layout: str
) -> tuple[tuple[bool, ...], str]:
    """(flags, source) with source in user | metadata | variant | layout | default."""
    n = len(sf.head_channels)
    if user is not None:
        flags = tuple(bool(u) for u in user)
        if len(flags) != n:
            raise ArchitectureError(
                f"--head-upsample gives {len(flags)} flags ({format_head_upsample(flags)}) but the head has {n} layers"
            )
        return flags, "user"
    if meta is not None:
        return meta.head_upsample, "metadata"
    for v in VARIANTS.values():
        if _same_shape_fields(v.spec, sf):
            return v.spec.head_upsample, "variant"
    if head_layout == "modulelist":
        return (True,) * n, "layout"
    return (True,) * (n - 1) + (False,), "default"


def _metadata_spec(metadata: Mapping[str, Any], sf: ShapeFields, problems: list[Problem]) -> Optional[ArchSpec]:
    """The spec a converted file claims, if it agrees with the shapes; a contradiction is a problem."""
    raw = metadata.get(SPEC_METADATA_KEY)
    if raw is None:
        return None
    try:
        claimed = ArchSpec.from_dict(json.loads(raw) if isinstance(raw, str) else raw)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        problems.append(Problem("metadata", SPEC_METADATA_KEY, f"unreadable spec in metadata: {exc}"))
        return None
    diffs = [
        f"{f.name} {_listed(getattr(claimed, f.name))} in metadata vs {_fmt(getattr(sf, f.name))} in tensors"
        for f in fields(ShapeFields)
        if getattr(claimed, f.name) != getattr(sf, f.name)
    ]
    if len(claimed.head_upsample) != len(sf.head_channels):
        diffs.append(f"head_upsample has {len(claimed.head_upsample)} flags for {len(sf.head_channels)} head layers")
    if diffs:
        problems.append(Problem("metadata", SPEC_METADATA_KEY, "metadata contradicts the tensors: " + "; ".join(diffs)))
        return None
    return claimed


def _metadata_joint_num(metadata: Mapping[str, Any]) -> Optional[int]:
    """`joint_num` from a converted file's spec metadata, or None when absent or unreadable."""
    raw = metadata.get(SPEC_METADATA_KEY)
    try:
        j = int((json.loads(raw) if isinstance(raw, str) else raw)["joint_num"])
    except (TypeError, ValueError, KeyError, OverflowError, RecursionError):
        return None
    return j if j > 0 else None


def _listed(value: Any) -> Any:
    """A tuple as a list (how JSON metadata writes it), anything else as it is."""
    return list(value) if isinstance(value, tuple) else value


def _fmt(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


# --------------------------------------------------------------------------- variants
def variant_differences(spec: ArchSpec, ref: ArchSpec) -> list[str]:
    """Human-readable `field: this X, variant Y` for every ArchSpec field that differs."""
    out = []
    for f in fields(ArchSpec):
        a, b = getattr(spec, f.name), getattr(ref, f.name)
        if a != b:
            if f.name == "head_upsample":
                a, b = format_head_upsample(a), format_head_upsample(b)
            out.append(f"{f.name}: {_fmt(a)} here, {_fmt(b)} in the variant")
    return out


def match_variant(spec: ArchSpec) -> tuple[Optional[str], Optional[str], list[str]]:
    """(exact variant or None, nearest variant, differences from the nearest)."""
    n = count_parameters(spec)
    ranked = sorted(
        VARIANTS.values(), key=lambda v: (len(variant_differences(spec, v.spec)), abs(v.num_parameters - n))
    )
    best = ranked[0]
    diffs = variant_differences(spec, best.spec)
    return (best.name if not diffs else None), best.name, diffs


# --------------------------------------------------------------------------- tensor checks
#: dtypes the model's weights and buffers may be stored in (the model computes in float32); counters are integers
_WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_COUNTER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_tensors(sd: Mapping[str, Any], spec: ArchSpec) -> list[Problem]:
    """missing / unexpected / shape / dtype / nonfinite / bn_variance problems, in model key order."""
    expected = canonical_shapes(spec)
    problems: list[Problem] = []
    for key, shape in expected.items():
        t = sd.get(key)
        if t is None:
            problems.append(Problem("missing", key, f"expected a tensor of shape {list(shape)}"))
        elif not isinstance(t, torch.Tensor):
            problems.append(
                Problem("shape", key, f"expected a tensor of shape {list(shape)}, found a {type(t).__name__}")
            )
        elif tuple(t.shape) != shape:
            problems.append(Problem("shape", key, f"expected shape {list(shape)}, found {list(t.shape)}"))
        if (
            isinstance(t, torch.Tensor)
            and t.device.type != "meta"
            and t.dtype not in (_COUNTER_DTYPES if key.endswith(".num_batches_tracked") else _WEIGHT_DTYPES)
        ):
            want = "an integer" if key.endswith(".num_batches_tracked") else "a float16/bfloat16/float32/float64"
            problems.append(
                Problem("dtype", key, f"expected {want} tensor, found {str(t.dtype).replace('torch.', '')}")
            )
    for key in sd:
        if key not in expected:
            t = sd[key]
            what = f"shape {list(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            problems.append(Problem("unexpected", key, f"not part of the inferred architecture ({what})"))
    for key, t in sd.items():
        problems += _value_problems(key, t)
    return problems


#: float dtypes whose float64 sum cannot overflow (see `_all_finite`)
_SUMMABLE = (torch.float16, torch.bfloat16, torch.float32)


def _all_finite(t: torch.Tensor) -> bool:
    """Exact and allocation-free for the common dtypes: a float64 sum of float32/16 values is
    finite iff every value is (NaN and +-inf propagate, inf - inf is NaN, and |x| < 3.5e38
    times any feasible element count stays far below float64's 1.8e308). Other dtypes fall
    back to the element-wise test. Checking 8M weights this way is ~4x faster."""
    if t.dtype in _SUMMABLE:
        return bool(torch.isfinite(t.sum(dtype=torch.float64)))
    return bool(torch.isfinite(t).all())


#: dtypes the element-wise checks below support directly; others (float8, uint16/32/64, ...) are
#: checked through float64 copies of slices
_CHECKABLE = (
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
)


def _value_problems(key: str, t: Any) -> list[Problem]:
    if not isinstance(t, torch.Tensor) or t.device.type == "meta":
        return []
    if t.dtype not in _CHECKABLE:
        return _widened_value_problems(key, t)
    is_var = key.endswith(".running_var") and not t.is_complex() and t.dtype != torch.bool
    if not (t.is_floating_point() or t.is_complex() or is_var):
        return []  # integer tensors are always finite; only a running_var's sign matters
    if _all_finite(t) and not is_var:
        return []
    finite = torch.isfinite(t)  # only for a defective tensor or a (small) running_var
    bad = int(t.numel() - finite.sum())
    out = []
    if bad:
        out.append(Problem("nonfinite", key, f"{bad} of {t.numel()} values are NaN or infinite"))
    if is_var:
        nonpos = int(((t <= 0) & finite).sum())
        if nonpos:
            out.append(
                Problem(
                    "bn_variance",
                    key,
                    f"{nonpos} of {t.numel()} running variances are <= 0 (min {float(t[finite].min()):.3g})",
                )
            )
    return out


def _widened_value_problems(key: str, t: torch.Tensor, step: int = 1 << 20) -> list[Problem]:
    """The same checks for dtypes torch's comparisons do not cover, on float64 copies of slices
    (memory stays a few MiB whatever the tensor's size)."""
    flat = t.reshape(-1)
    bad = nonpos = 0
    low = float("inf")
    for i in range(0, flat.numel(), step):
        part = flat[i : i + step].to(torch.float64)
        finite = torch.isfinite(part)
        bad += int(part.numel() - finite.sum())
        if key.endswith(".running_var"):
            nonpos += int(((part <= 0) & finite).sum())
            if finite.any():
                low = min(low, float(part[finite].min()))
    out = []
    if bad:
        out.append(Problem("nonfinite", key, f"{bad} of {t.numel()} values are NaN or infinite"))
    if nonpos:
        out.append(Problem("bn_variance", key, f"{nonpos} of {t.numel()} running variances are <= 0 (min {low:.3g})"))
    return out
