"""`convnextpose convert`: verified safetensors conversion, one file or many.

    convnextpose convert IN OUT.safetensors [--force] [--joints N] [--head-upsample up,up,no]
    convnextpose convert A B C --out-dir DIR [--force] [--no-progress]

Exit codes (`exit_codes`): 0 converted; 1 the checkpoint has problems (listed, nothing
written); 2 refused (unreadable, corrupt, hostile, foreign, ambiguous) or the output exists
without `--force`; 3 the written copy failed verification or another internal error
(nothing written). With several files every file is attempted, the exit code is the worst,
a summary table goes to stdout and the progress bar (in a terminal) to stderr.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..convert.to_safetensors import ConversionReport, convert_file
from .args import add_force_option, add_spec_options
from .batch import run_one_or_many

#: suffixes dropped from an input's name to make `<stem>.safetensors` in --out-dir
_SOURCE_SUFFIXES = (".tar", ".pth", ".pt", ".ckpt", ".bin", ".pkl", ".safetensors", ".zip", ".gz", ".tgz")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert verified checkpoints to safetensors",
        description="Convert a checkpoint with no structural problems to safetensors with canonical keys, "
                    "the spec and provenance in metadata, verified before it is renamed into place.",
        epilog="exit codes: 0 converted, 1 problems (nothing written), 2 refused or output exists, "
               "3 verification failed; with several files, the worst of them.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="IN OUT.safetensors, or several inputs with --out-dir")
    p.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                   help="convert every PATH to DIR/<name>.safetensors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (several files)")
    add_spec_options(p)
    add_force_option(p)
    p.set_defaults(func=run)


def output_name(src: str) -> str:
    """`ConvNeXtPose_L.tar` -> `ConvNeXtPose_L.safetensors`, `snapshot_83.pth.tar` -> `snapshot_83.safetensors`."""
    name = Path(src).name
    while True:
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and f".{suffix.lower()}" in _SOURCE_SUFFIXES:
            name = stem
        else:
            return f"{name}.safetensors"


def run(args: argparse.Namespace) -> int:
    def action(src: str, out: Path) -> ConversionReport:
        return convert_file(src, out, force=args.force, joint_num=args.joints, head_upsample=args.head_upsample)

    return run_one_or_many(args, action, output_name,
                           "convert needs IN OUT.safetensors, or several inputs with --out-dir DIR")
