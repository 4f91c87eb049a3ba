"""Atomic file output: the target either keeps its old bytes or gets the complete new ones.

Why: a conversion is only worth having if nobody can ever pick up half a file. So every
output is written to a temporary file *in the target folder* (same filesystem, so the
final rename is atomic), flushed and fsynced, checked by the caller's `verify`, and only
then renamed into place. Any failure (including Ctrl-C) removes the temporary file and
leaves the target exactly as it was. Without `force`, an existing target is never
replaced, not even by a file that appears between our check and our rename.
"""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional


class OutputExistsError(FileExistsError):
    """The target exists and `force` was not given; nothing was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: output exists; use --force to overwrite")
        self.path = path

    def __str__(self) -> str:  # one line, no errno decoration
        return self.args[0]


def temp_name_prefix(target: Path) -> str:
    """Prefix of our temporary files for `target` (tests look for leftovers with it)."""
    return f".{target.name}."


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; not every platform lets us open a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(tmp: Path, target: Path, force: bool) -> None:
    """Move `tmp` onto `target`. Without `force`, a hard link refuses an existing target atomically."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(target) from None
    except OSError:  # filesystem without hard links: check, then rename (small race, documented)
        if target.exists():
            raise OutputExistsError(target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def atomic_write_bytes(target: str | Path, data: bytes, *, force: bool = False,
                       verify: Optional[Callable[[Path], None]] = None) -> Path:
    """Write `data` to `target` atomically; `verify(tmp_path)` may raise to abort. Returns the target."""
    return atomic_write(target, lambda fh: fh.write(data), force=force, verify=verify)


def atomic_write(target: str | Path, write: Callable[[object], object], *, force: bool = False,
                 verify: Optional[Callable[[Path], None]] = None) -> Path:
    """Call `write(binary_file)` on a temp file next to `target`, fsync, verify, then rename.

    Raises OutputExistsError (nothing written) when `target` exists and `force` is false.
    Whatever `write` or `verify` raises propagates after the temp file is removed.
    """
    target = Path(target)
    if target.exists() and not force:
        raise OutputExistsError(target)
    if target.is_dir():
        raise IsADirectoryError(f"{target}: output is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    fd, name = tempfile.mkstemp(dir=folder, prefix=temp_name_prefix(target), suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        if verify is not None:
            verify(tmp)
        _publish(tmp, target, force)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return target


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask (read once: reading it means briefly setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
