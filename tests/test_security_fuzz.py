"""Mutation fuzzing: every mutant of a legitimate file loads or raises a CheckpointError, and
every mutant that loads is read the same way by the reference readers.

Never another exception type, never code execution (marker file + audit hook), never a hang
(each case runs under a watchdog that turns one into a failure; the slowest case is reported,
not asserted on), and each case's peak memory stays within SECURITY.md's budget (interpreter
baseline + 4 x the file size + 64 MiB: the peak RSS is reset before each case and read after it).
Differential oracle: a mutant we load is read in a throwaway process by the reference reader of
its container (torch.load(weights_only=True), ...; `case_runner.py`) and, for archives, listed by
zipfile / torch's zip reader / tarfile / GNU tar; any difference in tensors (bit for bit), values
or members is a failure (`differential_judge.disagreements`).

Two kinds of mutants: byte-level edits of each legitimate layout (strategies_mutation.py), and
structural rebuilds of a legitimate zip, tar or pickle with the ambiguities of issue 11
(strategies_structure.py); for the pickle rebuilds `convnextpose inspect` runs too and must give a
verdict (exit 0, 1 or 2), never a traceback. Fast profile by default; long profile with
CONVNEXTPOSE_FUZZ_LONG=1 (see SECURITY.md).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest
import strategies_structure as structure
from case_runner import CaseRunner, digest, family_of, memory_budget_mb, proc_status, reset_peak
from differential_corpus import DiffCase
from differential_judge import disagreements
from hostile_corpus import (
    LEGIT_CONTAINERS,
    TORCHSCRIPT_LAYOUTS,
    ExecutionMonitor,
    legit_files,
    payloads,
    torchscript_files,
)
from hypothesis import HealthCheck, given, settings
from strategies_mutation import EXAMPLES, LONG, Edit, Tally, apply, edits

from pytest_convnextpose.errors import CheckpointError
from pytest_convnextpose.reading import layer_of, read_file

#: a case still running after this long is a hang (a watchdog bound, not a performance target)
HANG_BOUND_S = 20.0
MEMORY_BOUND_MB = 1024
TALLY = Tally()
#: every legitimate layout mutated: the writer's containers (the pre-1.0 tar among them) and the TorchScript layouts
FUZZ_LAYOUTS = LEGIT_CONTAINERS + TORCHSCRIPT_LAYOUTS


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("fuzz")
    marker = tmp / "MARKER_fuzz_payload_ran"
    files = legit_files(tmp, location="cuda:0") | torchscript_files(tmp)
    donors = [bytes(p) for p in payloads(marker).values()]
    out = {"marker": marker, "tmp": tmp, "donors": donors, "rss0": _rss_mb()}
    for container, (path, _) in files.items():
        if path.is_dir():
            victim = next(path.rglob("data.pkl"))
            out[container] = (path, victim, victim.read_bytes())
        else:
            out[container] = (path, path, path.read_bytes())
        donors.append(out[container][2][:2048])
    yield out
    if "runner" in out:
        out["runner"].close()
    report = os.environ.get("CONVNEXTPOSE_FUZZ_REPORT")
    figures = TALLY.as_dict() | {"peak_rss_growth_mb": round(_rss_mb() - out["rss0"], 1)}
    if report:
        Path(report).write_text(json.dumps(figures, indent=2))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _runner(bases: dict) -> CaseRunner:
    """One reference-reader server per module, started when the first mutant loads."""
    if "runner" not in bases:
        bases["runner"] = CaseRunner()
    return bases["runner"]


class MutantHang(BaseException):
    """Raised by the watchdog. A BaseException so that neither the reader's `except Exception`
    nor hypothesis (which would re-run a hanging case while shrinking) swallows it."""


@contextlib.contextmanager
def watchdog(seconds: float, what: str, detail: object = None) -> Iterator[None]:
    """Turn `what` still running after `seconds` into a failure instead of a stuck run.

    SIGALRM interrupts Python code in the main thread (where pytest and xdist workers run
    tests) with `MutantHang`. A hang inside C code never returns to the interpreter, so
    faulthandler, armed at twice the bound, dumps the stacks and ends the process: a crash
    that fails the run (an xdist worker crash fails its test). `detail` (the mutation) is
    only formatted when the alarm fires."""

    def on_alarm(signum: int, frame: object) -> None:
        suffix = "" if detail is None else f" ({str(detail)[:400]})"
        raise MutantHang(f"{what} still running after {seconds:g} s: a hang{suffix}")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    faulthandler.dump_traceback_later(2 * seconds, exit=True, file=sys.__stderr__)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            faulthandler.cancel_dump_traceback_later()
            signal.signal(signal.SIGALRM, previous)


def _read_one(path: Path, bases: dict, mutation: object) -> Optional[object]:
    """Read one mutant under the watchdogs; return what loaded (None when refused)."""
    monitor = ExecutionMonitor.get()
    TALLY.tried += 1
    start = time.perf_counter()
    base_kb = reset_peak()
    raw = None
    try:
        with watchdog(HANG_BOUND_S, f"reading a mutant of {path.name}", mutation), monitor:
            raw = read_file(path)
        TALLY.loaded += 1
    except CheckpointError as err:
        TALLY.refused_by_layer[layer_of(err)] += 1
        TALLY.refused_by_family[family_of(err)] += 1
    except Exception as err:  # noqa: BLE001 - counting exactly these is the point
        TALLY.crashes.append(f"{path.name}: {type(err).__name__}: {err}")
        raise AssertionError(f"mutant of {path.name} raised {type(err).__name__}: {err}") from err
    finally:
        TALLY.slowest_s = max(TALLY.slowest_s, time.perf_counter() - start)  # reported, never asserted on
        if monitor.events or bases["marker"].exists():
            TALLY.executed += 1
    assert not monitor.events and not bases["marker"].exists(), f"code ran: {monitor.events}"
    grown_mb = (proc_status("VmHWM") - base_kb) / 1024
    TALLY.peak_mb = max(TALLY.peak_mb, grown_mb)
    assert grown_mb <= memory_budget_mb(_size(path)), (
        f"reading a mutant of {path.name} grew the peak memory by {grown_mb:.0f} MiB ({str(mutation)[:300]})"
    )
    if raw is not None:
        _agrees(path, raw, bases, mutation)
    return raw


def _agrees(path: Path, raw: object, bases: dict, mutation: object) -> None:
    """The differential oracle: the reference readers see what we loaded (tensors bit for bit, members)."""
    read = {
        "digest": digest(raw.obj, unordered=raw.container in ("torchscript", "safetensors")),  # type: ignore[attr-defined]
        "root": raw.root,
        "metadata": raw.metadata,
    }  # type: ignore[attr-defined]
    case = DiffCase(path.name, "fuzz", path, "load", raw.container)  # type: ignore[attr-defined]
    wrong = disagreements(case, read, _runner(bases))
    if wrong:
        TALLY.disagreements.append(f"{path.name}: {wrong[0]}")
    assert not wrong, f"a mutant we load is read otherwise: {wrong} ({str(mutation)[:300]})"


def test_legit_bases_load(bases: dict) -> None:
    for container in FUZZ_LAYOUTS:
        TALLY.legit_tried += 1
        try:
            with watchdog(HANG_BOUND_S, f"reading the legitimate {container} file"):
                raw = read_file(bases[container][0])
        except CheckpointError:
            TALLY.legit_refused += 1
            raise
        _agrees(bases[container][0], raw, bases, "no mutation")


def fuzz_settings(examples: int) -> settings:
    """The one set of hypothesis settings every fuzz property here runs under: `examples` examples,
    derandomized (the same examples every run) unless CONVNEXTPOSE_FUZZ_LONG=1, no deadline, no
    example database, no health check."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not LONG,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.mark.parametrize("container", FUZZ_LAYOUTS)
