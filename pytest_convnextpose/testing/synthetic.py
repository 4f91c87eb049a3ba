"""Deterministic synthetic weights for any `ArchSpec`.

Used for the suite's embedded default (clearly labelled synthetic) and by tests that
need checkpoints of every shape. Values are seeded, independent of torch's global RNG,
and scaled so activations stay O(1) through the whole network: BatchNorm statistics
are non-trivial, so a model that ignored them would compute something else.
"""
from __future__ import annotations

import math

import torch

from reference_model import ArchSpec

from ..checkpoint.shapes import canonical_shapes


def random_state_dict(spec: ArchSpec, seed: int = 0) -> dict[str, torch.Tensor]:
    """A canonical state dict with seeded values; same (spec, seed) -> same tensors."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape in canonical_shapes(spec).items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = torch.tensor(1000 + seed, dtype=torch.int64)
        elif leaf == "running_var":
            out[key] = 0.5 + torch.rand(shape, generator=gen)
        elif leaf == "running_mean":
            out[key] = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1 and leaf == "weight":  # BatchNorm gamma
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif leaf == "bias":
            out[key] = 0.02 * torch.randn(shape, generator=gen)
        else:  # conv weight: fan-in scaled so activations neither vanish nor explode
            fan_in = math.prod(shape[1:])
            scale = 1.0 / math.sqrt(fan_in)
            if ".stages." in key and key.endswith("pwconv2.weight"):
                scale *= 0.5  # keep residual growth modest over deep stages
            out[key] = scale * torch.randn(shape, generator=gen)
    return out
