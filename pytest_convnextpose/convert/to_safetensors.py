"""Verified conversion of a ConvNeXtPose checkpoint to safetensors (docs/spec.md §5 `convert`).

Why: a safetensors file cannot run code when loaded and loads many times faster than a
pickle, so people should unpickle a checkpoint once, here, and never again. That only
helps if the converted file is trustworthy, hence:

- only checkpoints with no structural problems are converted (`convert_checks`);
- tensors are written under canonical keys, contiguous, each with its own bytes;
- metadata records the spec and where the weights came from, and *no* timestamps or
  paths, so the same input gives byte-identical output anywhere (the source is named by
  its sha256, which survives renames; a path would not);
- the file is written next to the target, re-read with the `safetensors` library and
  checked (bit-equal tensors, identical model outputs, same spec through
  `load_checkpoint`) before it is renamed into place (`atomic`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import load_file

from reference_model import ArchSpec

from .. import __version__
from ..checkpoint import metadata_keys as keys
from ..checkpoint.load import Checkpoint, Problem, load_checkpoint
from ..errors import CheckpointError
from .atomic_output import atomic_write_bytes, check_output
from .safetensors_writer import safetensors_bytes
from .verification import (
    VERIFY_INPUT_SHAPE,
    VERIFY_SEED,
    Outputs,
    max_abs_diff,
    outputs_identical,
    run_model,
    structural_problems,
    tensor_differences,
    verification_images,
)

#: metadata key namespace; the loader reads these names back (keep them exactly)
CONVERTER_VERSION = f"pytest-convnextpose {__version__}"


class VerificationError(RuntimeError):
    """The written copy did not match the source; it was discarded. A bug or a disk fault, never the input's fault."""


@dataclass
class ConversionReport:
    """Outcome of converting (or exporting) one file (the CLI maps `status` to its exit code)."""

    source: str
    output: Optional[str]
    status: str  # converted | exported | problems | refused | exists | failed
    detail: str = ""
    problems: list[Problem] = field(default_factory=list)
    variant: Optional[str] = None
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The output was written and verified."""
        return self.status in ("converted", "exported")


def name_warning(ckpt: Checkpoint) -> str:
    """`; WARNING: file name says L; tensors are XS ...` when the source's name lies, else ''."""
    return "".join(f"; WARNING: {p.detail}" for p in ckpt.problems if not p.about_content)


