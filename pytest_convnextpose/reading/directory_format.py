"""A folder holding an unzipped torch checkpoint (`data.pkl`, `data/`, `version`, ...).

Regular files only: a symbolic link inside the folder could point anywhere on the machine, so it
is refused rather than followed. Files are read into memory once; nothing is written.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnreadableFileError
from .digest import records_sha256
from .errors import ContainerLimitError, ContainerUnsafeError
from .file_io import read_regular
from .limits import Limits


@dataclass
class DirArchive:
    records: dict[str, memoryview]
    offsets: dict[str, int]
    sha256: str
    size: int


def read_directory(root: Path, limits: Limits) -> DirArchive:
    """All regular files under `root`, by relative POSIX name; sha256 over (name, length, bytes)."""
    files = _walk(root, limits)
    records: dict[str, memoryview] = {}
    total = 0

    def check_size(size: int) -> None:  # the running total, checked before the member is allocated
        if total + size > limits.max_file_bytes:
            raise ContainerLimitError(f"folder holds more than {limits.max_file_bytes} bytes")

    for rel in sorted(files):
        path = root / rel
        data = read_regular(path, check_size, name=str(path))
        records[rel] = memoryview(data)
        total += len(data)
    return DirArchive(records, {name: 0 for name in records}, records_sha256(records), total)


def _walk(root: Path, limits: Limits) -> list[str]:
    out: list[str] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise UnreadableFileError(f"cannot list folder {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                raise ContainerUnsafeError(f"folder member {rel!r} is a symbolic link")
            if stat.S_ISDIR(mode):
                pending.append(Path(entry.path))
            elif stat.S_ISREG(mode):
                out.append(rel)
            else:
                raise ContainerUnsafeError(f"folder member {rel!r} is not a regular file")
            if len(out) + len(pending) > limits.max_members:
                raise ContainerLimitError(f"folder holds more than {limits.max_members} entries")
    return out

