"""What a checkpoint's name claims, and a `name` problem when its tensors disagree.

The released files taught the field a hard lesson: `ConvNeXtPose_L (1).tar` may hold another
variant, and a folder `ConvNeXtPose_XS/snapshot_68.pth` may hold S. A name is a claim, the
tensors are the evidence; when a name claims a published variant (a token `XS`, `S`, `M` or
`L` between separators, in any case: `_L`, `-M.`, `model_S`, `ConvNeXtPose_XS`) and the tensors
are another variant or none, the checkpoint gets a problem of kind `name` that names both.
The file's own name is read first; only when it claims nothing, its folder's name. For a checkpoint
read from inside an archive that is the member's name and its folder inside the archive, then, for
an archive read through as its one checkpoint (no `::MEMBER`), the archive's own name: a Kaggle
`convnextpose-xs.zip` holding `weights/model.pth` claims XS, while a Drive download
`ConvNeXtPose-20230423T040706Z-001.zip` claims nothing. A member picked with `ARCHIVE::MEMBER` is
judged by its own path only (the archive may hold every variant).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Optional

from reference_model import VARIANTS, ArchSpec, format_head_upsample

from .problems import Problem

#: a variant token: XS, S, M or L with no letter or digit on either side
#: (an apostrophe is no separator: `my ckpt's.pth` claims nothing)
_TOKEN = re.compile(r"(?<![A-Za-z0-9'’])(XS|S|M|L)(?![A-Za-z0-9])", re.IGNORECASE)


def claimed_variant(name: str) -> Optional[str]:
    """The variant one name claims, or None when it claims none or more than one."""
    found = {m.group(1).upper() for m in _TOKEN.finditer(name)}
    return found.pop() if len(found) == 1 else None


def name_claim(path: str, archive: Optional[str] = None) -> Optional[tuple[str, str, str]]:
    """(variant, the name that claims it, "file", "folder" or "archive"): the file's own name first,
    else its folder's, else (`archive`: the name of an archive read through as this checkpoint) the
    archive's; None when none claims a variant."""
    p = PurePath(path)
    names = [(p.name, "file"), (p.parent.name, "folder")] + ([(archive, "archive")] if archive else [])
    for name, what in names:
        variant = claimed_variant(name)
        if variant is not None:
            return variant, name, what
    return None


def describe_spec(spec: ArchSpec) -> str:
    """The shape facts that tell the variants apart, as the published table lists them."""
    ups = format_head_upsample(spec.head_upsample)
    return (
        f"depths {','.join(map(str, spec.depths))}, dims {','.join(map(str, spec.dims))}, "
        f"head {'x'.join(map(str, spec.head_channels))} ({ups}), {spec.joint_num} joints x {spec.depth_dim} depth bins"
    )


def name_problem(path: str, spec: ArchSpec, variant: Optional[str], nearest: Optional[str], *,
                 archive: Optional[str] = None) -> Optional[Problem]:
    """A `name` problem when the path (or the archive read through as it) claims a variant the
    tensors are not; else None."""
    claim = name_claim(path, archive=archive)
    if claim is None or claim[0] == variant:
        return None
    said, name, what_named = claim
    what = f"tensors are {variant}" if variant is not None else f"tensors are no published variant (nearest {nearest})"
    return Problem(
        "name",
        name,
        f"{what_named} name says {said}; {what}: {describe_spec(spec)} "
        f"({said} would be {describe_spec(VARIANTS[said].spec)})",
    )
