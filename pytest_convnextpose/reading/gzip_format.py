"""gzip (RFC 1952) inflated in memory with a bounded output: the layer a `.gz` or `.tar.gz` download adds.

Why our own header and trailer checks around zlib: readers disagree on gzip files that are not one
clean member. Python's `gzip.decompress` and GNU gzip join several members, readers that take one
member stop after the first; GNU gzip ignores trailing zeros (with a warning) and `gzip.GzipFile`
skips them, `gzip.decompress` refuses them; zlib and GNU gzip refuse reserved flag bits and check
the header CRC, Python's `gzip` does neither. So a file we read holds exactly one member:
  - ID1 ID2 = 1f 8b, CM = 8 (DEFLATE), no reserved FLG bits (5..7);
  - FEXTRA, FNAME and FCOMMENT inside the file (names and comments NUL-terminated within 64 KiB),
    and an FHCRC, if flagged, equal to the low 16 bits of the header's CRC-32;
  - one raw DEFLATE stream, inflated in chunks; every chunk is charged to the read's budget and no
    chunk may be larger than what the budget has left, so a decompression bomb stops at the budget
    (2 x the file's size + 48 MiB, `limits.py`), never after it;
  - a trailer whose CRC-32 and ISIZE (the size modulo 2**32) are those of what was inflated;
  - nothing after the trailer (no second member, no padding).
The inflated bytes are one fresh buffer (aligned: tensors read from it are views, not copies).
"""
from __future__ import annotations

import struct
import zlib

from ..errors import UnsupportedFormatError
from .budget import Budget
from .errors import ContainerCorruptError, ContainerLimitError, ContainerUnsafeError
from .magic import GZIP_MAGIC

FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT = 1, 2, 4, 8, 16
RESERVED_FLAGS = 0xE0
#: longest FNAME / FCOMMENT field read (NUL included); real ones are a file name or a short note
MAX_TEXT_FIELD = 1 << 16
#: input fed to the inflater per call, and the most output taken per call
IN_CHUNK = 1 << 20
OUT_CHUNK = 1 << 20


def gunzip(buf: memoryview, budget: Budget) -> bytearray:
    """The one member of the gzip file `buf`, inflated within `budget`. Raises a container-layer error."""
    start = header_length(buf)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pos = start  # input fed so far
    pending: bytes | memoryview = b""
    try:
        while not inflater.eof:
            if not pending:
                if pos >= len(buf):
                    raise ContainerCorruptError("gzip data ends inside its DEFLATE stream (truncated?)", offset=pos)
                pending = buf[pos:pos + IN_CHUNK]
                pos += len(pending)
            room = max(0, budget.remaining())
            chunk = inflater.decompress(pending, max(1, min(OUT_CHUNK, room + 1)))
            pending = inflater.unconsumed_tail
            if chunk:
                budget.charge(len(chunk), ContainerLimitError,
                              f"gzip data inflates to more than {len(out) + len(chunk) - 1} bytes "
                              "(a decompression bomb?)", offset=start)
                out += chunk
    except zlib.error as exc:
        raise ContainerCorruptError(f"bad gzip DEFLATE data ({exc})", offset=start) from None
    end = pos - len(inflater.unused_data)  # where the DEFLATE stream ended: the trailer follows
    _check_trailer(buf, end, out)
    return out


def header_length(buf: memoryview) -> int:
    """Bytes of the gzip header (RFC 1952 2.3), every field checked."""
    if len(buf) < 18 or bytes(buf[:2]) != GZIP_MAGIC:
        raise ContainerCorruptError("gzip file shorter than a gzip header and trailer", offset=0)
    method, flags = buf[2], buf[3]
    if method != 8:
        raise UnsupportedFormatError(f"gzip compression method {method}; only DEFLATE (8) is read", offset=2)
    if flags & RESERVED_FLAGS:
        raise ContainerUnsafeError(f"gzip header sets reserved flag bits ({flags:#04x}): zlib and GNU gzip refuse "
                                   "the file, Python's gzip reads it", offset=3)
    pos = 10
    if flags & FEXTRA:
        if pos + 2 > len(buf):
            raise ContainerCorruptError("gzip extra field length beyond the file", offset=pos)
        (xlen,) = struct.unpack_from("<H", buf, pos)
        pos += 2 + xlen
    for flag, what in ((FNAME, "file name"), (FCOMMENT, "comment")):
        if flags & flag:
            nul = bytes(buf[pos:pos + MAX_TEXT_FIELD]).find(b"\x00")
            if nul < 0:
                if pos + MAX_TEXT_FIELD < len(buf):
                    raise ContainerLimitError(f"gzip {what} field longer than {MAX_TEXT_FIELD} bytes", offset=pos)
                raise ContainerCorruptError(f"gzip {what} field runs past the end of the file", offset=pos)
            pos += nul + 1
    if flags & FHCRC:
        if pos + 2 > len(buf):
            raise ContainerCorruptError("gzip header CRC beyond the file", offset=pos)
        (crc16,) = struct.unpack_from("<H", buf, pos)
        if zlib.crc32(buf[:pos]) & 0xFFFF != crc16:
            raise ContainerUnsafeError("gzip header CRC does not match the header: zlib and GNU gzip refuse the "
                                       "file, Python's gzip reads it", offset=pos)
        pos += 2
    if pos + 8 > len(buf):
        raise ContainerCorruptError("gzip header runs past the end of the file", offset=min(pos, len(buf)))
    return pos


def _check_trailer(buf: memoryview, end: int, out: bytearray) -> None:
    if end + 8 > len(buf):
        raise ContainerCorruptError("gzip trailer (CRC-32 and size) missing (truncated?)", offset=end)
    crc, isize = struct.unpack_from("<II", buf, end)
    if crc != zlib.crc32(out):
        raise ContainerCorruptError("gzip data fails its CRC-32 check", offset=end)
    if isize != len(out) & 0xFFFFFFFF:
        raise ContainerCorruptError(f"gzip trailer gives the size {isize}, the data inflate to {len(out)} bytes",
                                    offset=end + 4)
    rest = len(buf) - (end + 8)
    if rest and bytes(buf[end + 8:end + 10]) == GZIP_MAGIC:
        raise ContainerUnsafeError("a second gzip member follows the first (gzip.decompress and GNU gzip join "
                                   "members, single-member readers stop after the first)", offset=end + 8)
    if rest:
        raise ContainerUnsafeError(f"{rest} bytes after the gzip trailer (GNU gzip ignores them, gzip.decompress "
                                   "refuses them)", offset=end + 8)
