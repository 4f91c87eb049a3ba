"""Tar archives parsed from the bytes in memory; nothing is ever extracted to disk.

Why our own parser: `tarfile` (Python 3.11.7) and GNU tar read some tars differently, and a file
we call sound must hold the same members for both. So a tar must have exactly one reading:
  - every header has a valid (unsigned) checksum; nothing but zero blocks follows the end marker;
  - members are regular files or folders; a folder (or any member but a regular file) has size 0,
    in its header and in a pax record (`tarfile` reads a non-regular member's data as headers,
    GNU tar skips it); a non-folder name never ends in `/` (both readers would call it a folder);
    the v7 way of writing a folder (type NUL, name ending in `/`, size 0) is a folder;
  - the ustar prefix field is used only in POSIX ustar headers and must be empty elsewhere
    (`tarfile` prepends it whatever the magic, GNU tar reads GNU times there);
  - extended headers: one pax header and/or one GNU long name per member, never both setting the
    name, never left dangling; pax records that parse exactly and only the keywords every reader
    treats alike (`path`, `size` equal to the header's, times, owners, `comment`, xattrs); a
    global pax header only with `comment`; no `GNU.sparse.*`, `linkpath` or `hdrcharset`;
  - names are safe relative paths without duplicates (`./` parts dropped: `tar -C dir -cf x.tar .`).
Names that collide without case are refused by the record-archive layer (`archive.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import UnsupportedFormatError
from .budget import Budget
from .errors import ContainerCorruptError, ContainerLimitError, ContainerUnsafeError

BLOCK = 512
REGULAR = (b"0", b"\x00", b"7")
FOLDER = b"5"
LINKS = {b"1": "hard link", b"2": "symbolic link", b"K": "GNU long link name"}
SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO", b"S": "GNU sparse file",
           b"V": "volume label", b"M": "multi-volume continuation"}
POSIX_MAGIC = b"ustar\x0000"
#: pax keywords every common reader applies alike (`size` must also equal the header's size field)
PAX_KEYS = {"path", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "comment"}
PAX_PREFIXES = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
GLOBAL_PAX_KEYS = {"comment"}


@dataclass
class TarArchive:
    """Regular members by normalised name; `names` gives each one's name as the archive spells it."""

    records: dict[str, memoryview]
    offsets: dict[str, int]
    names: dict[str, str]


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


def read_tar(buf: memoryview, budget: Budget) -> TarArchive:
    try:
        return _TarReader(buf, budget).read()
    except (ValueError, IndexError, OverflowError) as exc:  # defence in depth
        raise ContainerCorruptError(f"malformed tar structure ({type(exc).__name__}: {exc})") from None


