"""Command-line options shared by the subcommands: what the tensors cannot say.

One definition, so `inspect`, `convert`, `export` and `export-onnx` accept and reject the
same values with the same messages.
"""
from __future__ import annotations

import argparse

from reference_model import parse_head_upsample


def _int_at_least(text: str, minimum: int, requirement: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < minimum:
        raise argparse.ArgumentTypeError(f"{requirement}, got {n}")
    return n


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    return _int_at_least(text, 1, "must be positive")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (e.g. a worker count, where 0 means none)."""
    return _int_at_least(text, 0, "must be >= 0")


def head_upsample_arg(text: str) -> tuple[bool, ...]:
    """argparse type for `--head-upsample up,up,no`."""
    try:
        return parse_head_upsample(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_spec_options(p: argparse.ArgumentParser) -> None:
    """`--joints` and `--head-upsample`: the two facts a checkpoint's tensors may not settle."""
    p.add_argument("--joints", type=positive_int, default=None, metavar="N",
                   help="number of joints, when joints x depth_dim cannot be factored unambiguously")
    p.add_argument("--head-upsample", type=head_upsample_arg, default=None, metavar="up,up,no",
                   help="which head layers upsample (weights cannot tell); default: from the variant, "
                        "the head layout, or the authors' code")
