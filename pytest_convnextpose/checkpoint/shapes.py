"""The canonical tensor shapes a spec implies: what the loader checks a file against.

One definition, used by the loader (`infer.check_tensors`), the suite's shape test and the
synthetic weights of `testing`. Shapes come from building the reference model on the
`meta` device, so they can never drift from what `build_model` loads.
"""
from __future__ import annotations

import functools

import torch

from reference_model import ArchSpec, build_model


def canonical_shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape for `spec`, without allocating weights (a fresh dict each call)."""
    return dict(_canonical_shapes(spec))


@functools.lru_cache(maxsize=64)
def _canonical_shapes(spec: ArchSpec) -> tuple[tuple[str, tuple[int, ...]], ...]:
    # Building even a meta-device model costs ~40 ms; the loader asks once per file.
    with torch.device("meta"):
        model = build_model(spec)
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())
