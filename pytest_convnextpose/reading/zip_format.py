"""Zip archives validated from the bytes, before anything in them is unpickled.

Why our own parser rather than `zipfile`: scanners and loaders disagree on ambiguous archives
(torch reads the *first* of two `data.pkl` entries, `zipfile` the *last*), and `zipfile` happily
inflates a DEFLATE bomb. Here the central directory is the single source of truth and every entry
must agree with its local header, lie inside the file, not overlap another entry, be unique,
be stored or inflate within the budget, and match its CRC-32.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import UnsupportedFormatError
from .errors import ContainerCorruptError, ContainerLimitError, ContainerUnsafeError
from .limits import Limits, inflate_budget

EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
EOCD64_LOCATOR = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"


@dataclass
class ZipEntry:
    name: str
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    header_offset: int
    data_offset: int = 0


@dataclass
class ZipArchive:
    """Validated entries: name -> bytes (a view of the file for stored entries) and file offsets."""

    records: dict[str, memoryview]
    offsets: dict[str, int]


def read_zip(buf: memoryview, limits: Limits) -> ZipArchive:
    try:
        return _read_zip(buf, limits)
    except (struct.error, ValueError, IndexError, OverflowError) as exc:  # defence in depth
        raise ContainerCorruptError(f"malformed zip structure ({type(exc).__name__}: {exc})") from None


def _read_zip(buf: memoryview, limits: Limits) -> ZipArchive:
    entries = _central_directory(buf, limits)
    _check_local_headers(buf, entries)
    budget = inflate_budget(limits, len(buf))
    inflated = sum(e.usize for e in entries if e.method == 8)
    if inflated > budget:
        raise ContainerLimitError(f"compressed entries declare {inflated} bytes once inflated "
                                  f"(limit {budget} for a file of {len(buf)} bytes: DEFLATE bomb?)")
    records: dict[str, memoryview] = {}
    offsets: dict[str, int] = {}
    for entry in entries:
        records[entry.name] = _entry_bytes(buf, entry)
        offsets[entry.name] = entry.data_offset
    return ZipArchive(records, offsets)


def _find_eocd(buf: memoryview) -> int:
    tail_start = max(0, len(buf) - (22 + 65535))
    tail = bytes(buf[tail_start:])
    pos = tail.rfind(EOCD)
    while pos >= 0:
        comment_len = struct.unpack_from("<H", tail, pos + 20)[0] if pos + 22 <= len(tail) else -1
        if comment_len >= 0 and pos + 22 + comment_len == len(tail):
            return tail_start + pos
        pos = tail.rfind(EOCD, 0, pos)
    raise ContainerCorruptError("zip end-of-central-directory record not found (truncated file?)",
                                offset=len(buf))


def _central_directory(buf: memoryview, limits: Limits) -> list[ZipEntry]:
    eocd = _find_eocd(buf)
    disk, cd_disk, n_disk, count, cd_size, cd_offset, _ = struct.unpack_from("<HHHHIIH", buf, eocd + 4)
    cd_end = eocd
    has_zip64 = eocd >= 20 and bytes(buf[eocd - 20:eocd - 16]) == EOCD64_LOCATOR
    if has_zip64 or 0xFFFF in (count, n_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        count64, size64, offset64, cd_end = _zip64_end(buf, eocd)
        if (count, cd_size, cd_offset) != (count64, size64, offset64) and \
                0xFFFF not in (count, n_disk) and 0xFFFFFFFF not in (cd_size, cd_offset):
            raise ContainerUnsafeError("zip end record and zip64 end record disagree", offset=eocd)
        count, cd_size, cd_offset = count64, size64, offset64
    elif disk or cd_disk or n_disk != count:
        raise ContainerUnsafeError("multi-disk zip archives are not supported", offset=eocd)
    if count > limits.max_members:
        raise ContainerLimitError(f"zip declares {count} entries (limit {limits.max_members})", offset=eocd)
    if cd_offset + cd_size != cd_end:
        raise ContainerCorruptError("zip central directory is not where the end record says "
                                    "(data prepended or truncated?)", offset=cd_offset)
    entries: list[ZipEntry] = []
    names: set[str] = set()
    pos = cd_offset
    for _ in range(count):
        if pos + 46 > cd_end or bytes(buf[pos:pos + 4]) != CENTRAL:
            raise ContainerCorruptError("bad zip central directory entry", offset=pos)
        (flags, method, crc, csize, usize, n, m, k, disk_start, offset) = _unpack_central(buf, pos)
        end = pos + 46 + n + m + k
        if end > cd_end or n > limits.max_name_bytes:
            raise ContainerCorruptError("zip central directory entry overruns the directory", offset=pos)
        raw_name = bytes(buf[pos + 46:pos + 46 + n])
        extra = bytes(buf[pos + 46 + n:pos + 46 + n + m])
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset, pos)
        name = _decode_name(raw_name, flags, pos)
        if name in names:
            raise ContainerUnsafeError(f"zip has two entries named {name!r} (readers disagree on which "
                                       "one counts)", offset=pos)
        names.add(name)
        if flags & 0x1:
            raise ContainerUnsafeError(f"zip entry {name!r} is encrypted", offset=pos)
        if method not in (0, 8):
            raise UnsupportedFormatError(f"zip entry {name!r} uses compression method {method}; "
                                         "only stored and DEFLATE are read", offset=pos)
        if method == 0 and csize != usize:
            raise ContainerCorruptError(f"stored zip entry {name!r} has different sizes", offset=pos)
        entries.append(ZipEntry(name, method, flags, crc, csize, usize, offset))
        pos = end
    if pos != cd_end:
        raise ContainerCorruptError("zip central directory has bytes after its last entry", offset=pos)
    return entries


def _unpack_central(buf: memoryview, pos: int) -> tuple:
    (_, _, flags, method, _, _, crc, csize, usize, n, m, k, disk_start, _, _, offset) = \
        struct.unpack_from("<HHHHHHIIIHHHHHII", buf, pos + 4)
    return flags, method, crc, csize, usize, n, m, k, disk_start, offset


def _zip64_end(buf: memoryview, eocd: int) -> tuple[int, int, int, int]:
    loc = eocd - 20
    if loc < 0 or bytes(buf[loc:loc + 4]) != EOCD64_LOCATOR:
        raise ContainerCorruptError("zip64 end locator missing", offset=max(loc, 0))
    (rec,) = struct.unpack_from("<Q", buf, loc + 8)
    if rec + 56 > loc or bytes(buf[rec:rec + 4]) != EOCD64:
        raise ContainerCorruptError("zip64 end record missing", offset=rec)
    n_disk, count, cd_size, cd_offset = struct.unpack_from("<QQQQ", buf, rec + 24)
    if n_disk != count:
        raise ContainerUnsafeError("multi-disk zip archives are not supported", offset=rec)
    return count, cd_size, cd_offset, rec


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int, pos: int) -> tuple[int, int, int]:
    if 0xFFFFFFFF not in (usize, csize, offset):
        return usize, csize, offset
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + size]
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if usize == 0xFFFFFFFF:
                usize = values.pop(0) if values else -1
            if csize == 0xFFFFFFFF:
                csize = values.pop(0) if values else -1
            if offset == 0xFFFFFFFF:
                offset = values.pop(0) if values else -1
            if min(usize, csize, offset) < 0:
                break
            return usize, csize, offset
        i += 4 + size
    raise ContainerCorruptError("zip64 sizes missing from the entry's extra field", offset=pos)


def _decode_name(raw: bytes, flags: int, pos: int) -> str:
    try:
        return raw.decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        raise ContainerCorruptError("zip entry name is not valid UTF-8", offset=pos) from None


def _check_local_headers(buf: memoryview, entries: list[ZipEntry]) -> None:
    """Each entry's local header must match it, and entries' byte ranges must not overlap."""
    spans = []
    for e in entries:
        h = e.header_offset
        if h < 0 or h + 30 > len(buf) or bytes(buf[h:h + 4]) != LOCAL:
            raise ContainerCorruptError(f"zip entry {e.name!r}: no local header at its offset", offset=h)
        _, flags, method, _, _, _, _, _, n, m = struct.unpack_from("<HHHHHIIIHH", buf, h + 4)
        if bytes(buf[h + 30:h + 30 + n]) != _encode_name(e) or method != e.method:
            raise ContainerUnsafeError(f"zip entry {e.name!r}: local header disagrees with the "
                                       "central directory", offset=h)
        e.data_offset = h + 30 + n + m
        end = e.data_offset + e.csize
        if end > len(buf):
            raise ContainerCorruptError(f"zip entry {e.name!r} needs {e.csize} bytes, the file ends "
                                        f"{len(buf) - e.data_offset} bytes after its start", offset=e.data_offset)
        spans.append((h, end, e.name))
    spans.sort()
    for (a0, a1, a_name), (b0, _, b_name) in zip(spans, spans[1:]):
        if b0 < a1:
            raise ContainerUnsafeError(f"zip entries {a_name!r} and {b_name!r} overlap", offset=b0)


def _encode_name(e: ZipEntry) -> bytes:
    return e.name.encode("utf-8" if e.flags & 0x800 else "cp437")


def _entry_bytes(buf: memoryview, e: ZipEntry) -> memoryview:
    raw = buf[e.data_offset:e.data_offset + e.csize]
    if e.method == 0:
        data = raw
    else:
        data = memoryview(_inflate(raw, e))
    if zlib.crc32(data) != e.crc:
        raise ContainerCorruptError(f"zip entry {e.name!r} fails its CRC-32 check", offset=e.data_offset)
    return data


def _inflate(raw: memoryview, e: ZipEntry) -> bytearray:
    """Inflate at most the declared size; any disagreement is corruption."""
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(raw, max(e.usize, 1))  # 0 would mean unlimited
        ok = inflater.eof and len(out) == e.usize and not inflater.unconsumed_tail
    except zlib.error as exc:
        raise ContainerCorruptError(f"zip entry {e.name!r}: bad DEFLATE data ({exc})", offset=e.data_offset) from None
    if not ok:
        raise ContainerCorruptError(f"zip entry {e.name!r} does not inflate to its declared "
                                    f"{e.usize} bytes", offset=e.data_offset)
    return bytearray(out)
