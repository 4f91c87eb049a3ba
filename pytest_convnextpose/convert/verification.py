"""What a checkpoint must pass before we convert or export it, and how we prove a copy is exact.

Why a second look after `load_checkpoint`: conversion produces a file people will trust
without re-checking, so the converter re-derives the structural facts itself (strict load
into the reference model, finite values, positive BatchNorm variances, shapes) instead of
relying only on the loader's list. Verification compares bits, not tolerances: a copy of
weights must be the same bytes, and the same bytes must give the same outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from reference_model import ArchSpec, soft_argmax

from ..checkpoint.infer import check_tensors
from ..checkpoint.load import Checkpoint
from ..checkpoint.model import reference_model_for
from ..checkpoint.problems import Problem
from .safetensors_writer import tensor_bytes

#: the deterministic verification input: batch, channels, height, width, and its seed
VERIFY_INPUT_SHAPE: tuple[int, int, int, int] = (2, 3, 128, 128)
VERIFY_SEED = 0


def structural_problems(ckpt: Checkpoint) -> list[Problem]:
    """The loader's problems plus our own checks, without duplicates, in a stable order."""
    found: list[Problem] = [p for p in ckpt.problems if p.about_content]
    found += check_tensors(ckpt.state_dict, ckpt.spec)
    if not found:
        found += strict_load_problems(ckpt.spec, ckpt.state_dict)
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in found:
        if (p.kind, p.key) not in seen:
            seen.add((p.kind, p.key))
            unique.append(p)
    return unique


def strict_load_problems(spec: ArchSpec, state_dict: Mapping[str, torch.Tensor]) -> list[Problem]:
    """Anything `load_state_dict(strict=True)` on the reference model rejects."""
    try:
        reference_model_for(spec, state_dict)
    except RuntimeError as exc:
        return [Problem("shape", "", " ".join(str(exc).split()))]
    return []


def verification_images(spec: ArchSpec, shape: tuple[int, int, int, int] = VERIFY_INPUT_SHAPE,
                        seed: int = VERIFY_SEED) -> torch.Tensor:
    """Seeded standard-normal images, independent of torch's global RNG."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float32)


@dataclass(frozen=True)
class Outputs:
    """What the network computes for the verification images."""

    heatmaps: torch.Tensor
    coords: torch.Tensor


def run_model(spec: ArchSpec, state_dict: Mapping[str, torch.Tensor], images: torch.Tensor) -> Outputs:
    """Build the reference model, load strictly, and run it in eval mode in float32."""
    model = reference_model_for(spec, {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()})
    with torch.inference_mode():
        heat = model.heatmaps(images)
        coords = soft_argmax(heat, spec.joint_num, spec.depth_dim)
    return Outputs(heat, coords)


def max_abs_diff(a: Outputs, b: Outputs) -> float:
    """Largest absolute difference over heatmaps and coordinates (inf if shapes differ)."""
    if a.heatmaps.shape != b.heatmaps.shape or a.coords.shape != b.coords.shape:
        return float("inf")
    return max(float((a.heatmaps - b.heatmaps).abs().max()), float((a.coords - b.coords).abs().max()))


def outputs_identical(a: Outputs, b: Outputs) -> bool:
    return torch.equal(a.heatmaps, b.heatmaps) and torch.equal(a.coords, b.coords)


def bit_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, same shape, same bytes (so -0.0 != 0.0 and NaN payloads count)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return tensor_bytes(a) == tensor_bytes(b)


def tensor_differences(want: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> list[str]:
    """Human-readable list of keys whose tensors are missing, extra, or not bit-equal."""
    out = [f"{k}: missing" for k in want if k not in got]
    out += [f"{k}: unexpected" for k in got if k not in want]
    for k in want:
        if k in got and not bit_equal(want[k], got[k]):
            out.append(f"{k}: not bit-equal ({want[k].dtype} {list(want[k].shape)} vs "
                       f"{got[k].dtype} {list(got[k].shape)})")
    return out
