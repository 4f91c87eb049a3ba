"""The legacy (non-zip) `torch.save` stream, also the payload of `torch.storage._load_from_bytes`.

Layout: pickle(magic) pickle(protocol 1001) pickle(sys_info) pickle(object) pickle([keys]) and then,
per key, an int64 element count and the storage's raw bytes. Storages come *after* the object
pickle, so storages are allocated when the object pickle names them (only after the declared total
is checked against the bytes left in the file, and charged to the read's budget: a plain pickle may
call one shared `_load_from_bytes` payload many times) and filled once the record headers confirm them.
Every pickle of the stream must be one torch.load(weights_only=True) reads (protocol 2 or 3).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import torch

from .budget import TENSOR_BYTES, Budget
from .errors import ForbiddenPickleError, GeometryError, PickleCorruptError, PickleLimitError, UnsupportedPickleError
from .magic import LEGACY_MAGIC, LEGACY_PREFIXES
from .storage_ids import storage_dtype
from .tensors import Storage, flat_from_bytes, itemsize
from .unpickler import Unpickler

MAGIC = LEGACY_MAGIC
PROTOCOL_VERSION = 1001
#: how every legacy stream starts (`magic.LEGACY_PREFIXES`)
PREFIXES = LEGACY_PREFIXES


@dataclass
class _Declared:
    storage: Storage
    location: str


class LegacyReader:
    """Parse one legacy stream in `data` (a view), `base` being its offset in the file."""

    def __init__(self, data: memoryview, *, base: int, budget: Budget, what: str) -> None:
        self.data = data
        self.base = base
        self.budget = budget
        self.what = what
        self.declared: dict[str, _Declared] = {}
        self.declared_bytes = 0

    def _pickle(self, pos: int, **kw: Any) -> tuple[Any, int]:
        up = Unpickler(self.data, start=pos, base_offset=self.base, budget=self.budget, what=self.what,
                       torch_mode=True, **kw)
        value = up.load()
        assert up.end is not None
        return value, up.end

    def load(self) -> Any:
        magic, pos = self._pickle(0)
        if magic != MAGIC:
            raise PickleCorruptError(f"{self.what}: not a legacy torch stream (bad magic)", offset=self.base)
        proto, pos = self._pickle(pos)
        if proto != PROTOCOL_VERSION:
            raise PickleCorruptError(f"{self.what}: legacy protocol {proto!r}, expected 1001", offset=self.base + pos)
        sys_info, pos = self._pickle(pos)
        self._check_sys_info(sys_info, pos)
        obj, pos = self._pickle(pos, persistent_load=self._persistent_load)
        keys, pos = self._pickle(pos)
        self._read_storages(keys, pos)
        return obj

    def _check_sys_info(self, sys_info: Any, pos: int) -> None:
        """torch reads storage bytes as little-endian whatever `sys_info` says, so a stream that says
        big-endian would be read one way by torch and another by a reader that believes it: refused."""
        if type(sys_info) is not dict or type(sys_info.get("little_endian")) is not bool:
            raise PickleCorruptError(f"{self.what}: bad sys_info record", offset=self.base + pos)
        if not sys_info["little_endian"]:
            raise UnsupportedPickleError(f"{self.what}: sys_info says big-endian; torch reads the storages as "
                                         "little-endian anyway, so the file has two readings", offset=self.base + pos)

    def _persistent_load(self, pid: tuple, offset: int) -> Storage:
        if len(pid) >= 1 and pid[0] == "module":
            raise ForbiddenPickleError(f"{self.what}: pickled module source code (a whole nn.Module "
                                       "saved); nothing was executed", offset=offset)
        if len(pid) != 6 or pid[0] != "storage":
            raise PickleCorruptError(f"{self.what}: malformed storage id", offset=offset)
        _, stype, key, location, numel, view_meta = pid
        dtype = storage_dtype(stype, key, location, numel, what=self.what, offset=offset)
        known = self.declared.get(key)
        if known is None:
            nbytes = numel * itemsize(dtype)
            self.declared_bytes += nbytes
            if self.declared_bytes > len(self.data):
                raise GeometryError(f"{self.what}: storages declare {self.declared_bytes} bytes, more than "
                                    f"the {len(self.data)} bytes of the stream", offset=offset)
            self.budget.charge(nbytes + TENSOR_BYTES, PickleLimitError, self.what, offset)
            flat = torch.empty(numel, dtype=dtype)
            known = self.declared[key] = _Declared(Storage(key, dtype, numel, flat), location)
        elif known.storage.dtype != dtype or known.storage.numel != numel:
            raise GeometryError(f"{self.what}: storage {key!r} declared twice with different types", offset=offset)
        if view_meta is None:
            return known.storage
        return self._view(known.storage, view_meta, offset)

    def _view(self, root: Storage, view_meta: Any, offset: int) -> Storage:
        if type(view_meta) is not tuple or len(view_meta) != 3:
            raise PickleCorruptError(f"{self.what}: malformed storage view", offset=offset)
        view_key, start, size = view_meta
        if type(view_key) is not str or type(start) is not int or type(size) is not int or \
                start < 0 or size < 0 or start + size > root.numel:
            raise GeometryError(f"{self.what}: storage view outside storage {root.key!r}", offset=offset)
        self.budget.charge(TENSOR_BYTES, PickleLimitError, self.what, offset)
        return Storage(view_key, root.dtype, size, root.flat[start:start + size])

    def _read_storages(self, keys: Any, pos: int) -> None:
        if type(keys) is not list or not all(type(k) is str for k in keys) or len(set(keys)) != len(keys):
            raise PickleCorruptError(f"{self.what}: malformed storage key list", offset=self.base + pos)
        if set(keys) != set(self.declared):
            raise GeometryError(f"{self.what}: storage key list does not match the storages used",
                                offset=self.base + pos)
        for key in keys:
            storage = self.declared[key].storage
            if pos + 8 > len(self.data):
                raise GeometryError(f"{self.what}: truncated before storage {key!r}", offset=self.base + pos)
            (count,) = struct.unpack_from("<q", self.data, pos)
            if count != storage.numel:
                raise GeometryError(f"{self.what}: storage {key!r} record holds {count} elements, "
                                    f"{storage.numel} declared", offset=self.base + pos)
            nbytes = count * itemsize(storage.dtype)
            pos += 8
            if pos + nbytes > len(self.data):
                raise GeometryError(f"{self.what}: storage {key!r} needs {nbytes} bytes, "
                                    f"{len(self.data) - pos} left", offset=self.base + pos)
            src = flat_from_bytes(self.data[pos:pos + nbytes], storage.dtype, budget=self.budget, where=repr(key))
            storage.flat.copy_(src)
            pos += nbytes
        if pos != len(self.data):
            raise GeometryError(f"{self.what}: {len(self.data) - pos} unexpected bytes after the last storage",
                                offset=self.base + pos)
