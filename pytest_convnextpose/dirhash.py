"""The digest of a checkpoint folder, shared by the reader and test collection (no torch import).

Why its own module: `sources.py` hashes folders while pytest collects, where importing the reader
(and so torch) would be slow, yet its digest must equal the reader's so that test ids match
`Checkpoint.short_id`. The folder's SHA-256 covers its regular files in order of relative POSIX
name, each hashed as `member_header(name, length)` followed by its bytes.
"""
from __future__ import annotations


def member_header(rel: str, size: int) -> bytes:
    """What precedes a member's bytes in the folder digest: its name, NUL, its length as 8 LE bytes."""
    return rel.encode("utf-8", "surrogateescape") + b"\x00" + size.to_bytes(8, "little")
