"""Export a verified checkpoint back to a layout the authors' scripts load (`convnextpose export`).

Why: people who run the authors' `test.py`/`train.py` need a `torch.save` file whose keys
their model accepts strictly. Layouts:

- `official`: `{'epoch': int, 'network': state_dict}` with `module.` + canonical keys, which
  loads strictly into the authors' model wrapped in `nn.DataParallel` (their tester does that);
- `sequential-head`: the same, with head layers spelled `deconv_layers_N.0/.1/.2` as in the
  released M and L files;
- `bare`: the canonical state dict alone.

Key spelling comes from `checkpoint.dialects.from_canonical`, the inverse of the mapping the loader uses.
The zip's root folder is always `archive/` (we serialise to memory, so the temp file's name
never leaks into the archive) and the output is deterministic. `head_upsample` has no
weights, so no torch layout can record it: when re-reading would infer a different value,
the report says so and names the `--head-upsample` to pass.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from reference_model import format_head_upsample

from ..checkpoint.dialects import Dialect, from_canonical
from ..checkpoint.load import Checkpoint, load_checkpoint
from ..errors import CheckpointError
from .atomic_output import atomic_write_bytes, check_output
from .to_safetensors import ConversionReport, VerificationError, canonical_tensors, name_warning, source_epoch
from .verification import structural_problems, tensor_differences

LAYOUTS: dict[str, Optional[Dialect]] = {
    "official": Dialect(prefixes=("module.",)),
    "sequential-head": Dialect(prefixes=("module.",), head_layout="sequential"),
    "bare": None,
}


def layout_state_dict(canonical: Mapping[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Canonical tensors under the key names of `layout`."""
    dialect = _dialect(layout)
    return dict(canonical) if dialect is None else from_canonical(canonical, dialect)


def layout_object(canonical: Mapping[str, torch.Tensor], layout: str, epoch: int) -> Any:
    """The object `torch.save` writes for `layout`."""
    sd = layout_state_dict(canonical, layout)
    return sd if layout == "bare" else {"epoch": int(epoch), "network": sd}


def layout_bytes(canonical: Mapping[str, torch.Tensor], layout: str, epoch: int) -> bytes:
    """`torch.save` zip bytes; serialised in memory so the archive root is always `archive/`."""
    buf = io.BytesIO()
    torch.save(layout_object(canonical, layout, epoch), buf)
    return buf.getvalue()


def _dialect(layout: str) -> Optional[Dialect]:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def _check_epoch(epoch: Optional[int]) -> None:
    if epoch is not None and (isinstance(epoch, bool) or int(epoch) < 0):
        raise ValueError(f"epoch must be a whole number >= 0, got {epoch!r}")


def _verify_export(tmp: Path, layout: str, epoch: int, ckpt: Checkpoint,
                   canonical: Mapping[str, torch.Tensor]) -> None:
    """Gate for the rename: the file reads back (weights_only) as exactly the layout we meant."""
    obj = torch.load(tmp, map_location="cpu", weights_only=True)
    if layout == "bare":
        sd = obj
    else:
        if not isinstance(obj, dict) or set(obj) != {"epoch", "network"} or obj["epoch"] != epoch:
            raise VerificationError(f"{tmp}: does not read back as {{'epoch': {epoch}, 'network': ...}}")
        sd = obj["network"]
    want = layout_state_dict(canonical, layout)
    if list(sd) != list(want):
        raise VerificationError(f"{tmp}: keys read back differ from the {layout} layout")
    diffs = tensor_differences(want, sd)  # `want` holds the canonical tensors themselves, under layout keys
    if diffs:
        raise VerificationError(f"{tmp}: exported tensors differ: {diffs[0]}")
    try:
        back = load_checkpoint(tmp, joint_num=ckpt.spec.joint_num, head_upsample=ckpt.spec.head_upsample)
    except CheckpointError as exc:  # our own output refused by our own loader: not the input's fault
        raise VerificationError(f"the export does not load back through load_checkpoint: {exc.message}") from None
    if back.spec != ckpt.spec or any(p.about_content for p in back.problems) or \
            tensor_differences(canonical, back.state_dict):
        raise VerificationError(f"{tmp}: load_checkpoint does not read the export back as the source")


def reread_note(path: Path, ckpt: Checkpoint) -> str:
    """Empty if a plain `load_checkpoint` of the export infers the source spec; else what to pass."""
    try:
        back = load_checkpoint(path)
    except CheckpointError as exc:
        return f"note: read it back with --joints/--head-upsample ({exc.message})"
    if back.spec == ckpt.spec:
        return ""
    return (f"note: this layout cannot record head_upsample; read it with "
            f"--head-upsample {format_head_upsample(ckpt.spec.head_upsample)} "
            f"(inferred otherwise: {format_head_upsample(back.spec.head_upsample)})")


def export_checkpoint(ckpt: Checkpoint, out: str | Path, layout: str, *, force: bool = False,
                      epoch: Optional[int] = None) -> ConversionReport:
    """Write `ckpt` in `layout`. Problems -> exit-1 report and nothing written.

    The epoch stored is `epoch` when given (an explicit choice beats the source's), else the
    source's, else 0. Raises like `convert_checkpoint`, and ValueError for a negative epoch.
    """
    _dialect(layout)
    _check_epoch(epoch)
    out = check_output(out, force=force, inputs=[ckpt.path])
    problems = structural_problems(ckpt)
    if problems:
        return ConversionReport(ckpt.path, None, "problems",
                                f"{len(problems)} problem(s); nothing written", problems, ckpt.variant)
    known = source_epoch(ckpt)
    epoch = epoch if epoch is not None else (known if known is not None else 0)
    canonical = canonical_tensors(ckpt.state_dict)
    data = layout_bytes(canonical, layout, epoch)
    atomic_write_bytes(out, data, force=force,
                       verify=lambda tmp: _verify_export(tmp, layout, epoch, ckpt, canonical))
    detail = f"{layout} layout, {len(canonical)} tensors, {len(data)} bytes" + name_warning(ckpt)
    if layout != "bare":
        detail += f", epoch {epoch}" + ("" if known is not None or epoch != 0 else " (source has none)")
    note = reread_note(out, ckpt)
    return ConversionReport(ckpt.path, str(out), "exported", detail + (f"; {note}" if note else ""),
                            [], ckpt.variant)


def export_file(src: str | Path, out: str | Path, layout: str, *, force: bool = False,
                epoch: Optional[int] = None, joint_num: Optional[int] = None,
                head_upsample: Optional[tuple[bool, ...]] = None) -> ConversionReport:
    """Load `src` safely and export it. Raises CheckpointError when the file is refused."""
    _dialect(layout)
    _check_epoch(epoch)
    out = check_output(out, force=force, inputs=[src])  # cheap refusals before reading a large file
    ckpt = load_checkpoint(src, joint_num=joint_num, head_upsample=head_upsample)
    return export_checkpoint(ckpt, out, layout, force=force, epoch=epoch)
