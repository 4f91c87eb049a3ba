"""The latency benchmarks through pytest: skipped with a reason without CUDA, measured with
`--device cpu`, and written by pytest-benchmark with our machine info."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    assert proc.returncode == 0, out[-2000:]
    if torch.cuda.is_available():
        assert "2 passed" in out, out[-2000:]
    else:
        assert "2 skipped" in out and "pass --device cpu" in out, out[-2000:]


def test_device_cpu_measures_and_writes_benchmark_json(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = _run("--device=cpu", f"--benchmark-json={out_json}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    doc = json.loads(out_json.read_text())
    batches = sorted(b["extra_info"]["batch"] for b in doc["benchmarks"])
    assert batches == [1, 32], f"expected batch 1 and 32 benchmarks, got {batches}"
    assert all(b["stats"]["min"] > 0 for b in doc["benchmarks"])
    info = doc["machine_info"]["convnextpose"]
    assert info["torch"] == torch.__version__, info
