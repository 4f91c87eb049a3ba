"""The red-team corpus of issue 11: files other readers would read differently, files that amplify
work, files that crash the layers above the reader, and legitimate layouts that must load.

Every case names its class (the issue's six: `zip`, `tar`, `views`, `amplification`, `above`,
`legit`; and `safetensors`, where Python's json and the library's serde_json differ) and what must
happen:
  refuse   the reader refuses it (`read_file` raises a `CheckpointError`; `inspect` exits 2);
  load     the reader loads it and agrees bit for bit with the reference readers (`case_runner`);
  problem  `convnextpose inspect` reports a problem or refuses (exit 1 or 2);
  verdict  `convnextpose inspect` answers (exit 0, 1 or 2: odd metadata or optimizer entries leave the
           weights sound): never exit 3, never a traceback.
Each case also runs under the memory/time budget of SECURITY.md (`case_runner`).

Files are generated (no blobs committed) with the byte-level writers of `archive_builders.py` and
with torch's, Python's and GNU tar's own writers for the legitimate layouts.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Optional

import torch
from archive_builders import (
    GNU_MAGIC,
    Call,
    StorageRef,
    TorchPickle,
    ZipEntry,
    build_zip,
    deflated,
    descriptor,
    gnu_longname,
    legacy_stream,
    pax_header,
    placeholders,
    record_archive,
    stored_entries,
    tar_end,
    tar_file,
    tar_header,
    tar_of,
    tensor_ref,
)
from hostile_corpus import payloads, small_state, torchscript_records

CLASSES = ("zip", "tar", "views", "amplification", "above", "legit", "safetensors", "wrapper")

#: `DiffCase.container` of a checkpoint inside a wrapper archive: `wrapped|<inner container>|<member>`;
#: the reference reader takes the member out with zipfile, tarfile or gzip, then reads it as `<inner>`
WRAPPED = "wrapped"


def wrapped(inner: str, member: str) -> str:
    return f"{WRAPPED}|{inner}|{member}"


@dataclass
class DiffCase:
    name: str
    klass: str
    path: Path
    expect: str  # refuse | load | verdict
    container: str  # what the file is (selects the reference readers in case_runner)
    note: str = ""


def _pose_state() -> dict[str, torch.Tensor]:
    """A tiny ConvNeXtPose state dict (the spec of the tiny golden case), so `inspect` reaches inference."""
    from ckpt_helpers import SMALL_SPEC

    from pytest_convnextpose.testing.synthetic import random_state_dict

    return random_state_dict(SMALL_SPEC)


def cases(tmp: Path, marker: Path, *, big: bool = True) -> Iterator[DiffCase]:
    """Every case, written under `tmp`. `big=False` leaves out the cases that write tens of MB."""
    tmp.mkdir(parents=True, exist_ok=True)
    ctx = _Ctx(tmp, marker)
    yield from _zip_cases(ctx)
    yield from _tar_cases(ctx)
    yield from _view_cases(ctx)
    yield from _amplification_cases(ctx, big)
    yield from _above_cases(ctx)
    yield from _legit_cases(ctx, big)
    yield from _safetensors_cases(ctx)
    yield from _wrapper_cases(ctx)


class _Ctx:
    def __init__(self, tmp: Path, marker: Path) -> None:
        self.tmp = tmp
        self.marker = marker
        self.evil = payloads(marker)["os.system"]
        data: dict[str, bytes] = {}
        self.obj = placeholders(small_state(), data)
        self.data = data
        self.records = record_archive(self.obj, data, root="snap")
        other: dict[str, bytes] = {}
        self.other_pkl = TorchPickle().dumps(placeholders({"network": {"x": torch.full((3,), 7.0)}}, other))
        self.other_data = other

    def write(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def zip(self, name: str, entries: list[ZipEntry], **kw: object) -> Path:
        return self.write(name, build_zip(entries, **kw))

    def entries(self, records: Optional[list[tuple[str, bytes]]] = None) -> list[ZipEntry]:
        return stored_entries(self.records if records is None else records)

    def pkl_changed(self, **changes: object) -> list[ZipEntry]:
        """The entries, with the `data.pkl` one written differently (`changes` to its `ZipEntry` fields)."""
        return [replace(e, **changes) if e.name.endswith(b"data.pkl") else e for e in self.entries()]

    def refuse_zip(self, name: str, file: str, entries: list[ZipEntry], note: str = "", **kw: object) -> DiffCase:
        """A zip case the reader must refuse, read by the reference readers as a torch zip archive."""
        return DiffCase(name, "zip", self.zip(file, entries, **kw), "refuse", "torch-zip", note)

    def refuse_tar(self, name: str, file: str, data: bytes, note: str = "") -> DiffCase:
        """A tar case the reader must refuse, read by the reference readers as a tar of a checkpoint folder."""
        return DiffCase(name, "tar", self.write(file, data), "refuse", "tar-directory", note)


def _replace(records: list[tuple[str, bytes]], suffix: str, data: bytes) -> list[tuple[str, bytes]]:
    return [(n, data if n.endswith(suffix) else d) for n, d in records]


# -- 1. zip ambiguity -------------------------------------------------------------------------------
def _zip_cases(c: _Ctx) -> Iterator[DiffCase]:
    z = "zip"
    base = build_zip(c.entries())
    # A second archive hidden in the comment: its end record's comment length does not reach the end of
    # the file, so a reader that insists on that takes the first archive, zipfile and torch the second.
    hidden_records = _replace(c.records, "data.pkl", c.evil)
    outer = c.entries()
    first_len = len(build_zip(outer, comment=b""))  # the comment starts right after the outer end record
    inner = build_zip([ZipEntry(e.name, e.data, header_offset=None) for e in stored_entries(hidden_records)])
    shifted = _shift_zip(inner, first_len)
    yield c.refuse_zip(
        "second-archive-in-comment",
        "eocd2.zip",
        outer,
        "zipfile/torch read the archive in the comment",
        comment=shifted + b"!",
    )
    yield c.refuse_zip(
        "second-archive-is-the-comment",
        "eocd3.zip",
        outer,
        "all end records agree on the inner archive; the outer entries are hidden",
        comment=shifted,
    )
    yield c.refuse_zip("eocd-signature-in-comment", "eocd4.zip", outer, comment=b"PK\x05\x06" + bytes(30))
    # names that collide when compared without case (torch's zip reader looks names up ignoring case)
    evil_first = [ZipEntry(b"snap/DATA.PKL", c.evil)] + c.entries()
    yield c.refuse_zip("case-collision-data.pkl-first", "case1.zip", evil_first)
    yield c.refuse_zip("case-collision-data.pkl-last", "case2.zip", c.entries() + [ZipEntry(b"snap/Data.pkl", c.evil)])
    no_order = [e for e in c.entries() if not e.name.endswith(b"/byteorder")]
    yield c.refuse_zip(
        "byteorder-upper-case-only",
        "case3.zip",
        no_order + [ZipEntry(b"snap/BYTEORDER", b"big")],
        "torch byte-swaps every storage",
    )
    yield c.refuse_zip("byteorder-both-cases", "case4.zip", c.entries() + [ZipEntry(b"snap/ByteOrder", b"big")])
    storage0 = next(n for n, _ in c.records if n.endswith("/data/0"))
    yield c.refuse_zip(
        "storage-upper-case-twin",
        "case5.zip",
        c.entries()
        + [ZipEntry(storage0.replace("/data/", "/DATA/").encode(), bytes(len(dict(c.records)[storage0])))],
    )
    yield c.refuse_zip(
        "version-upper-case",
        "case6.zip",
        [e for e in c.entries() if not e.name.endswith(b"/version")] + [ZipEntry(b"snap/VERSION", b"3\n")],
    )
    # NUL bytes and other bytes readers treat differently
    yield c.refuse_zip(
        "nul-in-name-twin",
        "nul1.zip",
        c.entries() + [ZipEntry(b"snap/data.pkl\x00.txt", c.evil)],
        "zipfile cuts names at NUL",
    )
    yield c.refuse_zip("nul-in-name-only", "nul2.zip", c.pkl_changed(name=b"snap/data.pkl\x00x"))
    yield c.refuse_zip(
        "backslash-name",
        "bs.zip",
        c.entries() + [ZipEntry(b"snap\\data.pkl", c.evil)],
        "zipfile on Windows turns backslashes into slashes",
    )
    # local header and central directory disagree
    yield c.refuse_zip("local-name-other-case", "lh1.zip", c.pkl_changed(local_name=b"snap/data.pkl".upper()))
    yield c.refuse_zip("local-name-other", "lh2.zip", c.pkl_changed(local_name=b"snap/other.pkl"))
    # extra fields
    upath = b"snap/evil.pkl"
    unicode_path = struct.pack("<HHBI", 0x7075, 5 + len(upath), 1, zlib.crc32(b"snap/data.pkl")) + upath
    yield c.refuse_zip(
        "unicode-path-extra",
        "ex1.zip",
        c.pkl_changed(central_extra=unicode_path),
        "Info-ZIP unicode path field renames the entry for some readers",
    )
    yield c.refuse_zip(
        "extra-field-overruns",
        "ex2.zip",
        c.pkl_changed(central_extra=struct.pack("<HH", 0xCAFE, 40) + bytes(4)),
        "zipfile raises 'Corrupt extra field'",
    )
    pkl = dict(c.records)["snap/data.pkl"]
    z64_twice = struct.pack("<HHQ", 1, 8, len(pkl)) + struct.pack("<HHQ", 1, 8, len(pkl) - 3)
    yield c.refuse_zip(
        "two-zip64-extras",
        "ex3.zip",
        c.pkl_changed(central_extra=z64_twice, central_sizes=(len(pkl), 0xFFFFFFFF)),
    )
    # zip64 end records readers find in different places
    yield c.refuse_zip(
        "zip64-record-not-before-locator",
        "z64a.zip",
        c.entries(),
        "zipfile looks right before the locator, miniz where it points",
        zip64=True,
        zip64_gap=bytes(16),
    )
    yield DiffCase(
        "zip64-legit-small",
        z,
        c.zip("z64b.zip", c.entries(), zip64=True),
        "load",
        "torch-zip",
        "torch writes these end records for every file",
    )
    # data that is not where the central directory says, or not referenced at all
    hidden = (
        b"PK\x03\x04"
        + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0, zlib.crc32(c.evil), len(c.evil), len(c.evil), 13, 0)
        + b"snap/data.pkl"
        + c.evil
    )
    yield DiffCase(
        "hidden-local-entry-prepended",
        z,
        c.write("pre1.zip", hidden + _shift_zip(base, len(hidden))),
        "refuse",
        "torch-zip",
        "streaming readers see the first local header",
    )
    yield DiffCase("prepended-garbage", z, c.write("pre2.zip", b"MZ" + bytes(62) + base), "refuse", "torch-zip")
    yield c.refuse_zip("hidden-entry-between", "gap.zip", c.entries(), between={0: hidden})
    yield c.refuse_zip(
        "descriptor-disagrees",
        "dd.zip",
        c.pkl_changed(flags=8, descriptor=struct.pack("<4sIII", b"PK\x07\x08", 0, 1, 1)),
    )
    yield DiffCase(
        "descriptors-like-torch",
        z,
        c.zip("dd2.zip", [ZipEntry(e.name, e.data, flags=8, descriptor=descriptor(e.data)) for e in c.entries()]),
        "load",
        "torch-zip",
    )
    for bit in (5, 6, 13):
        yield c.refuse_zip(f"flag-bit-{bit}", f"flag{bit}.zip", c.pkl_changed(flags=1 << bit))
    # what torch's reader itself requires
    rootless = [(n.split("/", 1)[1], d) for n, d in c.records]
    yield c.refuse_zip(
        "no-root-folder",
        "noroot.zip",
        c.entries(rootless),
        "torch: 'file in archive is not in a subdirectory'",
    )
    yield c.refuse_zip(
        "no-version-record",
        "nover.zip",
        c.entries([r for r in c.records if not r[0].endswith("/version")]),
    )
    yield c.refuse_zip("version-99", "v99.zip", c.entries(_replace(c.records, "/version", b"99\n")))
    yield c.refuse_zip(
        "data-version-overrides",
        "dv.zip",
        c.entries(c.records + [("snap/.data/version", b"99\n")]),
        "torch reads .data/version before version",
    )
    yield c.refuse_zip(
        "storage-alignment-not-a-number",
        "align.zip",
        c.entries(c.records + [("snap/.storage_alignment", b"zz")]),
        "torch: invalid literal for int()",
    )
    yield c.refuse_zip(
        "byteorder-with-newline",
        "bo.zip",
        c.entries(_replace(c.records, "/byteorder", b"little\n")),
        "torch: Unknown endianness type",
    )
    # a legacy stream whose sys_info says big-endian: torch reads its storages as little-endian anyway
    yield DiffCase(
        "legacy-sys_info-big-endian",
        z,
        c.write(
            "be.legacy",
            legacy_stream(
                {"x": tensor_ref(StorageRef("0", 4), (4,))}, {"0": struct.pack("<4f", 0, 1, 2, 3)}, little_endian=False
            ),
        ),
        "refuse",
        "torch-legacy",
        "we would byte-swap what torch does not",
    )
    # pickles torch.load(weights_only=True) does not read
    for proto in (4, 5):
        data: dict[str, bytes] = {}
        obj = placeholders({"x": torch.arange(3.0)}, data)
        pkl4 = TorchPickle(protocol=proto).dumps(obj)
        recs = (
            [("snap/data.pkl", pkl4), ("snap/byteorder", b"little")]
            + [(f"snap/data/{k}", v) for k, v in data.items()]
            + [("snap/version", b"3\n")]
        )
        yield DiffCase(
            f"pickle-protocol-{proto}-in-zip",
            z,
            c.zip(f"p{proto}.zip", c.entries(recs)),
            "refuse",
            "torch-zip",
            "weights_only: Unsupported operand 149",
        )
    frozen = b"\x80\x02}q\x00X\x01\x00\x00\x00xq\x01cbuiltins\nfrozenset\nq\x02]q\x03K\x01a\x85q\x04Rq\x05s."
    yield c.refuse_zip(
        "frozenset-global-in-zip",
        "fs.zip",
        c.entries(_replace(c.records, "data.pkl", frozen)),
        "not in torch's weights-only allowlist",
    )
    alias = b"\x80\x02}q\x00X\x01\x00\x00\x00xq\x01ctorch\nfloat\nq\x02s."
    yield c.refuse_zip("dtype-alias-global-in-zip", "alias.zip", c.entries(_replace(c.records, "data.pkl", alias)))
    text_ops = b"\x80\x02}(Vx\nI5\nu."
    yield c.refuse_zip("text-opcodes-in-zip", "text.zip", c.entries(_replace(c.records, "data.pkl", text_ops)))


def _shift_zip(data: bytes, by: int) -> bytes:
    """The same archive with every offset moved by `by` (it will sit `by` bytes into a file)."""
    buf = bytearray(data)
    eocd = buf.rfind(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<HII", buf, eocd + 10)
    pos = cd_offset
    for _ in range(count):
        n, m, k = struct.unpack_from("<HHH", buf, pos + 28)
        (off,) = struct.unpack_from("<I", buf, pos + 42)
        struct.pack_into("<I", buf, pos + 42, off + by)
        pos += 46 + n + m + k
    struct.pack_into("<I", buf, eocd + 16, cd_offset + by)
    return bytes(buf)


# -- 2. tar ambiguity -------------------------------------------------------------------------------
def _tar_cases(c: _Ctx) -> Iterator[DiffCase]:
    t = "tar"
    recs = c.records
    body = b"".join(tar_file(n.encode(), d) for n, d in recs)
    evil_member = tar_file(b"snap/data.pkl", c.evil)
    # a non-regular member whose header (or pax record) claims a size: tarfile reads what follows as
    # headers, GNU tar skips it as data
    yield c.refuse_tar(
        "directory-with-size",
        "dirsize.tar",
        body + tar_header(b"snap/x/", len(evil_member), b"5") + evil_member + tar_end(),
    )
    yield c.refuse_tar(
        "directory-with-pax-size",
        "dirpax.tar",
        body
        + pax_header([("size", str(len(evil_member)))])
        + tar_header(b"snap/x/", 0, b"5")
        + evil_member
        + tar_end(),
    )
    yield c.refuse_tar(
        "fifo-with-size",
        "fifosize.tar",
        body + tar_header(b"snap/f", len(evil_member), b"6") + evil_member + tar_end(),
    )
    # pax records that change what a member is
    pkl = dict(recs)["snap/data.pkl"]
    no_pkl = b"".join(tar_file(n.encode(), d) for n, d in recs if not n.endswith("data.pkl"))

    def pkl_last(*headers: bytes, name: bytes = b"snap/data.pkl", **kw: object) -> bytes:
        """The checkpoint as a tar with data.pkl last, written as `name` after `headers` (pax records, long names)."""
        return no_pkl + b"".join(headers) + tar_file(name, pkl, **kw) + tar_end()

    yield c.refuse_tar(
        "pax-size-disagrees-with-header",
        "paxsize.tar",
        no_pkl
        + pax_header([("size", str(len(pkl)))])
        + tar_header(b"snap/data.pkl", len(c.evil))
        + _pad(pkl)
        + tar_end(),
    )
    yield c.refuse_tar(
        "pax-path-renames",
        "paxpath.tar",
        pkl_last(tar_file(b"snap/decoy.pkl", c.evil), pax_header([("path", "snap/data.pkl")]), name=b"snap/notes.txt"),
        "readers without pax see notes.txt",
    )
    yield c.refuse_tar("pax-path-trailing-slash", "paxslash.tar", pkl_last(pax_header([("path", "snap/data.pkl/")])))
    yield c.refuse_tar("global-pax-path", "gpath.tar", pax_header([("path", "snap/data.pkl")], b"g") + body + tar_end())
    yield c.refuse_tar("global-pax-size", "gsize.tar", pax_header([("size", "512")], b"g") + body + tar_end())
    yield DiffCase(
        "global-pax-comment",
        t,
        c.write("gcomment.tar", pax_header([("comment", "git archive")], b"g") + body + tar_end()),
        "load",
        "tar-directory",
        "git archive writes one",
    )
    sparse = [
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.name", "snap/data.pkl"),
        ("GNU.sparse.realsize", str(len(pkl))),
    ]
    yield c.refuse_tar(
        "gnu-sparse-pax",
        "sparse.tar",
        pkl_last(pax_header(sparse), name=b"snap/GNUSparseFile.0/data.pkl"),
    )
    yield c.refuse_tar("pax-hdrcharset-binary", "charset.tar", pkl_last(pax_header([("hdrcharset", "BINARY")])))
    yield c.refuse_tar("pax-linkpath-on-file", "linkpath.tar", pkl_last(pax_header([("linkpath", "/etc/passwd")])))
    yield c.refuse_tar(
        "two-pax-headers",
        "pax2.tar",
        pkl_last(pax_header([("path", "snap/data.pkl")]), pax_header([("path", "snap/other.pkl")]), name=b"snap/x"),
    )
    yield c.refuse_tar("pax-header-at-end", "paxend.tar", body + pax_header([("path", "snap/x")]) + tar_end())
    yield c.refuse_tar(
        "pax-record-after-nul",
        "paxnul.tar",
        pkl_last(tar_file(b"././@PaxHeader", b"11 a=bcde\n\x0020 path=snap/evil\n", b"x")),
        "tarfile stops at the NUL",
    )
    # v7 names ending in '/', type flags readers disagree on
    yield c.refuse_tar(
        "v7-regular-with-slash",
        "v7slash.tar",
        pkl_last(
            tar_header(b"snap/data.pkl/", len(evil_member) + len(pkl) + 512, b"\x00", magic=None),
            evil_member,
            name=b"snap/pad",
        ),
        "tarfile and GNU tar call it a directory",
    )
    yield c.refuse_tar("regtype-with-slash", "regslash.tar", body + tar_file(b"snap/notes/", b"x" * 10) + tar_end())
    yield DiffCase(
        "v7-directory-with-slash",
        t,
        c.write(
            "v7dir.tar",
            tar_header(b"snap/", 0, b"\x00", magic=None)
            + b"".join(tar_file(n.encode(), d, magic=None) for n, d in recs)
            + tar_end(),
        ),
        "load",
        "tar-directory",
        "how GNU tar --format=v7 writes folders",
    )
    yield DiffCase(
        "contiguous-type-7",
        t,
        c.write("type7.tar", b"".join(tar_file(n.encode(), d, b"7") for n, d in recs) + tar_end()),
        "load",
        "tar-directory",
    )
    for flag in (b"D", b"N", b"X", b"A", b"E", b"I", b"Z"):
        data = body + tar_file(b"snap/odd", b"x" * 100, flag) + tar_end()
        yield c.refuse_tar(f"typeflag-{flag.decode()}", f"type-{flag.decode()}.tar", data)
    # GNU long names
    yield c.refuse_tar(
        "gnu-longname-renames",
        "long.tar",
        pkl_last(gnu_longname(b"snap/data.pkl"), name=b"snap/shortname", magic=GNU_MAGIC),
        "readers without GNU long names read snap/shortname",
    )
    long_root = "snap" + "x" * 120
    long_recs = [(long_root + n[len("snap") :], d) for n, d in recs]
    yield DiffCase(
        "gnu-longname-as-gnu-tar-writes",
        t,
        c.write(
            "long-ok.tar",
            b"".join(gnu_longname(n.encode()) + tar_file(n.encode()[:100], d, magic=GNU_MAGIC) for n, d in long_recs)
            + tar_end(),
        ),
        "load",
        "tar-directory",
    )
    yield c.refuse_tar(
        "gnu-longname-twice",
        "long2.tar",
        pkl_last(gnu_longname(b"snap/data.pkl"), gnu_longname(b"snap/other.pkl"), name=b"snap/x", magic=GNU_MAGIC),
        "tarfile keeps the first, a last-wins reader the second",
    )
    yield c.refuse_tar(
        "gnu-longname-and-pax-path",
        "longpax.tar",
        pkl_last(gnu_longname(b"snap/other.pkl"), pax_header([("path", "snap/data.pkl")]), name=b"snap/x"),
    )
    yield c.refuse_tar(
        "gnu-longlink",
        "longlink.tar",
        body
        + tar_file(b"././@LongLink", b"/etc/passwd\x00", b"K", magic=GNU_MAGIC)
        + tar_file(b"snap/link", b"", b"2", magic=GNU_MAGIC)
        + tar_end(),
    )
    # the prefix field read by one reader and not another
    yield c.refuse_tar(
        "prefix-in-v7-header",
        "v7prefix.tar",
        pkl_last(name=b"data.pkl", magic=None, tail=b"snap"),
        "tarfile prepends it, GNU tar ignores it",
    )
    yield c.refuse_tar(
        "gnu-header-with-atime",
        "gnuatime.tar",
        pkl_last(magic=GNU_MAGIC, tail=b"14657035412\x00"),
        "tarfile reads GNU atime as a name prefix",
    )
    yield DiffCase(
        "posix-prefix",
        t,
        c.write("prefix.tar", pkl_last(name=b"data.pkl", prefix=b"snap")),
        "load",
        "tar-directory",
    )
    # names that collide without case (extraction on macOS/Windows keeps one)
    yield c.refuse_tar("case-collision", "tcase.tar", body + tar_file(b"snap/DATA.PKL", c.evil) + tar_end())
    yield c.refuse_tar(
        "signed-checksum",
        "signed.tar",
        _signed_checksum(tar_file(b"snap/data.pkl", pkl)[:512]) + _pad(pkl) + no_pkl + tar_end(),
        "tarfile accepts it, GNU tar too; we only read unsigned sums",
    )


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def _signed_checksum(header: bytes) -> bytes:
    h = bytearray(header)
    h[100] = 0xB0  # a high-bit byte makes the signed and unsigned sums differ
    h[148:156] = b"        "
    signed = sum(b - 256 if b > 127 else b for b in h)
    h[148:156] = b"%06o\x00 " % signed
    return bytes(h)


# -- 3. views bigger than their storage --------------------------------------------------------------
def _view_cases(c: _Ctx) -> Iterator[DiffCase]:
    v = "views"
    s = StorageRef("0", 16)  # 64 bytes
    raw = bytes(64)

    def zip_with(obj: object, name: str, storages: Optional[dict[str, bytes]] = None) -> Path:
        recs = record_archive(obj, storages or {"0": raw}, root="snap")
        return c.zip(name, stored_entries(recs))

    for exp in (28, 40, 62):
        yield DiffCase(
            f"stride0-2^{exp}",
            v,
            zip_with({"x": tensor_ref(s, (2**exp,), (0,))}, f"s0-{exp}.zip"),
            "refuse",
            "torch-zip",
        )
    yield DiffCase(
        "stride0-2^122",
        v,
        zip_with({"x": tensor_ref(s, (2**61, 2**61), (0, 0))}, "s0-122.zip"),
        "refuse",
        "torch-zip",
        "torch: numel: integer multiplication overflow",
    )
    yield DiffCase(
        "stride0-2^93-three-dims",
        v,
        zip_with({"x": tensor_ref(s, (2**31,) * 3, (0, 0, 0))}, "s0-93.zip"),
        "refuse",
        "torch-zip",
    )
    yield DiffCase(
        "overlapping-view",
        v,
        zip_with({"x": tensor_ref(s, (16, 16), (1, 0))}, "overlap.zip"),
        "refuse",
        "torch-zip",
        "256 elements from 16",
    )
    yield DiffCase(
        "zero-size-with-huge-dims",
        v,
        zip_with({"x": tensor_ref(s, (0, 2**62, 2**62), (0, 0, 0))}, "zero-huge.zip"),
        "refuse",
        "torch-zip",
    )
    # the example: a 64-byte storage, a stride-0 view of 2^28 elements, under 1000 keys of a pose state dict
    data: dict[str, bytes] = {}
    pose = placeholders(_pose_state(), data)
    big_view = tensor_ref(StorageRef("big", 16), (2**28,), (0,))
    data["big"] = raw
    shared = dict(pose) | {f"extra.{i}": big_view for i in range(1000)}
    yield DiffCase("stride0-view-under-1000-keys", v, zip_with(shared, "s0-1000.zip", data), "refuse", "torch-zip")
    # honest-size views, but one view under many keys: each key a full copy's worth of checking above
    one = tensor_ref(StorageRef("m", 1 << 20), (1 << 20,))  # 4 MiB
    data2 = dict(data)
    data2.pop("big")
    data2["m"] = bytes(4 << 20)
    many = dict(pose) | {f"extra.{i}": one for i in range(5000)}
    yield DiffCase(
        "four-mib-view-under-5000-keys",
        v,
        zip_with(many, "mib-5000.zip", data2),
        "refuse",
        "torch-zip",
        "20 GiB of tensor values to check above the reader",
    )
    # the same in the legacy stream and the pre-1.0 tar
    yield DiffCase(
        "stride0-2^40@legacy",
        v,
        c.write("s0.legacy", legacy_stream({"x": tensor_ref(s, (2**40,), (0,))}, {"0": raw})),
        "refuse",
        "torch-legacy",
    )
    yield DiffCase(
        "stride0-2^122@legacy",
        v,
        c.write("s0-122.legacy", legacy_stream({"x": tensor_ref(s, (2**61, 2**61), (0, 0))}, {"0": raw})),
        "refuse",
        "torch-legacy",
    )
    from hostile_corpus import tar_bytes, torch_tar_with, tt_tensors

    yield DiffCase(
        "stride0-2^60@torch-tar",
        v,
        c.write("s0.ttar", tar_bytes(torch_tar_with(tensors=tt_tensors(size=(2**60,), stride=(0,))))),
        "refuse",
        "torch-tar",
    )


# -- 4. work amplification ----------------------------------------------------------------------------
def _amplification_cases(c: _Ctx, big: bool) -> Iterator[DiffCase]:
    a = "amplification"
    # one shared `_load_from_bytes` payload called many times: every call allocates its storage
    inner = legacy_stream(StorageRef("0", 1 << 18), {"0": bytes(1 << 20)})
    calls = [Call(torch.storage._load_from_bytes, (inner,)) for _ in range(3000)]
    yield DiffCase(
        "load_from_bytes-shared-3000-calls",
        a,
        c.write("lfb.pkl", pickle.dumps(calls, protocol=2)),
        "refuse",
        "pickle",
        "3 GiB of storages from a 1 MiB payload",
    )
    text = "x" * (1 << 20)
    enc = [Call(_codecs_encode(), (text, "latin1")) for _ in range(3000)]
    yield DiffCase(
        "codecs-encode-shared-3000-calls", a, c.write("codecs.pkl", _shared_args_pickle(enc)), "refuse", "pickle"
    )
    items = list(range(100_000))
    sets = [Call(set, (items,)) for _ in range(3000)]
    yield DiffCase(
        "set-of-shared-list-3000-calls", a, c.write("sets.pkl", _shared_args_pickle(sets)), "refuse", "pickle"
    )
    # DEFLATE'd pickles of millions of cheap opcodes (a 16 MiB data.pkl in a few KB)
    for name, body in (
        ("empty-dicts", b"}" * (15 << 20)),
        ("memo-puts", b"N" + b"".join(b"r" + struct.pack("<I", i) for i in range(2_700_000))),
        ("none-pops", b"N0" * (7 << 20)),
    ):
        recs = [(n, d) for n, d in c.records if not n.endswith("data.pkl")]
        entries = [deflated(b"snap/data.pkl", b"\x80\x02" + body + b"N.", level=1)] + c.entries(recs)
        yield DiffCase(f"deflated-{name}", a, c.zip(f"defl-{name}.zip", entries), "refuse", "torch-zip")
    # a DAG that expands when flattened: TorchScript stand-ins shared under 10 names, 6 levels deep
    yield DiffCase(
        "torchscript-shared-standins-10^6",
        a,
        c.write("ts-dag.pt", _torchscript_dag(c.tmp)),
        "refuse",
        "torchscript",
        "a million flattened keys from a few KB",
    )
    laughs = [0]
    for _ in range(30):
        laughs = [laughs, laughs]
    yield DiffCase(
        "list-billion-laughs",
        a,
        c.zip("laughs.zip", c.entries(_replace(c.records, "data.pkl", pickle.dumps(laughs, protocol=2)))),
        "refuse",
        "torch-zip",
    )
    # dict keys that all hash alike (ints equal modulo 2**61 - 1)
    coll = b"\x80\x02}(" + b"".join(_long1(k * (2**61 - 1)) + b"K\x00" for k in range(1, 40_001)) + b"u."
    yield DiffCase(
        "int-keys-same-hash",
        a,
        c.zip("hash.zip", c.entries(_replace(c.records, "data.pkl", coll))),
        "refuse",
        "torch-zip",
    )
    # a deep tuple key (40**4 leaves), validated (and hashed) again at every use
    key = (
        b"("
        + b"K\x00" * 40
        + b"tq\x00"
        + b"".join(b"(" + (b"h" + bytes([i])) * 40 + b"tq" + bytes([i + 1]) for i in range(3))
        + b"0"
    )
    uses = b"\x80\x02" + key + b"](" + b"".join(b"}h\x03K" + bytes([i]) + b"s" for i in range(200)) + b"e."
    yield DiffCase("tuple-key-validated-per-use", a, c.write("tuplekey.pkl", uses), "refuse", "pickle")
    # a graph check that revisits shared children
    wide = {f"k{i}": i for i in range(20_000)}
    revisits = {"x": [wide] * 100_000}
    yield DiffCase(
        "shared-dict-listed-100000-times",
        a,
        c.zip("revisit.zip", c.entries(_replace(c.records, "data.pkl", pickle.dumps(revisits, protocol=2)))),
        "refuse",
        "torch-zip",
    )
    # one tensor rebuilt a million times from one memoised call (each call makes a tensor object)
    s = StorageRef("0", 16)
    args = (s, 0, (4,), (1,), False, OrderedDict())
    tensors = [Call(torch._utils._rebuild_tensor_v2, args) for _ in range(1_000_000 if big else 200_000)]
    yield DiffCase(
        f"tensor-rebuilt-{len(tensors)}-times",
        a,
        c.zip("ten6.zip", stored_entries(record_archive({"t": tensors}, {"0": bytes(64)}, root="snap"))),
        "refuse",
        "torch-zip",
    )
    # a safetensors header made of millions of tiny JSON containers
    header = b'{"pad": [' + b"{}," * (3 << 20) + b'{}]}'
    yield DiffCase(
        "safetensors-header-of-empty-objects",
        a,
        c.write("hdr.safetensors", struct.pack("<Q", len(header)) + header),
        "refuse",
        "safetensors",
    )
    # a tar of many empty members (each a 512-byte header)
    many = b"".join(tar_file(f"snap/e{i}".encode(), b"") for i in range(20_000))
    yield DiffCase(
        "tar-20000-empty-members",
        a,
        c.write("many.tar", many + b"".join(tar_file(n.encode(), d) for n, d in c.records) + tar_end()),
        "load",
        "tar-directory",
        "honest: cost linear in the file",
    )
    if big:
        # memo ops in a stored (not deflated) 40 MB pickle: the opcode budget must scale with the file
        body = b"\x80\x02]" + b"(" + b"N" * (40 << 20) + b"e."
        yield DiffCase("plain-pickle-40M-opcodes", a, c.write("ops40.pkl", body), "refuse", "pickle")


def _long1(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _codecs_encode() -> object:
    import _codecs

    return _codecs.encode


def _shared_args_pickle(calls: list[Call]) -> bytes:
    """`calls` pickled with their (identical) argument tuple written once and fetched from the memo."""
    shared = calls[0].args
    for call in calls:
        call.args = shared
    return pickle.dumps(calls, protocol=2)


_NEW = b"c__torch__.m\nM\n)\x81"


def _torchscript_dag(tmp: Path) -> bytes:
    """A TorchScript archive whose data.pkl shares each level's stand-in under 10 names, 6 levels deep."""
    leaf = (
        b"ctorch._utils\n_rebuild_tensor_v2\n((Vstorage\nctorch\nFloatStorage\nV99\nVcpu\nK\x02tQK\x00K\x02"
        b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR"
    )
    body = b"\x80\x02" + _NEW + b"}(Vw\n" + leaf + b"ubq\x00"
    for level in range(1, 7):
        body += _NEW + b"}(" + b"".join(b"Va%d\nh%c" % (i, level - 1) for i in range(10)) + b"ubq" + bytes([level])
    body += b"."
    records = [(n, d) for n, d in torchscript_records(tmp) if not n.endswith("/data.pkl")]
    root = records[0][0].split("/", 1)[0]
    records.append((f"{root}/data.pkl", body))
    records.append((f"{root}/data/99", bytes(8)))
    return build_zip(stored_entries(records))


