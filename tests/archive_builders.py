"""Byte-level writers for zip and tar archives, and torch-style pickles, with every field under control.

Why hand-written: the files that make two readers disagree (a second end record in a zip comment,
a tar directory that claims a size, a pax header that renames a member) are exactly the files a
well-behaved writer refuses to produce. These helpers write only what the test asks for; the
differential corpus (`differential_corpus.py`) and the structural fuzzing use them.

Pickles are produced by Python's own `pickle.Pickler` at protocol 2 (the opcodes `torch.save`
uses) from placeholder objects (`StorageRef`, `Call`), so a file can declare views, storages and
calls that no real tensor could produce (a 64-byte storage with 2**122 elements) without ever
allocating them.
"""
from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import torch

# -- zip --------------------------------------------------------------------------------------------


@dataclass
class ZipEntry:
    """One zip entry as written: everything a reader might compare is explicit."""

    name: bytes
    data: bytes                      # the stored bytes (already compressed when method is 8)
    method: int = 0
    usize: Optional[int] = None      # uncompressed size; default len(data) (stored) - set it for DEFLATE
    crc: Optional[int] = None        # default: CRC-32 of the uncompressed bytes when known
    flags: int = 0
    local_name: Optional[bytes] = None
    local_extra: bytes = b""
    central_extra: bytes = b""
    descriptor: Optional[bytes] = None  # bytes after the data (flag bit 3 writers)
    header_offset: Optional[int] = None  # where the central directory says the entry starts
    central_sizes: Optional[tuple[int, int]] = None  # (csize, usize) written in the central directory


def deflated(name: bytes, raw: bytes, level: int = 9, **kw: Any) -> ZipEntry:
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = comp.compress(raw) + comp.flush()
    return ZipEntry(name, body, method=8, usize=len(raw), crc=zlib.crc32(raw), **kw)


def build_zip(entries: list[ZipEntry], *, prefix: bytes = b"", comment: bytes = b"", zip64: bool = False,
              zip64_gap: bytes = b"", between: Optional[dict[int, bytes]] = None, after_entries: bytes = b"",
              count: Optional[int] = None, eocd_values: Optional[tuple[int, int, int]] = None) -> bytes:
    """Local entries, central directory, optional zip64 end records, end record and comment.

    prefix: bytes before the first entry (offsets still point at the real entries).
    between: {i: bytes} inserted after entry i (hidden data between entries).
    zip64_gap: bytes between the zip64 end record and its locator.
    eocd_values: (count, cd_size, cd_offset) to write instead of the truth (e.g. 0xFFFF markers).
    """
    out = bytearray(prefix)
    central = bytearray()
    between = between or {}
    for i, e in enumerate(entries):
        offset = len(out) if e.header_offset is None else e.header_offset
        usize = len(e.data) if e.usize is None else e.usize
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        lname = e.name if e.local_name is None else e.local_name
        if e.descriptor is not None:
            out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, e.flags, e.method, 0, 0, 0, 0, 0,
                               len(lname), len(e.local_extra))
        else:
            out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, e.flags, e.method, 0, 0, crc, len(e.data),
                               usize, len(lname), len(e.local_extra))
        out += lname + e.local_extra + e.data
        if e.descriptor is not None:
            out += e.descriptor
        out += between.get(i, b"")
        csize_cd, usize_cd = e.central_sizes or (len(e.data), usize)
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, e.flags, e.method, 0, 0, crc,
                               csize_cd, usize_cd, len(e.name), len(e.central_extra), 0, 0, 0, 0, offset)
        central += e.name + e.central_extra
    out += after_entries
    cd_offset = len(out)
    out += central
    n = len(entries) if count is None else count
    if zip64:
        rec = len(out)
        out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
        out += zip64_gap
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, rec, 1)
    values = eocd_values or (n, len(central), cd_offset)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(values[0], 0xFFFF), min(values[0], 0xFFFF),
                       min(values[1], 0xFFFFFFFF), min(values[2], 0xFFFFFFFF), len(comment))
    return bytes(out + comment)


