"""Deterministic safetensors bytes.

Why our own writer: `safetensors.torch.save` (0.8) writes the `__metadata__` map in hash
order, which changes from run to run, so the same checkpoint would give different bytes.
The format is small (8-byte little-endian header length, a JSON header padded with spaces
to a multiple of 8, then the raw little-endian tensor bytes), so we write it ourselves with
sorted metadata and the library's own tensor order (by dtype, then name, which keeps
every tensor aligned). Reading back always goes through the `safetensors` library, so
the writer is checked by an independent implementation.
"""
from __future__ import annotations

import json
import sys
from typing import Mapping

import torch

#: torch dtype -> safetensors dtype tag (the format's names).
DTYPE_TAGS: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_bytes(t: torch.Tensor) -> bytes:
    """The tensor's raw little-endian C-order bytes (what safetensors stores)."""
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        raise RuntimeError("safetensors writing needs a little-endian machine")
    flat = t.detach().cpu().contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return flat.view(torch.uint8).numpy().tobytes()


#: the library's dtype order (its Rust enum, ascending); tensors are written highest first, then by
#: name, so item sizes never increase along the file and every offset stays aligned to its item size
_LIBRARY_DTYPE_ORDER = ("BOOL", "U8", "I8", "I16", "F16", "BF16", "I32", "F32", "F64", "I64")


def _order(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The `safetensors` library's own tensor order, so our bytes equal its bytes."""
    rank = {tag: i for i, tag in enumerate(_LIBRARY_DTYPE_ORDER)}
    return sorted(tensors, key=lambda k: (-rank[DTYPE_TAGS[tensors[k].dtype]], k))


def safetensors_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bytes:
    """Serialise `tensors` with string `metadata`; same inputs -> same bytes."""
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"safetensors metadata must be str -> str, got {k!r}: {type(v).__name__}")
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    chunks: list[bytes] = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in DTYPE_TAGS:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
    for name in _order(tensors):
        t = tensors[name]
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_TAGS[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)
