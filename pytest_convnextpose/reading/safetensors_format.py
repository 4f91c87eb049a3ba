"""safetensors files validated header-first, tensors built as views of the file buffer.

The format is simple on purpose, so the checks are exhaustive: header length inside the file and
under the library's limit, a UTF-8 JSON object without duplicate keys, known dtypes, non-negative
integer shapes, offsets whose length is exactly numel x itemsize, and tensors that tile the data
buffer exactly (no gap, no overlap, nothing left over), as the reference implementation requires.
Parsing the header is charged to the read's budget (a JSON object can take ~30 x its text in memory),
and an empty tensor's other sizes are bounded as for every other container (`tensors.check_extent`).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import torch

from .budget import Budget
from .errors import SafetensorsHeaderError, SafetensorsLimitError
from .magic import looks_like_safetensors  # noqa: F401 - re-exported
from .tensors import check_extent, flat_from_bytes, itemsize

#: bytes of Python objects one byte of JSON header may become (`[{},{}...]`: ~27)
JSON_BYTES_PER_BYTE = 32

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "C64": torch.complex64,
}
for _name, _attr in (
    ("U16", "uint16"),
    ("U32", "uint32"),
    ("U64", "uint64"),
    ("F8_E4M3", "float8_e4m3fn"),
    ("F8_E5M2", "float8_e5m2"),
):
    if hasattr(torch, _attr):
        DTYPES[_name] = getattr(torch, _attr)


def read_safetensors(buf: memoryview, budget: Budget) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    limits = budget.limits
    if len(buf) < 8:
        raise SafetensorsHeaderError("safetensors file shorter than its 8-byte header length", offset=0)
    (n,) = struct.unpack_from("<Q", buf)
    if n > limits.max_safetensors_header:
        raise SafetensorsHeaderError(
            f"header length {n} exceeds the {limits.max_safetensors_header}-byte limit", offset=0
        )
    if 8 + n > len(buf):
        raise SafetensorsHeaderError(f"header length {n} runs past the end of the file ({len(buf)} bytes)", offset=0)
    budget.charge(JSON_BYTES_PER_BYTE * n, SafetensorsLimitError, f"safetensors header of {n} bytes", offset=0)
    header = _parse_header(bytes(buf[8 : 8 + n]))
    data = buf[8 + n :]
    metadata = _metadata(header.pop("__metadata__", None))
    spans = []
    for name, info in header.items():
        dtype, shape, begin, end = _entry(name, info)
        check_extent(shape, limits, f"tensor {name!r}")
        expected = math.prod(shape) * itemsize(dtype)
        if end - begin != expected:
            raise SafetensorsHeaderError(
                f"tensor {name!r}: offsets span {end - begin} bytes, shape and dtype need {expected}",
                offset=8 + n + begin,
            )
        spans.append((begin, end, name, dtype, shape))
    spans.sort(key=lambda s: (s[0], s[1]))
    cursor = 0
    for begin, end, name, _, _ in spans:
        if begin != cursor:
            raise SafetensorsHeaderError(
                f"tensor {name!r} starts at {begin}, expected {cursor} (gap or overlap in the data buffer)",
                offset=8 + n + begin,
            )
        cursor = end
    if cursor != len(data):
        raise SafetensorsHeaderError(
            f"tensors cover {cursor} bytes of a {len(data)}-byte data buffer", offset=8 + n + cursor
        )
    tensors = {
        name: flat_from_bytes(
            data[begin:end], dtype, budget=budget, where=repr(name), error=SafetensorsLimitError
        ).reshape(shape)
        for begin, end, name, dtype, shape in spans
    }
    return {name: tensors[name] for name in header}, metadata


def _parse_header(raw: bytes) -> dict[str, Any]:
    """The header as the reference (serde_json) reads it: no duplicate names, no NaN/Infinity, no lone
    surrogates in strings (Python's json accepts all three; the library refuses them)."""

    def strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise SafetensorsHeaderError(f"header names {key!r} twice", offset=8)
            for text in (key, value) if type(value) is str else (key,):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise SafetensorsHeaderError(
                        f"header string {text[:40]!r} holds a lone surrogate", offset=8
                    ) from None
            out[key] = value
        return out

    def no_constants(name: str) -> Any:
        raise SafetensorsHeaderError(f"header holds {name}, which is not JSON", offset=8)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=strict_object, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, SafetensorsHeaderError):
            raise
        raise SafetensorsHeaderError(f"header is not valid UTF-8 JSON ({type(exc).__name__})", offset=8) from None
    if type(header) is not dict:
        raise SafetensorsHeaderError("header is not a JSON object", offset=8)
    return header


def _metadata(meta: Any) -> dict[str, str]:
    if meta is None:
        return {}
    if type(meta) is not dict or not all(type(k) is str and type(v) is str for k, v in meta.items()):
        raise SafetensorsHeaderError("__metadata__ must map strings to strings", offset=8)
    return dict(meta)


def _entry(name: str, info: Any) -> tuple[torch.dtype, tuple[int, ...], int, int]:
    if type(info) is not dict or set(info) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsHeaderError(f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets", offset=8)
    dtype = DTYPES.get(info["dtype"]) if type(info["dtype"]) is str else None
    if dtype is None:
        raise SafetensorsHeaderError(f"tensor {name!r}: unknown dtype {info['dtype']!r}", offset=8)
    shape, offsets = info["shape"], info["data_offsets"]
    if type(shape) is not list or len(shape) > 64 or not all(type(d) is int and 0 <= d < 2**62 for d in shape):
        raise SafetensorsHeaderError(f"tensor {name!r}: shape must be a list of non-negative ints", offset=8)
    if (
        type(offsets) is not list
        or len(offsets) != 2
        or not all(type(o) is int and 0 <= o < 2**62 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise SafetensorsHeaderError(f"tensor {name!r}: data_offsets must be [begin, end] with begin <= end", offset=8)
    return dtype, tuple(shape), offsets[0], offsets[1]
