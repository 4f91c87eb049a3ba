"""The torch archive layout shared by zip, tar and directory containers: `<root>/data.pkl`, `data/<key>`.

Why one module: a zip checkpoint, a tar of its unzipped folder and the folder itself differ only in
how member bytes are found; once validated they are the same record set, read the same way.
"""
from __future__ import annotations

from typing import Mapping

from ..errors import UnsupportedFormatError
from .errors import ContainerUnsafeError
from .torch_tar_format import MEMBERS as TORCH_TAR_MEMBERS

TORCHSCRIPT_MARKERS = ("constants.pkl", "code/", "bytecode.pkl", "extra/producer_info.json")


def is_torchscript(records: Mapping[str, memoryview]) -> bool:
    """Records (relative to the root) that only `torch.jit.save` writes are present."""
    return any(rel in TORCHSCRIPT_MARKERS or rel.startswith(TORCHSCRIPT_MARKERS) for rel in records)


def split_root(records: Mapping[str, memoryview], offsets: Mapping[str, int], *, kind: str,
               allow_torchscript: bool = False) -> tuple[dict[str, memoryview], dict[str, int], str]:
    """Records relative to the single root folder holding `data.pkl` (root "" if at the top).

    allow_torchscript: keep TorchScript records (a zip from `torch.jit.save`) instead of refusing.
    """
    names = [n for n in records if not (n.endswith("/") and len(records[n]) == 0)]  # folder entries
    pkls = [n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
    ancient = sorted(set(TORCH_TAR_MEMBERS) & set(names))
    if ancient and pkls:  # torch.load would read the pre-1.0 members of a tar, a scanner data.pkl
        raise ContainerUnsafeError(f"{kind} holds both data.pkl and the pre-1.0 torch tar member {ancient[0]!r}")
    if ancient:
        raise UnsupportedFormatError(f"the pre-1.0 torch tar members ({', '.join(ancient)}) in a {kind}: "
                                     "that format is read only as the tar file torch wrote")
    if not pkls:
        raise UnsupportedFormatError(f"a {kind} without data.pkl: not a torch checkpoint")
    if len(pkls) > 1:
        raise ContainerUnsafeError(f"{kind} holds {len(pkls)} data.pkl records ({', '.join(sorted(pkls)[:3])})")
    root = pkls[0][: -len("data.pkl")]
    out: dict[str, memoryview] = {}
    out_offsets: dict[str, int] = {}
    for name in names:
        if not name.startswith(root):
            raise ContainerUnsafeError(f"{kind} member {name!r} lies outside the checkpoint root "
                                       f"{root.rstrip('/')!r}")
        rel = name[len(root):]
        if not allow_torchscript and (rel.startswith(TORCHSCRIPT_MARKERS) or rel in TORCHSCRIPT_MARKERS):
            raise UnsupportedFormatError(f"an unpacked TorchScript archive in a {kind}: TorchScript is read "
                                         "only as the zip torch.jit.save writes")
        out[rel] = records[name]
        out_offsets[rel] = offsets.get(name, 0)
    return out, out_offsets, root.rstrip("/")
