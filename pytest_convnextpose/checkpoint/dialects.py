"""Key dialects -> canonical keys (docs/spec.md, "Checkpoints in the wild"), and back.

Checkpoints in the wild (once `unwrap` has found the state dict) spell its keys in different
dialects (`module.`/`_orig_mod.` prefixes, `head_net.` for `head.`, head layers as
`nn.Sequential` or as a `ModuleList`). This module recognises them, maps every key to
the authors' canonical module names, records what it saw as a `Dialect`, and can write
the same dialect back (`from_canonical`) so a converted file loads where the original did.

Foreign checkpoints sharing the wrapper (ResNet-backbone RootNet / 3DMPPE PoseNet,
plain ConvNeXt classifiers) are refused by name; dicts that look like nothing we know
are refused as unknown. Mapping is per key and tolerant: a key that fits no rule is kept
as-is so the inference layer reports it as `unexpected` instead of it being lost.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch

from ..errors import ArchitectureError, ForeignCheckpointError, UnknownFormatError

#: prefixes added by training tools, stripped wherever they appear at the front of a key
KNOWN_PREFIXES = ("module.", "_orig_mod.")
#: head layouts: how the DeConv layers and their three sub-modules are named
HEAD_LAYOUTS = ("named", "sequential", "modulelist")
SUBLAYER_NAMES = ("dwconv", "norm", "pwconv")

_HEAD_ROOTS = ("head.", "head_net.")

# Layer and sub-layer numbers have at most 9 digits: a key with thousands of digits stays as it is
# (reported as unexpected) instead of reaching int(), which refuses more than 4300 digits.
# head.deconv_layers_N.<sub>.<rest>   (named or Sequential .0/.1/.2)
_HEAD_ATTR = re.compile(r"^deconv_layers_(\d{1,9})\.([A-Za-z_]\w*|\d{1,9})\.(.+)$")
# head.deconv_layers.I.<sub>.<rest>   (ModuleList; sub named or indexed)
_HEAD_LIST = re.compile(r"^deconv_layers\.(\d{1,9})\.([A-Za-z_]\w*|\d{1,9})\.(.+)$")
# head.deconv_layers.I.<leaf>         (ConvTranspose/BN Sequential: the 3DMPPE PoseNet head)
_POSENET_HEAD = re.compile(r"^deconv_layers\.\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
_RESNET_BACKBONE = re.compile(r"^backbone\.(conv1|bn1|layer[1-4])\.")


@dataclass(frozen=True)
class Dialect:
    """How a checkpoint spells the canonical keys.

    prefixes:      leading components, outermost first (`("module.",)`, `("module.", "_orig_mod.")`).
    head_prefix:   `head.` (authors) or `head_net.`.
    head_layout:   `named` (`deconv_layers_N.dwconv/norm/pwconv`), `sequential`
                   (`deconv_layers_N.0/.1/.2`, the released M/L files) or `modulelist`
                   (`deconv_layers.{0..n-1}.…`, the fork that upsamples in every layer).
    head_sublayers: inside a ModuleList layer: `named` or `indexed` (`.0/.1/.2`); for the
                   other layouts it follows from the layout (set automatically).
    """

    prefixes: tuple[str, ...] = ()
    head_prefix: str = "head."
    head_layout: str = "named"
    head_sublayers: str = "named"

    def __post_init__(self) -> None:
        if self.head_layout not in HEAD_LAYOUTS:
            raise ValueError(f"head_layout must be one of {HEAD_LAYOUTS}, got {self.head_layout!r}")
        if self.head_sublayers not in ("named", "indexed"):
            raise ValueError(f"head_sublayers must be 'named' or 'indexed', got {self.head_sublayers!r}")
        if self.head_prefix not in _HEAD_ROOTS:
            raise ValueError(f"head_prefix must be one of {_HEAD_ROOTS}, got {self.head_prefix!r}")
        object.__setattr__(self, "prefixes", tuple(self.prefixes))
        # sub-layer naming is implied by the named/sequential layouts: normalise so equal dialects compare equal
        if self.head_layout != "modulelist":
            object.__setattr__(self, "head_sublayers", "indexed" if self.head_layout == "sequential" else "named")

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefixes": list(self.prefixes),
            "head_prefix": self.head_prefix,
            "head_layout": self.head_layout,
            "head_sublayers": self.head_sublayers,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dialect:
        return cls(
            tuple(data.get("prefixes", ())),
            data.get("head_prefix", "head."),
            data.get("head_layout", "named"),
            data.get("head_sublayers", "named"),
        )

    def summary(self) -> str:
        pre = "+".join(self.prefixes) if self.prefixes else "none"
        sub = f" ({self.head_sublayers} sub-layers)" if self.head_layout == "modulelist" else ""
        return f"prefixes {pre}; head {self.head_prefix!r}; head layout {self.head_layout}{sub}"


@dataclass
class Canonicalized:
    """`to_canonical` with its bookkeeping: which original key became which canonical key."""

    state_dict: dict[str, torch.Tensor]
    origin: dict[str, str]  # canonical key -> original key
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (original key, canonical key) dropped


# --------------------------------------------------------------------------- dialects
def _strip_known(key: str) -> tuple[tuple[str, ...], str]:
    found: list[str] = []
    while True:
        p = next((p for p in KNOWN_PREFIXES if key.startswith(p)), None)
        if p is None:
            return tuple(found), key
        found.append(p)
        key = key[len(p) :]


def _common_unknown_prefix(keys: list[str]) -> tuple[str, ...]:
    """A prefix like `model.` shared by every key, before `backbone.`/`head.` (Lightning-style)."""
    heads = []
    for k in keys:
        m = re.search(r"(?:^|\.)(backbone|head|head_net)\.", k)
        if m is None:
            return ()
        heads.append(k[: m.start(1)])
    first = heads[0]
    if not first or any(h != first for h in heads):
        return ()
    return tuple(part + "." for part in first[:-1].split("."))


def split_prefixes(keys: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The dialect's prefix chain (the most common one) and the keys with prefixes removed."""
    chains = Counter()
    stripped = []
    for k in keys:
        chain, rest = _strip_known(k)
        chains[chain] += 1
        stripped.append(rest)
    extra = _common_unknown_prefix(stripped)
    if extra:
        n = len("".join(extra))
        stripped = [s[n:] for s in stripped]
    chain = chains.most_common(1)[0][0] if chains else ()
    return chain + extra, stripped


