"""Argument types and options shared by the subcommands and the pytest plugin.

One definition of each, so `inspect`, `convert`, `export`, `export-onnx`, `evaluate` and
`pytest --joints/--head-upsample` accept and reject the same values with the same messages.
Each type is an argparse `type=` callable (pytest's option parser is argparse too); a bad
value raises `argparse.ArgumentTypeError`, which both parsers turn into a one-line usage
error. Nothing heavy is imported at module level: the plugin imports this in every pytest run.
"""
from __future__ import annotations

import argparse


def whole_number(text: str, *, minimum: int) -> int:
    """`text` as an int >= `minimum`; the one integer parser of the command line and the plugin."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}" if minimum == 1
                                         else f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (joint counts, batch sizes, frame counts)."""
    return whole_number(text, minimum=1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (epochs, worker counts)."""
    return whole_number(text, minimum=0)


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0 (tolerances and limits in mm or heatmap units)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def head_upsample_arg(text: str) -> tuple[bool, ...]:
    """argparse type for `--head-upsample up,up,no`."""
    from reference_model.spec import parse_head_upsample  # the package imports torch: only when used

    try:
        return parse_head_upsample(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_size_arg(text: str) -> tuple[int, int]:
    """argparse type: `256`, `256x192` or `256,192` -> (H, W), each a positive multiple of 32."""
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"input size {text!r}: expected H, HxW or H,W") from None
    if len(parts) > 2 or h <= 0 or w <= 0 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"input size {text!r}: height and width must be positive multiples of 32")
    return h, w


JOINTS_HELP = "number of joints, when joints x depth_dim cannot be factored unambiguously"
HEAD_UPSAMPLE_HELP = ("which head layers upsample (weights cannot tell); default: from the variant, the head layout, "
                      "or the authors' code")


def add_spec_options(p: argparse.ArgumentParser) -> None:
    """`--joints` and `--head-upsample`: the two facts a checkpoint's tensors may not settle."""
    p.add_argument("--joints", type=positive_int, default=None, metavar="N", help=JOINTS_HELP)
    p.add_argument("--head-upsample", type=head_upsample_arg, default=None, metavar="up,up,no", help=HEAD_UPSAMPLE_HELP)


def add_force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