def canonical_tensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sorted canonical keys; each tensor detached, on CPU, contiguous and owning its own storage.

    Cloning drops any view into a larger or shared storage, so nothing is written twice and
    nothing outside the tensor is written at all.
    """
    return {k: state_dict[k].detach().cpu().contiguous().clone() for k in sorted(state_dict)}


def _compact_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def source_epoch(ckpt: Checkpoint) -> Optional[int]:
    """The training epoch the source records, if any (wrapper field or our own metadata)."""
    for key in ("epoch", keys.EPOCH):
        value = ckpt.metadata.get(key) if ckpt.metadata else None
        if value is None or value == "" or isinstance(value, bool):
            continue
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None


def build_metadata(ckpt: Checkpoint, verification: Mapping[str, Any]) -> dict[str, str]:
    """All-string metadata: the spec and provenance, deterministic for a given source."""
    md = {
        "format": "pt",
        keys.SPEC: ckpt.spec.to_json(),
        keys.VARIANT: ckpt.variant or "",
        keys.HEAD_UPSAMPLE_SOURCE: str(ckpt.head_upsample_source),
        keys.SOURCE_SHA256: ckpt.sha256,
        keys.SOURCE_CONTAINER: str(ckpt.container),
        keys.SOURCE_DIALECT: _compact_json(ckpt.dialect.to_dict()),
        keys.SOURCE_WRAPPER: ckpt.wrapper or "",
        keys.CONVERTER_VERSION: CONVERTER_VERSION,
        keys.VERIFICATION: _compact_json(dict(verification)),
    }
    archive = ckpt.metadata.get("archive") if ckpt.metadata else None
    if isinstance(
        archive, dict
    ):  # read from inside a download archive: which one (no path: it would not survive renames)
        md[keys.SOURCE_ARCHIVE] = _compact_json({k: archive.get(k) for k in ("format", "member", "sha256", "size")})
    epoch = source_epoch(ckpt)
    if epoch is not None:
        md[keys.EPOCH] = str(epoch)
    return md


def _verification_record(ok_tensors: bool, diff: float, identical: bool, n: int) -> dict[str, Any]:
    return {
        "tensors_bit_equal": ok_tensors,
        "num_tensors": n,
        "outputs_identical": identical,
        "max_output_abs_diff": diff,
        "compared": "heatmaps and coords, float32, eval mode",
        "input_shape": list(VERIFY_INPUT_SHAPE),
        "input_seed": VERIFY_SEED,
        "input": "torch.randn with torch.Generator().manual_seed(input_seed)",
    }


def _check_copy(
    spec: ArchSpec,
    want: Mapping[str, torch.Tensor],
    got: Mapping[str, torch.Tensor],
    source_out: Outputs,
    images: torch.Tensor,
) -> dict[str, Any]:
    """Compare a re-read copy to the source: bits of every tensor and outputs on the fixed images."""
    diffs = tensor_differences(want, got)
    if diffs:
        return _verification_record(False, float("inf"), False, len(want)) | {"differences": diffs[:5]}
    out = run_model(spec, got, images)
    return _verification_record(True, max_abs_diff(source_out, out), outputs_identical(source_out, out), len(want))


def _verify_file(
    tmp: Path,
    ckpt: Checkpoint,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str],
    source_out: Outputs,
    images: torch.Tensor,
) -> None:
    """The check that gates the rename: re-read `tmp` from disk and demand an exact copy."""
    with safe_open(str(tmp), framework="pt") as fh:
        got_meta = fh.metadata() or {}
    if dict(got_meta) != dict(metadata):
        raise VerificationError(f"{tmp}: metadata read back differs from what was written")
    spec = ArchSpec.from_json(got_meta[keys.SPEC])
    if spec != ckpt.spec:
        raise VerificationError(f"{tmp}: spec read back {spec.summary()} != source {ckpt.spec.summary()}")
    record = _check_copy(spec, tensors, load_file(str(tmp)), source_out, images)
    if not (record["tensors_bit_equal"] and record["outputs_identical"]):
        raise VerificationError(f"{tmp}: written copy is not exact: {_compact_json(record)}")
    _verify_through_loader(tmp, ckpt, tensors)


def _verify_through_loader(tmp: Path, ckpt: Checkpoint, tensors: Mapping[str, torch.Tensor]) -> None:
    """Users read the file with `load_checkpoint`: it must give back the same spec and bits, no problems."""
    try:
        back = load_checkpoint(tmp)
    except CheckpointError as exc:  # our own output refused by our own loader: not the input's fault
        raise VerificationError(
            f"the converted file does not load back through load_checkpoint: {exc.message}"
        ) from None
    if back.spec != ckpt.spec:
        raise VerificationError(
            f"{tmp}: load_checkpoint reads spec {back.spec.summary()}, expected {ckpt.spec.summary()}"
        )
    content = [p for p in back.problems if p.about_content]  # the temp file's name claims nothing of ours
    if content:
        raise VerificationError(f"{tmp}: load_checkpoint reports problems: {content[0]}")
    diffs = tensor_differences(tensors, back.state_dict)
    if diffs:
        raise VerificationError(f"{tmp}: load_checkpoint gives different tensors: {diffs[0]}")


def convert_checkpoint(ckpt: Checkpoint, out: str | Path, *, force: bool = False) -> ConversionReport:
    """Convert an already loaded checkpoint. Problems -> report with exit 1 and nothing written.

    Raises OutputExistsError / OutputPathError (nothing written; also when `out` is the source
    file, even with `force`) and VerificationError (temp file removed).
    """
    out = check_output(out, force=force, inputs=[ckpt.path])
    problems = structural_problems(ckpt)
    if problems:
        return ConversionReport(
            ckpt.path, None, "problems", f"{len(problems)} problem(s); nothing written", problems, ckpt.variant
        )
    tensors = canonical_tensors(ckpt.state_dict)
    images = verification_images(ckpt.spec)
    source_out = run_model(ckpt.spec, ckpt.state_dict, images)
    record = _probe_round_trip(ckpt.spec, tensors, source_out, images)
    metadata = build_metadata(ckpt, record)
    data = safetensors_bytes(tensors, metadata)
    atomic_write_bytes(
        out, data, force=force, verify=lambda tmp: _verify_file(tmp, ckpt, tensors, metadata, source_out, images)
    )
    detail = f"{len(tensors)} tensors, {len(data)} bytes, max output diff {record['max_output_abs_diff']}"
    detail += name_warning(ckpt)
    return ConversionReport(ckpt.path, str(out), "converted", detail, [], ckpt.variant, record)


def _probe_round_trip(
    spec: ArchSpec, tensors: Mapping[str, torch.Tensor], source_out: Outputs, images: torch.Tensor
) -> dict[str, Any]:
    """Verification result recorded in the metadata: an in-memory safetensors round trip of the same tensor bytes.

    The record has to exist before the file does; the on-disk check repeats it and must agree.
    """
    record = _check_copy(spec, tensors, st_load(safetensors_bytes(tensors, {"format": "pt"})), source_out, images)
    if not (record["tensors_bit_equal"] and record["outputs_identical"]):
        raise VerificationError(f"safetensors round trip is not exact: {_compact_json(record)}")
    return record


def convert_file(
    src: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    joint_num: Optional[int] = None,
    head_upsample: Optional[tuple[bool, ...]] = None,
) -> ConversionReport:
    """Load `src` safely and convert it. Raises CheckpointError when the file is refused."""
    out = check_output(out, force=force, inputs=[src])  # cheap refusals before reading a large file
    ckpt = load_checkpoint(src, joint_num=joint_num, head_upsample=head_upsample)
    return convert_checkpoint(ckpt, out, force=force)