def stored_entries(records: Iterable[tuple[str, bytes]]) -> list[ZipEntry]:
    return [ZipEntry(name.encode(), data) for name, data in records]


def descriptor(data: bytes) -> bytes:
    """A data descriptor with signature, as torch's writer emits one after each record."""
    return struct.pack("<4sIII", b"PK\x07\x08", zlib.crc32(data), len(data), len(data))


# -- tar --------------------------------------------------------------------------------------------
BLOCK = 512
POSIX_MAGIC = b"ustar\x0000"
GNU_MAGIC = b"ustar  \x00"


def tar_header(name: bytes, size: int, typeflag: bytes = b"0", *, linkname: bytes = b"",
               magic: Optional[bytes] = POSIX_MAGIC, prefix: bytes = b"", tail: bytes = b"",
               size_field: Optional[bytes] = None, mode: bytes = b"0000644") -> bytes:
    """One 512-byte header with a correct (unsigned) checksum.

    magic None writes a v7 header (no magic). `tail` fills bytes 345..500 (the ustar prefix field,
    GNU atime/ctime/offset) and wins over `prefix` when given.
    """
    h = bytearray(BLOCK)
    h[0:len(name)] = name[:100]
    h[100:108] = mode + b"\x00"
    h[108:116] = b"0000000\x00"
    h[116:124] = b"0000000\x00"
    h[124:136] = size_field if size_field is not None else b"%011o\x00" % size
    h[136:148] = b"00000000000\x00"
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname[:100]
    if magic is not None:
        h[257:265] = magic
        h[265:269] = b"root"
        h[297:301] = b"root"
    area = tail or prefix
    h[345:345 + len(area)] = area[:155]
    h[148:156] = b"        "
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def tar_file(name: bytes, data: bytes, typeflag: bytes = b"0", **kw: Any) -> bytes:
    return tar_header(name, len(data), typeflag, **kw) + padded(data)


def pax_records(pairs: Iterable[tuple[str, str | bytes]]) -> bytes:
    out = bytearray()
    for key, value in pairs:
        body = key.encode() + b"=" + (value if isinstance(value, bytes) else value.encode()) + b"\n"
        n = len(body) + 2
        while len(str(n)) + 1 + len(body) != n:
            n += 1
        out += str(n).encode() + b" " + body
    return bytes(out)


def pax_header(pairs: Iterable[tuple[str, str | bytes]], typeflag: bytes = b"x",
               name: bytes = b"././@PaxHeader") -> bytes:
    return tar_file(name, pax_records(pairs), typeflag)


def gnu_longname(name: bytes) -> bytes:
    return tar_file(b"././@LongLink", name + b"\x00", b"L", magic=GNU_MAGIC)


def tar_end() -> bytes:
    return bytes(2 * BLOCK)


def tar_of(records: Iterable[tuple[str, bytes]], *, dirs: bool = False) -> bytes:
    """A plain POSIX tar of (name, bytes) regular members (and their folders first when `dirs`)."""
    out = bytearray()
    seen: set[str] = set()
    for name, data in records:
        if dirs:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i]) + "/"
                if folder not in seen:
                    seen.add(folder)
                    out += tar_header(folder.encode(), 0, b"5", mode=b"0000755")
        out += tar_file(name.encode(), data)
    return bytes(out + tar_end())


# -- torch-style pickles ------------------------------------------------------------------------------


@dataclass(eq=False)
class StorageRef:
    """A storage as `torch.save` names it in a persistent id; never allocated."""

    key: str
    numel: int
    stype: str = "FloatStorage"
    location: str = "cpu"


@dataclass(eq=False)
class Call:
    """An object pickled as `REDUCE(func, args)`; `func` is a real importable function or class."""

    func: Any
    args: tuple

    def __reduce__(self) -> tuple:
        return (self.func, self.args)


