"""Reading-layer error classes: the project's families, each tagged with the layer that refused.

Every class here derives from one family of `pytest_convnextpose.errors` (so callers catch the
family) and carries a `layer` name (so the security figures can say *which* defence refused a
file). Layers, in the order a file meets them: `io`, `sniff`, `container`, `pickle`,
`geometry`, `safetensors`, `graph`.
"""
from __future__ import annotations

from ..errors import (
    CheckpointError,
    CorruptFileError,
    ResourceLimitError,
    UnknownFormatError,
    UnreadableFileError,
    UnsafeContentError,
    UnsupportedFormatError,
)

__all__ = [
    "layer_of", "ContainerCorruptError", "ContainerUnsafeError", "ContainerLimitError", "ContainerUnsupportedError",
    "PickleCorruptError", "ForbiddenPickleError", "PickleLimitError", "UnsupportedPickleError", "GeometryError",
    "SafetensorsHeaderError", "SafetensorsLimitError", "ObjectGraphError", "ObjectGraphLimitError",
    "SeveralCheckpointsError", "NestedArchiveError", "MemberNotFoundError",
]


def layer_of(err: CheckpointError) -> str:
    """The layer that raised `err` (`sniff` for the base families raised while identifying)."""
    layer = getattr(err, "layer", None)
    if layer:
        return layer
    if isinstance(err, UnreadableFileError):
        return "io"
    if isinstance(err, (UnknownFormatError, UnsupportedFormatError)):
        return "sniff"
    return "other"


class ContainerCorruptError(CorruptFileError):
    """Zip/tar/directory structure is broken: bad signature, record outside the file, bad CRC."""
    layer = "container"


class ContainerUnsafeError(UnsafeContentError):
    """Container structure that scanners disagree on or that escapes: duplicate names, links, `..`."""
    layer = "container"


class ContainerLimitError(ResourceLimitError):
    """Container declares more than the limits allow: inflated size, member count, member size."""
    layer = "container"


class ContainerUnsupportedError(UnsupportedFormatError):
    """A container torch's own reader would not read (a zip without a root folder or version record)."""
    layer = "container"


class SeveralCheckpointsError(ContainerUnsupportedError):
    """An archive (zip, tar, tar.gz) wraps more than one checkpoint: the user names one as `ARCHIVE::MEMBER`.
    `members` lists them, in archive order."""

    def __init__(self, message: str, *, members: list[str], **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.members = list(members)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "members": list(self.members)}


class NestedArchiveError(ContainerUnsupportedError):
    """An archive inside the archive that wraps a checkpoint: wrappers are read one level deep."""


class MemberNotFoundError(UnreadableFileError):
    """`ARCHIVE::MEMBER` names no member of the archive (or the file is no archive of checkpoints)."""
    layer = "container"


class PickleCorruptError(CorruptFileError):
    """The pickle stream is malformed (truncated, stack underflow, bad argument)."""
    layer = "pickle"


class ForbiddenPickleError(UnsafeContentError):
    """The pickle names a global or uses an opcode/operation outside the allowlist."""
    layer = "pickle"


class PickleLimitError(ResourceLimitError):
    """The pickle exceeds an operation, size or nesting limit."""
    layer = "pickle"


class UnsupportedPickleError(UnsupportedFormatError):
    """A pickle torch.load(weights_only=True) would not read (an opcode or global outside its set):
    we do not call sound what the next reader cannot load."""
    layer = "pickle"


class GeometryError(CorruptFileError):
    """A storage or tensor view does not fit the bytes actually present."""
    layer = "geometry"


class SafetensorsHeaderError(CorruptFileError):
    """A safetensors header that is malformed or does not cover the buffer exactly."""
    layer = "safetensors"


class SafetensorsLimitError(ResourceLimitError):
    """A safetensors header larger than the file's budget allows parsing."""
    layer = "safetensors"


class ObjectGraphError(CorruptFileError):
    """The unpickled object graph has a cycle or an object type we do not hand out."""
    layer = "graph"


class ObjectGraphLimitError(ResourceLimitError):
    """The unpickled object graph is too large or too deep once shared references are expanded."""
    layer = "graph"
