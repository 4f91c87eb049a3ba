"""Layer 1: turn the bytes of a file into Python objects without executing anything from it.

Public entry point: `read_file(path, map_location="cpu") -> RawFile`. Everything above this
layer (key mapping, inference) works on the `RawFile.obj` it returns.

PROVISIONAL: this version only handles torch zip/legacy via `torch.load(weights_only=True)`
and safetensors; the hardened, layered reader (issues 2 and 5) replaces it behind the same API.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, CorruptFileError, UnreadableFileError, UnsafeContentError


@dataclass
class RawFile:
    """What a container held.

    container: one of `torch-zip`, `torch-legacy`, `torch-tar`, `tar-directory`, `directory`,
               `pickle`, `safetensors`, `torchscript` (SPEC §5).
    obj:       the top-level object: a dict (wrapper or bare state dict) whose tensors are
               CPU/`map_location` torch tensors; nested dicts/lists/ints/floats/strings allowed.
    metadata:  container-level metadata (safetensors `__metadata__`, zip root name, ...).
    sha256:    hex digest of the file's bytes (for a directory: of its files, sorted by name).
    size:      bytes read.
    """

    container: str
    obj: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0


def read_file(path: str | Path, map_location: Any = "cpu") -> RawFile:
    import hashlib

    import torch

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"cannot read file: {exc.strerror or exc}", path=str(p)) from None
    if not data:
        raise UnreadableFileError("file is empty", path=str(p))
    sha = hashlib.sha256(data).hexdigest()
    if data[:8] and int.from_bytes(data[:8], "little") < len(data) and data[8:9] == b"{":
        from safetensors.torch import load as st_load
        import json
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__", {}) or {}
        return RawFile("safetensors", st_load(data), dict(meta), sha, len(data))
    import io
    container = "torch-zip" if data[:4] == b"PK\x03\x04" else "torch-legacy"
    try:
        obj = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # provisional: the hardened reader classifies properly
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Unsupported global" in str(exc) or "weights_only" in str(exc):
            raise UnsafeContentError(f"refused unsafe content: {msg}", path=str(p)) from None
        raise CorruptFileError(f"cannot read checkpoint: {msg}", path=str(p)) from None
    return RawFile(container, obj, {}, sha, len(data))
