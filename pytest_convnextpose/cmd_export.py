"""`convnextpose export`: write a verified checkpoint in a layout the authors' scripts load.

    convnextpose export IN OUT --layout official|sequential-head|bare [--epoch N] [--force]
    convnextpose export A B C --out-dir DIR --layout official

Same exit codes as `convert` (0 exported, 1 problems, 2 refused or output exists, 3
verification failed; worst of all files with --out-dir, where each output keeps its input's
file name).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cmd_convert import add_spec_options, convert_one, print_report, run_many
from .convert import EXIT_REFUSED, ConversionReport
from .export import LAYOUTS, export_file


def epoch_arg(text: str) -> int:
    """argparse type for `--epoch`: a whole number >= 0 (the authors' scripts count epochs from 0)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid epoch {text!r}: expected a whole number >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid epoch {text!r}: must be >= 0")
    return value


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
    p.add_argument("--epoch", type=epoch_arg, default=None, metavar="N",
                   help="epoch to store, >= 0; overrides the source's (default: the source's, else 0); "
                        "ignored by --layout bare")
    p.add_argument("--out-dir", type=Path, default=None, metavar="DIR", help="export every PATH into DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (several files)")
    add_spec_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def action(src: str, out: str | Path) -> ConversionReport:
        return export_file(src, out, args.layout, force=args.force, epoch=args.epoch,
                           joint_num=args.joints, head_upsample=args.head_upsample)

    if args.out_dir is None:
        if len(args.paths) != 2:
            print("convnextpose: error: export needs IN OUT, or several inputs with --out-dir DIR", file=sys.stderr)
            return EXIT_REFUSED
        src, out = args.paths
        report = convert_one(lambda: action(src, out), src, out)
        print_report(report)
        return report.exit_code
    return run_many(args.paths, args.out_dir, args, output_name, action)


def output_name(src: str) -> str:
    """Each output keeps its input's file name (the folder tells them apart)."""
    return Path(src).name
