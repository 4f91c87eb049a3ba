"""`load_checkpoint`: read safely, unwrap, map keys to canonical form, infer the spec, check.

Layers (each its own module): reading (bytes -> objects) -> keymap (wrapper and dialect ->
canonical keys) -> infer (shapes -> ArchSpec, variant, problems).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from reference_model import ArchSpec


@dataclass(frozen=True)
class Problem:
    """One defect found in a loaded checkpoint. kind in missing|unexpected|shape|nonfinite|bn_variance."""

    kind: str
    key: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "detail": self.detail}


@dataclass
class Checkpoint:
    """A checkpoint read and understood. `state_dict` is canonical (SPEC §4)."""

    path: str
    sha256: str
    container: str
    wrapper: Optional[str]
    dialect: Any  # keymap.Dialect; `.to_dict()` gives the JSON object
    spec: ArchSpec
    head_upsample_source: str  # user | variant | layout | default
    variant: Optional[str]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    nearest_variant: Optional[str] = None
    variant_differences: list[str] = field(default_factory=list)

    @property
    def num_parameters(self) -> int:
        """Learnable parameters: BatchNorm running stats and counters excluded."""
        skip = ("running_mean", "running_var", "num_batches_tracked")
        return sum(t.numel() for k, t in self.state_dict.items() if not k.endswith(skip))

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def short_id(self) -> str:
        """`<file name>-<first 8 hex of sha256>`: the pytest parametrization id."""
        return f"{Path(self.path).name}-{self.sha256[:8]}"


def load_checkpoint(path: str | Path, *, joint_num: Optional[int] = None,
                    head_upsample: Optional[tuple[bool, ...]] = None,
                    map_location: Any = "cpu") -> Checkpoint:
    """Read any supported checkpoint file and return it in canonical form. Raises CheckpointError."""
    raise NotImplementedError("filled in by the keymap/infer work (issue 2)")
