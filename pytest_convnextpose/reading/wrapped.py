"""Archives that wrap a checkpoint, read through in memory, never extracted (docs/spec.md §3, SECURITY.md).

Downloads often put one more layer around a checkpoint: a Google Drive folder download or a Kaggle
dataset is a zip, others a `.tar.gz`, or a `.gz` of the one file. Such a *wrapper* is a zip, tar,
tar.gz or gzip whose members include checkpoint files. Which members are checkpoints is decided
from their bytes (`sniff.identify`), never from their names: a member that sniffs as a torch zip
(or TorchScript), a legacy stream, a pickle, safetensors, a pre-1.0 torch tar or a tar of a
checkpoint folder is one; a README, JSON, image or anything else `identify` does not load is not.
A zip or tar that *is* a checkpoint (`magic.holds_checkpoint_layout`: `<root>/data.pkl`, the
pre-1.0 torch tar members) is read as one, exactly as before; only other archives are looked into:

  - one checkpoint member: it is read by the reader's own path, charged to the same budget;
  - several: refused with their names (`SeveralCheckpointsError`); the user names one as
    `ARCHIVE::MEMBER`;
  - none, but archives (a zip in the zip, a `.gz` in a tar): refused (`NestedArchiveError`):
    wrappers are read one level deep (a `.tar.gz` is one level: a tar, compressed);
  - none at all: the archive's usual refusal (a zip without data.pkl).

The wrapper passes the same container layer as every archive first (`zip_format`, `tar_format`,
`gzip_format`: structure, names, sizes, every CRC; inflation charged to the read's budget), so a
member is only ever taken from an archive every common reader reads alike. Member names must also be
relative paths without `..` (the rule tar already has; a zip entry may otherwise name any path) and
unique without case. Nothing here imports torch: the plugin names and hashes a wrapped checkpoint
while pytest collects (`digest.py`).

A gzip member has no name of its own that readers agree on (RFC 1952's FNAME is optional and
gunzip ignores it by default): it is named as gunzip names its output, the file's name without
`.gz` (`.tgz` -> `.tar`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..errors import CheckpointError
from .archive import refuse_case_twins
from .budget import Budget
from .digest import records_sha256
from .errors import (
    ContainerUnsafeError,
    ContainerUnsupportedError,
    MemberNotFoundError,
    NestedArchiveError,
    SeveralCheckpointsError,
)
from .file_io import read_all
from .gzip_format import gunzip
from .limits import DEFAULT_LIMITS, Limits
from .magic import holds_checkpoint_layout
from .sniff import HEAD_BYTES, compression_of, identify
from .tar_format import TarArchive, read_tar
from .zip_format import ZipArchive, read_zip, zip_names

#: `ARCHIVE::MEMBER` names one member of an archive
SEPARATOR = "::"
#: member names a refusal lists before "... and N more"
LISTED = 10


@dataclass
class Member:
    """The checkpoint member chosen from a wrapper."""

    format: str  # zip | tar | tar.gz | gzip
    name: str  # as the archive lists it (a gzip: the file's name without .gz; a folder: no trailing /)
    data: memoryview  # its bytes (a view of the archive where stored, else a fresh inflated buffer); empty for a folder
    offset: int  # where its bytes start in the archive (in the inflated tar for a tar.gz)
    #: a checkpoint *folder* (an unzipped torch zip: `data.pkl`, `data/0`, ...): its files by name relative to it
    records: Optional[dict[str, memoryview]] = None
    offsets: Optional[dict[str, int]] = None

    def sha256(self) -> str:
        """The digest of the member as extracted: a file's bytes, a folder's digest (`digest.py`)."""
        return records_sha256(self.records) if self.records is not None else hashlib.sha256(self.data).hexdigest()

    @property
    def display_name(self) -> str:
        """The member's own name without its folders (test ids, `Checkpoint.short_id`)."""
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class WrappedIdentity:
    """Which checkpoint a path names inside an archive, known without reading the checkpoint."""

    archive: str  # the archive file's path
    member: str  # the member's name in the archive
    sha256: str  # the member's digest (`Member.sha256`)

    @property
    def display_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


