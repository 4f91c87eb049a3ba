"""The pre-1.0 torch tar format (container `torch-tar`), read from a tar validated in memory.

Why its own module: torch still reads this format (`torch/serialization.py`, `_legacy_load` and
its inner `legacy_load(f)`), by *extracting* members to a temporary folder and running plain
`pickle.load` on them. Here the tar has already been parsed by `tarfmt.py` (checksums, regular
members only, safe unique names, nothing extracted) and every pickle runs on our allowlist machine.
The byte layout follows torch's reader exactly; each member is a stream of pickles and raw records:

  sys_info  pickle({'protocol_version': 1001, 'little_endian': bool,
                    'type_sizes': {'short': 2, 'int': 4, 'long': 8}}) - torch ignores it, we check it;
  storages  pickle(n), n x [pickle((key, location, torch.<T>Storage)), int64 numel, numel x itemsize
            bytes], pickle([(view_key, root_key, offset, numel), ...]);
  tensors   pickle(n), n x [pickle((key, storage_key, torch.<T>Tensor)), int32 ndim, 4 ignored bytes,
            ndim x int64 size, ndim x int64 stride, int64 storage offset];
  pickle    the object, whose persistent ids are tensor keys (`str(key)`).
All integers and storage bytes are little-endian (torch's reader assumes so; `sys_info` must agree).
Storage type globals resolve to dtypes only in `storages`, tensor type globals only in `tensors`;
elsewhere they stay the inert, uncallable markers of `unpickler.py`.
"""
from __future__ import annotations

import struct
from typing import Any, Mapping, Optional

import torch

from ..errors import UnsupportedFormatError
from .budget import TENSOR_BYTES, Budget
from .errors import (
    ContainerCorruptError,
    ContainerUnsafeError,
    ForbiddenPickleError,
    GeometryError,
    PickleCorruptError,
    PickleLimitError,
)
from .magic import TORCH_TAR_MEMBERS, is_torch_tar  # noqa: F401 - re-exported
from .tensors import STORAGE_DTYPES, Storage, check_view, flat_from_bytes, itemsize, view_of
from .unpickler import Global, Unpickler

MEMBERS = TORCH_TAR_MEMBERS
SYS_INFO_TYPE_SIZES = {"short": 2, "int": 4, "long": 8}
PROTOCOL_VERSION = 1001

#: `torch.<T>Tensor` names old torch pickled as `type(tensor)` -> dtype
TENSOR_DTYPES: dict[str, torch.dtype] = {
    "FloatTensor": torch.float32, "DoubleTensor": torch.float64, "HalfTensor": torch.float16,
    "BFloat16Tensor": torch.bfloat16, "LongTensor": torch.int64, "IntTensor": torch.int32,
    "ShortTensor": torch.int16, "CharTensor": torch.int8, "ByteTensor": torch.uint8, "BoolTensor": torch.bool,
}
_TYPED_STORAGES = {name: dtype for name, dtype in STORAGE_DTYPES.items() if name != "UntypedStorage"}
_MODULES = ("torch", "torch.cuda")
STORAGE_MARKERS = frozenset((m, n) for m in _MODULES for n in _TYPED_STORAGES)
TENSOR_MARKERS = frozenset((m, n) for m in _MODULES for n in TENSOR_DTYPES)

#: the fewest bytes one listed record can take (a 2-byte pickle plus its raw fields)
_MIN_STORAGE_RECORD = 2 + 8
_MIN_TENSOR_RECORD = 2 + 8 + 8
_MAX_KEY = 2**64


def load_torch_tar(records: Mapping[str, memoryview], offsets: Mapping[str, int], *, budget: Budget,
                   names: Optional[Mapping[str, str]] = None) -> Any:
    """The object of a pre-1.0 torch tar whose validated members are `records` (`names`: as the tar spells
    them; torch extracts each member by its exact name, so `./pickle` would not be found)."""
    _check_members(records)
    for member, spelled in (names or {}).items():
        if spelled != member:
            raise ContainerUnsafeError(f"pre-1.0 torch tar member {member!r} is named {spelled!r} (torch looks "
                                       "members up by their exact name)")
    reader = _TarReader(records, offsets, budget)
    reader.check_sys_info()
    storages = reader.storages()
    tensors = reader.tensors(storages)
    return reader.obj(tensors, storages)


