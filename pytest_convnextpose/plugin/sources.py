"""Which checkpoints a pytest run is about: `--ckpt`, `CONVNEXTPOSE_CKPT`, ini, or the embedded default.

A `CheckpointSource` is what the suite is parametrized over. It is cheap (a path and the
hash of its bytes) so collection never has to load a checkpoint: a file that cannot even
be read still gets a test id, and its load test fails with the reader's one-line error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import CheckpointError
from ..reading.digest import file_sha256
from ..reading.errors import MemberNotFoundError, SeveralCheckpointsError
from ..reading.wrapped import archive_path, split_member_path, wrapped_identity

ENV_VAR = "CONVNEXTPOSE_CKPT"


@dataclass(frozen=True)
class CheckpointSource:
    """One checkpoint to test. `synthetic` marks the embedded default (never real weights)."""

    path: Path  # as given, made absolute; `ARCHIVE::MEMBER` for one checkpoint of an archive holding several
    sha256: Optional[str]  # None when the path cannot be read as a file; a wrapped checkpoint's: its member's
    synthetic: bool = False
    origin: str = "option"  # option | env | ini | default
    #: the checkpoint's name inside the archive `path` names (a zip, tar, tar.gz or gzip download), else None
    member: Optional[str] = None

    @property
    def id(self) -> str:
        """pytest id: `<file name>-<first 8 hex of sha256>` (`synthetic-` in front for the default); a
        checkpoint inside an archive is named by its member (`ConvNeXtPose_L.pth-…`, never with `::`,
        which pytest reads as a node-id separator).

        For a readable file this equals `Checkpoint.short_id`."""
        digest = self.sha256[:8] if self.sha256 else "unreadable"
        shown = self.member.rsplit("/", 1)[-1] if self.member else self.path.name
        name = f"{shown}-{digest}"
        return f"synthetic-{name}" if self.synthetic else name

    @property
    def key(self) -> tuple[Path, Optional[str]]:
        """What makes two sources the same checkpoint: the file (links resolved) and the member."""
        archive = Path(archive_path(self.path))
        return (archive.resolve() if archive.exists() else archive, self.member)

    def to_dict(self) -> dict:
        return {"id": self.id, "path": str(self.path), "sha256": self.sha256,
                "synthetic": self.synthetic, "origin": self.origin, "member": self.member}


def make_source(path: str | os.PathLike, *, origin: str, synthetic: bool = False) -> CheckpointSource:
    """A source for `path` (a checkpoint file or folder, an archive wrapping one, or `ARCHIVE::MEMBER`).

    Raises MemberNotFoundError when `ARCHIVE::MEMBER` names no member, SeveralCheckpointsError when
    an archive holding several is given without one (the caller's usage errors: both list the
    checkpoints); any other refusal of an archive leaves the source unnamed inside it, for its load
    test to report."""
    p = Path(os.path.expanduser(os.fspath(path)))
    p = p if p.is_absolute() else Path.cwd() / p
    try:
        wrapped = wrapped_identity(p)
    except (MemberNotFoundError, SeveralCheckpointsError):
        raise
    except CheckpointError:  # a damaged or ambiguous archive: the load test says what is wrong
        wrapped = None
        if split_member_path(p) is not None:
            return CheckpointSource(p, None, synthetic, origin, member=split_member_path(p)[1])  # type: ignore[index]
    if wrapped is not None:
        return CheckpointSource(p, wrapped.sha256, synthetic, origin, member=wrapped.member)
    return CheckpointSource(p, file_sha256(p), synthetic, origin)


def explicit_paths(option_values: list[str], env: Optional[str], ini_values: list[Path]) -> tuple[list[str], str]:
    """The user's checkpoints and where they came from: command line, else env, else ini."""
    if option_values:
        return list(option_values), "option"
    if env:
        return [p for p in env.split(os.pathsep) if p.strip()], "env"
    if ini_values:
        return [str(p) for p in ini_values], "ini"
    return [], "none"


def dedupe(sources: list[CheckpointSource]) -> list[CheckpointSource]:
    """Same file given twice -> tested once (pytest ids must be unique); so is an archive's one
    checkpoint given as `A.zip` and as `A.zip::MEMBER`."""
    seen: set[tuple[Path, Optional[str]]] = set()
    out = []
    for s in sources:
        key = s.key
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