def detect_dialect(sd: Mapping[str, Any]) -> Dialect:
    """Recognise the key dialect of a (raw, unwrapped) state dict; refuse foreign or unknown ones."""
    keys = [str(k) for k in sd]
    prefixes, bare = split_prefixes(keys)
    _refuse_foreign(bare, sd, keys)
    head_keys = [(_head_root(k), k[len(_head_root(k)) :]) for k in bare if _head_root(k)]
    roots = Counter(r for r, _ in head_keys)
    head_prefix = roots.most_common(1)[0][0] if roots else "head."
    layouts = Counter(_layer_form(rest) for _, rest in head_keys)
    layouts.pop(None, None)
    if not layouts:
        return Dialect(prefixes, head_prefix)
    (layout, sub), _ = layouts.most_common(1)[0]
    return Dialect(prefixes, head_prefix, layout, sub)


def _head_root(key: str) -> str:
    return next((r for r in _HEAD_ROOTS if key.startswith(r)), "")


def _layer_form(rest: str) -> Optional[tuple[str, str]]:
    """(layout, sublayers) a head key is written in, or None for non-layer keys (final_layer)."""
    if m := _HEAD_ATTR.match(rest):
        return ("sequential", "indexed") if m.group(2).isdigit() else ("named", "named")
    if m := _HEAD_LIST.match(rest):
        return ("modulelist", "indexed" if m.group(2).isdigit() else "named")
    return None


def _refuse_foreign(bare: list[str], sd: Mapping[str, Any], original: list[str]) -> None:
    """Raise ForeignCheckpointError / UnknownFormatError when the keys are not ConvNeXtPose's."""

    def example(pred) -> str:
        i = next(i for i, k in enumerate(bare) if pred(k))
        return original[i]

    if any(_RESNET_BACKBONE.match(k) for k in bare):
        key = example(_RESNET_BACKBONE.match)
        is_root = any(k.startswith("root.") or "root_fc" in k or "depth_layer" in k or "xy_layer" in k for k in bare)
        name = "3DMPPE RootNet" if is_root else "3DMPPE PoseNet (or similar)"
        raise ForeignCheckpointError(f"this is a ResNet-backbone {name} checkpoint, not ConvNeXtPose", key=key)
    if any(k.startswith("root.") or k.startswith("root_fc") for k in bare):
        raise ForeignCheckpointError(
            "this is a 3DMPPE RootNet checkpoint, not ConvNeXtPose", key=example(lambda k: k.startswith("root"))
        )
    posenet = [k for k in bare if _head_root(k) and _POSENET_HEAD.match(k[len(_head_root(k)) :])]
    if posenet and not any(_layer_form(k[len(_head_root(k)) :]) for k in bare if _head_root(k)):
        raise ForeignCheckpointError(
            "head.deconv_layers holds ConvTranspose layers (3DMPPE PoseNet head), not ConvNeXtPose DeConv layers",
            key=example(lambda k: k in posenet),
        )
    has_backbone = any(k.startswith("backbone.") for k in bare)
    has_head = any(_head_root(k) for k in bare)
    if not has_backbone and any(k.startswith(("stages.", "downsample_layers.", "stem.")) for k in bare):
        raise ForeignCheckpointError(
            "this is a ConvNeXt backbone/classifier without a pose head, not a ConvNeXtPose checkpoint", key=original[0]
        )
    if not has_backbone and not has_head:
        raise UnknownFormatError("no ConvNeXtPose keys (backbone.*, head.*) in the state dict", key=original[0])
    if not has_head:
        raise ArchitectureError(
            "backbone weights only: no head.* keys, so joints and depth cannot be determined", key=original[0]
        )


