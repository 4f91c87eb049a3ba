"""`convnextpose export-onnx CKPT OUT.onnx`: the reference model of a checkpoint as ONNX.

Exit codes follow the other commands: 0 written (and verified unless --no-verify);
1 the checkpoint loaded with problems, nothing written; 2 refused (unreadable file,
existing output without --force, output that is the input, output folder missing or not
writable, bad option); 3 the export itself failed, nothing written.
"""
from __future__ import annotations

import argparse

from ..convert.atomic_output import check_output
from ..convert.onnx_export import (
    DEFAULT_INPUT_SIZE,
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    OnnxExportError,
    check_opset,
    export_onnx,
)
from ..implementations.adapter import ImplementationError
from . import exit_codes, messages
from .args import add_force_option, add_spec_options, input_size_arg


def opset_arg(text: str) -> int:
    """argparse type for `--opset`: refused here, before torch prints a graph dump and gives up."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid opset {text!r}: expected a whole number "
                                         f"from {MIN_OPSET} to {MAX_OPSET}") from None
    try:
        check_opset(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-onnx", help="export the reference model of a checkpoint to ONNX (coordinates out)",
        description="Export CKPT's reference model to ONNX: input 'images' (B,3,H,W) float32, output "
                    "'coords' (B,J,3) in heatmap units, dynamic batch, fixed H and W. The file is "
                    "checked with onnxruntime against the reference before it is written.")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("output", metavar="OUT.onnx")
    p.add_argument("--input-size", type=input_size_arg, default=DEFAULT_INPUT_SIZE, metavar="HxW",
                   help="fixed input height and width (default 256x256, the training crop)")
    p.add_argument("--opset", type=opset_arg, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})")
    add_spec_options(p)
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check against the reference")
    add_force_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint.load import load_checkpoint  # lazy: keeps `convnextpose --help` fast

    try:  # cheap refusals first: the output is the input, exists, or cannot be written there
        check_output(args.output, force=args.force, inputs=[args.checkpoint])
    except OSError as exc:  # OutputExistsError, OutputPathError: one line naming the output
        messages.error(f"{exc}; nothing written")
        return exit_codes.REFUSED
    ckpt = load_checkpoint(args.checkpoint, joint_num=args.joints, head_upsample=args.head_upsample)
    if ckpt.problems:
        for prob in ckpt.problems:
            messages.line(f"convnextpose: {args.checkpoint}: {prob.kind} {prob.key}: {prob.detail}")
        messages.line(f"convnextpose: {args.checkpoint}: not exported ({len(ckpt.problems)} problem(s))")
        return exit_codes.PROBLEMS
    try:
        result = export_onnx(ckpt.spec, ckpt.state_dict, args.output, input_size=args.input_size,
                             opset=args.opset, checkpoint_sha256=ckpt.sha256, verify=not args.no_verify,
                             force=args.force)
    except OSError as exc:  # the output side (atomic_output names the output, never its temp file)
        messages.error(f"{exc}; nothing written")
        return exit_codes.REFUSED
    except (OnnxExportError, ImplementationError) as exc:
        messages.error(f"{args.output}: {exc}; nothing written")
        return exit_codes.FAILED
    h, w = result.input_size
    check = ("not verified (--no-verify)" if result.verified_max_abs is None
             else f"onnxruntime matches the reference to {result.verified_max_abs:.2g} heatmap units")
    print(f"wrote {result.path}: input images (B,3,{h},{w}) -> coords (B,{ckpt.spec.joint_num},3), "
          f"opset {result.opset}; {check}")
    return exit_codes.OK