def test_mutants_load_or_raise_checkpoint_error(bases: dict, container: str) -> None:
    path, victim, data = bases[container]
    work_root = bases["tmp"] / f"work-{container}"

    @fuzz_settings(EXAMPLES)
    @given(mutation=edits(bases["donors"]))
    def run(mutation: list[Edit]) -> None:
        mutant = apply(data, mutation)
        if path.is_dir():
            shutil.rmtree(work_root, ignore_errors=True)
            shutil.copytree(path, work_root)
            (work_root / victim.relative_to(path)).write_bytes(mutant)
            _read_one(work_root, bases, mutation)
        else:
            work_root.write_bytes(mutant)
            _read_one(work_root, bases, mutation)

    run()
    assert _rss_mb() - bases["rss0"] < MEMORY_BOUND_MB, "peak memory grew by more than 1 GiB while fuzzing"


#: structural layouts: the legitimate file whose records are rebuilt, and how
STRUCTURAL = {
    "zip@torch-zip": "torch-zip",
    "zip@torchscript": "torchscript-trace",
    "tar@tar-directory": "tar-directory",
    "tar@torch-tar": "torch-tar",
}


def _records(path: Path) -> list[tuple[str, bytes]]:
    """The records of one of our own freshly written legitimate archives (read with zipfile/tarfile)."""
    import tarfile
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return [(i.filename, zf.read(i)) for i in zf.infolist()]
    with tarfile.open(path) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isreg()]


