"""Optional speed-ups that change nothing about what the model computes.

The default forward is already the fast one (see `model.py` and `softargmax.py`);
this module holds the opt-in extra: `torch.compile`, behind a call, because compiling
costs seconds up front and needs a working compiler toolchain.
"""
from __future__ import annotations

from typing import Callable

import torch

from .model import ConvNeXtPose


def compiled(model: ConvNeXtPose, **compile_kwargs) -> Callable[[torch.Tensor], torch.Tensor]:
    """`torch.compile(model)`; the model's parameters and state-dict keys are untouched.

    Compare its outputs with the eager model before trusting figures from it: fused
    kernels round differently (float32 noise of the order of the golden tolerances).
    """
    return torch.compile(model, **compile_kwargs)