@dataclass
class Opened:
    """A buffer identified and, for an archive, validated: what the reader goes on with."""

    kind: str  # what `sniff.identify` says the buffer is
    zip: Optional[ZipArchive] = None  # the validated zip (kind zip), for the reader to go on with
    tar: Optional[TarArchive] = None  # the validated tar (kind tar, or the tar inside a tar.gz)
    member: Optional[Member] = None  # set when the buffer wraps checkpoints: the one to read


def split_member_path(path: str | os.PathLike) -> Optional[tuple[str, str]]:
    """`ARCHIVE::MEMBER` -> (ARCHIVE, MEMBER) when `path` itself names nothing on disk and the part
    before a `::` (the first such part, left to right) is an existing regular file; else None."""
    text = os.fspath(path)
    if SEPARATOR not in text or os.path.lexists(text):
        return None
    start = 0
    while (i := text.find(SEPARATOR, start)) >= 0:
        if i and os.path.isfile(text[:i]):
            return text[:i], text[i + len(SEPARATOR) :]
        start = i + 1
    return None


def wrapped_identity(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Optional[WrappedIdentity]:
    """The member `path` names: `ARCHIVE::MEMBER`, or an archive wrapping one checkpoint; None for a
    path that is a checkpoint itself (or no file). Raises the reader's errors for a bad archive or
    member. Torch-free and validated as the reader validates: the plugin names a wrapped checkpoint by
    its member while pytest collects. A file that is no archive costs one look at its first bytes; a
    zip is read whole once (the central directory is checked as the reader checks it) and told apart
    from a zip-format checkpoint by its names alone, nothing inflated."""
    split = split_member_path(path)
    archive, wanted = split if split else (os.fspath(path), None)
    buf: Optional[memoryview] = None
    if wanted is None:
        if not os.path.isfile(archive):
            return None
        with open(archive, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        size = os.path.getsize(archive)
        try:
            kind = identify(head, size)
        except CheckpointError:
            return None
        if kind not in ("zip", "tar", "gzip"):
            return None
        if kind == "zip":
            buf = memoryview(read_all(Path(archive), limits))  # read once: listed here, opened below
            if holds_checkpoint_layout(zip_names(buf, limits)):
                return None
    if buf is None:
        buf = memoryview(read_all(Path(archive), limits))
    opened = open_container(
        buf, Budget(limits, len(buf)), file_name=os.path.basename(archive), source=archive, member=wanted
    )
    if opened.member is None:
        return None
    return WrappedIdentity(archive, opened.member.name, opened.member.sha256())


def archive_path(path: str | os.PathLike) -> str:
    """The file on disk behind `path`: ARCHIVE for `ARCHIVE::MEMBER`, else `path` itself."""
    split = split_member_path(path)
    return split[0] if split else os.fspath(path)


def gzip_member_name(file_name: str) -> str:
    """What gunzip would call the output of `file_name`: without `.gz`/`.gzip`, `.tgz` -> `.tar`."""
    low = file_name.lower()
    if low.endswith(".tgz") and len(file_name) > 4:
        return file_name[:-4] + ".tar"
    for suffix in (".gz", ".gzip"):
        if low.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return file_name


def open_container(
    buf: memoryview,
    budget: Budget,
    *,
    file_name: str = "",
    source: str = "",
    member: Optional[str] = None,
    nested: bool = False,
) -> Opened:
    """Identify `buf`, validate it if it is an archive and, if it wraps checkpoints, choose the member.

    file_name: the file's own name (a gzip member is named after it); source: how messages name the
    file; member: the member the user asked for (`ARCHIVE::MEMBER`); nested: `buf` is itself a
    wrapper's member (then only a checkpoint is read: a wrapper here is refused)."""
    kind = identify(bytes(buf[:HEAD_BYTES]), len(buf))
    if kind == "gzip":
        if nested:
            raise NestedArchiveError(
                "a gzip file inside the archive: archives inside archives are not read (one "
                "level only); extract it first",
                offset=0,
            )
        return _open_gzip(buf, budget, file_name, source, member)
    if kind == "zip":
        archive = read_zip(buf, budget)
        return _open_archive(
            Opened(kind, zip=archive), archive.records, archive.offsets, "zip", budget, source, member, nested
        )
    if kind == "tar":
        tar = read_tar(buf, budget)
        return _open_archive(Opened(kind, tar=tar), tar.records, tar.offsets, "tar", budget, source, member, nested)
    if member is not None:
        raise MemberNotFoundError(
            f"a {kind} file, not an archive: {SEPARATOR}{member} names a member of a zip, tar or gzip file"
        )
    return Opened(kind)


def gzip_layers(buf: memoryview, budget: Budget) -> tuple[memoryview, Optional[TarArchive]]:
    """A gzip file inflated, and the tar inside when it is a tar.gz wrapper (a tar that is not a
    checkpoint itself; a gzip of a checkpoint folder's tar is a gzip of one checkpoint)."""
    inflated = memoryview(gunzip(buf, budget))
    try:
        inner = identify(bytes(inflated[:HEAD_BYTES]), len(inflated))
    except CheckpointError:  # the one member is no checkpoint: reading it says what it is
        return inflated, None
    if inner == "tar":
        tar = read_tar(inflated, budget)
        if not holds_checkpoint_layout(tar.records):
            return inflated, tar
    return inflated, None


def _open_gzip(buf: memoryview, budget: Budget, file_name: str, source: str, member: Optional[str]) -> Opened:
    inflated, tar = gzip_layers(buf, budget)
    if tar is not None:  # a .tar.gz holding checkpoint files
        chosen = choose_member(tar.records, tar.offsets, "tar.gz", source=source, wanted=member, limits=budget.limits)
        return Opened("tar", tar=tar, member=chosen)  # no member: the tar's usual refusal follows
    name = gzip_member_name(file_name)
    if member is not None and _norm(member) != _norm(name):
        raise MemberNotFoundError(f"a gzip file holds one member, named {name!r} after the file, not {member!r}")
    return Opened("gzip", member=Member("gzip", name, inflated, 0))


def _open_archive(
    opened: Opened,
    records: Mapping[str, memoryview],
    offsets: Mapping[str, int],
    fmt: str,
    budget: Budget,
    source: str,
    member: Optional[str],
    nested: bool,
) -> Opened:
    if holds_checkpoint_layout(records):
        if member is not None:
            raise MemberNotFoundError(
                f"a checkpoint itself (a {fmt} archive holding data.pkl), not an archive "
                f"holding checkpoint files: give it without {SEPARATOR}{member}"
            )
        return opened
    if nested:
        raise NestedArchiveError(
            f"a {fmt} archive inside the archive, not a checkpoint: archives inside archives "
            "are not read (one level only); extract it first",
            offset=0,
        )
    opened.member = choose_member(records, offsets, fmt, source=source, wanted=member, limits=budget.limits)
    return opened


def choose_member(
    records: Mapping[str, memoryview],
    offsets: Mapping[str, int],
    fmt: str,
    *,
    limits: object,
    source: str = "",
    wanted: Optional[str] = None,
) -> Optional[Member]:
    """The checkpoint member of a wrapper: `wanted` if given, else the only one; None when it holds none.

    A member is a checkpoint file, or a checkpoint folder: the folder of a `data.pkl` below the top
    level (`ConvNeXtPose/archive/data.pkl` in a Drive download of an unzipped torch zip), whose files
    are then its records and no members of their own."""
    names = [n for n in records if not (n.endswith("/") and len(records[n]) == 0)]  # folder entries
    refuse_case_twins(names, f"{fmt} archive")
    for name in names:
        _check_name(name, fmt, offsets.get(name, 0))
    folders = sorted({n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl")})
    nested = [f for f in folders if any(f.startswith(g + "/") for g in folders)]
    if nested:
        raise ContainerUnsupportedError(
            f"holds a checkpoint folder inside another ({nested[0]!r}): which one is "
            "meant is unclear; extract the one you need"
        )
    loose = [n for n in names if not any(n.startswith(f + "/") for f in folders)]
    if wanted is not None:
        found = _find(loose + folders, wanted)
        if found is None:
            ckpts = folders + [n for n in loose if classify(records[n], limits) == "checkpoint"]
            listed = f"its checkpoints: {_listing(ckpts)}" if ckpts else f"its members: {_listing(names) or 'none'}"
            raise MemberNotFoundError(f"no member named {wanted!r} in this {fmt} archive; {listed}")
        return _member(fmt, found, records, offsets, folder=found in folders)
    kinds = {n: classify(records[n], limits) for n in loose}
    ckpts = [n for n in loose if kinds[n] == "checkpoint"] + folders
    if len(ckpts) == 1:
        return _member(fmt, ckpts[0], records, offsets, folder=bool(folders))
    if ckpts:
        raise SeveralCheckpointsError(
            f"holds {len(ckpts)} checkpoints: {_listing(ckpts)}; choose one with "
            f"ARCHIVE{SEPARATOR}MEMBER, e.g. {source or 'ARCHIVE'}{SEPARATOR}{ckpts[0]}",
            members=ckpts,
        )
    archives = [n for n, k in kinds.items() if k == "archive"]
    if archives:
        raise NestedArchiveError(
            f"holds no checkpoint file, only archives ({_listing(archives)}): archives inside "
            "archives are not read (one level only); extract the one you need"
        )
    return None


def _member(
    fmt: str, name: str, records: Mapping[str, memoryview], offsets: Mapping[str, int], *, folder: bool
) -> Member:
    if not folder:
        return Member(fmt, name, records[name], offsets.get(name, 0))
    prefix = name + "/"
    inside = {
        n[len(prefix) :]: v
        for n, v in records.items()
        if n.startswith(prefix) and not (n.endswith("/") and len(v) == 0)
    }
    return Member(
        fmt,
        name,
        memoryview(b""),
        offsets.get(prefix + "data.pkl", 0),
        records=inside,
        offsets={n: offsets.get(prefix + n, 0) for n in inside},
    )


def classify(data: memoryview, limits: object) -> str:
    """`checkpoint`, `archive` (a compressed file, or a zip/tar that is no checkpoint) or `other`,
    from the member's bytes."""
    head = bytes(data[:HEAD_BYTES])
    if compression_of(head):
        return "archive"
    try:
        kind = identify(head, len(data))
    except CheckpointError:
        return "other"
    if kind in ("zip", "tar"):
        try:
            names = (
                zip_names(data, limits) if kind == "zip" else list(read_tar(data, Budget(limits, len(data))).records)
            )  # type: ignore[arg-type]
        except CheckpointError:
            return "checkpoint"  # a damaged checkpoint or archive: reading it says what is wrong
        return "checkpoint" if holds_checkpoint_layout(names) else "archive"
    return "checkpoint"


def _check_name(name: str, fmt: str, offset: int) -> None:
    """A member name must be a relative path without `..` (tar's own parser already refuses the rest)."""
    parts = name.split("/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise ContainerUnsafeError(
            f"{fmt} member {name!r} has an absolute name or climbs out of the archive with "
            "'..' (extracting it would write outside the folder)",
            offset=offset,
        )


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _find(names: list[str], wanted: str) -> Optional[str]:
    """The member `wanted` names: exactly, else the one equal once `./` and empty parts are dropped."""
    if wanted in names:
        return wanted
    same = [n for n in names if _norm(n) == _norm(wanted)]
    return same[0] if len(same) == 1 else None


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f", ... and {len(names) - LISTED} more" if len(names) > LISTED else "")
