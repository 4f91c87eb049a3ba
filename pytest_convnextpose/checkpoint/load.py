"""`load_checkpoint`: read safely, unwrap, map keys to canonical form, infer the spec, check.

Layers: `reading` (bytes -> objects) -> `unwrap` and `dialects` (wrapper and key dialect ->
canonical keys) -> `infer` (shapes -> ArchSpec, variant, problems).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from reference_model import ArchSpec, format_head_upsample

from .problems import Problem

if TYPE_CHECKING:  # annotation only; the loader imports the dialects module when it runs
    from .dialects import Dialect


@dataclass
class Checkpoint:
    """A checkpoint read and understood. `state_dict` is canonical (docs/spec.md §4)."""

    path: str
    sha256: str
    container: str
    wrapper: Optional[str]
    dialect: Dialect  # `.to_dict()` gives the JSON object
    spec: ArchSpec
    head_upsample_source: str  # user | variant | layout | default
    variant: Optional[str]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    nearest_variant: Optional[str] = None
    variant_differences: list[str] = field(default_factory=list)
    #: canonical key -> the key as spelled in the file (for messages and writing back)
    key_origin: dict[str, str] = field(default_factory=dict)
    #: things done to reach canonical form that are not defects (e.g. filled BatchNorm counters)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The `convnextpose inspect --json` object (docs/spec.md §5), without `error`."""
        return {
            "path": self.path, "sha256": self.sha256, "container": self.container, "wrapper": self.wrapper,
            "dialect": self.dialect.to_dict(),
            "spec": self.spec.to_dict(), "head_upsample_source": self.head_upsample_source,
            "variant": self.variant, "nearest_variant": self.nearest_variant,
            "variant_differences": list(self.variant_differences), "num_parameters": self.num_parameters,
            "num_state_values": sum(t.numel() for t in self.state_dict.values()),
            "metadata": self.metadata, "problems": [p.to_dict() for p in self.problems],
            "notes": list(self.notes),
        }

    @property
    def num_parameters(self) -> int:
        """Learnable parameters: BatchNorm running stats and counters excluded."""
        skip = ("running_mean", "running_var", "num_batches_tracked")
        return sum(t.numel() for k, t in self.state_dict.items() if not k.endswith(skip))

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def short_id(self) -> str:
        """`<file name>-<first 8 hex of sha256>`: the pytest parametrization id. For a checkpoint read
        from inside an archive, the member's own name and digest (`ConvNeXtPose_L.pth-…`)."""
        archive = self.metadata.get("archive") if self.metadata else None
        if isinstance(archive, dict) and archive.get("member"):
            return f"{str(archive['member']).rsplit('/', 1)[-1]}-{self.sha256[:8]}"
        return f"{Path(self.path).name}-{self.sha256[:8]}"


def load_checkpoint(path: str | Path, *, joint_num: Optional[int] = None,
                    head_upsample: Optional[tuple[bool, ...] | str] = None,
                    map_location: Any = "cpu") -> Checkpoint:
    """Read any supported checkpoint file and return it in canonical form. Raises CheckpointError.

    Nothing from the file is executed (the reader only rebuilds tensors and plain data).
    Defects that leave the architecture determinable (missing, unexpected, wrong-shaped or
    non-finite tensors, non-positive BatchNorm variances) come back in `.problems`; files
    that are not ConvNeXtPose at all, or whose structure cannot be read, raise.

    An archive wrapping one checkpoint (zip, tar, tar.gz, gzip) is read through, and
    `ARCHIVE::MEMBER` names one member of an archive wrapping several (`reading/wrapped.py`):
    then `.path` is `ARCHIVE::MEMBER`, `.sha256` that of the member's bytes, `.container` the
    member's, `.metadata["archive"]` names the archive, and the name check reads the member's name
    (and, for an archive read through as one checkpoint, the archive's own name when the member's
    path claims nothing: `convnextpose-xs.zip` holding `weights/model.pth` claims XS).
    """
    from ..errors import CheckpointError
    from ..reading import read_file
    from ..reading.wrapped import SEPARATOR

    path = str(path)
    if isinstance(head_upsample, str):  # the command-line form "up,up,no" is accepted too
        from reference_model import parse_head_upsample
        head_upsample = parse_head_upsample(head_upsample)
    raw = None
    try:
        raw = read_file(path, map_location=map_location)
        archive_name = None
        if raw.member:  # read from inside an archive: name the member
            if SEPARATOR not in path:  # the archive stands for its one checkpoint: its name is a claim too
                archive_name = Path(path).name
            path = f"{raw.metadata['archive']['path']}{SEPARATOR}{raw.member}"
        return checkpoint_from_object(raw.obj, path=path, sha256=raw.sha256, container=raw.container,
                                      container_metadata=raw.metadata, joint_num=joint_num,
                                      head_upsample=head_upsample, name=raw.member or None,
                                      archive_name=archive_name)
    except CheckpointError as exc:
        if raw is not None:  # refused above the reader: the file's digest is known
            exc.sha256 = raw.sha256  # type: ignore[attr-defined]
        raise exc.with_path(path) from None


