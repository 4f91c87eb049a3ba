"""Explain PyTorch's `load_state_dict` errors in the checkpoint's own terms (docs/spec.md §2, §4).

Why: a porter whose factory raises `size mismatch for head.final_layer.weight: copying a
param with shape torch.Size([1152, 512, 1, 1]) ... the current model has shape
torch.Size([576, 512, 1, 1])` needs to hear "the checkpoint has 18 joints x 64 depth
bins; your model was built with depth_dim 32". The error text is all there is (the
factory raised before returning a model), so it is parsed: missing keys, unexpected keys
and size mismatches, with the model's key names mapped to canonical ones
(`keymap.canonical_name`), then compared with the checkpoint's `ArchSpec`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

from reference_model import ArchSpec, format_head_upsample

from ..checkpoint.dialects import canonical_name
from ..checkpoint.infer import match_variant

_LIST = re.compile(r'(Missing|Unexpected) key\(s\) in state_dict: ((?:"[^"]*"(?:, )?)+)')
_KEY = re.compile(r'"([^"]*)"')
#: "the current model has shape" (torch < 2.1) or "the shape in current model is" (later)
_SIZE = re.compile(
    r"size mismatch for ([^:]+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) from "
    r"checkpoint, the (?:current model has shape|shape in current model is) "
    r"torch\.Size\(\[([\d, ]*)\]\)"
)
_STAGE = re.compile(r"^backbone\.stages\.(\d+)\.(\d+)\.")
_DOWN = re.compile(r"^backbone\.downsample_layers\.(\d+)\.")
_HEAD = re.compile(r"^head\.deconv_layers_(\d+)\.")


@dataclass
class LoadError:
    """What a `load_state_dict` error message lists, keys in canonical form."""

    missing: list[str] = field(default_factory=list)  # in the model, not in what was loaded
    unexpected: list[str] = field(default_factory=list)  # in what was loaded, not in the model
    raw_missing: list[str] = field(default_factory=list)
    raw_unexpected: list[str] = field(default_factory=list)
    #: canonical key -> (shape given, shape the model has)
    sizes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.missing or self.unexpected or self.sizes)


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace(" ", "").split(",") if v)


def parse_load_error(message: str) -> Optional[LoadError]:
    """The parts of a `load_state_dict` error, or None when `message` is not one."""
    if "state_dict" not in message:
        return None
    out = LoadError()
    for kind, keys in _LIST.findall(message):
        raw = _KEY.findall(keys)
        (out.raw_missing if kind == "Missing" else out.raw_unexpected).extend(raw)
        (out.missing if kind == "Missing" else out.unexpected).extend(canonical_name(k) for k in raw)
    for key, given, model in _SIZE.findall(message):
        out.sizes[canonical_name(key.strip())] = (_shape(given), _shape(model))
    return None if out.empty else out


def summarize_load_error(exc: BaseException) -> Optional[str]:
    """PyTorch's load error in one short line (it lists every key), or None when it is not one."""
    err = parse_load_error(str(exc))
    if err is None:
        return None
    head = str(exc).strip().splitlines()[0].rstrip(":")
    parts = []
    if err.raw_missing:
        parts.append(f"{len(err.raw_missing)} missing key(s) ({err.raw_missing[0]!r}, ...)")
    if err.raw_unexpected:
        parts.append(f"{len(err.raw_unexpected)} unexpected key(s) ({err.raw_unexpected[0]!r}, ...)")
    if err.sizes:
        key, (given, model) = next(iter(err.sizes.items()))
        parts.append(f"{len(err.sizes)} size mismatch(es) ({key}: checkpoint {list(given)}, your model {list(model)})")
    return f"{head}: " + "; ".join(parts)


def explain_load_error(exc: BaseException, spec: ArchSpec) -> list[str]:
    """`likely cause:` lines for an exception a factory raised, or [] when it is no load error."""
    err = parse_load_error(str(exc))
    if err is None:
        return []
    lines = _explain(err, spec)
    if not lines:
        lines = ["the keys or shapes of your model differ from the checkpoint's"]
    return (
        [f"likely cause: {lines[0]}"]
        + [f"  also: {line}" for line in lines[1:]]
        + [
            f"  the checkpoint's architecture (ckpt.spec{_variant(spec)}): depths={tuple(spec.depths)}, "
            f"dims={tuple(spec.dims)}, "
            f"head_channels={tuple(spec.head_channels)}, head_kernels={tuple(spec.head_kernels)}, "
            f"head_upsample={format_head_upsample(spec.head_upsample)}, depth_dim={spec.depth_dim}, "
            f"joint_num={spec.joint_num}; keys as in ckpt.state_dict (docs/spec.md §4)"
        ]
    )


def _variant(spec: ArchSpec) -> str:
    name = match_variant(spec)[0]
    return f", published variant {name}, docs/spec.md §2" if name else ""


