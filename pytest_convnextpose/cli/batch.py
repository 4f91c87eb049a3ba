"""Running a conversion-like action over one file or many: reports, the summary table, exit codes.

`convert` and `export` differ only in their action and output naming; this module runs
either over a batch so that every file is attempted, an output never replaces an input of
the batch, a refusal of one file is a row in the table (not the end of the run), and the
exit code is the worst of the files'.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..convert.atomic_output import OutputExistsError, OutputIsInputError, OutputPathError, same_file
from ..convert.to_safetensors import ConversionReport, VerificationError
from ..errors import CheckpointError
from . import exit_codes, messages
from .progress import progress_bar

Action = Callable[[str, Path], ConversionReport]


def run_one_or_many(args: argparse.Namespace, action: Action, name_for: Callable[[str], str], usage: str) -> int:
    """`IN OUT` (two paths, no --out-dir) or `A B C --out-dir DIR`; the exit code of the run."""
    if args.out_dir is None:
        if len(args.paths) != 2:
            messages.error(usage)
            return exit_codes.REFUSED
        src, out = args.paths
        report = convert_one(lambda: action(src, Path(out)), src, out)
        print_report(report)
        return exit_codes.STATUS_CODES[report.status]
    return run_many(args.paths, args.out_dir, args, name_for, action)


def convert_one(action: Callable[[], ConversionReport], src: str, out: Optional[str]) -> ConversionReport:
    """Run one conversion; turn every refusal into a report so a batch can go on."""
    try:
        return action()
    except CheckpointError as exc:  # only load_checkpoint raises these, and it names the file
        return ConversionReport(src, None, "refused", str(exc))
    except OutputExistsError as exc:
        return ConversionReport(src, None, "exists", str(exc))
    except OutputPathError as exc:  # names the user's output path, never our temp file
        return ConversionReport(src, None, "refused", f"{exc}; nothing written")
    except VerificationError as exc:
        return ConversionReport(src, None, "failed", f"verification failed, nothing written: {exc}")
    except OSError as exc:  # the output side: missing folder, permissions, disk full
        where = exc.filename or out
        return ConversionReport(
            src, None, "refused", f"{where}: cannot write output: {exc.strerror or exc}; nothing written"
        )
    except Exception as exc:  # a bug or an OS fault on this file: report it, let the batch go on
        if os.environ.get("CONVNEXTPOSE_DEBUG"):
            raise
        msg = " ".join(str(exc).split())
        return ConversionReport(src, None, "failed", f"{src}: {type(exc).__name__}: {msg}")


def print_report(report: ConversionReport) -> None:
    """One file: success on stdout; problems and refusals on stderr, one line each."""
    if report.ok:
        print(f"{report.status} {report.source} -> {report.output} ({report.detail})")
        return
    if report.status == "problems":
        messages.line(f"convnextpose: {report.source}: {report.detail}")
        for p in report.problems:
            messages.line(f"  {p.kind:<11} {p.key or '-'}: {p.detail}")
        return
    messages.error(report.detail)


def run_many(
    paths: Sequence[str], out_dir: Path, args: argparse.Namespace, name_for: Callable[[str], str], action: Action
) -> int:
    """Run `action(src, out_dir / name_for(src))` for every path; worst exit code wins."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        messages.error(f"{out_dir}: cannot create output folder: {exc.strerror or exc}")
        return exit_codes.REFUSED
    reports = []
    claimed: dict[str, str] = {}
    with progress_bar(paths, desc=args.command, unit="file", disable=args.no_progress) as bar:
        for src in bar:
            bar.set_postfix_str(Path(src).name)
            out = out_dir / name_for(src)
            clash = next((other for other in paths if same_file(out, other)), None)
            if clash is not None:  # even with --force: an output must never replace any input of the batch
                reports.append(
                    ConversionReport(src, None, "refused", f"{OutputIsInputError(out, clash)}; nothing written")
                )
                continue
            if str(out) in claimed:
                reports.append(
                    ConversionReport(
                        src, None, "refused", f"{src}: output {out} is already taken by {claimed[str(out)]}"
                    )
                )
                continue
            claimed[str(out)] = src
            reports.append(convert_one(lambda src=src, out=out: action(src, out), src, str(out)))
    print_table(reports)
    return exit_codes.worst(exit_codes.STATUS_CODES[r.status] for r in reports)


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
