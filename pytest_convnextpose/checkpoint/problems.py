"""`Problem`: one defect found in a loaded checkpoint (the loader reports, never raises, these).

Its own module because both the loader and the inference layer make problems, and the
inference layer is called by the loader: keeping the type here keeps that one-way.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One defect found in a loaded checkpoint.

    kind in missing|unexpected|shape|nonfinite|bn_variance (docs/spec.md, "The contract"), plus
    `metadata` when a converted file's stored spec contradicts its tensors and `name` when the
    file's name claims another variant than its tensors are. `key` is the canonical key (for
    `name`: the name that makes the claim)."""

    kind: str
    key: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "detail": self.detail}

    @property
    def about_content(self) -> bool:
        """False for problems of the label (`name`): the tensors are sound, the name is not."""
        return self.kind not in LABEL_KINDS


#: problem kinds about what a file is called, not what it holds: they never stop a conversion
LABEL_KINDS = ("name",)