# -- 5. crashes above the reader ------------------------------------------------------------------------
def _above_cases(c: _Ctx) -> Iterator[DiffCase]:
    ab = "above"
    pose = _pose_state()
    from safetensors.torch import save as st_save

    def st(name: str, tensors: dict[str, torch.Tensor], metadata: Optional[dict[str, str]] = None) -> Path:
        return c.write(name, st_save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))

    key = "backbone.stages.0.0.dwconv.weight"
    var = "backbone.norm.running_var"
    for dtype in ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64", "bool", "complex64"):
        dt = getattr(torch, dtype)
        odd = dict(pose)
        odd[key] = pose[key].to(dt) if dtype != "bool" else pose[key] > 0
        yield DiffCase(f"{dtype}-weight@safetensors", ab, st(f"dt-{dtype}.safetensors", odd), "problem", "safetensors")
        odd = dict(pose)
        odd[var] = pose[var].to(dt) if dtype != "bool" else pose[var] > 0
        yield DiffCase(
            f"{dtype}-running_var@safetensors", ab, st(f"dv-{dtype}.safetensors", odd), "problem", "safetensors"
        )
    for dtype in ("bool", "complex64", "int16"):
        odd = dict(pose)
        odd[var] = pose[var] > 0 if dtype == "bool" else pose[var].to(getattr(torch, dtype))
        data: dict[str, bytes] = {}
        yield DiffCase(
            f"{dtype}-running_var@torch-zip",
            ab,
            c.zip(
                f"zv-{dtype}.zip",
                stored_entries(record_archive(placeholders({"network": odd}, data), data, root="snap")),
            ),
            "problem",
            "torch-zip",
        )

    def pose_zip(name: str, obj: dict) -> Path:
        data: dict[str, bytes] = {}
        return c.zip(name, stored_entries(record_archive(placeholders(obj, data), data, root="snap")))

    yield DiffCase(
        "epoch-huge-int",
        ab,
        pose_zip("hugeint.zip", {"network": pose, "epoch": 2**8000}),
        "verdict",
        "torch-zip",
        "LONG4: torch.load(weights_only=True) does not read it",
    )
    deep: object = 1
    for _ in range(150):
        deep = [deep]
    yield DiffCase(
        "metadata-nested-150-deep", ab, pose_zip("deep.zip", {"network": pose, "history": deep}), "verdict", "torch-zip"
    )
    digits = "9" * 5000
    for name, k in (
        ("stage-block", f"backbone.stages.0.{digits}.dwconv.weight"),
        ("head-layer", f"head.deconv_layers_{digits}.dwconv.weight"),
        ("modulelist-layer", f"head.deconv_layers.{digits}.0.weight"),
    ):
        yield DiffCase(
            f"key-with-5000-digits-{name}",
            ab,
            pose_zip(f"digits-{name}.zip", {"network": pose | {k: torch.zeros(1)}}),
            "problem",
            "torch-zip",
        )
    for name, opt in (
        ("int", 5),
        ("tensor", torch.zeros(3)),
        ("param_groups-tensor", {"param_groups": torch.zeros(3)}),
        ("param_groups-int", {"param_groups": 7}),
        ("state-tensor", {"state": torch.zeros(3)}),
        ("param_groups-list-of-ints", {"param_groups": [1, 2], "state": [3]}),
        ("groups-of-tensors", {"param_groups": [{"lr": torch.zeros(5), "params": [0]}]}),
    ):
        yield DiffCase(
            f"optimizer-{name}",
            ab,
            pose_zip(f"opt-{name}.zip", {"network": pose, "optimizer": opt}),
            "verdict",
            "torch-zip",
        )
    spec_meta = {"convnextpose.spec": json.dumps({"joint_num": 1e308, "depths": [[[[1]]]]})}
    odd = dict(pose)
    odd["head.final_layer.weight"] = torch.zeros(3, 16, 1, 1)
    odd["head.final_layer.bias"] = torch.zeros(3)
    yield DiffCase(
        "spec-metadata-infinite-joints",
        ab,
        st("specinf.safetensors", odd, {"convnextpose.spec": '{"joint_num": Infinity}'}),
        "verdict",
        "safetensors",
    )
    yield DiffCase("spec-metadata-odd-types", ab, st("specodd.safetensors", pose, spec_meta), "verdict", "safetensors")
    yield DiffCase(
        "spec-metadata-huge-number",
        ab,
        st("specbig.safetensors", pose, {"convnextpose.spec": '{"joint_num": ' + "9" * 5000 + "}"}),
        "verdict",
        "safetensors",
    )
    # a file refused for its size: `inspect --json` must not then hash it (a sparse 65 GiB file)
    sparse = c.tmp / "sparse-65GiB.pt"
    with open(sparse, "wb") as fh:
        fh.write(build_zip(c.entries()))
        fh.truncate(65 * 2**30)
    yield DiffCase("refused-for-size-not-hashed", ab, sparse, "refuse", "torch-zip")