def tensor_ref(storage: StorageRef, size: tuple[int, ...], stride: Optional[tuple[int, ...]] = None,
               offset: int = 0, hooks: Optional[OrderedDict] = None) -> Call:
    """`_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` as torch pickles a tensor."""
    if stride is None:
        stride, acc = [], 1
        for s in reversed(size):
            stride.insert(0, acc)
            acc *= max(s, 1)
        stride = tuple(stride)
    return Call(torch._utils._rebuild_tensor_v2, (storage, offset, tuple(size), tuple(stride), False,
                                                  OrderedDict() if hooks is None else hooks))


@dataclass
class TorchPickle:
    """Pickle placeholder objects the way torch does (protocol 2, storages as persistent ids)."""

    legacy: bool = False  # legacy streams add a sixth persistent-id field (storage view: None)
    protocol: int = 2
    storages: dict[str, StorageRef] = field(default_factory=dict)

    def dumps(self, obj: Any) -> bytes:
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, protocol=self.protocol)
        pickler.persistent_id = self._pid  # type: ignore[method-assign]
        pickler.dump(obj)
        return buf.getvalue()

    def _pid(self, obj: Any) -> Optional[tuple]:
        if not isinstance(obj, StorageRef):
            return None
        self.storages.setdefault(obj.key, obj)
        stype = getattr(torch, obj.stype)
        pid = ("storage", stype, obj.key, obj.location, obj.numel)
        return pid + (None,) if self.legacy else pid


def placeholders(obj: Any, data: dict[str, bytes], counter: Optional[list[int]] = None) -> Any:
    """`obj` with every real tensor replaced by a placeholder on its own storage (bytes into `data`)."""
    counter = counter if counter is not None else [0]
    if isinstance(obj, torch.Tensor):
        t = obj.detach().contiguous()
        key = str(counter[0])
        counter[0] += 1
        data[key] = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        stype = next(name for name, dtype in _STORAGE_DTYPES.items() if dtype == t.dtype)
        return tensor_ref(StorageRef(key, t.numel(), stype), tuple(t.shape))
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, placeholders(v, data, counter)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: placeholders(v, data, counter) for k, v in obj.items()}
    if isinstance(obj, list):
        return [placeholders(v, data, counter) for v in obj]
    if isinstance(obj, tuple):
        return tuple(placeholders(v, data, counter) for v in obj)
    return obj


def record_archive(obj: Any, storage_bytes: dict[str, bytes], root: str = "archive",
                   extra: Iterable[tuple[str, bytes]] = ()) -> list[tuple[str, bytes]]:
    """The records of a torch zip holding `obj` (placeholders) and the storages' bytes, torch's names."""
    pkl = TorchPickle().dumps(obj)
    out = [(f"{root}/data.pkl", pkl), (f"{root}/byteorder", b"little")]
    out += [(f"{root}/data/{key}", data) for key, data in storage_bytes.items()]
    out += [(f"{root}/version", b"3\n")]
    out += list(extra)
    return out


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def legacy_stream(obj: Any, storage_bytes: dict[str, bytes], protocol: int = 2, little_endian: bool = True) -> bytes:
    """A legacy (non-zip) `torch.save` stream of placeholder `obj` with the given storage bytes."""
    tp = TorchPickle(legacy=True, protocol=protocol)
    parts = [pickle.dumps(LEGACY_MAGIC, protocol=protocol), pickle.dumps(1001, protocol=protocol),
             pickle.dumps({"protocol_version": 1001, "little_endian": little_endian,
                           "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=protocol),
             tp.dumps(obj)]
    keys = list(tp.storages)
    parts.append(pickle.dumps(keys, protocol=protocol))
    for key in keys:
        itemsize = torch.empty((), dtype=_stype_dtype(tp.storages[key].stype)).element_size()
        raw = storage_bytes[key]
        parts.append(struct.pack("<q", len(raw) // itemsize) + raw)
    return b"".join(parts)


_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "LongStorage": torch.int64, "IntStorage": torch.int32, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool, "BFloat16Storage": torch.bfloat16, "CharStorage": torch.int8,
                   "ShortStorage": torch.int16, "ComplexFloatStorage": torch.complex64}


def _stype_dtype(stype: str) -> torch.dtype:
    return _STORAGE_DTYPES[stype]
