"""`convnextpose` command line. Each subcommand lives in its own `cmd_*.py` module that
provides `register(subparsers)`; the parser's `func(args) -> int` runs it.

Errors never surface as tracebacks: a `CheckpointError` prints its one line and exits 2;
anything unexpected prints one line naming the bug and exits 3 (set CONVNEXTPOSE_DEBUG=1
for the traceback).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import CheckpointError

#: subcommand modules, in help order. A module that is missing is skipped.
COMMAND_MODULES = ("cmd_inspect", "cmd_convert", "cmd_export", "cmd_onnx", "cmd_evaluate")

EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnextpose", description="Inspect, verify, convert and evaluate ConvNeXtPose checkpoints.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f".{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_REFUSED
    try:
        return int(args.func(args))
    except CheckpointError as exc:
        print(f"convnextpose: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("convnextpose: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: still one line, never a bare traceback
        if os.environ.get("CONVNEXTPOSE_DEBUG"):
            raise
        msg = " ".join(str(exc).split())
        print(f"convnextpose: internal error: {type(exc).__name__}: {msg} (set CONVNEXTPOSE_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
