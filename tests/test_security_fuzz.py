"""Mutation fuzzing: every mutant of a legitimate file loads or raises a CheckpointError.

Never another exception type, never code execution (marker file + audit hook), never a hang
(each case runs under a watchdog that turns one into a failure; the slowest case is reported,
not asserted on), and peak memory stays bounded. Fast profile by default; long profile with CONVNEXTPOSE_FUZZ_LONG=1 (see
tests/strategies_mutation.py and SECURITY.md).
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
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from hostile_corpus import (LEGIT_CONTAINERS, TORCHSCRIPT_LAYOUTS, ExecutionMonitor, legit_files, payloads,
                            torchscript_files)
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
    report = os.environ.get("CONVNEXTPOSE_FUZZ_REPORT")
    figures = TALLY.as_dict() | {"peak_rss_growth_mb": round(_rss_mb() - out["rss0"], 1)}
    if report:
        Path(report).write_text(json.dumps(figures, indent=2))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def _read_one(path: Path, bases: dict, mutation: object) -> None:
    monitor = ExecutionMonitor.get()
    TALLY.tried += 1
    start = time.perf_counter()
    try:
        with watchdog(HANG_BOUND_S, f"reading a mutant of {path.name}", mutation), monitor:
            read_file(path)
        TALLY.loaded += 1
    except CheckpointError as err:
        TALLY.refused_by_layer[layer_of(err)] += 1
        TALLY.refused_by_family[_family(err)] += 1
    except Exception as err:  # noqa: BLE001 - counting exactly these is the point
        TALLY.crashes.append(f"{path.name}: {type(err).__name__}: {err}")
        raise AssertionError(f"mutant of {path.name} raised {type(err).__name__}: {err}") from err
    finally:
        TALLY.slowest_s = max(TALLY.slowest_s, time.perf_counter() - start)  # reported, never asserted on
        if monitor.events or bases["marker"].exists():
            TALLY.executed += 1
    assert not monitor.events and not bases["marker"].exists(), f"code ran: {monitor.events}"


def _family(err: CheckpointError) -> str:
    for klass in type(err).__mro__:
        if klass.__module__ == "pytest_convnextpose.errors":
            return klass.__name__
    return type(err).__name__


def test_legit_bases_load(bases: dict) -> None:
    for container in FUZZ_LAYOUTS:
        TALLY.legit_tried += 1
        try:
            with watchdog(HANG_BOUND_S, f"reading the legitimate {container} file"):
                read_file(bases[container][0])
        except CheckpointError:
            TALLY.legit_refused += 1
            raise


@pytest.mark.parametrize("container", FUZZ_LAYOUTS)
def test_mutants_load_or_raise_checkpoint_error(bases: dict, container: str) -> None:
    path, victim, data = bases[container]
    work_root = bases["tmp"] / f"work-{container}"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
              suppress_health_check=list(HealthCheck))
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
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 1 and "the hang was not caught" not in proc.stdout, (
        f"expected faulthandler to end the process with exit 1, got {proc.returncode}: {proc.stdout!r}")
    assert "Timeout (0:00:00.4" in proc.stderr, f"expected faulthandler's timeout dump, got {proc.stderr[-2000:]!r}"
