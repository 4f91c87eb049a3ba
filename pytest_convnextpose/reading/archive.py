"""The torch archive layout shared by zip, tar and directory containers: `<root>/data.pkl`, `data/<key>`.

Why one module: a zip checkpoint, a tar of its unzipped folder and the folder itself differ only in
how member bytes are found; once validated they are the same record set, read the same way.

Torch's zip reader looks records up ignoring ASCII case, takes the root from the first entry and
requires one; extracting a tar on a case-insensitive file system keeps one of two names that differ
only in case. So names that collide without case are refused in every container, as are records
torch reads (`byteorder`, `version`) spelled in another case, and a zip without a root folder.
"""
from __future__ import annotations

from typing import Mapping

from ..errors import UnsupportedFormatError
from .errors import ContainerUnsafeError, ContainerUnsupportedError
from .magic import TORCH_TAR_MEMBERS

TORCHSCRIPT_MARKERS = ("constants.pkl", "code/", "bytecode.pkl", "extra/producer_info.json")
#: records torch's loader opens by name (besides `data/<key>`); a record that equals one of these only
#: without case would be read by torch and not by us
TORCH_READS = ("data.pkl", "byteorder", "version", ".data/version", ".data/serialization_id",
               ".format_version", ".storage_alignment")


def is_torchscript(records: Mapping[str, memoryview]) -> bool:
    """Records (relative to the root) that only `torch.jit.save` writes are present."""
    return any(rel in TORCHSCRIPT_MARKERS or rel.startswith(TORCHSCRIPT_MARKERS) for rel in records)


def split_root(records: Mapping[str, memoryview], offsets: Mapping[str, int], *, kind: str,
               allow_torchscript: bool = False, require_root: bool = False
               ) -> tuple[dict[str, memoryview], dict[str, int], str]:
    """Records relative to the single root folder holding `data.pkl` (root "" if at the top).

    allow_torchscript: keep TorchScript records (a zip from `torch.jit.save`) instead of refusing.
    require_root: the records must sit in a folder (torch's zip reader refuses top-level records).
    """
    names = [n for n in records if not (n.endswith("/") and len(records[n]) == 0)]  # folder entries
    refuse_case_twins(names, kind)
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
    if require_root and not root:
        raise ContainerUnsupportedError(f"{kind} holds data.pkl at its top level; torch reads only archives whose "
                                        "records sit in one folder")
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
        folded = rel.lower()
        if folded != rel and (folded in TORCH_READS or folded.startswith("data/")):
            raise ContainerUnsafeError(f"{kind} record {name!r} is {folded!r} spelled in another case (torch's zip "
                                       "reader would read it)")
        out[rel] = records[name]
        out_offsets[rel] = offsets.get(name, 0)
    return out, out_offsets, root.rstrip("/")


def refuse_case_twins(names: list[str], kind: str) -> None:
    """Two names equal but for ASCII case: readers that ignore case keep one, others both."""
    seen: dict[str, str] = {}
    for name in names:
        folded = name.encode("utf-8", "surrogateescape").lower().decode("utf-8", "surrogateescape")
        twin = seen.setdefault(folded, name)
        if twin != name:
            raise ContainerUnsafeError(f"{kind} holds {twin!r} and {name!r}, which differ only in case (torch's zip "
                                       "reader and case-insensitive file systems keep one)")