class _TarReader:
    def __init__(self, buf: memoryview, budget: Budget) -> None:
        self.buf = buf
        self.limits = budget.limits
        self.records: dict[str, memoryview] = {}
        self.offsets: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.seen: set[str] = set()
        self.pax: Optional[dict[str, str]] = None  # the pending pax header for the next member
        self.long_name: Optional[str] = None  # the pending GNU long name

    def read(self) -> TarArchive:
        buf, pos = self.buf, 0
        while True:
            if pos + BLOCK > len(buf):
                raise ContainerCorruptError("tar ends inside a header (truncated?)", offset=pos)
            block = bytes(buf[pos:pos + BLOCK])
            if block == b"\x00" * BLOCK:
                if self.pax is not None or self.long_name is not None:
                    raise ContainerUnsafeError("tar extended header followed by the end marker (applies to "
                                               "no member)", offset=pos)
                _check_padding(buf, pos)
                break
            if not _checksum_ok(block):
                raise ContainerCorruptError("tar header checksum mismatch", offset=pos)
            kind = block[156:157]
            size = _parse_size(block[124:136], pos)
            start, end = pos + BLOCK, pos + BLOCK + size
            if end > len(buf):
                raise ContainerCorruptError(f"tar member needs {size} bytes, the file ends "
                                            f"{len(buf) - start} bytes after its start", offset=start)
            _check_prefix_field(block, pos)
            if kind in (b"x", b"g"):
                self._pax_header(kind, bytes(buf[start:end]), start)
            elif kind == b"L":
                self._long_name(bytes(buf[start:end]), start)
            else:
                self._member(block, kind, size, pos, start, end)
            pos = start + -(-size // BLOCK) * BLOCK
        return TarArchive(self.records, self.offsets, self.names)

    def _pax_header(self, kind: bytes, data: bytes, start: int) -> None:
        if len(data) > self.limits.max_pax_bytes:
            raise ContainerLimitError(f"tar pax header of {len(data)} bytes (limit {self.limits.max_pax_bytes})",
                                      offset=start)
        records = _parse_pax(data, start)
        if kind == b"g":
            odd = sorted(set(records) - GLOBAL_PAX_KEYS)
            if odd:
                raise ContainerUnsafeError(f"tar global pax header sets {odd[0]!r} (readers apply it to different "
                                           "members)", offset=start)
            return
        if self.pax is not None:
            raise ContainerUnsafeError("two tar pax headers for one member (readers keep different ones)", offset=start)
        odd = sorted(k for k in records if k not in PAX_KEYS and not k.startswith(PAX_PREFIXES))
        if odd:
            raise ContainerUnsafeError(f"tar pax header sets {odd[0]!r}, which readers interpret differently",
                                       offset=start)
        self.pax = records

    def _long_name(self, data: bytes, start: int) -> None:
        if self.long_name is not None:
            raise ContainerUnsafeError("two GNU long names for one tar member (readers keep different ones)",
                                       offset=start)
        if len(data) > self.limits.max_name_bytes + 1:
            raise ContainerLimitError("tar member name too long", offset=start)
        self.long_name = _text(data.rstrip(b"\x00"), start)

    def _member(self, block: bytes, kind: bytes, size: int, pos: int, start: int, end: int) -> None:
        pax, long_name = self.pax or {}, self.long_name
        self.pax, self.long_name = None, None
        if "path" in pax and long_name is not None:
            raise ContainerUnsafeError("tar member named by both a pax path and a GNU long name (readers pick "
                                       "different ones)", offset=pos)
        raw_name = _header_name(block)
        extended = pax.get("path") if "path" in pax else long_name
        if extended is not None:
            _check_extended_name(extended, raw_name, pos)
            name = extended
        else:
            name = _text(raw_name, pos)
        if "size" in pax and _pax_size(pax["size"], pos) != size:
            raise ContainerUnsafeError(f"tar member {name!r}: pax size {pax['size'][:20]} disagrees with the header's "
                                       f"{size} (readers without pax read another member)", offset=pos)
        if kind == b"\x00" and name.endswith("/") and not size:
            kind = FOLDER  # the v7 way of writing a folder: every reader reads it so
        _check_member(name, kind, size, pos, self.limits)
        norm = _normalise(name, pos, folder=kind == FOLDER)
        if not norm:  # `.` or `./`: the archive's own top folder
            return
        if norm in self.seen:
            raise ContainerUnsafeError(f"tar has two members named {norm!r}", offset=pos)
        self.seen.add(norm)
        if len(self.seen) > self.limits.max_members:
            raise ContainerLimitError(f"tar has more than {self.limits.max_members} members", offset=pos)
        if kind in REGULAR:
            self.records[norm] = self.buf[start:end]
            self.offsets[norm] = start
            self.names[norm] = name


def _check_member(name: str, kind: bytes, size: int, pos: int, limits: object) -> None:
    if kind in LINKS:
        raise ContainerUnsafeError(f"tar member {name!r} is a {LINKS[kind]}", offset=pos)
    if kind in SPECIAL:
        raise ContainerUnsafeError(f"tar member {name!r} is a {SPECIAL[kind]}", offset=pos)
    if kind not in REGULAR and kind != FOLDER:
        raise UnsupportedFormatError(f"tar member {name!r} has type {kind!r}", offset=pos)
    if kind == FOLDER and size:
        raise ContainerUnsafeError(f"tar folder {name!r} claims {size} bytes of data (tarfile reads them as "
                                   "headers, GNU tar skips them)", offset=pos)
    if kind != FOLDER and name.endswith("/"):
        raise ContainerUnsafeError(f"tar member {name!r} of type {kind!r} has a folder's name (readers call it "
                                   "a folder)", offset=pos)
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_name_bytes:  # type: ignore[attr-defined]
        raise ContainerLimitError("tar member name too long", offset=pos)


def _check_prefix_field(block: bytes, pos: int) -> None:
    """Bytes 345..500 are a name prefix only in a POSIX ustar header; elsewhere they must be zero."""
    magic = block[257:265]
    if magic[:6] == b"ustar\x00" and magic != POSIX_MAGIC:
        raise ContainerUnsafeError(f"tar header with magic {magic!r} (readers disagree on its format)", offset=pos)
    if magic != POSIX_MAGIC and block[345:500].strip(b"\x00"):
        raise ContainerUnsafeError("non-POSIX tar header with data in the ustar prefix field (tarfile reads it as "
                                   "a name prefix, GNU tar does not)", offset=pos)


def _normalise(name: str, pos: int, *, folder: bool) -> str:
    if name.startswith("/") or "\\" in name or "\x00" in name or (len(name) > 1 and name[1] == ":"):
        raise ContainerUnsafeError(f"tar member {name!r} has an absolute or non-portable name", offset=pos)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ContainerUnsafeError(f"tar member {name!r} climbs out of the archive with '..'", offset=pos)
    if not parts and not (folder and name.strip("./") == ""):
        raise ContainerUnsafeError(f"tar member with empty name {name!r}", offset=pos)
    return "/".join(parts)


def _header_name(block: bytes) -> bytes:
    name = block[0:100].split(b"\x00", 1)[0]
    if block[257:265] == POSIX_MAGIC:  # POSIX prefix field
        prefix = block[345:500].split(b"\x00", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name


def _check_extended_name(extended: str, header: bytes, pos: int) -> None:
    """A pax path or GNU long name must rename nothing: the member's own header holds the same name,
    or as much of it as fits (its first 100 bytes, as GNU tar writes, or with non-ASCII characters
    as `?`, as Python's tarfile writes). Otherwise a reader without that extension reads another name."""
    full = extended.encode("utf-8", "surrogateescape")
    lossy = extended.encode("ascii", "replace")
    if header == full or (len(full) > 100 and header == full[:100]) or header == lossy[:100]:
        return
    raise ContainerUnsafeError(f"tar member {extended!r} is named {header[:60]!r} in its own header (readers "
                               "without pax or GNU long names read another member)", offset=pos)


def _text(raw: bytes, pos: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ContainerCorruptError("tar member name is not UTF-8", offset=pos) from None


def _pax_size(text: str, pos: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ContainerCorruptError("bad size in tar pax header", offset=pos)
    return int(text)


def _parse_size(field: bytes, pos: int) -> int:
    if field[0] & 0x80:  # GNU base-256
        if field[0] != 0x80:
            raise ContainerCorruptError("negative tar member size", offset=pos)
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    if not text or not all(48 <= c <= 55 for c in text):
        raise ContainerCorruptError("bad size field in tar header", offset=pos)
    return int(text, 8)


def _parse_pax(data: bytes, pos: int) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records covering the data exactly, each key once."""
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
        name = _text(key, pos + i)
        if name in out:
            raise ContainerUnsafeError(f"tar pax header sets {name!r} twice", offset=pos + i)
        out[name] = _text(value, pos + i)
        i += length
    return out


def _check_padding(buf: memoryview, pos: int) -> None:
    tail = buf[pos:]
    if bytes(tail).strip(b"\x00"):
        raise ContainerUnsafeError("data after the tar end marker", offset=pos)
