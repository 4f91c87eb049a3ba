"""Opt-in speed-ups on top of the default forward, each with a cost the default cannot pay.

The default forward is already the fast eager one (channels-last, BatchNorm folded at
eval time, last upsampling and soft-argmax a few volumes at a time: see `model.py`,
`folding.py`, `softargmax.py`). The two compilers below fuse further (conv + ReLU,
conv + residual add, weights packed once), but compiling costs seconds to minutes up
front, the result is tied to the input shape it was made for (`frozen`) or recompiles
for new ones (`compiled`), and neither follows later changes to the model's weights.
benchmarks/forward.py times both (`--compile`, `--jit-freeze`) next to the default.
"""
from __future__ import annotations

from typing import Callable

import torch

from .model import ConvNeXtPose


def compiled(model: ConvNeXtPose, **compile_kwargs) -> Callable[[torch.Tensor], torch.Tensor]:
    """`torch.compile(model)` (needs a C++ compiler on CPU); parameters and state-dict keys untouched.

    Compare its outputs with the eager model before trusting figures from it: fused
    kernels round differently (float32 noise of the order of the golden tolerances).
    """
    return torch.compile(model, **compile_kwargs)


def frozen(model: ConvNeXtPose, example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """TorchScript trace of the eval-mode `model` on `example`, frozen (weights become constants)
    and passed through `torch.jit.optimize_for_inference` (oneDNN conv fusions, prepacked weights).

    A snapshot: later weight changes do not reach it, and inputs must have `example`'s size.
    """
    with torch.no_grad():
        traced = torch.jit.trace(model.eval(), example)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
