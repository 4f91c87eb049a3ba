"""`convnextpose` command line: parse, dispatch to a subcommand module, never show a traceback.

Each subcommand lives in its own module of this package that provides `register(subparsers)`;
the parser's `func(args) -> int` runs it. A `CheckpointError` prints its one line and exits 2;
anything unexpected prints one line naming the bug and exits 3 (set CONVNEXTPOSE_DEBUG=1 for
the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import CheckpointError
from . import exit_codes, messages

#: subcommand modules of this package, in help order (a missing one is a packaging error, not skipped)
COMMAND_MODULES = ("inspect", "convert", "export", "export_onnx", "evaluate", "variants")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convnextpose", description="Inspect, verify, convert and evaluate ConvNeXtPose checkpoints."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __package__).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return exit_codes.REFUSED
    try:
        return int(args.func(args))
    except CheckpointError as exc:
        messages.error(exc)
        return exit_codes.REFUSED
    except KeyboardInterrupt:
        messages.line("convnextpose: interrupted")
        return 130
    except BrokenPipeError:  # `convnextpose ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.OK
    except Exception as exc:  # a bug of ours: still one line, never a bare traceback
        if os.environ.get("CONVNEXTPOSE_DEBUG"):
            raise
        msg = " ".join(str(exc).split())[:messages.MAX_DETAIL]
        messages.line(f"convnextpose: internal error: {type(exc).__name__}: {msg} "
                      "(set CONVNEXTPOSE_DEBUG=1 for a traceback)")
        return exit_codes.FAILED


if __name__ == "__main__":
    raise SystemExit(main())
