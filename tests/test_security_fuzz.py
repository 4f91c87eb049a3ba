"""Mutation fuzzing: every mutant of a legitimate file loads or raises a CheckpointError.

Never another exception type, never code execution (marker file + audit hook), never a hang
(each case is timed; the bound is a hang detector, not a performance target), and peak memory
stays bounded. Fast profile by default; long profile with CONVNEXTPOSE_FUZZ_LONG=1 (see
tests/strategies_mutation.py and SECURITY.md).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from hostile_corpus import (LEGIT_CONTAINERS, TORCHSCRIPT_LAYOUTS, ExecutionMonitor, legit_files, payloads,
                            torchscript_files)
from strategies_mutation import EXAMPLES, LONG, Edit, Tally, apply, edits
from pytest_convnextpose.errors import CheckpointError
from pytest_convnextpose.reading import layer_of, read_file

HANG_BOUND_S = 20.0
MEMORY_BOUND_MB = 1024
TALLY = Tally()
#: every legitimate layout mutated: the writer's containers and the TorchScript layouts
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


def _read_one(path: Path, bases: dict) -> None:
    monitor = ExecutionMonitor.get()
    TALLY.tried += 1
    start = time.perf_counter()
    try:
        with monitor:
            read_file(path)
        TALLY.loaded += 1
    except CheckpointError as err:
        TALLY.refused_by_layer[layer_of(err)] += 1
        TALLY.refused_by_family[_family(err)] += 1
    except Exception as err:  # noqa: BLE001 - counting exactly these is the point
        TALLY.crashes.append(f"{path.name}: {type(err).__name__}: {err}")
        raise AssertionError(f"mutant of {path.name} raised {type(err).__name__}: {err}") from err
    finally:
        elapsed = time.perf_counter() - start
        TALLY.slowest_s = max(TALLY.slowest_s, elapsed)
        if monitor.events or bases["marker"].exists():
            TALLY.executed += 1
    assert not monitor.events and not bases["marker"].exists(), f"code ran: {monitor.events}"
    assert elapsed < HANG_BOUND_S, f"a mutant of {path.name} took {elapsed:.1f} s (hang?)"


def _family(err: CheckpointError) -> str:
    for klass in type(err).__mro__:
        if klass.__module__ == "pytest_convnextpose.errors":
            return klass.__name__
    return type(err).__name__


def test_legit_bases_load(bases: dict) -> None:
    for container in FUZZ_LAYOUTS:
        TALLY.legit_tried += 1
        try:
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
            _read_one(work_root, bases)
        else:
            work_root.write_bytes(mutant)
            _read_one(work_root, bases)

    run()
    assert _rss_mb() - bases["rss0"] < MEMORY_BOUND_MB, "peak memory grew by more than 1 GiB while fuzzing"
