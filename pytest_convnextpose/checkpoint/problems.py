"""`Problem`: one defect found in a loaded checkpoint (the loader reports, never raises, these).

Its own module because both the loader and the inference layer make problems, and the
inference layer is called by the loader: keeping the type here keeps that one-way.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One defect found in a loaded checkpoint.

    kind in missing|unexpected|shape|nonfinite|bn_variance (SPEC §5), plus `metadata` when a
    converted file's stored spec contradicts its tensors. `key` is the canonical key."""

    kind: str
    key: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "detail": self.detail}
