"""Checkpoint sweeps under pytest-xdist: each checkpoint's tests on one worker (without a
`--dist` flag and without changing node ids), an explicit `--dist` kept, and worker gwK on
`cuda:(K mod GPU count)`."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from pytest_convnextpose.plugin.state import resolve_device
from pytest_convnextpose.plugin.xdist_groups import checkpoint_scope

pytest_plugins = ["pytester"]

TINY = Path(__file__).resolve().parent / "data" / "tiny_snapshot_83.pth.tar"


def _copies(folder: Path, n: int) -> list[Path]:
    """`n` different files (other epochs: other bytes, other ids) with the tiny weights."""
    snap = torch.load(TINY, weights_only=True, map_location="cpu")
    paths = []
    for k in range(n):
        path = folder / f"sweep_{k}.pth.tar"
        torch.save({"epoch": 100 + k, "network": snap["network"]}, path)
        paths.append(path)
    return paths


def _workers_by_checkpoint(stdout: str) -> dict[str, set[str]]:
    """From `-v` output lines `[gwK] [ NN%] PASSED path::test[...ckpt id...]`: checkpoint -> workers."""
    out: dict[str, set[str]] = {}
    for worker, nodeid in re.findall(r"\[(gw\d+)\] \[\s*\d+%\] \w+ (\S+::\S+)", stdout):
        cid = re.search(r"(sweep_\d\.pth\.tar-[0-9a-f]{8})", nodeid)
        if cid:
            out.setdefault(cid.group(1), set()).add(worker)
    return out


def _run(pytester: pytest.Pytester, paths: list[Path], *args: str) -> pytest.RunResult:
    from pytest_convnextpose.plugin.core import conformance_dir

    suite = conformance_dir()
    return pytester.runpytest_subprocess(*[f"--ckpt={p}" for p in paths], str(suite / "test_load.py"),
                                         str(suite / "test_shapes.py"), "-n", "2", "-v", "-p", "no:cacheprovider",
                                         *args)


@pytest.mark.slow
def test_each_checkpoint_runs_on_one_worker_without_a_dist_flag(pytester):
    paths = _copies(pytester.path, 4)
    result = _run(pytester, paths)
    result.assert_outcomes(passed=4 * 8)
    by_ckpt = _workers_by_checkpoint(result.stdout.str())
    assert len(by_ckpt) == 4, result.stdout.str()[-3000:]
    assert all(len(workers) == 1 for workers in by_ckpt.values()), by_ckpt
    assert set().union(*by_ckpt.values()) == {"gw0", "gw1"}, by_ckpt  # both workers get checkpoints
    passed = [ln for ln in result.stdout.lines if "PASSED" in ln]
    assert len(passed) == 32 and not any("@" in ln for ln in passed), "node ids must stay as they are"


@pytest.mark.slow
def test_an_explicit_dist_choice_is_kept(pytester):
    paths = _copies(pytester.path, 2)
    result = _run(pytester, paths, "--dist", "load")
    result.assert_outcomes(passed=2 * 8)
    by_ckpt = _workers_by_checkpoint(result.stdout.str())
    # xdist's load mode hands tests out in chunks as workers ask, so a checkpoint's 8 tests are
    # not all on one worker: at least one checkpoint is split (the grouping did not apply)
    assert any(len(workers) == 2 for workers in by_ckpt.values()), by_ckpt


def test_checkpoint_scope_finds_whole_ids_only():
    ids = ["a.pth-1234abcd", "xa.pth-1234abcd"]
    assert checkpoint_scope("t.py::test_x[a.pth-1234abcd]", ids) == "a.pth-1234abcd"
    assert checkpoint_scope("t.py::test_x[xa.pth-1234abcd]", ids) == "xa.pth-1234abcd"
    assert checkpoint_scope("t.py::test_f[xa.pth-1234abcd-32]", ids) == "xa.pth-1234abcd"
    assert checkpoint_scope("t.py::test_f[4-a.pth-1234abcd]", ids) == "a.pth-1234abcd"
    assert checkpoint_scope("t.py::test_g[other]", ids) is None and checkpoint_scope("t.py::test_h", ids) is None


@pytest.mark.parametrize("option, worker, gpus, expected", [
    ("auto", None, 3, "cuda"), ("auto", 0, 3, "cuda:0"), ("auto", 4, 3, "cuda:1"), ("cuda", 5, 2, "cuda:1"),
    ("cpu", 4, 3, "cpu"), ("auto", 2, 0, "cpu"),
])
def test_xdist_worker_k_uses_gpu_k_mod_count(monkeypatch, option, worker, gpus, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert str(resolve_device(option, worker)) == expected
