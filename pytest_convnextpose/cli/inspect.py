"""`convnextpose inspect PATH [PATH ...] [--json] [--joints N] [--head-upsample up,up,no]`.

Exit 0: loaded and consistent; 1: loaded, with problems; 2: refused. A refusal is one
line on stderr; with `--json` the JSON object (with `error`, other fields null) is still
printed on stdout so scripts always get an object to parse.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import CheckpointError
from . import exit_codes, messages
from .args import add_spec_options

#: problems listed in the human-readable summary before "... and N more"
MAX_LISTED_PROBLEMS = 20
JSON_FIELDS = ("path", "sha256", "container", "wrapper", "dialect", "spec", "head_upsample_source", "variant",
               "nearest_variant", "variant_differences", "num_parameters", "num_state_values", "metadata", "problems",
               "notes")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("inspect", help="say what a checkpoint is and whether it is sound",
                              description="Read a checkpoint without running anything from it, infer its "
                                          "architecture from the tensors, name the variant, list problems. "
                                          "Exit 0 consistent, 1 problems, 2 refused.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="checkpoint file(s) or folder(s)")
    p.add_argument("--json", action="store_true",
                   help="print JSON instead of a summary: one object, or a list of objects for several PATHs")
    add_spec_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Each PATH in turn: a summary (or JSON object) per file; the exit code is the worst."""
    results = [inspect_one(path, args) for path in args.paths]
    if args.json:
        objects = [obj for obj, _ in results]
        print(json.dumps(objects[0] if len(objects) == 1 else objects, indent=2, default=str))
    return exit_codes.worst(code for _, code in results)


def inspect_one(path: str, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Load one file; print its summary (unless --json); return its JSON object and exit code."""
    from ..checkpoint.load import load_checkpoint

    try:
        ckpt = load_checkpoint(path, joint_num=args.joints, head_upsample=args.head_upsample)
    except CheckpointError as exc:  # load_checkpoint has named the file already
        messages.error(exc)
        return refusal_object(path, exc), exit_codes.REFUSED
    if not args.json:
        if len(args.paths) > 1 and path != args.paths[0]:
            print()
        print(summary(ckpt))
    return ckpt.to_dict(), exit_codes.PROBLEMS if ckpt.problems else exit_codes.OK


def refusal_object(path: str, exc: CheckpointError) -> dict[str, Any]:
    """The JSON for a refused file: every field present, `error` set, and the file's sha256 when
    the reader read its bytes (so a report says which download was refused). Never hashed here: a
    file refused for its size, or one that cannot be read, is not read a second time."""
    obj: dict[str, Any] = {name: None for name in JSON_FIELDS}
    obj.update(path=str(path), sha256=getattr(exc, "sha256", None), metadata={}, problems=[], notes=[],
               variant_differences=[], error=exc.to_dict())
    return obj


def _fmt_list(values: Any) -> str:
    return ",".join(str(v) for v in values)


def summary(ckpt: Any) -> str:
    """The human-readable report: what the file is, how it is spelled, and what is wrong."""
    from reference_model import format_head_upsample
    spec = ckpt.spec
    lines = [
        f"file:          {ckpt.path}",
        f"sha256:        {ckpt.sha256}",
        f"container:     {ckpt.container}",
        f"wrapper:       {ckpt.wrapper or 'none (bare state dict)'}{_wrapper_note(ckpt.metadata)}",
        f"dialect:       {ckpt.dialect.summary()}",
        f"variant:       {_variant_line(ckpt)}",
        f"depths:        {_fmt_list(spec.depths)}",
        f"dims:          {_fmt_list(spec.dims)}",
        f"head:          channels {_fmt_list(spec.head_channels)}, kernels {_fmt_list(spec.head_kernels)}",
        f"head_upsample: {format_head_upsample(spec.head_upsample)} (source: {ckpt.head_upsample_source})",
        f"joints x depth: {spec.joint_num} x {spec.depth_dim}; heatmap at 256x256: "
        f"{spec.depth_dim}x{spec.heatmap_size((256, 256))[0]}x{spec.heatmap_size((256, 256))[1]}",
        f"parameters:    {ckpt.num_parameters:,} learnable",
    ]
    archive = ckpt.metadata.get("archive")
    if isinstance(archive, dict):  # read from inside a zip/tar/gzip download: say which one
        lines.insert(1, f"archive:       {archive.get('format')} {archive.get('path')}, member {archive.get('member')} "
                        f"(archive sha256 {archive.get('sha256')})")
    for d in ckpt.variant_differences if ckpt.variant is None else ():
        lines.append(f"  differs from {ckpt.nearest_variant}: {d}")
    lines.extend(f"note:          {n}" for n in ckpt.notes)
    lines.append(_problems_block(ckpt.problems))
    return "\n".join(lines)


def _wrapper_note(meta: dict) -> str:
    notes = []
    if "epoch" in meta:
        notes.append(f"epoch {meta['epoch']}")
    if meta.get("has_optimizer"):
        notes.append("optimizer state present")
    return f" ({', '.join(notes)})" if notes else ""


def _variant_line(ckpt: Any) -> str:
    if ckpt.variant:
        return ckpt.variant
    near = f"; nearest {ckpt.nearest_variant}" if ckpt.nearest_variant else ""
    return f"none (no published variant matches exactly{near})"


def _problems_block(problems: list) -> str:
    if not problems:
        return "problems:      none"
    lines = [f"problems:      {len(problems)}"]
    for p in problems[:MAX_LISTED_PROBLEMS]:
        lines.append(f"  [{p.kind}] {p.key}: {p.detail}")
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more (use --json for all)")
    return "\n".join(lines)