def _explain(err: LoadError, spec: ArchSpec) -> list[str]:
    lines: list[str] = []
    lines += _final_layer(err, spec)
    lines += _dims(err, spec)
    lines += _depths(err, spec)
    lines += _head(err, spec)
    lines += _renamed(err)
    return lines


def _final_layer(err: LoadError, spec: ArchSpec) -> list[str]:
    shapes = err.sizes.get("head.final_layer.weight") or err.sizes.get("head.final_layer.bias")
    if not shapes or shapes[0][0] == shapes[1][0]:
        return []
    given, model = shapes[0][0], shapes[1][0]
    j, d = spec.joint_num, spec.depth_dim
    text = (
        f"head.final_layer: the checkpoint has {given} output channels = {j} joints × {d} depth bins "
        f"(J·D); your model was built with {model}"
    )
    if model % j == 0:
        text += f" = {j} × {model // j}: build it with depth_dim = {d} (ckpt.spec.depth_dim), not {model // j}"
    elif model % d == 0:
        text += f" = {model // d} joints × {d}: build it with joint_num = {j}, not {model // d}"
    return [text]


def _dims(err: LoadError, spec: ArchSpec) -> list[str]:
    """Stage widths: from mismatched block or downsampler tensors, the model's dims per stage."""
    model_dims: dict[int, int] = {}
    for key, (_given, model) in err.sizes.items():
        if (m := _STAGE.match(key)) and key.endswith(".dwconv.weight"):
            model_dims.setdefault(int(m.group(1)), model[0])
        elif (m := _DOWN.match(key)) and key.endswith(".weight") and len(model) == 4:
            model_dims.setdefault(int(m.group(1)), model[0])
    if not model_dims:
        return []
    yours = tuple(model_dims.get(i, spec.dims[i]) for i in range(4))
    if yours == tuple(spec.dims):
        return []
    return [
        f"backbone widths: your model has dims={yours}, the checkpoint dims={tuple(spec.dims)} "
        f"(stage widths read from the tensor shapes, docs/spec.md §2)"
    ]


def _blocks(keys: list[str]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for key in keys:
        if m := _STAGE.match(key):
            out[int(m.group(1))].add(int(m.group(2)))
    return out


def _depths(err: LoadError, spec: ArchSpec) -> list[str]:
    """Blocks the model has beyond the checkpoint's (missing) or lacks (unexpected), per stage."""
    extra, lacking = _blocks(err.missing), _blocks(err.unexpected)
    if not extra and not lacking:
        return []
    yours = list(spec.depths)
    for stage, blocks in extra.items():
        yours[stage] = max(yours[stage], max(blocks) + 1)
    for stage, blocks in lacking.items():
        yours[stage] = min(yours[stage], min(blocks))
    if tuple(yours) == tuple(spec.depths):
        return []
    diff = ", ".join(
        f"stage {s + 1}: {y} blocks in your model, {c} in the checkpoint"
        for s, (y, c) in enumerate(zip(yours, spec.depths))
        if y != c
    )
    return [
        f"backbone depths: your model has depths={tuple(yours)}, the checkpoint depths={tuple(spec.depths)} "
        f"({diff}); the missing/unexpected keys are those blocks"
    ]


def _head(err: LoadError, spec: ArchSpec) -> list[str]:
    lines = []
    chans: dict[int, int] = {}
    for key, (_given, model) in err.sizes.items():
        if (m := _HEAD.match(key)) and key.endswith(".pwconv.weight"):
            chans[int(m.group(1))] = model[0]
    if chans:
        yours = tuple(chans.get(i + 1, c) for i, c in enumerate(spec.head_channels))
        if yours != tuple(spec.head_channels):
            lines.append(
                f"head widths: your model has head_channels={yours}, the checkpoint {tuple(spec.head_channels)}"
            )
    model_layers = {int(m.group(1)) for k in err.missing if (m := _HEAD.match(k))}
    ckpt_layers = {int(m.group(1)) for k in err.unexpected if (m := _HEAD.match(k))}
    if model_layers - ckpt_layers and not ckpt_layers:
        n = max(model_layers)
        lines.append(f"head depth: your model has {n} DeConv layers, the checkpoint {spec.num_head_layers}")
    elif ckpt_layers - model_layers and not model_layers:
        lines.append(
            f"head depth: your model has {min(ckpt_layers) - 1} DeConv layers, the checkpoint {spec.num_head_layers}"
        )
    return lines


def _renamed(err: LoadError) -> list[str]:
    """Keys that are missing under one name and unexpected under another that means the same."""
    pairs = []
    for raw_m in err.raw_missing:
        canon = canonical_name(raw_m)
        for raw_u in err.raw_unexpected:
            if canonical_name(raw_u) == canon and raw_u != raw_m:
                pairs.append((raw_m, raw_u))
                break
    if not pairs:
        return []
    model_key, given_key = pairs[0]
    return [
        f"{len(pairs)} tensors are there under other names: your model calls {given_key!r} "
        f"{model_key!r} (rename the keys before loading: ckpt.state_dict uses the canonical names, docs/spec.md §4)"
    ]