def _check_members(records: Mapping[str, memoryview]) -> None:
    names = set(records)
    for name in MEMBERS:
        if name not in names:
            raise ContainerCorruptError(f"pre-1.0 torch tar lacks its {name!r} member")
    extra = sorted(names - set(MEMBERS))
    if extra:
        raise ContainerUnsafeError(f"pre-1.0 torch tar holds member {extra[0]!r} besides "
                                   f"{', '.join(MEMBERS)} (torch would not read it; refused rather than ignored)")


class _TarReader:
    """One pass over the four members; every pickle shares one opcode budget."""

    def __init__(self, records: Mapping[str, memoryview], offsets: Mapping[str, int], budget: Budget) -> None:
        self.records = records
        self.offsets = offsets
        self.budget = budget
        self.limits = budget.limits

    # -- helpers ------------------------------------------------------------------------------
    def _pickle(self, member: str, pos: int, **kw: Any) -> tuple[Any, int]:
        up = Unpickler(self.records[member], start=pos, base_offset=self.offsets.get(member, 0),
                       budget=self.budget, what=f"torch tar {member!r}", **kw)
        value = up.load()
        assert up.end is not None
        return value, up.end

    def _at(self, member: str, pos: int) -> int:
        return self.offsets.get(member, 0) + pos

    def _count(self, member: str, value: Any, pos: int, smallest: int) -> int:
        if type(value) is not int or value < 0:
            raise PickleCorruptError(f"torch tar {member!r}: record count {value!r} is not a non-negative int",
                                     offset=self._at(member, pos))
        if value > self.limits.max_tar_records:
            raise PickleLimitError(f"torch tar {member!r} lists {value} records (limit "
                                   f"{self.limits.max_tar_records})", offset=self._at(member, pos))
        if value * smallest > len(self.records[member]) - pos:
            raise GeometryError(f"torch tar {member!r} lists {value} records, more than its "
                                f"{len(self.records[member])} bytes can hold", offset=self._at(member, pos))
        return value

    def _key(self, member: str, value: Any, what: str, pos: int) -> int:
        if type(value) is not int or not 0 <= value < _MAX_KEY:
            raise PickleCorruptError(f"torch tar {member!r}: {what} {value!r} is not a non-negative int",
                                     offset=self._at(member, pos))
        return value

    def _ints(self, member: str, pos: int, fmt: str, what: str) -> tuple[tuple[int, ...], int]:
        size = struct.calcsize(fmt)
        data = self.records[member]
        if pos + size > len(data):
            raise GeometryError(f"torch tar {member!r}: {what} needs {size} bytes, {len(data) - pos} left",
                                offset=self._at(member, pos))
        return struct.unpack_from(fmt, data, pos), pos + size

    def _end(self, member: str, pos: int) -> None:
        left = len(self.records[member]) - pos
        if left:
            raise GeometryError(f"torch tar {member!r}: {left} unexpected bytes after its last record",
                                offset=self._at(member, pos))

    # -- sys_info -----------------------------------------------------------------------------
    def check_sys_info(self) -> None:
        """Torch ignores `sys_info`; we require what torch's reader assumes: little-endian records
        and 8-byte `long` sizes (a big-endian or 32-bit writer laid the bytes out differently)."""
        info, pos = self._pickle("sys_info", 0)
        self._end("sys_info", pos)
        at = self._at("sys_info", 0)
        if type(info) is not dict or type(info.get("little_endian")) is not bool or \
                info.get("protocol_version") != PROTOCOL_VERSION or type(info.get("type_sizes")) is not dict:
            raise PickleCorruptError("torch tar 'sys_info' is not the record torch writes (protocol_version "
                                     "1001, little_endian, type_sizes)", offset=at)
        if not info["little_endian"]:
            raise UnsupportedFormatError("pre-1.0 torch tar written on a big-endian machine: torch reads its "
                                         "records as little-endian, so it is not read", offset=at)
        sizes = {k: info["type_sizes"].get(k) for k in SYS_INFO_TYPE_SIZES}
        if sizes != SYS_INFO_TYPE_SIZES:
            raise UnsupportedFormatError(f"pre-1.0 torch tar with C type sizes {sizes}; torch reads "
                                         f"{SYS_INFO_TYPE_SIZES}, so it is not read", offset=at)

    # -- storages -----------------------------------------------------------------------------
    def storages(self) -> dict[int, Storage]:
        member = "storages"
        data = self.records[member]
        count, pos = self._pickle(member, 0)
        count = self._count(member, count, pos, _MIN_STORAGE_RECORD)
        out: dict[int, Storage] = {}
        for _ in range(count):
            rec_pos = pos
            record, pos = self._pickle(member, pos, markers=STORAGE_MARKERS)
            key, dtype = self._storage_record(record, rec_pos, out)
            (numel,), pos = self._ints(member, pos, "<q", f"storage {key} element count")
            nbytes = numel * itemsize(dtype) if numel >= 0 else -1
            if nbytes < 0 or pos + nbytes > len(data):
                raise GeometryError(f"torch tar storage {key} declares {numel} x {itemsize(dtype)} bytes, "
                                    f"the member holds {len(data) - pos} after it", offset=self._at(member, pos - 8))
            self.budget.charge(TENSOR_BYTES, PickleLimitError, "torch tar 'storages'", self._at(member, pos))
            flat = flat_from_bytes(data[pos:pos + nbytes], dtype, budget=self.budget,
                                   where=f"{key} in torch tar 'storages'")
            out[key] = Storage(str(key), dtype, numel, flat)
            pos += nbytes
        views_pos = pos
        views, pos = self._pickle(member, pos)
        self._end(member, pos)
        out.update(self._views(views, out, views_pos))
        return out

    def _storage_record(self, record: Any, pos: int, known: Mapping[int, Storage]) -> tuple[int, torch.dtype]:
        at = self._at("storages", pos)
        if type(record) is not tuple or len(record) != 3:
            raise PickleCorruptError("torch tar 'storages': record is not (key, location, storage type)", offset=at)
        key, location, stype = record
        key = self._key("storages", key, "storage key", pos)
        if type(location) is not str or len(location) > 64:
            raise PickleCorruptError(f"torch tar storage {key}: location is not a short string", offset=at)
        if not isinstance(stype, Global) or (stype.module, stype.name) not in STORAGE_MARKERS:
            raise ForbiddenPickleError(f"torch tar storage {key}: type {stype!r} is not a storage type",
                                       offset=at)
        if key in known:
            raise PickleCorruptError(f"torch tar storage key {key} listed twice", offset=at)
        return key, _TYPED_STORAGES[stype.name]

    def _views(self, views: Any, roots: Mapping[int, Storage], pos: int) -> dict[int, Storage]:
        at = self._at("storages", pos)
        if type(views) is not list:
            raise PickleCorruptError("torch tar 'storages': storage view list is not a list", offset=at)
        if len(views) > self.limits.max_tar_records:
            raise PickleLimitError(f"torch tar 'storages' lists {len(views)} storage views (limit "
                                   f"{self.limits.max_tar_records})", offset=at)
        out: dict[int, Storage] = {}
        for view in views:
            if type(view) is not tuple or len(view) != 4:
                raise PickleCorruptError("torch tar storage view is not (key, root key, offset, numel)", offset=at)
            key, root_key, start, numel = (self._key("storages", v, "storage view field", pos) for v in view)
            if key in roots or key in out:
                raise PickleCorruptError(f"torch tar storage key {key} listed twice", offset=at)
            root = roots.get(root_key)
            if root is None:
                raise GeometryError(f"torch tar storage view {key} of unknown storage {root_key}", offset=at)
            if start + numel > root.numel:
                raise GeometryError(f"torch tar storage view {key} covers elements {start}..{start + numel} "
                                    f"of storage {root_key}, which has {root.numel}", offset=at)
            self.budget.charge(TENSOR_BYTES, PickleLimitError, "torch tar 'storages'", at)
            out[key] = Storage(str(key), root.dtype, numel, root.flat[start:start + numel])
        return out

    # -- tensors ------------------------------------------------------------------------------
    def tensors(self, storages: Mapping[int, Storage]) -> dict[int, torch.Tensor]:
        member = "tensors"
        count, pos = self._pickle(member, 0)
        count = self._count(member, count, pos, _MIN_TENSOR_RECORD)
        out: dict[int, torch.Tensor] = {}
        for _ in range(count):
            rec_pos = pos
            record, pos = self._pickle(member, pos, markers=TENSOR_MARKERS)
            key, storage = self._tensor_record(record, rec_pos, storages, out)
            (ndim, _ignored), pos = self._ints(member, pos, "<ii", f"tensor {key} ndim")
            # torch skips the 4 bytes after ndim: old writers stored an int with sizeof(long),
            # so they hold struct padding, not data
            if not 0 <= ndim <= self.limits.max_tensor_dims:
                raise GeometryError(f"torch tar tensor {key}: {ndim} dimensions (limit "
                                    f"{self.limits.max_tensor_dims})", offset=self._at(member, pos - 8))
            geometry, pos = self._ints(member, pos, f"<{2 * ndim + 1}q", f"tensor {key} geometry")
            size, stride, offset = geometry[:ndim], geometry[ndim:2 * ndim], geometry[2 * ndim]
            where = f"{key} of torch tar 'tensors' on storage {storage.key}"
            offset, size, stride = check_view(storage, offset, tuple(size), tuple(stride), limits=self.limits,
                                              where=where)
            self.budget.charge(TENSOR_BYTES, PickleLimitError, "torch tar 'tensors'", self._at(member, pos))
            out[key] = view_of(storage, offset, size, stride, where=where)
        self._end(member, pos)
        return out

    def _tensor_record(self, record: Any, pos: int, storages: Mapping[int, Storage],
                       known: Mapping[int, torch.Tensor]) -> tuple[int, Storage]:
        at = self._at("tensors", pos)
        if type(record) is not tuple or len(record) != 3:
            raise PickleCorruptError("torch tar 'tensors': record is not (key, storage key, tensor type)", offset=at)
        key, storage_key, ttype = record
        key = self._key("tensors", key, "tensor key", pos)
        if not isinstance(ttype, Global) or (ttype.module, ttype.name) not in TENSOR_MARKERS:
            raise ForbiddenPickleError(f"torch tar tensor {key}: type {ttype!r} is not a tensor type", offset=at)
        if key in known or key in storages:  # torch keeps tensors and storages in one table
            raise PickleCorruptError(f"torch tar key {key} listed twice", offset=at)
        storage = storages.get(storage_key) if type(storage_key) is int else None
        if storage is None:
            raise GeometryError(f"torch tar tensor {key}: storage {storage_key!r} is not in 'storages'", offset=at)
        if TENSOR_DTYPES[ttype.name] != storage.dtype:
            raise GeometryError(f"torch tar tensor {key}: a {ttype.name} on a {storage.dtype} storage", offset=at)
        return key, storage

    # -- the object ---------------------------------------------------------------------------
    def obj(self, tensors: Mapping[int, torch.Tensor], storages: Mapping[int, Storage]) -> Any:
        member = "pickle"

        def persistent_load(pid: Any, offset: int) -> torch.Tensor:
            key = _persistent_key(pid)
            if type(pid) is tuple:
                raise ForbiddenPickleError("torch tar 'pickle': pickled module class with its source code "
                                           "(a whole nn.Module saved); nothing was executed", offset=offset)
            if key is None:
                raise PickleCorruptError(f"torch tar 'pickle': malformed persistent id {str(pid)[:40]!r}",
                                         offset=offset)
            if key in tensors:
                return tensors[key]
            if key in storages:
                raise ForbiddenPickleError(f"torch tar 'pickle': persistent id {key} names a bare storage; only "
                                           "tensors are read", offset=offset)
            raise GeometryError(f"torch tar 'pickle': persistent id {key} names no tensor", offset=offset)

        obj, pos = self._pickle(member, 0, persistent_load=persistent_load, scalar_ids=True)
        if pos != len(self.records[member]):
            raise PickleCorruptError(f"torch tar 'pickle': {len(self.records[member]) - pos} bytes after the "
                                     "pickle's STOP", offset=self._at(member, pos))
        return obj


def _persistent_key(pid: Any) -> Optional[int]:
    """torch looks a persistent id up as `int(saved_id)`; we accept only its plain forms."""
    if type(pid) is int and 0 <= pid < _MAX_KEY:
        return pid
    if type(pid) is str and 0 < len(pid) <= 20 and pid.isascii() and pid.isdigit():
        return int(pid)
    return None
