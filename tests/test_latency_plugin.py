"""The latency benchmarks through pytest: skipped with a reason without CUDA, measured with
`--device cpu`, written by pytest-benchmark with our machine info, saved, and compared with
a saved run by `--benchmark-compare` / `--benchmark-compare-fail` (the CI gate docs suggest)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "conformance" / "test_latency.py"
TINY = REPO / "tests" / "data" / "tiny_snapshot_83.pth.tar"


def _run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", str(SUITE), f"--ckpt={TINY}", *args]
    # pytest-benchmark disables itself when it sees an xdist worker's variables, which a
    # subprocess started from one of our own `-n 2` workers would inherit.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env=env)


def test_without_cuda_latency_skips_with_a_reason_unless_device_cpu():
    proc = _run("--device=auto")
    out = proc.stdout + proc.stderr
    if torch.cuda.is_available():
        assert proc.returncode == 0 and "2 passed" in out, out[-2000:]
    else:  # nothing about the checkpoint was checked: not green (exit 5), with the reason
        assert proc.returncode == 5, out[-2000:]
        assert "2 skipped" in out and "pass --device cpu" in out and "NOT CHECKED" in out, out[-2000:]


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory) -> tuple[Path, Path]:
    """One `--device cpu` run writing `--benchmark-json` and saving into its own storage
    (`--benchmark-save=base`): (json file, storage folder)."""
    tmp = tmp_path_factory.mktemp("latency")
    out_json, storage = tmp / "bench.json", tmp / "storage"
    proc = _run("--device=cpu", f"--benchmark-json={out_json}", f"--benchmark-storage=file://{storage}",
                "--benchmark-save=base")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    return out_json, storage


def test_device_cpu_measures_and_writes_benchmark_json(cpu_run):
    doc = json.loads(cpu_run[0].read_text())
    batches = sorted(b["extra_info"]["batch"] for b in doc["benchmarks"])
    assert batches == [1, 32], f"expected batch 1 and 32 benchmarks, got {batches}"
    assert all(b["stats"]["min"] > 0 for b in doc["benchmarks"])
    info = doc["machine_info"]["convnextpose"]
    assert info["torch"] == torch.__version__, info


def _saved_run(storage: Path) -> Path:
    (saved,) = storage.glob("*/0001_*.json")  # <storage>/<machine id>/0001_<name>.json
    return saved


def _scaled_copy(saved: Path, number: str, factor: float) -> str:
    """A copy of a saved run with every timing statistic multiplied by `factor`, saved as run `number`."""
    doc = json.loads(saved.read_text())
    for bench in doc["benchmarks"]:
        stats = bench["stats"]
        for field in ("min", "max", "mean", "median", "stddev", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "total"):
            stats[field] *= factor
        stats["ops"] /= factor
    name = f"{number}_scaled.json"
    (saved.parent / name).write_text(json.dumps(doc))
    return number


def test_saved_run_is_compared_and_compare_fail_gates_a_regression(cpu_run):
    """pytest-benchmark's own CI gate works on our benchmarks: save a run, compare with it.
    The compared runs are the saved one with its times scaled, so the verdicts do not depend
    on this machine's timing noise: 1000x slower before -> no regression; 1000x faster -> regression."""
    storage = cpu_run[1]
    store = f"--benchmark-storage=file://{storage}"
    base = _saved_run(storage)
    assert sorted(b["extra_info"]["batch"] for b in json.loads(base.read_text())["benchmarks"]) == [1, 32]

    slower = _scaled_copy(base, "0002", 1000.0)
    ok = _run("--device=cpu", store, f"--benchmark-compare={slower}", "--benchmark-compare-fail=mean:5%")
    out = ok.stdout + ok.stderr
    assert ok.returncode == 0, out[-3000:]
    assert "0002_scaled" in out and "(NOW)" in out, f"no comparison table with run 0002:\n{out[-3000:]}"

    faster = _scaled_copy(base, "0003", 1e-3)
    bad = _run("--device=cpu", store, f"--benchmark-compare={faster}", "--benchmark-compare-fail=mean:5%")
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out[-3000:]
    assert "Performance has regressed" in out and "test_forward_latency[" in out and "mean" in out, out[-3000:]