# -- 6. legitimate files ---------------------------------------------------------------------------------
def _legit_cases(c: _Ctx, big: bool) -> Iterator[DiffCase]:
    lg = "legit"
    state = small_state()
    for proto in (2, 3):
        path = c.tmp / f"legacy-p{proto}.pt"
        torch.save(state, path, _use_new_zipfile_serialization=False, pickle_protocol=proto)
        yield DiffCase(f"torch-save-legacy-protocol-{proto}", lg, path, "load", "torch-legacy")
    for proto in (2, 3):
        path = c.tmp / f"zip-p{proto}.pt"
        torch.save(state, path, pickle_protocol=proto)
        yield DiffCase(f"torch-save-zip-protocol-{proto}", lg, path, "load", "torch-zip")
    # a checkpoint folder, and tars of it made the ways people make them
    folder = c.tmp / "ckpt-folder"
    torch.save(state, c.tmp / "ckpt-folder.pt")
    with zipfile.ZipFile(c.tmp / "ckpt-folder.pt") as zf:  # our own freshly written file
        zf.extractall(c.tmp / "unzipped")
    shutil.move(str(c.tmp / "unzipped" / "ckpt-folder"), folder)
    yield DiffCase("folder", lg, folder, "load", "directory")
    if shutil.which("tar"):
        for fmt in ("gnu", "posix", "ustar", "v7", "oldgnu"):
            path = c.tmp / f"dot-{fmt}.tar"
            subprocess.run(["tar", f"--format={fmt}", "-C", str(folder), "-cf", str(path), "."], check=True)
            yield DiffCase(f"gnu-tar-dot-{fmt}", lg, path, "load", "tar-directory", "tar -C folder -cf x.tar .")
        path = c.tmp / "named-root.tar"
        subprocess.run(["tar", "-C", str(c.tmp), "-cf", str(path), "ckpt-folder"], check=True)
        yield DiffCase("gnu-tar-of-folder", lg, path, "load", "tar-directory")
        long_root = c.tmp / ("snapshot_83_" + "long" * 30 + "_\u00fc.pth")  # GNU long names and pax paths
        shutil.copytree(folder, long_root)
        for fmt in ("gnu", "posix"):
            path = c.tmp / f"long-root-{fmt}.tar"
            subprocess.run(["tar", f"--format={fmt}", "-C", str(c.tmp), "-cf", str(path), long_root.name], check=True)
            yield DiffCase(f"gnu-tar-long-root-{fmt}", lg, path, "load", "tar-directory")
        path = c.tmp / "tarfile-long-root.tar"
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(long_root, arcname=long_root.name)
        yield DiffCase("python-tarfile-long-root", lg, path, "load", "tar-directory")
    path = c.tmp / "tarfile-dot.tar"
    with tarfile.open(path, "w") as tar:  # Python's writer, our own folder
        tar.add(folder, arcname=".")
    yield DiffCase("python-tarfile-dot", lg, path, "load", "tar-directory")
    # zips rewritten by other writers
    with zipfile.ZipFile(c.tmp / "ckpt-folder.pt") as zf:
        recs = [(i.filename, zf.read(i)) for i in zf.infolist()]
    for method, label in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, data in recs:
                zf.writestr(name, data)
        yield DiffCase(f"python-zipfile-{label}", lg, c.write(f"rezip-{label}.pt", buf.getvalue()), "load", "torch-zip")
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in recs:
            with zf.open(name, "w") as fh:
                fh.write(data)
    yield DiffCase(
        "python-zipfile-streamed-descriptors", lg, c.write("streamed.pt", stream.getvalue()), "load", "torch-zip"
    )
    # the other containers, written by their own libraries
    from hostile_corpus import legit_files, torchscript_files

    (c.tmp / "writer").mkdir(exist_ok=True)
    for container, (path, _) in legit_files(c.tmp / "writer").items():
        yield DiffCase(f"writer-{container}", lg, path, "load", container)
    for layout, (path, _) in torchscript_files(c.tmp / "writer").items():
        yield DiffCase(layout, lg, path, "load", "torchscript")
    pose = _pose_state()
    pose_path = c.tmp / "pose.pt"
    torch.save({"network": {f"module.{k}": v for k, v in pose.items()}, "epoch": 3}, pose_path)
    yield DiffCase("pose-checkpoint", lg, pose_path, "load", "torch-zip")
    golden = Path(
        os.environ.get("CONVNEXTPOSE_GOLDEN") or Path(__file__).resolve().parents[1].parent / "shared" / "golden"
    )
    if (golden / "manifest.json").is_file():
        for name, entry in json.loads((golden / "manifest.json").read_text()).items():
            if name in ("tiny", "xs") or big:
                yield DiffCase(f"golden-{name}", lg, golden / entry["checkpoint"], "load", "torch-zip")
    else:
        data_dir = Path(__file__).resolve().parent / "data"
        yield DiffCase("golden-tiny", lg, data_dir / "tiny_snapshot_83.pth.tar", "load", "torch-zip")


