"""Identify a file from its first bytes, never from its name (released checkpoints are zips named `.tar`).

Returns the container to read with (`gzip` for a gzip file: it may wrap a checkpoint,
`wrapped.py`), or raises a one-line error saying what the file is when it is something we
recognise but do not load (ONNX, TFLite, HTML from a failed download, ...).
"""

from __future__ import annotations

from ..errors import UnknownFormatError, UnsupportedFormatError
from .magic import GZIP_MAGIC, LEGACY_PREFIXES, looks_like_safetensors
from .tar_format import looks_like_tar

HEAD_BYTES = 4096
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"(\xb5/\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7-Zip",
}
# ModelProto fields: number -> protobuf wire type
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


def identify(head: bytes, size: int) -> str:
    """Container name for the bytes `head` (the file's first bytes) of a file of `size` bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(b"PK\x05\x06"):
        raise UnsupportedFormatError("an empty zip archive, not a checkpoint", offset=0)
    if head.startswith(LEGACY_PREFIXES):
        return "torch-legacy"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if looks_like_tar(head):
        return "tar"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    _refuse_known(head, size)
    raise UnknownFormatError(
        f"unrecognised format (first bytes {head[:8].hex(' ')}); expected a torch checkpoint or safetensors file",
        offset=0,
    )


def _refuse_known(head: bytes, size: int) -> None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        text.startswith((b"<!--", b"<?xml")) and b"<html" in text
    ):
        raise UnsupportedFormatError(
            "an HTML page, not a checkpoint: the download probably failed (login, error or redirect page)", offset=0
        )
    if text.startswith(b"version https://git-lfs"):
        raise UnsupportedFormatError("a Git LFS pointer file, not the checkpoint: fetch it with git lfs pull", offset=0)
    if head[4:8] == b"TFL3":
        raise UnsupportedFormatError("a TensorFlow Lite model (TFL3 flatbuffer), not a PyTorch checkpoint", offset=0)
    name = compression_of(head)
    if name is not None:
        raise UnsupportedFormatError(f"a {name}-compressed file: decompress it first", offset=0)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        raise UnsupportedFormatError("an HDF5 file (Keras?), not a PyTorch checkpoint", offset=0)
    if head.startswith(b"\x93NUMPY"):
        raise UnsupportedFormatError("a NumPy .npy array, not a PyTorch checkpoint", offset=0)
    if looks_like_onnx(head, size):
        raise UnsupportedFormatError(
            "an ONNX model (protobuf ModelProto), not a PyTorch checkpoint; this tool checks PyTorch weights", offset=0
        )
    if text.startswith((b"{", b"[")) and size < 1 << 20:
        raise UnsupportedFormatError("a JSON document, not a checkpoint", offset=0)


def compression_of(head: bytes) -> str | None:
    """The compressor whose magic `head` starts with (gzip, bzip2, xz, zstd, 7-Zip), else None."""
    return next((name for magic, name in _COMPRESSED.items() if head.startswith(magic)), None)


def looks_like_onnx(head: bytes, size: int) -> bool:
    """Walk top-level protobuf fields of the first bytes: all must be ModelProto fields, starting
    with ir_version, and a graph/opset field must appear (or run past the bytes we looked at)."""
    if not head.startswith(b"\x08"):
        return False
    pos, seen = 0, set()
    while pos < len(head):
        key, pos = _varint(head, pos)
        if key is None:
            return False
        field, wire = key >> 3, key & 7
        if _ONNX_FIELDS.get(field) != wire:
            return False
        seen.add(field)
        value, pos = _varint(head, pos)
        if value is None:
            return False
        if wire == 2:
            pos += value
            if pos > size:
                return False
    return 1 in seen and bool(seen & {7, 8}) or (1 in seen and pos >= len(head) and len(seen) >= 2)


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos
