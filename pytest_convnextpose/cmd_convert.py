"""`convnextpose convert`: verified safetensors conversion, one file or many.

    convnextpose convert IN OUT.safetensors [--force] [--joints N] [--head-upsample up,up,no]
    convnextpose convert A B C --out-dir DIR [--force] [--no-progress]

Exit codes (SPEC §5): 0 converted; 1 the checkpoint has problems (listed, nothing written);
2 refused (unreadable, corrupt, hostile, foreign, ambiguous) or the output exists without
`--force`; 3 the written copy failed verification or another internal error (nothing
written). With several files every file is attempted and the exit code is the worst
(highest) of the per-file codes; a summary table goes to stdout, the progress bar to stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence


from . import cli_args
from .atomic import OutputExistsError, OutputIsInputError, OutputPathError, same_file
from .convert import EXIT_FAILED, EXIT_REFUSED, ConversionReport, VerificationError, convert_file
from .errors import CheckpointError

#: suffixes dropped from an input's name to make `<stem>.safetensors` in --out-dir
_SOURCE_SUFFIXES = (".tar", ".pth", ".pt", ".ckpt", ".bin", ".pkl", ".safetensors", ".zip")


def add_spec_options(p: argparse.ArgumentParser) -> None:
    """Options shared by convert and export: what the tensors cannot say, and --force."""
    cli_args.add_spec_options(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")


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
    def action(src: str, out: str | Path) -> ConversionReport:
        return convert_file(src, out, force=args.force, joint_num=args.joints, head_upsample=args.head_upsample)

    if args.out_dir is None:
        if len(args.paths) != 2:
            print("convnextpose: error: convert needs IN OUT.safetensors, or several inputs with --out-dir DIR",
                  file=sys.stderr)
            return EXIT_REFUSED
        src, out = args.paths
        report = convert_one(lambda: action(src, out), src, out)
        print_report(report)
        return report.exit_code
    return run_many(args.paths, args.out_dir, args, output_name, action)


def convert_one(action: Callable[[], ConversionReport], src: str, out: Optional[str]) -> ConversionReport:
    """Run one conversion; turn every refusal into a report so a batch can go on."""
    try:
        return action()
    except CheckpointError as exc:  # only load_checkpoint raises these, and it names the file
        return ConversionReport(src, None, "refused", EXIT_REFUSED, str(exc))
    except OutputExistsError as exc:
        return ConversionReport(src, None, "exists", EXIT_REFUSED, str(exc))
    except OutputPathError as exc:  # names the user's output path, never our temp file
        return ConversionReport(src, None, "refused", EXIT_REFUSED, f"{exc}; nothing written")
    except VerificationError as exc:
        return ConversionReport(src, None, "failed", EXIT_FAILED, f"verification failed, nothing written: {exc}")
    except OSError as exc:  # the output side: missing folder, permissions, disk full
        where = exc.filename or out
        return ConversionReport(src, None, "refused", EXIT_REFUSED,
                                f"{where}: cannot write output: {exc.strerror or exc}; nothing written")
    except Exception as exc:  # a bug or an OS fault on this file: report it, let the batch go on
        if os.environ.get("CONVNEXTPOSE_DEBUG"):
            raise
        msg = " ".join(str(exc).split())
        return ConversionReport(src, None, "failed", EXIT_FAILED, f"{src}: {type(exc).__name__}: {msg}")


def print_report(report: ConversionReport) -> None:
    """One file: success on stdout; problems and refusals on stderr, one line each."""
    if report.status in ("converted", "exported"):
        print(f"{report.status} {report.source} -> {report.output} ({report.detail})")
        return
    if report.status == "problems":
        print(f"convnextpose: {report.source}: {report.detail}", file=sys.stderr)
        for p in report.problems:
            print(f"  {p.kind:<11} {p.key or '-'}: {p.detail}", file=sys.stderr)
        return
    print(f"convnextpose: error: {report.detail}", file=sys.stderr)


def run_many(paths: Sequence[str], out_dir: Path, args: argparse.Namespace, name_for: Callable[[str], str],
             action: Callable[[str, Path], ConversionReport]) -> int:
    """Run `action(src, out_dir / name_for(src))` for every path; worst exit code wins.

    Each command brings its own output naming and action, so this loop knows none of them."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"convnextpose: error: {out_dir}: cannot create output folder: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_REFUSED
    reports = []
    claimed: dict[str, str] = {}
    from tqdm import tqdm

    bar = tqdm(paths, desc=args.command, unit="file", file=sys.stderr, disable=args.no_progress)
    for src in bar:
        bar.set_postfix_str(Path(src).name)
        out = out_dir / name_for(src)
        clash = next((other for other in paths if same_file(out, other)), None)
        if clash is not None:  # even with --force: an output must never replace any input of the batch
            reports.append(ConversionReport(src, None, "refused", EXIT_REFUSED,
                                            f"{OutputIsInputError(out, clash)}; nothing written"))
            continue
        if str(out) in claimed:
            reports.append(ConversionReport(src, None, "refused", EXIT_REFUSED,
                                            f"{src}: output {out} is already taken by {claimed[str(out)]}"))
            continue
        claimed[str(out)] = src
        reports.append(convert_one(lambda: action(src, out), src, str(out)))
    bar.close()
    print_table(reports)
    return max((r.exit_code for r in reports), default=0)


def print_table(reports: Sequence[ConversionReport]) -> None:
    """Summary on stdout: status, source, output, detail; then the problems of each file."""
    rows = [(r.status, r.source, r.output or "-", r.detail) for r in reports]
    header = ("status", "source", "output", "detail")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)][:3]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    for r in reports:
        for p in r.problems:
            print(f"{r.source}: {p.kind} {p.key or '-'}: {p.detail}")
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(f"{len(reports)} file(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))

