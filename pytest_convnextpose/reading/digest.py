"""The SHA-256 of a checkpoint file or folder, without importing torch.

Why its own module: the plugin hashes files while pytest collects and `inspect --json` hashes
refused files, where importing the reader (and so torch) would be slow, yet the digest must
equal the reader's so that test ids match `Checkpoint.short_id`. A folder's SHA-256 covers its
regular files in order of relative POSIX name, each hashed as `member_header(name, length)`
followed by its bytes.
"""
from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Mapping, Optional

_CHUNK = 1 << 20


def member_header(rel: str, size: int) -> bytes:
    """What precedes a member's bytes in the folder digest: its name, NUL, its length as 8 LE bytes."""
    return rel.encode("utf-8", "surrogateescape") + b"\x00" + size.to_bytes(8, "little")


def records_sha256(records: Mapping[str, bytes | memoryview]) -> str:
    """The folder digest of files held in memory (relative POSIX name -> bytes): a folder inside an
    archive hashes as the same folder extracted would."""
    h = hashlib.sha256()
    for rel in sorted(records):
        h.update(member_header(rel, len(records[rel])))
        h.update(records[rel])
    return h.hexdigest()


def file_sha256(path: Path) -> Optional[str]:
    """Hex SHA-256 of a file's bytes, streamed; for a directory, of its files in name order.

    None when it cannot be read, or is neither a regular file nor a folder: hashing /dev/zero
    would never end and opening a FIFO blocks (the load test reports the reader's refusal)."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            # The same digest as the reader's (directory_format.py), so test
            # ids equal `Checkpoint.short_id` for folder checkpoints.
            h = hashlib.sha256()
            for f in sorted((p for p in path.rglob("*") if p.is_file() and not p.is_symlink()),
                            key=lambda p: p.relative_to(path).as_posix()):
                h.update(member_header(f.relative_to(path).as_posix(), f.stat().st_size))
                _update_from_file(h, f)
            return h.hexdigest()
        if not stat.S_ISREG(mode):
            return None
        h = hashlib.sha256()
        _update_from_file(h, path)
        return h.hexdigest()
    except OSError:
        return None


def _update_from_file(h: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
