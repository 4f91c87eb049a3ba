"""Architecture description of a ConvNeXtPose network.

`ArchSpec` is the one place that says what network a checkpoint holds. It is a
frozen dataclass of plain tuples so that it hashes, compares by value, and
round-trips through JSON (the safetensors converter stores it in metadata).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except TypeError as exc:
        raise TypeError(f"ArchSpec.{name} must be a sequence of ints, got {value!r}") from exc
    return out


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to build the network; all but `head_upsample` is visible in tensor shapes."""

    depths: tuple[int, ...]
    dims: tuple[int, ...]
    head_channels: tuple[int, ...]
    head_kernels: tuple[int, ...]
    head_upsample: tuple[bool, ...]
    depth_dim: int
    joint_num: int

    def __post_init__(self) -> None:
        # Normalise lists (from JSON or users) to tuples so the spec stays hashable.
        for name in ("depths", "dims", "head_channels", "head_kernels"):
            object.__setattr__(self, name, _int_tuple(getattr(self, name), name))
        object.__setattr__(self, "head_upsample", tuple(bool(v) for v in self.head_upsample))
        object.__setattr__(self, "depth_dim", int(self.depth_dim))
        object.__setattr__(self, "joint_num", int(self.joint_num))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError when the numbers cannot describe a buildable network."""
        if len(self.depths) != 4 or len(self.dims) != 4:
            raise ValueError(f"ArchSpec needs 4 stages, got depths={self.depths} dims={self.dims}")
        if any(d < 0 for d in self.depths) or any(d <= 0 for d in self.dims):
            raise ValueError(f"ArchSpec depths must be >= 0 and dims > 0, got {self.depths} {self.dims}")
        n = len(self.head_channels)
        if n < 1:
            raise ValueError("ArchSpec needs at least one head layer")
        if len(self.head_kernels) != n or len(self.head_upsample) != n:
            raise ValueError(
                "ArchSpec head_channels, head_kernels and head_upsample must have the same length, got "
                f"{len(self.head_channels)}, {len(self.head_kernels)}, {len(self.head_upsample)}"
            )
        if any(c <= 0 for c in self.head_channels):
            raise ValueError(f"ArchSpec head_channels must be positive, got {self.head_channels}")
        if any(k <= 0 or k % 2 == 0 for k in self.head_kernels):
            raise ValueError(f"ArchSpec head_kernels must be odd and positive, got {self.head_kernels}")
        if self.depth_dim <= 0 or self.joint_num <= 0:
            raise ValueError(
                f"ArchSpec depth_dim and joint_num must be positive, got {self.depth_dim}, {self.joint_num}"
            )

    # -- derived figures -------------------------------------------------
    @property
    def num_head_layers(self) -> int:
        return len(self.head_channels)

    @property
    def upsample_factor(self) -> int:
        return 2 ** sum(self.head_upsample)

    def heatmap_size(self, input_size: tuple[int, int] = (256, 256)) -> tuple[int, int]:
        """(H, W) of the heatmap for an input of `input_size` (must be divisible by 32)."""
        h, w = input_size
        if h % 32 or w % 32:
            raise ValueError(f"input size must be divisible by 32, got {input_size}")
        f = self.upsample_factor
        return (h // 32 * f, w // 32 * f)

    def summary(self) -> str:
        ups = format_head_upsample(self.head_upsample)
        return (
            f"depths={list(self.depths)} dims={list(self.dims)} head={list(self.head_channels)} "
            f"k={list(self.head_kernels)} upsample={ups} depth_dim={self.depth_dim} joints={self.joint_num}"
        )

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchSpec:
        names = {f.name for f in fields(cls)}
        missing = names - set(data)
        extra = set(data) - names
        if missing or extra:
            raise ValueError(f"ArchSpec fields: missing {sorted(missing)}, unexpected {sorted(extra)}")
        return cls(**{k: data[k] for k in names})

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        return cls.from_dict(json.loads(text))


def parse_head_upsample(text: str) -> tuple[bool, ...]:
    """Parse the command-line form `up,up,no` (also accepts 1/0, true/false, yes)."""
    out = []
    for part in text.split(","):
        p = part.strip().lower()
        if p in ("up", "1", "true", "yes", "y"):
            out.append(True)
        elif p in ("no", "0", "false", "none", "n", "id", "identity"):
            out.append(False)
        else:
            raise ValueError(f"head upsample entry {part!r} is not 'up' or 'no' (in {text!r})")
    return tuple(out)


def format_head_upsample(flags: tuple[bool, ...]) -> str:
    return ",".join("up" if f else "no" for f in flags)