def _override_not_name(misnamed: Problem, claimed: str, problems: list[Problem], state_dict: Any, head_layout: str,
                       metadata: Optional[dict[str, Any]], joint_num: Optional[int],
                       head_upsample: Optional[tuple[bool, ...]]) -> Optional[Problem]:
    """A name check that fails only because of the user's --joints/--head-upsample does not blame the
    file's name: when the tensors read without them are the variant the name claims, the problem says
    the options changed the reading (and a `joints` problem, which already says what fits, stands alone)."""
    from ..errors import ArchitectureError
    from .infer import infer

    try:
        as_saved = infer(state_dict, head_layout=head_layout, metadata=metadata).variant
    except ArchitectureError:  # unreadable without the options (e.g. a joint count only --joints gives)
        as_saved = None
    if as_saved != claimed:
        return misnamed  # the name is wrong whatever the options
    if any(p.kind == "joints" for p in problems):
        return None
    options = [f"--joints {joint_num}"] if joint_num is not None else []
    if head_upsample is not None:
        options.append(f"--head-upsample {format_head_upsample(head_upsample)}")
    said, _, reading = misnamed.detail.partition("; ")  # "<file> name says X", "tensors are ...: ..."
    return Problem("name", misnamed.key, f"{said}, and the tensors are {claimed} as saved; read with "
                                         f"{' '.join(options)} instead, {reading}")


def checkpoint_from_object(obj: Any, *, path: str, sha256: str = "", container: str = "object",
                           container_metadata: Optional[dict[str, Any]] = None,
                           joint_num: Optional[int] = None,
                           head_upsample: Optional[tuple[bool, ...]] = None,
                           name: Optional[str] = None, archive_name: Optional[str] = None) -> Checkpoint:
    """The part of `load_checkpoint` after reading: unwrap, canonicalise, infer, check.

    Separate so callers that already hold a loaded object (tests, converters) reuse the
    exact same path without writing a file. `name`: the path whose name (and folder's) the name
    check reads, when not `path` (a member's path inside its archive, never the archive's name)."""
    from . import dialects
    from .infer import infer
    from .naming import name_claim, name_problem
    from .unwrap import unwrap

    unwrapped = unwrap(obj)
    dialect = dialects.detect_dialect(unwrapped.state_dict)
    canon = dialects.canonicalize(unwrapped.state_dict, dialect)
    metadata = {**(container_metadata or {}), **unwrapped.metadata}
    if container_metadata and "archive" in container_metadata:  # the reader's, never a same-named entry of the file
        metadata["archive"] = container_metadata["archive"]
    notes = []
    filled = dialects.fill_legacy_bn_counters(canon.state_dict)
    if filled:
        metadata["num_batches_tracked_filled"] = filled
        notes.append(f"no BatchNorm num_batches_tracked in the file (saved by PyTorch < 0.4.1): filled {filled} "
                     "counters with 0, as torch's own load_state_dict does")
    result = infer(canon.state_dict, joint_num=joint_num, head_upsample=head_upsample,
                   head_layout=dialect.head_layout, metadata=container_metadata)
    dup_problems = [Problem("unexpected", orig, f"duplicate of {canon_key!r} (kept {canon.origin[canon_key]!r})")
                    for orig, canon_key in canon.duplicates]
    misnamed = name_problem(name or path, result.spec, result.variant, result.nearest_variant, archive=archive_name)
    if misnamed is not None and (joint_num is not None or head_upsample is not None):
        claimed = name_claim(name or path, archive=archive_name)[0]
        misnamed = _override_not_name(misnamed, claimed, result.problems, canon.state_dict,
                                      dialect.head_layout, container_metadata, joint_num, head_upsample)
    return Checkpoint(
        path=path, sha256=sha256, container=container, wrapper=unwrapped.wrapper, dialect=dialect,
        spec=result.spec, head_upsample_source=result.head_upsample_source, variant=result.variant,
        state_dict=canon.state_dict, metadata=metadata,
        problems=result.problems + dup_problems + ([misnamed] if misnamed else []),
        nearest_variant=result.nearest_variant, variant_differences=result.variant_differences,
        key_origin=canon.origin, notes=notes,
    )
