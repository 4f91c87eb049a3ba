"""The bytes and names that tell formats apart, without importing torch.

Why its own module: the plugin identifies a checkpoint (its sha256, and for an archive that wraps
one, which member) while pytest collects, and must not import torch to do so (`digest.py`,
`wrapped.py`); the format modules that do need torch take these definitions from here, so each
stays defined once.
"""
from __future__ import annotations

import struct
from typing import Iterable

#: the legacy `torch.save` stream's magic number (its first pickle)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: how every legacy stream starts: pickle protocol 2 (torch's default) or 3, LONG1 of 10 bytes holding the magic
LEGACY_PREFIXES = tuple(bytes([0x80, proto, 0x8A, 0x0A]) + LEGACY_MAGIC.to_bytes(10, "little") for proto in (2, 3))
#: the members of torch's pre-1.0 tar format
TORCH_TAR_MEMBERS = ("sys_info", "pickle", "tensors", "storages")
#: a gzip member's first bytes (RFC 1952 ID1, ID2)
GZIP_MAGIC = b"\x1f\x8b"


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte little-endian header length inside the file, then a JSON object."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 8 + n <= size and head[8:9] == b"{"


def is_torch_tar(names: Iterable[str]) -> bool:
    """A tar's regular members name the pre-1.0 layout and hold no `data.pkl` (then it is that layout)."""
    names = set(names)  # tar records are regular members: no folder entries to skip
    return bool(names & set(TORCH_TAR_MEMBERS)) and not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)


def holds_checkpoint_layout(names: Iterable[str]) -> bool:
    """The member names of a zip or tar that *is* a checkpoint rather than an archive holding some: a
    `data.pkl` at the top or in one top folder (torch zip, TorchScript, a tar of a checkpoint folder),
    or a member of the pre-1.0 torch tar. Such an archive is read as a checkpoint (and refused as one)."""
    for n in names:
        if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1) or n in TORCH_TAR_MEMBERS:
            return True
    return False
