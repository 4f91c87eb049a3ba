"""`--baseline` with several checkpoints runs the baseline's reference model once per run,
not once per checkpoint compared with it (its output on the seeded inputs never changes)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

pytest_plugins = ["pytester"]

TINY = Path(__file__).resolve().parent / "data" / "tiny_snapshot_83.pth.tar"
PERTURBED_KEY = "module.head.final_layer.weight"

#: plugin (`-p counting_probe`: the suite's folder, not this one, holds the conftests of the run)
#: counting reference-model builds per checkpoint file, through the function every fixture uses
COUNTING_PLUGIN = """
import collections
import json
from pathlib import Path

import pytest_convnextpose.plugin.fixtures as fx

BUILDS = collections.Counter()
_build = fx.build_reference_model


def counting_build(ckpt, device):
    BUILDS[str(ckpt.path)] += 1
    return _build(ckpt, device)


fx.build_reference_model = counting_build


def pytest_unconfigure(config):
    fx.build_reference_model = _build
    Path(config.invocation_params.dir, "builds.json").write_text(json.dumps(BUILDS))
"""


def _perturbed_copy(directory: Path, seed: int) -> Path:
    snap = torch.load(TINY, weights_only=True, map_location="cpu")
    net = dict(snap["network"])
    noise = torch.randn(net[PERTURBED_KEY].shape, generator=torch.Generator().manual_seed(seed))
    net[PERTURBED_KEY] = net[PERTURBED_KEY] + 1e-3 * noise
    path = directory / f"tiny_perturbed_{seed}.pth.tar"
    torch.save({"epoch": snap["epoch"], "network": net}, path)
    return path


def test_baseline_model_runs_once_for_several_checkpoints(pytester):
    from pytest_convnextpose.plugin.core import conformance_dir

    pytester.makepyfile(counting_probe=COUNTING_PLUGIN)
    first, second = _perturbed_copy(pytester.path, 1), _perturbed_copy(pytester.path, 2)
    result = pytester.runpytest_subprocess(
        str(conformance_dir() / "test_baseline.py"),
        f"--ckpt={first}",
        f"--ckpt={second}",
        f"--baseline={TINY}",
        "-p",
        "counting_probe",
        "-p",
        "no:cacheprovider",
        "--max-output-drift=1000",
    )
    result.assert_outcomes(passed=4, skipped=2)
    builds = json.loads((pytester.path / "builds.json").read_text())
    # three files, each built exactly once: two candidates (convnextpose_ref_model) and the baseline
    # (convnextpose_baseline_coords)
    assert builds == {str(first): 1, str(second): 1, str(TINY): 1}, (
        f"expected one reference-model build per file, got {builds}"
    )
