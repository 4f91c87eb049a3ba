"""Read one regular file into memory: the only place the reader opens files.

Why one place: the file given and each member of a checkpoint folder face the same hazards (a
FIFO blocks on open, a device reads forever, a path swapped between `stat` and `open`, a read
that returns less than asked for past 2 GiB), so both go through the same checks.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Optional

from ..errors import UnreadableFileError
from .errors import ContainerLimitError
from .limits import Limits

#: open flags for reading: O_NONBLOCK so a FIFO swapped in after our stat cannot block the open
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

_KINDS = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory"))


def require_regular(mode: int, name: Optional[str] = None) -> None:
    """Only regular files have a size we can trust: a device reads forever, a FIFO blocks, /dev/null says 0."""
    if stat.S_ISREG(mode):
        return
    kind = next((label for test, label in _KINDS if test(mode)), f"file type {stat.S_IFMT(mode):o}")
    raise UnreadableFileError(f"{name + ': ' if name else ''}not a regular file ({kind})")


def read_all(path: Path, limits: Limits) -> bytearray:
    """The whole checkpoint file in one writable buffer (tensors become views of it: no second copy)."""

    def check_size(size: int) -> None:
        if size > limits.max_file_bytes:
            raise ContainerLimitError(f"file of {size} bytes exceeds the {limits.max_file_bytes}-byte limit")
        if size == 0:
            raise UnreadableFileError("file is empty")

    return read_regular(path, check_size)


def read_regular(path: Path, check_size: Callable[[int], None], name: Optional[str] = None) -> bytearray:
    """The bytes of the regular file `path`; `check_size(size)` may refuse it before anything is allocated.

    name: how messages call the file (a folder member's path); None for the file the user gave,
    whose path the caller adds to every message.
    """
    label = name or "file"
    try:
        require_regular(os.stat(path).st_mode, name)  # before opening: opening a FIFO blocks, a device may act
        with open(os.open(path, OPEN_FLAGS), "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            require_regular(st.st_mode, name)  # the path may have been swapped since the stat
            size = st.st_size
            check_size(size)
            data = bytearray(size)
            view = memoryview(data)
            got = 0
            while got < size:  # one readinto returns at most ~2 GiB on Linux
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
            if got != size:
                raise UnreadableFileError(f"{label} shrank while being read ({got} of {size} bytes)")
            return data
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {label}: {exc.strerror or exc}") from None
