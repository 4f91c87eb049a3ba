"""Zip archives validated from the bytes, before anything in them is unpickled.

Why our own parser rather than `zipfile`: readers disagree on ambiguous archives, and a file we
call sound must be the same file for torch's reader (miniz), `zipfile` and a streaming scanner.
So the archive must have exactly one reading:
  - one end record, the last end-record signature in the file, whose comment reaches the end of
    the file (zipfile and miniz take the last signature; a second archive in the comment is refused);
  - zip64 end records only where every reader looks for them (the record right before its locator);
  - entries that tile the file from byte 0 (local header, data, data descriptor if flagged) up to
    the central directory: no prepended, hidden or overlapping bytes a streaming reader would see;
  - every local header agreeing with its central entry (name, method, flags, CRC and sizes);
  - names without NUL or backslash, unique even when compared without case (torch looks names up
    ignoring ASCII case), extra fields that parse exactly, one zip64 field, no Info-ZIP unicode
    path field (which renames an entry for some readers), no flag bits readers treat differently;
  - stored entries, or DEFLATE inflating exactly to the declared size within the read's budget,
    and a CRC-32 that matches.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import UnsupportedFormatError
from .budget import Budget
from .errors import ContainerCorruptError, ContainerLimitError, ContainerUnsafeError

EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
EOCD64_LOCATOR = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"
DESCRIPTOR = b"PK\x07\x08"
#: general-purpose flag bits every reader handles alike: DEFLATE options (1, 2), data descriptor (3),
#: UTF-8 names (11). Encryption (0, 6), patched data (5), masked headers (13) and the rest are refused.
ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
#: flag bits a local header must repeat from its central entry
_SAME_FLAGS = 0x0001 | 0x0008 | 0x0800
ZIP64_EXTRA = 0x0001
#: extra fields that change how some readers name or decode an entry
REFUSED_EXTRAS = {0x7075: "Info-ZIP unicode path", 0x0017: "strong encryption", 0x9901: "AES encryption"}


@dataclass
class ZipEntry:
    name: str
    raw_name: bytes
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


def read_zip(buf: memoryview, budget: Budget) -> ZipArchive:
    try:
        return _read_zip(buf, budget)
    except (struct.error, ValueError, IndexError, OverflowError) as exc:  # defence in depth
        raise ContainerCorruptError(f"malformed zip structure ({type(exc).__name__}: {exc})") from None


def zip_names(buf: memoryview, limits: object) -> list[str]:
    """The entry names of the central directory (validated as `read_zip` validates it; no entry is
    inflated): enough to tell a checkpoint from an archive holding checkpoints (`wrapped.py`)."""
    try:
        return [e.name for e in _central_directory(buf, limits)[0]]
    except (struct.error, ValueError, IndexError, OverflowError) as exc:  # defence in depth
        raise ContainerCorruptError(f"malformed zip structure ({type(exc).__name__}: {exc})") from None


def _read_zip(buf: memoryview, budget: Budget) -> ZipArchive:
    entries, cd_offset = _central_directory(buf, budget.limits)
    _check_local_headers(buf, entries, cd_offset)
    sizes = [e.usize for e in entries if e.method == 8]
    if sizes:  # the records once inflated, and one inflater's transient copy
        budget.charge(
            sum(sizes) + max(sizes),
            ContainerLimitError,
            f"compressed entries declare {sum(sizes)} bytes once inflated (DEFLATE bomb?)",
            offset=0,
        )
    records: dict[str, memoryview] = {}
    offsets: dict[str, int] = {}
    for entry in entries:
        records[entry.name] = _entry_bytes(buf, entry)
        offsets[entry.name] = entry.data_offset
    return ZipArchive(records, offsets)


def _find_eocd(buf: memoryview) -> int:
    """The end record: the last signature in the file, its comment reaching exactly to the end."""
    tail_start = max(0, len(buf) - (22 + 65535))
    tail = bytes(buf[tail_start:])
    pos = tail.rfind(EOCD)
    if pos < 0 or pos + 22 > len(tail):
        raise ContainerCorruptError("zip end-of-central-directory record not found (truncated file?)", offset=len(buf))
    (comment_len,) = struct.unpack_from("<H", tail, pos + 20)
    if pos + 22 + comment_len != len(tail):
        earlier = tail.rfind(EOCD, 0, pos)
        what = "another end record precedes it" if earlier >= 0 else "it does not end the file"
        raise ContainerUnsafeError(
            f"the last zip end record's comment length does not reach the end of the file "
            f"({what}): readers would pick different end records",
            offset=tail_start + pos,
        )
    return tail_start + pos


def _central_directory(buf: memoryview, limits: object) -> tuple[list[ZipEntry], int]:
    eocd = _find_eocd(buf)
    disk, cd_disk, n_disk, count, cd_size, cd_offset, _ = struct.unpack_from("<HHHHIIH", buf, eocd + 4)
    cd_end = eocd
    has_zip64 = eocd >= 20 and bytes(buf[eocd - 20 : eocd - 16]) == EOCD64_LOCATOR
    if has_zip64 or 0xFFFF in (count, n_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        count64, size64, offset64, cd_end = _zip64_end(buf, eocd)
        if (
            (count, cd_size, cd_offset) != (count64, size64, offset64)
            and 0xFFFF not in (count, n_disk)
            and 0xFFFFFFFF not in (cd_size, cd_offset)
        ):
            raise ContainerUnsafeError("zip end record and zip64 end record disagree", offset=eocd)
        count, cd_size, cd_offset = count64, size64, offset64
    elif disk or cd_disk or n_disk != count:
        raise ContainerUnsafeError("multi-disk zip archives are not supported", offset=eocd)
    if count > limits.max_members:  # type: ignore[attr-defined]
        raise ContainerLimitError(
            f"zip declares {count} entries (limit {limits.max_members})",  # type: ignore[attr-defined]
            offset=eocd,
        )
    if cd_offset + cd_size != cd_end:
        raise ContainerCorruptError(
            "zip central directory is not where the end record says (data prepended or truncated?)", offset=cd_offset
        )
    entries: list[ZipEntry] = []
    names: set[str] = set()
    folded: dict[bytes, bytes] = {}
    pos = cd_offset
    for _ in range(count):
        if pos + 46 > cd_end or bytes(buf[pos : pos + 4]) != CENTRAL:
            raise ContainerCorruptError("bad zip central directory entry", offset=pos)
        (flags, method, crc, csize, usize, n, m, k, disk_start, offset) = _unpack_central(buf, pos)
        end = pos + 46 + n + m + k
        if end > cd_end or n > limits.max_name_bytes:  # type: ignore[attr-defined]
            raise ContainerCorruptError("zip central directory entry overruns the directory", offset=pos)
        raw_name = bytes(buf[pos + 46 : pos + 46 + n])
        extra = bytes(buf[pos + 46 + n : pos + 46 + n + m])
        usize, csize, offset = _zip64_extra(_extra_fields(extra, pos), usize, csize, offset, pos)
        name = _decode_name(raw_name, flags, pos)
        twin = folded.get(raw_name.lower())
        if twin is not None or name in names:
            same = twin == raw_name or twin is None
            raise ContainerUnsafeError(
                f"zip has two entries named {name!r}"
                + ("" if same else f" and {twin.decode('utf-8', 'replace')!r} (torch's zip reader ignores case)")
                + " (readers disagree on which one counts)",
                offset=pos,
            )
        folded[raw_name.lower()] = raw_name
        names.add(name)
        if flags & 0x1:
            raise ContainerUnsafeError(f"zip entry {name!r} is encrypted", offset=pos)
        if flags & ~ALLOWED_FLAGS:
            raise ContainerUnsafeError(
                f"zip entry {name!r} sets general-purpose flags {flags:#06x} that readers treat differently", offset=pos
            )
        if method not in (0, 8):
            raise UnsupportedFormatError(
                f"zip entry {name!r} uses compression method {method}; only stored and DEFLATE are read", offset=pos
            )
        if method == 0 and csize != usize:
            raise ContainerCorruptError(f"stored zip entry {name!r} has different sizes", offset=pos)
        if disk_start not in (0, 0xFFFF):
            raise ContainerUnsafeError("multi-disk zip archives are not supported", offset=pos)
        entries.append(ZipEntry(name, raw_name, method, flags, crc, csize, usize, offset))
        pos = end
    if pos != cd_end:
        raise ContainerCorruptError("zip central directory has bytes after its last entry", offset=pos)
    return entries, cd_offset


def _unpack_central(buf: memoryview, pos: int) -> tuple:
    (_, _, flags, method, _, _, crc, csize, usize, n, m, k, disk_start, _, _, offset) = struct.unpack_from(
        "<HHHHHHIIIHHHHHII", buf, pos + 4
    )
    return flags, method, crc, csize, usize, n, m, k, disk_start, offset


def _zip64_end(buf: memoryview, eocd: int) -> tuple[int, int, int, int]:
    """The zip64 end record, which must sit right before its locator (where zipfile reads it) and be
    where the locator points (where miniz reads it), without an extensible data sector."""
    loc = eocd - 20
    if loc < 0 or bytes(buf[loc : loc + 4]) != EOCD64_LOCATOR:
        raise ContainerCorruptError("zip64 end locator missing", offset=max(loc, 0))
    disk, rec, disks = struct.unpack_from("<IQI", buf, loc + 4)
    if disk != 0 or disks != 1:
        raise ContainerUnsafeError("multi-disk zip archives are not supported", offset=loc)
    if rec + 56 != loc or bytes(buf[rec : rec + 4]) != EOCD64:
        raise ContainerUnsafeError(
            "zip64 end record is not right before its locator (readers look for it in different places)",
            offset=min(rec, loc),
        )
    record_size, _, _, disk_no, cd_disk, n_disk, count, cd_size, cd_offset = struct.unpack_from(
        "<QHHIIQQQQ", buf, rec + 4
    )
    if record_size != 44 or disk_no or cd_disk or n_disk != count:
        raise ContainerUnsafeError("zip64 end record with extensible data or several disks", offset=rec)
    return count, cd_size, cd_offset, rec


def _extra_fields(extra: bytes, pos: int) -> dict[int, bytes]:
    """The (tag -> body) fields of an extra area, which must parse exactly; refused tags refused."""
    fields: dict[int, bytes] = {}
    i = 0
    while i < len(extra):
        if i + 4 > len(extra):
            raise ContainerCorruptError("zip extra field area ends inside a field header", offset=pos)
        tag, size = struct.unpack_from("<HH", extra, i)
        if i + 4 + size > len(extra):
            raise ContainerCorruptError(f"zip extra field {tag:#06x} overruns its area", offset=pos)
        if tag in REFUSED_EXTRAS:
            raise ContainerUnsafeError(
                f"zip entry has an {REFUSED_EXTRAS[tag]} extra field (readers that honour it see another entry)",
                offset=pos,
            )
        if tag in fields and tag == ZIP64_EXTRA:
            raise ContainerUnsafeError("zip entry has two zip64 extra fields (readers take different ones)", offset=pos)
        fields.setdefault(tag, extra[i + 4 : i + 4 + size])
        i += 4 + size
    return fields


def _zip64_extra(fields: dict[int, bytes], usize: int, csize: int, offset: int, pos: int) -> tuple[int, int, int]:
    if 0xFFFFFFFF not in (usize, csize, offset):
        return usize, csize, offset
    body = fields.get(ZIP64_EXTRA)
    needed = 8 * sum(v == 0xFFFFFFFF for v in (usize, csize, offset))
    if body is None or len(body) < needed:
        raise ContainerCorruptError("zip64 sizes missing from the entry's extra field", offset=pos)
    values = list(struct.unpack_from(f"<{needed // 8}Q", body))
    if usize == 0xFFFFFFFF:
        usize = values.pop(0)
    if csize == 0xFFFFFFFF:
        csize = values.pop(0)
    if offset == 0xFFFFFFFF:
        offset = values.pop(0)
    return usize, csize, offset


def _decode_name(raw: bytes, flags: int, pos: int) -> str:
    if b"\x00" in raw or b"\\" in raw:
        raise ContainerUnsafeError(
            f"zip entry name {raw[:60]!r} holds a NUL byte or a backslash (readers cut or convert it differently)",
            offset=pos,
        )
    try:
        return raw.decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        raise ContainerCorruptError("zip entry name is not valid UTF-8", offset=pos) from None


def _check_local_headers(buf: memoryview, entries: list[ZipEntry], cd_offset: int) -> None:
    """Each local header matches its entry, and the entries tile the file from 0 to the central directory."""
    expected = 0
    for e in sorted(entries, key=lambda e: e.header_offset):
        h = e.header_offset
        if h != expected:
            what = "hidden or prepended bytes" if h > expected else "overlapping entries"
            raise ContainerUnsafeError(
                f"zip entry {e.name!r} starts at {h}, expected {expected} ({what}: a "
                "streaming reader would see other entries)",
                offset=min(h, expected),
            )
        if h + 30 > len(buf) or bytes(buf[h : h + 4]) != LOCAL:
            raise ContainerCorruptError(f"zip entry {e.name!r}: no local header at its offset", offset=h)
        _, flags, method, _, _, crc, csize, usize, n, m = struct.unpack_from("<HHHHHIIIHH", buf, h + 4)
        if (
            bytes(buf[h + 30 : h + 30 + n]) != e.raw_name
            or method != e.method
            or (flags & _SAME_FLAGS) != (e.flags & _SAME_FLAGS)
        ):
            raise ContainerUnsafeError(
                f"zip entry {e.name!r}: local header disagrees with the central directory", offset=h
            )
        _extra_fields(bytes(buf[h + 30 + n : h + 30 + n + m]), h)
        if not e.flags & 0x8 and (
            crc,
            csize if csize != 0xFFFFFFFF else e.csize,
            usize if usize != 0xFFFFFFFF else e.usize,
        ) != (e.crc, e.csize, e.usize):
            raise ContainerUnsafeError(
                f"zip entry {e.name!r}: local header sizes or CRC disagree with the central directory", offset=h
            )
        e.data_offset = h + 30 + n + m
        end = e.data_offset + e.csize
        if end > len(buf):
            raise ContainerCorruptError(
                f"zip entry {e.name!r} needs {e.csize} bytes, the file ends "
                f"{len(buf) - e.data_offset} bytes after its start",
                offset=e.data_offset,
            )
        expected = end + (_descriptor_length(buf, e, end) if e.flags & 0x8 else 0)
    if expected != cd_offset:
        raise ContainerUnsafeError(
            f"{cd_offset - expected} bytes between the last zip entry and the central "
            "directory (hidden data a streaming reader would see)",
            offset=expected,
        )


def _descriptor_length(buf: memoryview, e: ZipEntry, pos: int) -> int:
    """The data descriptor after an entry (with or without signature, 32- or 64-bit sizes), which must
    repeat the central entry's CRC and sizes."""
    signed = bytes(buf[pos : pos + 4]) == DESCRIPTOR
    start = pos + 4 if signed else pos
    for size_fmt, length in (("<III", 12), ("<IQQ", 20)):
        if start + length <= len(buf) and struct.unpack_from(size_fmt, buf, start) == (e.crc, e.csize, e.usize):
            return length + (4 if signed else 0)
    raise ContainerUnsafeError(
        f"zip entry {e.name!r}: data descriptor missing or disagreeing with the central directory", offset=pos
    )


def _entry_bytes(buf: memoryview, e: ZipEntry) -> memoryview:
    raw = buf[e.data_offset : e.data_offset + e.csize]
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
        raise ContainerCorruptError(
            f"zip entry {e.name!r} does not inflate to its declared {e.usize} bytes", offset=e.data_offset
        )
    return bytearray(out)
