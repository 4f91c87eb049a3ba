"""`convnextpose export`: write a verified checkpoint in a layout the authors' scripts load.

    convnextpose export IN OUT --layout official|sequential-head|bare [--epoch N] [--force]
    convnextpose export A B C --out-dir DIR --layout official

Same exit codes as `convert` (0 exported, 1 problems, 2 refused or output exists, 3
verification failed; worst of all files with --out-dir, where each output keeps its input's
file name).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..convert.authors_layouts import LAYOUTS, export_file
from ..convert.to_safetensors import ConversionReport
from .args import add_force_option, add_spec_options, non_negative_int
from .batch import run_one_or_many


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write a verified checkpoint in the authors' torch.save layout",
        description="official: {'epoch', 'network'} with module. keys (the authors' DataParallel model loads it "
                    "strictly); sequential-head: the same with head layers as deconv_layers_N.0/.1/.2 (released "
                    "M/L files); bare: the canonical state dict.",
        epilog="exit codes: 0 exported, 1 problems (nothing written), 2 refused or output exists, "
               "3 verification failed; with several files, the worst of them.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="IN OUT, or several inputs with --out-dir")
    p.add_argument("--layout", choices=list(LAYOUTS), default="official", help="key layout (default: official)")
    p.add_argument("--epoch", type=non_negative_int, default=None, metavar="N",
                   help="epoch to store, >= 0; overrides the source's (default: the source's, else 0); "
                        "ignored by --layout bare")
    p.add_argument("--out-dir", type=Path, default=None, metavar="DIR", help="export every PATH into DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (several files)")
    add_spec_options(p)
    add_force_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def action(src: str, out: Path) -> ConversionReport:
        return export_file(src, out, args.layout, force=args.force, epoch=args.epoch,
                           joint_num=args.joints, head_upsample=args.head_upsample)

    return run_one_or_many(args, action, lambda src: Path(src).name,  # the folder tells the outputs apart
                           "export needs IN OUT, or several inputs with --out-dir DIR")