class _Unseekable(io.RawIOBase):
    """A write-only stream without seek: zipfile then writes data descriptors, as streaming writers do."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self._buf += b
        return len(b)

    def getvalue(self) -> bytes:
        return bytes(self._buf)


# -- safetensors: Python's json is laxer than the library's serde_json ---------------------------------------
def _safetensors_cases(c: _Ctx) -> Iterator[DiffCase]:
    sf = "safetensors"

    def st(name: str, header: bytes, data: bytes = bytes(8)) -> Path:
        return c.write(name, struct.pack("<Q", len(header)) + header + data)

    entry = b'{"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    yield DiffCase(
        "lone-surrogate-name",
        sf,
        st("surrogate.safetensors", b'{"a\\ud800": ' + entry + b"}"),
        "refuse",
        sf,
        "serde_json refuses lone surrogates",
    )
    yield DiffCase(
        "nan-in-metadata", sf, st("nan.safetensors", b'{"__metadata__": {"a": NaN}, "a": ' + entry + b"}"), "refuse", sf
    )
    yield DiffCase(
        "infinity-in-shape",
        sf,
        st("inf.safetensors", b'{"a": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 8]}}'),
        "refuse",
        sf,
    )
    many = b", ".join(
        b'"k%d": %s' % (i, entry.replace(b"[0, 8]", b"[8, 8]").replace(b"[2]", b"[0]")) for i in range(24_000)
    )
    yield DiffCase(
        "duplicate-of-the-last-of-24000-names",
        sf,
        st("dup-late.safetensors", b'{"a": ' + entry + b", " + many + b', "k23999": ' + entry + b"}"),
        "refuse",
        sf,
        "finding the duplicate must not take quadratic time",
    )
    yield DiffCase("writer-safetensors-metadata", sf, c.write("meta.safetensors", _st_with_metadata()), "load", sf)


def _st_with_metadata() -> bytes:
    from safetensors.torch import save

    return save(
        {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.int64)},
        metadata={"convnextpose.note": "\u00fc\u6f22 text"},
    )


# -- 8. archives that wrap a checkpoint (Drive/Kaggle zips, tar.gz, .gz) ------------------------------
def _zip_bytes(records: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in records:
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz_bytes(records: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in records:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _wrapper_cases(c: _Ctx) -> Iterator[DiffCase]:
    import gzip

    w = "wrapper"
    pose = _pose_state()
    zip_pth = c.tmp / "w-inner.pth"
    torch.save({"network": pose, "epoch": 3}, zip_pth)
    tz = zip_pth.read_bytes()
    legacy_path = c.tmp / "w-inner-legacy.pth.tar"
    torch.save({"network": pose}, legacy_path, _use_new_zipfile_serialization=False)
    legacy = legacy_path.read_bytes()
    from safetensors.torch import save as st_save

    st = st_save({k: v.contiguous() for k, v in pose.items()})
    with zipfile.ZipFile(zip_pth) as zf:  # our own freshly written file: its records, unpacked as a folder
        unpacked = [(i.filename, zf.read(i)) for i in zf.infolist()]
    drive = "ConvNeXtPose/ConvNeXtPose_L.pth"
    folder = "ConvNeXtPose/" + unpacked[0][0].split("/")[0]
    # loaded: (case, file written, its bytes, the container of the checkpoint inside, that member's name)
    loads = [
        ("wrapped-drive-zip-of-torch-zip", "ConvNeXtPose-20230423T040706Z-001.zip", _zip_bytes([(drive, tz)]),
         "torch-zip", drive),
        ("wrapped-zip-stored", "w-stored.zip", _zip_bytes([("model.pth", tz)], zipfile.ZIP_STORED),
         "torch-zip", "model.pth"),
        ("wrapped-zip-of-legacy", "w-legacy.zip", _zip_bytes([("k/snapshot_68.pth.tar", legacy)]),
         "torch-legacy", "k/snapshot_68.pth.tar"),
        ("wrapped-zip-of-checkpoint-folder", "w-folder.zip",
         _zip_bytes([(f"ConvNeXtPose/{n}", d) for n, d in unpacked]), "directory", folder),
        ("wrapped-zip-readme-and-one", "w-readme.zip",
         _zip_bytes([("d/README.txt", b"weights\n"), ("d/notes.json", b"{}"), ("d/model.pth", tz)]),
         "torch-zip", "d/model.pth"),
        ("wrapped-zip-of-safetensors", "w-st.zip", _zip_bytes([("m.safetensors", st)]), "safetensors", "m.safetensors"),
        ("wrapped-tar-gz-of-pth", "w.tar.gz", _tar_gz_bytes([("ConvNeXtPose/model.pth", tz)]),
         "torch-zip", "ConvNeXtPose/model.pth"),
        ("wrapped-plain-tar-of-legacy", "w-plain.tar", tar_of([("x/old.pth.tar", legacy)]),
         "torch-legacy", "x/old.pth.tar"),
        ("wrapped-gz-of-pth", "model.pth.gz", gzip.compress(tz), "torch-zip", "model.pth"),
    ]
    for name, file, data, inner, member in loads:
        yield DiffCase(name, w, c.write(file, data), "load", wrapped(inner, member))
    # refused, ambiguous, nested or hostile: (case, file written, its bytes, the reference readers' container, note)
    small = io.BytesIO()
    torch.save({"x": torch.full((3,), 7.0)}, small, _use_new_zipfile_serialization=False)
    second = build_zip(stored_entries([("other.pth", small.getvalue())]))
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bomb.compress(bytes(64 << 20)) + bomb.flush()  # 64 MiB of zeros in ~64 KiB: past 2 x size + 48 MiB
    zeros_crc = zlib.crc32(bytes(64 << 20))
    gz = gzip.compress(tz)
    refusals = [
        ("wrapped-zip-two-checkpoints", "w-two.zip", _zip_bytes([("a.pth", tz), ("b.pth", legacy)]),
         "zip", "several: the user names one as ARCHIVE::MEMBER"),
        ("wrapped-nested-zip", "w-nested.zip", _zip_bytes([("inner.zip", _zip_bytes([("m.pth", tz)]))]), "zip", ""),
        ("wrapped-tar-gz-in-zip", "w-nested-tgz.zip", _zip_bytes([("m.tar.gz", _tar_gz_bytes([("m.pth", tz)]))]),
         "zip", ""),
        ("wrapped-zip-case-twins", "w-twins.zip", _zip_bytes([("d/Model.pth", tz), ("d/model.pth", legacy)]),
         "zip", "case-insensitive extractors keep one of the two"),
        ("wrapped-zip-dotdot-member", "w-dotdot.zip", _zip_bytes([("../evil.pth", tz)]),
         "zip", "extracting it would write outside the folder"),
        ("wrapped-zip-second-archive-in-comment", "w-comment.zip",
         build_zip(stored_entries([("model.pth", tz)]), comment=second), "zip", ""),
        ("wrapped-tar-gz-pax-path", "w-pax.tar.gz",
         gzip.compress(pax_header([("path", "other.pth")]) + tar_file(b"model.pth", tz) + tar_end()), "tar", ""),
        ("wrapped-zip-deflate-bomb", "w-bomb.zip",
         build_zip([ZipEntry(b"x.pth", zeros, method=8, usize=64 << 20, crc=zeros_crc)]), "zip", ""),
        ("wrapped-zip-deflate-bomb-lying-size", "w-bomb-lie.zip",
         build_zip([ZipEntry(b"x.pth", zeros, method=8, usize=1000, crc=zeros_crc)]),
         "zip", "declares 1000 bytes, inflates to 64 MiB"),
        ("wrapped-gzip-bomb", "w-bomb.pth.gz", gzip.compress(bytes(64 << 20), 9), "pickle", ""),
        ("wrapped-tar-gz-bomb", "w-bomb.tar.gz", _tar_gz_bytes([("m.pth", bytes(64 << 20))]), "tar", ""),
        ("wrapped-gzip-two-members", "w-two-members.pth.gz", gz + gzip.compress(legacy),
         "pickle", "gzip.decompress joins members, single-member readers stop after the first"),
        ("wrapped-gzip-trailing-bytes", "w-trailing.pth.gz", gz + b"\x00" * 512, "pickle", ""),
        ("wrapped-gzip-reserved-flag", "w-flag.pth.gz", gz[:3] + bytes([gz[3] | 0x20]) + gz[4:],
         "pickle", "zlib and GNU gzip refuse it, Python's gzip reads it"),
        ("wrapped-gzip-bad-crc", "w-crc.pth.gz", gz[:-8] + bytes([gz[-8] ^ 1]) + gz[-7:], "pickle", ""),
        ("wrapped-gzip-truncated", "w-trunc.pth.gz", gz[: len(gz) // 2], "pickle", ""),
    ]
    for name, file, data, container, note in refusals:
        yield DiffCase(name, w, c.write(file, data), "refuse", container, note)
