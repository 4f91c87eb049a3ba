"""`convnextpose evaluate CKPT --h36m-root DIR`: the Human3.6M evaluation from the command line.

    convnextpose evaluate CKPT --h36m-root DIR [--protocol 1|2] [--device auto|cpu|cuda]
        [--workers N] [--batch-size N] [--bbox gt|rootnet] [--rootnet-file FILE] [--no-flip-test]
        [--max-frames N] [--mpjpe-tolerance MM] [--out results.json] [--no-progress]
    torchrun --nproc-per-node=G $(which convnextpose) evaluate CKPT --h36m-root DIR ...

The same evaluation and the same JSON as the pytest gate (`--h36m-results`), the same
verdict against the published figure. Under torchrun each process evaluates a share of the
frames (gloo on CPU, NCCL on GPUs, one GPU per local rank) and rank 0 prints and writes;
the figures are those of one process.

Exit codes: 0 evaluated (passed or reported only), 1 evaluated and above the published
figure + tolerance, 2 refused (unreadable or foreign checkpoint, one with problems, bad
Human3.6M data or options), 3 internal error. Errors are one line on stderr.
"""
from __future__ import annotations

import argparse
import datetime
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import exit_codes, messages
from .args import add_spec_options, non_negative_float, non_negative_int, positive_int


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="Human3.6M accuracy of a checkpoint, scored as the authors score it",
        description="Evaluate a checkpoint on Human3.6M in the authors' layout (annotations/, images/) with the "
                    "authors' protocol: OpenCV crops, flip test, protocol 1 (S11, PA-MPJPE, rigid alignment on all "
                    "18 joints) or 2 (S9+S11, MPJPE). Under torchrun the frames are sharded over the processes.",
        epilog="exit codes: 0 evaluated, 1 above the published figure + tolerance, 2 refused (checkpoint or data), "
               "3 internal error")
    p.add_argument("ckpt", metavar="CKPT", help="checkpoint file or folder")
    p.add_argument("--h36m-root", required=True, type=Path, metavar="DIR",
                   help="Human3.6M folder in the authors' layout (annotations/, images/)")
    p.add_argument("--protocol", type=int, choices=(1, 2), default=2,
                   help="1: S11, PA-MPJPE (no scale); 2: S9+S11, MPJPE (default 2)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda when available (under torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--workers", type=non_negative_int, default=None, metavar="N",
                   help="processes decoding and cropping images (0: in this process; default: one per CPU, "
                        "shared among torchrun's local processes)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="images per forward (default 32)")
    p.add_argument("--bbox", choices=("gt", "rootnet"), default="gt",
                   help="boxes and root depth: ground truth (default) or RootNet's output")
    p.add_argument("--rootnet-file", type=Path, default=None, metavar="FILE",
                   help="RootNet output (default DIR/bbox_root/bbox_root_human36m_output.json)")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false", help="no test-time flip averaging")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                   help="only the first N test frames (reported, never gated)")
    p.add_argument("--mpjpe-tolerance", type=non_negative_float, default=1.0, metavar="MM",
                   help="allowed excess over the published figure (default 1.0 mm)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write the result JSON (the pytest gate's --h36m-results format)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (none is drawn off a terminal anyway)")
    add_spec_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convert.atomic_output import OutputPathError, check_output
    from ..h36m import H36MDataError

    if args.out is not None:
        try:  # cheap refusals before minutes of work
            check_output(args.out, force=True, inputs=[args.ckpt])
        except OutputPathError as exc:
            return _refuse(str(exc))
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return _refuse("--device cuda was given but CUDA is not available (use --device auto or cpu)")
    try:
        with _process_group(args.device) as (device, rank):
            return _evaluate(args, device, rank)
    except H36MDataError as exc:
        return _refuse(f"Human3.6M data error: {exc}")


def _refuse(message: str) -> int:
    messages.error(message)
    return exit_codes.REFUSED


@contextmanager
def _process_group(device_option: str) -> Iterator[tuple[Any, int]]:
    """torch.distributed set up from torchrun's environment (WORLD_SIZE > 1) and torn down after;
    yields (device, rank). Without torchrun: (the device, 0), nothing else."""
    import torch

    from ..checkpoint.model import resolve_device

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        yield resolve_device(device_option), 0
        return
    import torch.distributed as dist

    device = resolve_device(device_option, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30))
    try:
        yield device, dist.get_rank()
    finally:
        dist.destroy_process_group()


def _evaluate(args: argparse.Namespace, device: Any, rank: int) -> int:
    from ..checkpoint import load_checkpoint
    from ..h36m import H36MDataError, annotation_dir, evaluate_checkpoint
    from ..h36m.gate import judge, result_document
    from ..h36m.loader import default_workers
    from ..h36m.report import headline, per_action_table

    if not args.h36m_root.is_dir():
        raise H36MDataError(f"--h36m-root {args.h36m_root}: not a folder")
    annotation_dir(args.h36m_root)
    ckpt = load_checkpoint(args.ckpt, joint_num=args.joints, head_upsample=args.head_upsample)
    content = [p for p in ckpt.problems if p.about_content]  # a name that lies is no reason not to evaluate
    if content:
        first = content[0]
        more = f" and {len(content) - 1} more" if len(content) > 1 else ""
        return _refuse(f"{args.ckpt}: not evaluated: [{first.kind}] {first.key}: {first.detail}{more} "
                       f"(see convnextpose inspect)")
    workers = default_workers() if args.workers is None else args.workers
    start = time.perf_counter()
    result = evaluate_checkpoint(ckpt, args.h36m_root, device=device, protocol=args.protocol,
                                 use_flip_test=args.flip_test, bbox_source=args.bbox, rootnet_file=args.rootnet_file,
                                 max_frames=args.max_frames, batch_size=args.batch_size, workers=workers,
                                 progress=False if args.no_progress else "auto")
    seconds = time.perf_counter() - start
    if rank != 0:
        return exit_codes.OK
    label = ckpt.short_id
    verdict = judge(label, result, ckpt.variant, tolerance_mm=args.mpjpe_tolerance, max_frames=args.max_frames)
    print(f"{label}: {headline(result)}")
    print(per_action_table(result))
    print(f"verdict: {verdict.text}")
    messages.line(f"evaluated {result.num_samples} frames in {seconds:.1f} s "
                  f"({result.num_samples / seconds:.1f} frames/s) on {device} with {workers} workers, "
                  f"batch {args.batch_size}")
    if args.out is not None:
        from ..convert.atomic_output import OutputPathError, atomic_write_json

        doc = result_document(result, label, verdict)
        try:
            atomic_write_json(args.out, doc)
        except OutputPathError as exc:
            return _refuse(str(exc))
    if not verdict.passed:
        messages.line(f"convnextpose: {verdict.failure}")
        return exit_codes.PROBLEMS
    return exit_codes.OK