def _canonical_key(bare: str) -> str:
    """Map one prefix-free key to its canonical name (unchanged when no rule applies)."""
    root = _head_root(bare)
    if not root:
        return bare
    rest = bare[len(root) :]
    if m := _HEAD_ATTR.match(rest):
        n, sub, leaf = int(m.group(1)), m.group(2), m.group(3)
    elif m := _HEAD_LIST.match(rest):
        n, sub, leaf = int(m.group(1)) + 1, m.group(2), m.group(3)
    else:
        return "head." + rest
    if sub.isdigit():
        i = int(sub)
        if i >= len(SUBLAYER_NAMES):
            return f"head.{rest}"  # unknown sub-module: keep visible as unexpected
        sub = SUBLAYER_NAMES[i]
    return f"head.deconv_layers_{n}.{sub}.{leaf}"


def canonicalize(sd: Mapping[str, torch.Tensor], dialect: Optional[Dialect] = None) -> Canonicalized:
    """Per-key mapping to canonical form, keeping track of origins and duplicates.

    Every rule is applied per key (not only the detected dialect's), so a file mixing two
    spellings still maps fully; `dialect` is accepted for symmetry with `from_canonical`."""
    keys = [str(k) for k in sd]
    _, bare = split_prefixes(keys)  # per key, so a stray unprefixed key still maps
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    dups: list[tuple[str, str]] = []
    for orig, b in zip(keys, bare):
        canon = _canonical_key(b)
        if canon in out:
            dups.append((orig, canon))
            continue
        out[canon] = sd[orig]
        origin[canon] = orig
    return Canonicalized(out, origin, dups)


def fill_legacy_bn_counters(sd: dict[str, torch.Tensor]) -> int:
    """Add `num_batches_tracked = 0` to every BatchNorm when the file has none at all.

    Files saved by PyTorch < 0.4.1 have no such counters, and torch's BatchNorm fills them
    with 0 when loading (even strictly). Only the all-absent case is that signature: a file
    with some counters and not others is defective and keeps its `missing` problems.
    Returns how many were added (0 when the file already had any)."""
    if any(k.endswith(".num_batches_tracked") for k in sd):
        return 0
    prefixes = [k[: -len("running_var")] for k in sd if k.endswith(".running_var")]
    for prefix in prefixes:
        sd[prefix + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return len(prefixes)


def to_canonical(sd: Mapping[str, torch.Tensor], dialect: Optional[Dialect] = None) -> dict[str, torch.Tensor]:
    """State dict in `dialect` -> canonical keys (docs/spec.md §4). Duplicates keep the first key."""
    return canonicalize(sd, dialect).state_dict


def dialect_key(canon: str, dialect: Dialect) -> str:
    """One canonical key written in `dialect`."""
    key = canon
    if canon.startswith("head."):
        rest = canon[len("head.") :]
        m = _HEAD_ATTR.match(rest)
        if m and m.group(2) in SUBLAYER_NAMES:
            n, sub, leaf = int(m.group(1)), m.group(2), m.group(3)
            if dialect.head_layout == "sequential" or (
                dialect.head_layout == "modulelist" and dialect.head_sublayers == "indexed"
            ):
                sub = str(SUBLAYER_NAMES.index(sub))
            if dialect.head_layout == "modulelist":
                rest = f"deconv_layers.{n - 1}.{sub}.{leaf}"
            else:
                rest = f"deconv_layers_{n}.{sub}.{leaf}"
        key = dialect.head_prefix + rest
    return "".join(dialect.prefixes) + key


def from_canonical(sd: Mapping[str, torch.Tensor], dialect: Dialect) -> dict[str, torch.Tensor]:
    """Canonical state dict -> the same tensors under `dialect`'s key names (order kept)."""
    return {dialect_key(k, dialect): v for k, v in sd.items()}


def canonical_name(key: str) -> str:
    """One key in any known dialect (prefixes, `head_net.`, ModuleList or Sequential head) ->
    its canonical name; keys no rule applies to come back without their known prefixes."""
    return _canonical_key(_strip_known(key)[1])
