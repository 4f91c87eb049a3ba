"""Pickle paths: a torch record archive (`data.pkl` + `data/<key>`), a legacy stream, a plain pickle.

All three run the same allowlist machine (`unpickler.Unpickler`); they differ only in where a
storage's bytes come from. A plain pickle's storages arrive as `torch.storage._load_from_bytes`
calls whose argument is itself a legacy stream holding exactly one storage; that inner stream may
not call `_load_from_bytes` again. Every pickle of one file is charged to the read's one `Budget`.

A record archive is read as torch's loader reads it: the `version` record (`.data/version` first)
must hold a format version torch reads, `byteorder` must be exactly `little` or `big`, and a
`.storage_alignment` record must be an integer (torch refuses the archive otherwise).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .budget import TENSOR_BYTES, Budget
from .errors import ContainerUnsupportedError, ForbiddenPickleError, GeometryError, PickleCorruptError, PickleLimitError
from .legacy_format import PREFIXES, LegacyReader
from .storage_ids import storage_dtype
from .tensors import Storage, flat_from_bytes, itemsize
from .unpickler import Unpickler

#: the archive format versions torch 2.x reads (caffe2 inline_container: kMin/kMaxSupportedFileFormatVersion)
MIN_VERSION, MAX_VERSION = 1, 10
_VERSION = re.compile(rb"\s*(\d{1,20})\s*")


def load_record_archive(records: Mapping[str, memoryview], offsets: Mapping[str, int], *,
                        budget: Budget, what: str = "data.pkl", torchscript: bool = False) -> Any:
    """Unpickle `data.pkl` of a torch archive whose records (names relative to the root) are given.

    offsets: file offset of each record (for error messages; 0 where unknown).
    torchscript: the archive is a `torch.jit.save` one: `__torch__.*` objects become stand-ins.
    """
    if "data.pkl" not in records:
        raise PickleCorruptError("no data.pkl record")
    _check_torch_records(records, offsets)
    swap = _byteswap(records)
    storages: dict[str, Storage] = {}

    def persistent_load(pid: tuple, offset: int) -> Storage:
        if len(pid) != 5 or pid[0] != "storage":
            raise PickleCorruptError(f"{what}: malformed storage id", offset=offset)
        _, stype, key, location, numel = pid
        dtype = storage_dtype(stype, key, location, numel, what=what, offset=offset)
        known = storages.get(key)
        if known is not None:
            if known.dtype != dtype or known.numel != numel:
                raise GeometryError(f"{what}: storage {key!r} used with two different types", offset=offset)
            return known
        name = f"data/{key}"
        record = records.get(name)
        if record is None:
            raise GeometryError(f"{what}: storage record {name!r} is missing", offset=offset)
        nbytes = numel * itemsize(dtype)
        if nbytes != len(record):
            raise GeometryError(f"{what}: storage {key!r} declares {numel} x {itemsize(dtype)} bytes, "
                                f"its record holds {len(record)}", offset=offsets.get(name, offset))
        budget.charge(TENSOR_BYTES, PickleLimitError, what, offset)
        flat = flat_from_bytes(record, dtype, budget=budget, byteswap=swap, where=repr(name))
        storage = storages[key] = Storage(key, dtype, numel, flat)
        return storage

    up = Unpickler(records["data.pkl"], base_offset=offsets.get("data.pkl", 0), budget=budget,
                   persistent_load=persistent_load, what=what, torchscript=torchscript, torch_mode=not torchscript)
    obj = up.load()
    _no_trailing(up, records["data.pkl"], what, offsets.get("data.pkl", 0))
    return obj


def _byteswap(records: Mapping[str, memoryview]) -> bool:
    order = records.get("byteorder")
    if order is None:
        return False
    text = bytes(order[:16])
    if text not in (b"little", b"big"):  # exactly: torch refuses "little\n"
        raise PickleCorruptError(f"byteorder record says {text!r}, expected little or big")
    return text == b"big"


def _check_torch_records(records: Mapping[str, memoryview], offsets: Mapping[str, int]) -> None:
    """The records torch's loader parses before data.pkl: the version (`.data/version` before `version`)
    must name a version it reads; `.storage_alignment`, if there, must be what Python's int() reads."""
    alignment = records.get(".storage_alignment")
    if alignment is not None and not _python_int(bytes(alignment[:65])):
        raise ContainerUnsupportedError(f"archive record '.storage_alignment' holds {bytes(alignment[:20])!r}, not an "
                                        "integer (torch refuses the archive)", offset=offsets.get(".storage_alignment"))
    name = ".data/version" if ".data/version" in records else "version"
    record = records.get(name)
    if record is None:
        raise ContainerUnsupportedError("the archive has no version record (torch refuses such archives)")
    match = _VERSION.fullmatch(bytes(record[:64]))
    version = int(match.group(1)) if match and len(record) <= 64 else -1
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ContainerUnsupportedError(f"archive record {name!r} holds {bytes(record[:20])!r}, not a format version "
                                        f"torch reads ({MIN_VERSION}..{MAX_VERSION})", offset=offsets.get(name))


def _no_trailing(up: Unpickler, data: memoryview, what: str, base: int) -> None:
    if up.end is not None and up.end != len(data):
        raise PickleCorruptError(f"{what}: {len(data) - up.end} bytes after the pickle's STOP",
                                 offset=base + up.end)


def _python_int(raw: bytes) -> bool:
    """`int(raw)` succeeds (as torch calls it), for a short record."""
    try:
        int(raw)
    except ValueError:
        return False
    return len(raw) <= 64


def load_legacy(data: memoryview, *, budget: Budget, base: int = 0) -> Any:
    """A whole file in the legacy `torch.save` format."""
    return LegacyReader(data, base=base, budget=budget, what="legacy stream").load()


def load_plain_pickle(data: memoryview, *, budget: Budget) -> Any:
    """A plain pickle (e.g. `pickle.dumps(state_dict)`) whose storages use `_load_from_bytes`."""

    def load_from_bytes(blob: memoryview, offset: int) -> Storage:
        base = _offset_in(data, blob, offset)
        if budget.depth >= budget.limits.max_load_from_bytes_depth:
            raise PickleLimitError("nested _load_from_bytes", offset=base)
        if not bytes(blob[:len(PREFIXES[0])]).startswith(PREFIXES):
            raise PickleCorruptError("_load_from_bytes payload is not a legacy torch stream", offset=base)
        budget.depth += 1
        try:
            reader = LegacyReader(blob, base=base, budget=budget, what="_load_from_bytes payload")
            result = reader.load()
        finally:
            budget.depth -= 1
        if not isinstance(result, Storage):
            raise ForbiddenPickleError("_load_from_bytes payload is not a single storage", offset=base)
        return result

    up = Unpickler(data, budget=budget, load_from_bytes=load_from_bytes, what="pickle")
    obj = up.load()
    _no_trailing(up, data, "pickle", 0)
    return obj


def _offset_in(outer: memoryview, inner: memoryview, fallback: int) -> int:
    """Byte offset of `inner` inside `outer` when it is a slice of it (for messages)."""
    try:
        import ctypes
        a = ctypes.addressof(ctypes.c_char.from_buffer(outer)) if not outer.readonly else None
        b = ctypes.addressof(ctypes.c_char.from_buffer(inner)) if not inner.readonly else None
        if a is not None and b is not None and 0 <= b - a < len(outer):
            return b - a
    except (TypeError, ValueError):
        pass
    return fallback
