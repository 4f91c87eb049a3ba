"""The Human3.6M gate `test_h36m_error_within_published_figure`, run for real on the tiny
generated dataset (tests/h36m_helpers.py: 12 protocol-2 test frames, all evaluated, so the
result is gated, not a `--max-frames` subset), and the `--baseline` MPJPE part with the
real evaluator on the same data.

Why a random-weight XS checkpoint must fail the XS figure (56.61 + 1 mm): each generated
image shows only a blob at the Pelvis. The 16 other evaluated joints are independent
N(0, 250^2 I) offsets in world mm that nothing in the image reveals, so for any prediction
the expected root-relative error of each is at least E|X| for X ~ N(0, 250^2 I) in 3D,
250 * sqrt(8/pi) = 399 mm; with the Pelvis' zero error the MPJPE over 17 joints is about
16/17 * 399 = 375 mm, thirty standard errors (about 12 mm for 192 draws) away from 57.61.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from h36m_helpers import ACTIONS, FRAMES, write_dataset

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
#: test frames of the generated data: subjects 9 and 11, every action, frames that are multiples of 64
PROTOCOL2_FRAMES = 2 * len(ACTIONS) * sum(1 for f in FRAMES if f % 64 == 0)


def suite_file(name: str) -> str:
    from pytest_convnextpose.plugin.core import conformance_dir

    return str(conformance_dir() / name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("h36m_gate"))


@pytest.fixture(scope="module")
def synthetic_xs(tmp_path_factory) -> Path:
    """Random weights with the published XS architecture, saved like the authors' snapshots."""
    from pytest_convnextpose.testing.synthetic import random_state_dict
    from reference_model import VARIANTS

    sd = random_state_dict(VARIANTS["XS"].spec, seed=0)
    path = tmp_path_factory.mktemp("xs") / "synthetic_xs.pth.tar"
    torch.save({"epoch": 0, "network": {"module." + k: v for k, v in sd.items()}}, path)
    return path


def run_gate(pytester: pytest.Pytester, ckpt: Path, dataset, *args: str) -> pytest.RunResult:
    return pytester.runpytest(f"{suite_file('test_accuracy.py')}::test_h36m_error_within_published_figure",
                              f"--ckpt={ckpt}", f"--h36m-root={dataset.root}", "--device=cpu",
                              "-p", "no:cacheprovider", *args)


def test_generated_dataset_is_evaluated_whole():
    assert PROTOCOL2_FRAMES == 12, "2 subjects x 2 actions x frames 0, 64, 128"


def test_custom_architecture_is_evaluated_and_reported_not_gated(pytester, dataset):
    out = pytester.path / "tiny.json"
    result = run_gate(pytester, TINY, dataset, f"--h36m-results={out}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*Human3.6M accuracy*", f"*protocol 2, {PROTOCOL2_FRAMES} frames: mpjpe * mm*"
                                 "reported only (custom architecture)"])
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "reported only (custom architecture)", doc["verdict"]
    assert doc["num_samples"] == PROTOCOL2_FRAMES and doc["primary_metric"] == "mpjpe"
    assert set(doc["metrics"]["mpjpe"]["per_action_mm"]) == {"Directions", "Discussion"}
    assert doc["settings"]["variant"] is None and doc["settings"]["max_frames"] is None
    assert 0 < doc["primary_mm"] < float("inf")


def test_published_variant_far_above_its_figure_fails_naming_figure_tolerance_and_value(pytester, dataset,
                                                                                       synthetic_xs):
    out = pytester.path / "xs.json"
    result = run_gate(pytester, synthetic_xs, dataset, f"--h36m-results={out}")
    result.assert_outcomes(failed=1)
    doc = json.loads(out.read_text())
    measured = doc["primary_mm"]
    assert measured > 56.61 + 1.0 + 100, f"random XS weights measured {measured:.2f} mm (see the module docstring)"
    assert doc["verdict"] == "FAIL: limit 57.61 mm = published 56.61 + 1.0", doc["verdict"]
    text = result.stdout.str()
    match = re.search(r"protocol 2 mpjpe ([0-9.]+) mm exceeds the published 56\.61 mm for XS by more than "
                      r"1\.0 mm \(worst action (\w+) ([0-9.]+) mm, (\d+) frames\)", text)
    assert match, text[-3000:]
    assert float(match.group(1)) == pytest.approx(measured, abs=0.005)
    assert int(match.group(4)) == PROTOCOL2_FRAMES


def test_published_variant_passes_when_the_tolerance_allows_it(pytester, dataset, synthetic_xs):
    result = run_gate(pytester, synthetic_xs, dataset, "--mpjpe-tolerance=1e6")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*: protocol 2, {PROTOCOL2_FRAMES} frames: mpjpe * "
                                 "-- pass: limit 1000056.61 mm = published 56.61 + 1000000.0"])


# --------------------------------------------------------------------------- --baseline MPJPE, real evaluator
def run_baseline(pytester: pytest.Pytester, ckpt: Path, baseline: Path, dataset, *args: str) -> pytest.RunResult:
    return pytester.runpytest(suite_file("test_baseline.py"), f"--ckpt={ckpt}", f"--baseline={baseline}",
                              f"--h36m-root={dataset.root}", "--device=cpu", "--max-output-drift=1e9",
                              "-p", "no:cacheprovider", *args)


def mpjpe_of(report: Path) -> dict:
    (ckpt,) = json.loads(report.read_text())["checkpoints"]
    return ckpt["baseline"]["mpjpe"]


@pytest.fixture(scope="module")
def perturbed(tmp_path_factory) -> Path:
    """The tiny checkpoint with seeded noise (0.05) on the final layer: a visibly different model."""
    snap = torch.load(TINY, weights_only=True, map_location="cpu")
    net = dict(snap["network"])
    key = "module.head.final_layer.weight"
    net[key] = net[key] + 0.05 * torch.randn(net[key].shape, generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("perturbed") / "tiny_perturbed.pth.tar"
    torch.save({"epoch": snap["epoch"], "network": net}, path)
    return path


def test_baseline_mpjpe_of_the_same_file_is_zero_regression(pytester, dataset):
    report = pytester.path / "same.json"
    result = run_baseline(pytester, TINY, TINY, dataset, f"--conformance-report={report}")
    result.assert_outcomes(passed=3)
    m = mpjpe_of(report)
    assert m["computed"] is True and m["protocol"] == 2
    assert m["candidate_mm"] == m["baseline_mm"] > 0 and m["regression_mm"] == 0.0, m


def test_baseline_mpjpe_of_a_perturbed_file_reports_the_difference_and_gates_it(pytester, dataset, perturbed):
    report = pytester.path / "perturbed.json"
    run_baseline(pytester, perturbed, TINY, dataset, f"--conformance-report={report}",
                 "--max-mpjpe-regression=1e9").assert_outcomes(passed=3)
    m = mpjpe_of(report)
    assert m["computed"] is True and m["regression_mm"] != 0.0, m
    assert m["regression_mm"] == pytest.approx(m["candidate_mm"] - m["baseline_mm"], abs=1e-9)
    # the worse of the two as candidate: its regression is positive, and a limit below it fails
    worse, better = (perturbed, TINY) if m["regression_mm"] > 0 else (TINY, perturbed)
    rise = abs(m["regression_mm"])
    result = run_baseline(pytester, worse, better, dataset, f"--max-mpjpe-regression={rise / 2}", "-k", "mpjpe")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*MPJPE (protocol 2) rose by {rise:.3f} mm: baseline * mm, candidate * mm*"])
