"""Error families. Every refusal is a `CheckpointError` subclass with a one-line message.

The CLI prints `str(err)` and exits 2; the message names the file and, where known, the
key or byte offset at fault. One subclass per failure family, so callers and tests can
tell *why* a file was refused without parsing text.
"""
from __future__ import annotations

from typing import Optional


class CheckpointError(Exception):
    """Base of every refusal. `str(err)` is a single line: `<path>: <what> [at <where>]`."""

    #: short family name shown in JSON output (`error.kind`)
    kind = "checkpoint"
    #: the refused file's SHA-256 when the reader got as far as hashing its bytes (else None), so a
    #: refusal can name the download without reading the file a second time
    sha256: Optional[str] = None

    def __init__(self, message: str, *, path: Optional[str] = None, key: Optional[str] = None,
                 offset: Optional[int] = None) -> None:
        self.message = " ".join(str(message).split())  # always one line
        self.path = path
        self.key = key
        self.offset = offset
        super().__init__(self.message)

    def with_path(self, path: str) -> CheckpointError:
        """Attach the file path if a lower layer did not know it; returns self."""
        if self.path is None:
            self.path = str(path)
        return self

    def __str__(self) -> str:
        where = []
        if self.key is not None:
            where.append(f"key {self.key!r}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        loc = f" (at {', '.join(where)})" if where else ""
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message}{loc}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "type": type(self).__name__, "message": str(self),
                "key": self.key, "offset": self.offset}


class UnreadableFileError(CheckpointError):
    """The file cannot be opened or read (missing, permission, empty)."""
    kind = "unreadable"


class UnsupportedFormatError(CheckpointError):
    """A recognised format that is not a checkpoint we load (ONNX, TFLite, HTML, unpacked TorchScript...)."""
    kind = "unsupported"


class UnknownFormatError(CheckpointError):
    """The bytes match no known checkpoint format."""
    kind = "unknown-format"


class CorruptFileError(CheckpointError):
    """A known container whose structure is broken (truncated, bad offsets, bad header)."""
    kind = "corrupt"


class UnsafeContentError(CheckpointError):
    """The file asks to run code or build objects outside the allowlist. Nothing was executed."""
    kind = "hostile"


class ResourceLimitError(CheckpointError):
    """Declared sizes, counts or nesting exceed safe limits (bombs, absurd headers)."""
    kind = "limit"


class ForeignCheckpointError(CheckpointError):
    """A readable checkpoint of another model (e.g. RootNet, 3DMPPE PoseNet)."""
    kind = "foreign"


class ArchitectureError(CheckpointError):
    """Tensors are ConvNeXtPose-like but the architecture cannot be determined (e.g. ambiguous J*D)."""
    kind = "architecture"