@pytest.mark.parametrize("layout", list(STRUCTURAL))
def test_structural_mutants_load_alike_everywhere_or_are_refused(bases: dict, layout: str) -> None:
    records = _records(bases[STRUCTURAL[layout]][0])
    work = bases["tmp"] / f"struct-{layout.replace('@', '-')}"
    strategy, build = (
        (structure.zip_edits(), structure.build_zip_mutant)
        if layout.startswith("zip")
        else (structure.tar_edits(), structure.build_tar_mutant)
    )

    @fuzz_settings(structure.EXAMPLES)
    @given(plan=strategy)
    def run(plan: list[structure.Edit]) -> None:
        work.write_bytes(build(records, plan))
        _read_one(work, bases, plan)

    run()


@pytest.fixture(scope="module")
def pose_placeholders() -> tuple[dict, dict[str, bytes]]:
    from archive_builders import placeholders
    from differential_corpus import _pose_state

    data: dict[str, bytes] = {}
    state = placeholders(_pose_state(), data)
    return state, data | structure.META_BYTES


def test_structural_pickle_mutants_get_a_verdict_every_reader_agrees_with(bases: dict, pose_placeholders) -> None:
    """Geometry, sharing, dtypes, metadata and keys of a pose checkpoint's pickle: `read_file` loads or
    refuses, what loads agrees with torch.load(weights_only=True), and `inspect` gives a verdict."""
    import contextlib
    import io

    from pytest_convnextpose.cli.main import main

    state, data = pose_placeholders
    work = bases["tmp"] / "struct-pickle.pt"

    @fuzz_settings(structure.EXAMPLES)
    @given(plan=structure.pickle_edits())
    def run(plan: list[structure.Edit]) -> None:
        work.write_bytes(structure.build_pickle_mutant(state, data, plan))
        _read_one(work, bases, plan)
        out, err = io.StringIO(), io.StringIO()
        base_kb = reset_peak()
        with (
            watchdog(HANG_BOUND_S, "convnextpose inspect on a pickle mutant", plan),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(["inspect", "--json", str(work)])
        grown_mb = (proc_status("VmHWM") - base_kb) / 1024
        TALLY.inspect_exits[code] += 1
        assert code in (0, 1, 2), f"inspect exit {code}: {err.getvalue()[-500:]} ({plan})"
        assert code != 2 or len(err.getvalue().splitlines()) == 1, err.getvalue()
        assert grown_mb <= memory_budget_mb(_size(work)), f"inspect grew the peak memory by {grown_mb:.0f} MiB ({plan})"

    run()


def test_watchdog_turns_a_python_level_hang_into_a_failure() -> None:
    start = time.perf_counter()
    with pytest.raises(MutantHang, match="a busy loop still running after 0.05 s"):
        with watchdog(0.05, "a busy loop"):
            while time.perf_counter() - start < 60:
                pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), "the watchdog left its timer armed"


def test_watchdog_ends_a_process_hung_in_c_code() -> None:
    """SIGALRM blocked, as it is in effect while C code never returns: faulthandler ends the process."""
    code = textwrap.dedent("""
        import signal, sys, time
        sys.path.insert(0, sys.argv[1])
        from test_security_fuzz import watchdog
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        with watchdog(0.2, "a C-level hang"):
            time.sleep(30)
        print("the hang was not caught")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 1 and "the hang was not caught" not in proc.stdout, (
        f"expected faulthandler to end the process with exit 1, got {proc.returncode}: {proc.stdout!r}"
    )
    assert "Timeout (0:00:00.4" in proc.stderr, f"expected faulthandler's timeout dump, got {proc.stderr[-2000:]!r}"
