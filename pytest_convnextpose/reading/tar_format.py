"""Tar archives parsed from the bytes in memory; nothing is ever extracted to disk.

Why our own parser: Python 3.11.7's `tarfile` lacks the 2025 extraction-filter fixes and silently
stops at a damaged header, so two readers of one tar may see different members. Here every header
must have a valid checksum, members are regular files (or folders, which are skipped), names are
safe relative paths without duplicates, data lies inside the file, and nothing but zero padding
may follow the end marker.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnsupportedFormatError
from .errors import ContainerCorruptError, ContainerLimitError, ContainerUnsafeError
from .limits import Limits

BLOCK = 512
REGULAR = (b"0", b"\x00", b"7")
LINKS = {b"1": "hard link", b"2": "symbolic link"}
SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO", b"S": "GNU sparse file",
           b"V": "volume label", b"M": "multi-volume continuation"}


@dataclass
class TarArchive:
    records: dict[str, memoryview]
    offsets: dict[str, int]


def looks_like_tar(head: bytes) -> bool:
    """A ustar/GNU magic, or a v7 header whose checksum is right."""
    if len(head) < BLOCK:
        return False
    if head[257:262] == b"ustar":
        return True
    return _checksum_ok(head)


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:BLOCK])


def read_tar(buf: memoryview, limits: Limits) -> TarArchive:
    try:
        return _read_tar(buf, limits)
    except (ValueError, IndexError, OverflowError) as exc:  # defence in depth
        raise ContainerCorruptError(f"malformed tar structure ({type(exc).__name__}: {exc})") from None


def _read_tar(buf: memoryview, limits: Limits) -> TarArchive:
    records: dict[str, memoryview] = {}
    offsets: dict[str, int] = {}
    seen: set[str] = set()
    pos = 0
    pax: dict[str, str] = {}
    long_name: str | None = None
    while True:
        if pos + BLOCK > len(buf):
            raise ContainerCorruptError("tar ends inside a header (truncated?)", offset=pos)
        block = bytes(buf[pos:pos + BLOCK])
        if block == b"\x00" * BLOCK:
            _check_padding(buf, pos)
            break
        if not _checksum_ok(block):
            raise ContainerCorruptError("tar header checksum mismatch", offset=pos)
        kind = block[156:157]
        meta = kind in (b"x", b"g", b"L")
        size = _parse_size(None if meta else pax.get("size"), block[124:136], pos)
        start, end = pos + BLOCK, pos + BLOCK + size
        if end > len(buf):
            raise ContainerCorruptError(f"tar member needs {size} bytes, the file ends "
                                        f"{len(buf) - start} bytes after its start", offset=start)
        next_pos = start + -(-size // BLOCK) * BLOCK
        if kind == b"x":
            pax = _parse_pax(bytes(buf[start:end]), start)
        elif kind == b"g":
            pass  # global pax header: nothing in it changes how we read members
        elif kind == b"L":
            long_name = _text(bytes(buf[start:end]).rstrip(b"\x00"), start)
        else:
            name = pax.get("path") or long_name or _header_name(block, pos)
            _check_member(name, kind, pos, limits)
            norm = _normalise(name, pos)
            if norm in seen:
                raise ContainerUnsafeError(f"tar has two members named {norm!r}", offset=pos)
            seen.add(norm)
            if len(seen) > limits.max_members:
                raise ContainerLimitError(f"tar has more than {limits.max_members} members", offset=pos)
            if kind in REGULAR:
                records[norm] = buf[start:end]
                offsets[norm] = start
            pax, long_name = {}, None
        pos = next_pos
    return TarArchive(records, offsets)


def _check_member(name: str, kind: bytes, pos: int, limits: Limits) -> None:
    if kind in LINKS:
        raise ContainerUnsafeError(f"tar member {name!r} is a {LINKS[kind]}", offset=pos)
    if kind in SPECIAL:
        raise ContainerUnsafeError(f"tar member {name!r} is a {SPECIAL[kind]}", offset=pos)
    if kind not in REGULAR and kind != b"5":
        raise UnsupportedFormatError(f"tar member {name!r} has type {kind!r}", offset=pos)
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_name_bytes:
        raise ContainerLimitError("tar member name too long", offset=pos)


def _normalise(name: str, pos: int) -> str:
    if name.startswith("/") or "\\" in name or "\x00" in name or (len(name) > 1 and name[1] == ":"):
        raise ContainerUnsafeError(f"tar member {name!r} has an absolute or non-portable name", offset=pos)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ContainerUnsafeError(f"tar member {name!r} climbs out of the archive with '..'", offset=pos)
    if not parts:
        raise ContainerUnsafeError(f"tar member with empty name {name!r}", offset=pos)
    return "/".join(parts)


def _header_name(block: bytes, pos: int) -> str:
    name = _text(block[0:100].split(b"\x00", 1)[0], pos)
    if block[257:263] == b"ustar\x00":  # POSIX prefix field
        prefix = _text(block[345:500].split(b"\x00", 1)[0], pos)
        if prefix:
            name = f"{prefix}/{name}"
    return name


def _text(raw: bytes, pos: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ContainerCorruptError("tar member name is not UTF-8", offset=pos) from None


def _parse_size(pax_size: str | None, field: bytes, pos: int) -> int:
    if pax_size is not None:
        if not pax_size.isdigit() or len(pax_size) > 20:
            raise ContainerCorruptError("bad size in tar pax header", offset=pos)
        return int(pax_size)
    if field[0] & 0x80:  # GNU base-256
        if field[0] != 0x80:
            raise ContainerCorruptError("negative tar member size", offset=pos)
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    if not text or not all(48 <= c <= 55 for c in text):
        raise ContainerCorruptError("bad size field in tar header", offset=pos)
    return int(text, 8)


def _parse_pax(data: bytes, pos: int) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(data):
        space = data.find(b" ", i, i + 20)
        if space < 0 or not data[i:space].isdigit():
            raise ContainerCorruptError("bad record in tar pax header", offset=pos + i)
        length = int(data[i:space])
        record = data[space + 1:i + length]
        if length <= space - i or i + length > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise ContainerCorruptError("bad record in tar pax header", offset=pos + i)
        key, value = record[:-1].split(b"=", 1)
        out[_text(key, pos + i)] = _text(value, pos + i)
        i += length
    if "linkpath" in out:
        raise ContainerUnsafeError("tar pax header sets a link target", offset=pos)
    return out


def _check_padding(buf: memoryview, pos: int) -> None:
    tail = buf[pos:]
    if bytes(tail).strip(b"\x00"):
        raise ContainerUnsafeError("data after the tar end marker", offset=pos)
