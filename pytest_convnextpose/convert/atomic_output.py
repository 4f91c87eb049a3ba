"""Atomic file output: the target either keeps its old bytes or gets the complete new ones.

Why: a conversion is only worth having if nobody can ever pick up half a file. So every
output is written to a temporary file *in the target folder* (same filesystem, so the
final rename is atomic), flushed and fsynced, checked by the caller's `verify`, and only
then renamed into place. Any failure (including Ctrl-C) removes the temporary file and
leaves the target exactly as it was. Without `force`, an existing target is never
replaced, not even by a file that appears between our check and our rename.

Output errors are reported against the user's path, never the hidden temp name, and the
commands share `check_output` so `convert`, `export` and `export-onnx` refuse the same
things with the same words: a missing or unwritable folder, a directory as target, and an
output that is one of the inputs (even with `force`: that would destroy the source).
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from ..reading.wrapped import archive_path


class OutputExistsError(FileExistsError):
    """The target exists and `force` was not given; nothing was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: output exists; use --force to overwrite")
        self.path = path

    def __str__(self) -> str:  # one line, no errno decoration
        return self.args[0]


class OutputPathError(OSError):
    """The output cannot be written at that path (folder missing, not writable, a directory...).

    An OSError so callers that catch OSError still see it, but its text is one finished line
    naming the user's output path (never our temp file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: cannot write output: {reason}")
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return self.args[0]


class OutputIsInputError(OutputPathError):
    """The output resolves to one of the inputs; refused even with `force` (it would destroy the source)."""

    def __init__(self, path: Path, source: str | os.PathLike) -> None:
        super().__init__(path, f"output would overwrite the input {source}")
        self.source = source


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name the same file: `samefile` when both exist, else equal resolved paths."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(target: str | Path, *, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Cheap refusals before any work: output is an input, exists without `force`, or cannot be written.

    Raises OutputIsInputError, OutputExistsError or OutputPathError (nothing written); returns the target.
    """
    target = Path(target)
    for src in inputs:
        src = archive_path(src)  # `ARCHIVE::MEMBER`: writing over the archive destroys the source too
        if same_file(target, src):
            raise OutputIsInputError(target, src)
    if target.is_dir():  # before "exists": --force would not help, and must not seem to
        raise OutputPathError(target, "output is a directory (give a file name, or --out-dir DIR for several inputs)")
    if target.exists() and not force:
        raise OutputExistsError(target)
    _check_folder(target)
    return target


def _folder_of(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _check_folder(target: Path) -> None:
    """The target's folder must exist, be a directory and be writable (checked here to name it, not the temp)."""
    folder = _folder_of(target)
    if not folder.exists():
        raise OutputPathError(target, f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputPathError(target, f"output folder {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(target, f"output folder {folder} is not writable")


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
    try:
        _move(tmp, target, force)
    except OutputExistsError:
        raise
    except OSError as exc:  # e.g. a directory appeared at the target meanwhile
        raise OutputPathError(target, exc.strerror or str(exc)) from None


def _move(tmp: Path, target: Path, force: bool) -> None:
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


def atomic_write_json(target: str | Path, data: Any, *, sort_keys: bool = True) -> Path:
    """`data` as indented JSON (UTF-8, final newline), written atomically over any earlier file: the
    one form of every JSON document the package writes (reports, evaluation results)."""
    text = json.dumps(data, indent=2, sort_keys=sort_keys) + "\n"
    return atomic_write_bytes(target, text.encode("utf-8"), force=True)


def atomic_write(target: str | Path, write: Callable[[object], object], *, force: bool = False,
                 verify: Optional[Callable[[Path], None]] = None) -> Path:
    """Call `write(binary_file)` on a temp file next to `target`, fsync, verify, then rename.

    Raises OutputExistsError (nothing written) when `target` exists and `force` is false, and
    OutputPathError naming `target` when the folder or the filesystem refuses the write.
    Whatever `write` or `verify` raises propagates after the temp file is removed.
    """
    target = check_output(target, force=force)
    folder = _folder_of(target)
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=temp_name_prefix(target), suffix=".tmp")
    except OSError as exc:
        raise OutputPathError(target, exc.strerror or str(exc)) from None
    tmp = Path(name)
    try:
        _fill(fd, tmp, target, write)
        if verify is not None:
            verify(tmp)
        _publish(tmp, target, force)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return target


def _fill(fd: int, tmp: Path, target: Path, write: Callable[[object], object]) -> None:
    """Write, flush and fsync the temp file; a filesystem error (disk full...) is reported as the target's."""
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
    except OSError as exc:
        raise OutputPathError(target, exc.strerror or str(exc)) from None


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask (read once: reading it means briefly setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
