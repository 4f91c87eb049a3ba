"""Helpers shared by the convert/export tests: small specs, checkpoint writers, an authors-style model.

Holds no tests. Expected values never come from the code under test: source files are written
here with plain `torch.save`/`safetensors` from seeded synthetic tensors, and the
"authors' layouts" are rebuilt here independently of `checkpoint.dialects`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from hypothesis import strategies as st
from torch import nn

from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import ArchSpec, build_model

REPO = Path(__file__).resolve().parents[1]
TINY_GOLDEN = REPO / "tests" / "data" / "tiny_snapshot_83.pth.tar"

#: a small network the loader can infer unambiguously (72 = 18 joints x depth 4)
SMALL = ArchSpec(
    depths=(1, 1, 1, 1),
    dims=(8, 16, 16, 32),
    head_channels=(16, 16, 16),
    head_kernels=(3, 3, 3),
    head_upsample=(True, True, False),
    depth_dim=4,
    joint_num=18,
)
#: the same shapes as an M/L-style "3-UP" head: upsampling cannot be read from weights
SMALL_3UP = ArchSpec(**{**SMALL.to_dict(), "head_upsample": [True, True, True]})


def temp_leftovers(folder: Path) -> list[str]:
    """Names of our temporary files left in `folder` (atomic.py names them `.<target>.*.tmp`)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


@dataclass
class PriorOutput:
    """An output path that holds `old` from an earlier run (or nothing, when `old` is None), for the
    crash-safety tests: whatever stage a write fails at, the path must be left exactly as it was."""

    path: Path
    old: Optional[bytes]

    @classmethod
    def make(cls, path: Path, had_old: bool, old: bytes) -> PriorOutput:
        if had_old:
            path.write_bytes(old)
        return cls(path, old if had_old else None)

    def assert_untouched(self, stage: str) -> None:
        if self.old is not None:
            assert self.path.read_bytes() == self.old, f"old output changed by a write that failed at {stage}"
        else:
            assert not self.path.exists(), f"a write that failed at {stage} left an output file"
        assert temp_leftovers(self.path.parent) == [], f"temp file left after failure at {stage}"


# --- writing source checkpoints in the dialects of docs/spec.md §3 (independent of checkpoint.dialects) ---


def sequential_key(key: str) -> str:
    """`head.deconv_layers_N.dwconv|norm|pwconv.x` -> `head.deconv_layers_N.0|1|2.x` (released M/L files)."""
    for i, sub in enumerate(("dwconv", "norm", "pwconv")):
        key = key.replace(f".{sub}.", f".{i}.") if key.startswith("head.deconv_layers_") else key
    return key


def modulelist_key(key: str) -> str:
    """`head.deconv_layers_N.sub.x` -> `head.deconv_layers.{N-1}.sub.x` (the all-upsampling fork)."""
    if key.startswith("head.deconv_layers_"):
        n, rest = key[len("head.deconv_layers_") :].split(".", 1)
        return f"head.deconv_layers.{int(n) - 1}.{rest}"
    return key


DIALECTS = {
    "canonical": lambda k: k,
    "module": lambda k: "module." + k,
    "orig_mod": lambda k: "_orig_mod." + k,
    "module_orig_mod": lambda k: "module._orig_mod." + k,
    "head_net": lambda k: "module." + k.replace("head.", "head_net.", 1) if k.startswith("head.") else "module." + k,
    "sequential": lambda k: "module." + sequential_key(k),
    "modulelist": lambda k: "module." + modulelist_key(k),
}


def in_dialect(sd: Mapping[str, torch.Tensor], dialect: str) -> dict[str, torch.Tensor]:
    return {DIALECTS[dialect](k): v for k, v in sd.items()}


def wrap(sd: dict[str, torch.Tensor], wrapper: Optional[str], epoch: int = 7) -> Any:
    if wrapper is None:
        return sd
    return {"epoch": epoch, wrapper: sd}


def save_torch(obj: Any, path: Path, *, legacy: bool = False) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_source(
    path: Path,
    spec: ArchSpec = SMALL,
    *,
    seed: int = 0,
    dialect: str = "module",
    wrapper: Optional[str] = "network",
    legacy: bool = False,
    epoch: int = 7,
    tweak=None,
) -> Path:
    """A checkpoint file of synthetic weights; `tweak(sd)` may damage the canonical dict first."""
    sd = random_state_dict(spec, seed)
    if tweak is not None:
        tweak(sd)
    return save_torch(wrap(in_dialect(sd, dialect), wrapper, epoch), path, legacy=legacy)


# --- an independent rebuild of the authors' released M/L module layout ----------------------------------


class AuthorsSequentialHead(nn.Module):
    """The released M/L files' head: `deconv_layers_N` = nn.Sequential(dwconv, BN, pwconv, ReLU, upsample).

    Written here from docs/spec.md §1 (not from `checkpoint.dialects` or the reference head), so a strict
    `load_state_dict` proves an export in that layout loads where those files load.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        in_ch = spec.dims[-1]
        self.n = spec.num_head_layers
        for i, (ch, k, up) in enumerate(zip(spec.head_channels, spec.head_kernels, spec.head_upsample), start=1):
            self.add_module(
                f"deconv_layers_{i}",
                nn.Sequential(
                    nn.Conv2d(in_ch, in_ch, k, padding=k // 2, groups=in_ch),
                    nn.BatchNorm2d(in_ch),
                    nn.Conv2d(in_ch, ch, 1),
                    nn.ReLU(),
                    nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity(),
                ),
            )
            in_ch = ch
        self.final_layer = nn.Conv2d(in_ch, spec.joint_num * spec.depth_dim, 1)

    def forward(self, x):
        for i in range(1, self.n + 1):
            x = getattr(self, f"deconv_layers_{i}")(x)
        return self.final_layer(x)


class AuthorsSequentialModel(nn.Module):
    """backbone (the reference one: its names are already the authors') + the sequential head; returns heatmaps."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.backbone = build_model(spec).backbone
        self.head = AuthorsSequentialHead(spec)

    def forward(self, images):
        return self.head(self.backbone(images))


# --- hypothesis strategies for the safetensors writer --------------------------------------------------

WRITER_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
]


@st.composite
def tensor_dicts(draw) -> dict[str, torch.Tensor]:
    """Small dicts of tensors of every storable dtype, including 0-d and empty shapes."""
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_.]{0,12}", fullmatch=True), min_size=0, max_size=6, unique=True))
    out = {}
    for name in names:
        dtype = draw(st.sampled_from(WRITER_DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
        seed = draw(st.integers(0, 2**31 - 1))
        gen = torch.Generator().manual_seed(seed)
        raw = torch.randint(-100, 100, shape, generator=gen)
        out[name] = (raw > 0) if dtype == torch.bool else (raw.abs() if dtype == torch.uint8 else raw).to(dtype)
    return out


metadata_dicts = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=6)
