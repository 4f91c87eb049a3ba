"""`--baseline`: zero drift on identical files, drift reported and gated on perturbed weights,
architecture differences named, units converted as documented."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_convnextpose.baseline.compare import H36M_CUBE_MM, output_drift, tensor_drift

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
PERTURBED_KEY = "module.head.final_layer.weight"


def suite_file(name: str) -> str:
    from pytest_convnextpose.plugin.core import conformance_dir

    return str(conformance_dir() / name)


def run_baseline(pytester, ckpt: Path, baseline: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        suite_file("test_baseline.py"),
        f"--ckpt={ckpt}",
        f"--baseline={baseline}",
        "-p",
        "no:cacheprovider",
        "-rs",
        *args,
    )


@pytest.fixture(scope="module")
def perturbed(tmp_path_factory) -> Path:
    """The tiny checkpoint with 1e-3 seeded noise added to the final layer's weights."""
    snap = torch.load(TINY, weights_only=True, map_location="cpu")
    net = dict(snap["network"])
    noise = torch.randn(net[PERTURBED_KEY].shape, generator=torch.Generator().manual_seed(0))
    net[PERTURBED_KEY] = net[PERTURBED_KEY] + 1e-3 * noise
    path = tmp_path_factory.mktemp("ckpts") / "tiny_perturbed.pth.tar"
    torch.save({"epoch": snap["epoch"], "network": net}, path)
    return path


def baseline_of(report: Path) -> dict:
    data = json.loads(report.read_text())
    (ckpt,) = data["checkpoints"]
    return ckpt["baseline"]


def test_identical_files_report_zero_drift_and_pass(pytester):
    report = pytester.path / "report.json"
    result = run_baseline(pytester, TINY, TINY, f"--conformance-report={report}")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*MPJPE difference not computed: no --h36m-root given*"])
    b = baseline_of(report)
    assert b["architecture_differences"] == []
    assert b["tensor_summary"]["changed"] == 0 and b["tensor_summary"]["compared"] > 100
    assert b["output_drift"]["max_mm"] == 0.0 and b["output_drift"]["max_hm"] == 0.0


def test_perturbed_weights_report_drift_and_fail_at_the_threshold(pytester, perturbed):
    report = pytester.path / "report.json"
    result = run_baseline(pytester, perturbed, TINY, f"--conformance-report={report}", "--max-output-drift=1e9")
    result.assert_outcomes(passed=2, skipped=1)
    b = baseline_of(report)
    changed = [t for t in b["tensors"] if t["max_abs"] > 0]
    assert [t["key"] for t in changed] == ["head.final_layer.weight"]
    drift = b["output_drift"]["max_mm"]
    assert drift > 0
    below = run_baseline(pytester, perturbed, TINY, f"--max-output-drift={drift * 0.999}")
    below.assert_outcomes(passed=1, failed=1, skipped=1)
    below.stdout.fnmatch_lines(
        [
            "*output drift * mm exceeds --max-output-drift=*",
            "*1/* shared weights and statistics changed; most: head.final_layer.weight*",
        ]
    )
    run_baseline(pytester, perturbed, TINY, f"--max-output-drift={drift * 1.001}").assert_outcomes(passed=2, skipped=1)


def test_architecture_differences_are_named(pytester, tmp_path):
    from pytest_convnextpose import load_checkpoint
    from pytest_convnextpose.testing.synthetic import random_state_dict
    from reference_model import ArchSpec

    spec = load_checkpoint(TINY).spec.to_dict()
    spec["head_channels"] = [24, 24, 24]
    other = tmp_path / "wider_head.pth.tar"
    sd = random_state_dict(ArchSpec.from_dict(spec), seed=1)
    torch.save({"epoch": 1, "network": {"module." + k: v for k, v in sd.items()}}, other)
    result = run_baseline(pytester, other, TINY, "--max-output-drift=1e9", "-k", "architecture")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "architecture difference(s) from the baseline" in out, out
    assert "spec.head_channels: baseline [16, 16, 16], candidate [24, 24, 24]" in out, out
    assert "head.deconv_layers_1.pwconv.weight: shape [16, 64, 1, 1] in the baseline, [24, 64, 1, 1]" in out, out


FAKE_EVALUATOR = """
    # stands in for the Human3.6M evaluator: 50 mm, +0.3 mm for the perturbed file
    def evaluate_mpjpe(root, ckpt):
        return 50.0 + (0.3 if "perturbed" in str(ckpt.path) else 0.0)
"""


def _use_evaluator(pytester, monkeypatch, module: str, source: str) -> None:
    """`source`'s evaluate_mpjpe stands in for the Human3.6M evaluator; pytester's folder passes for the data."""
    # via sys.modules: an earlier in-process run may have left a stale package attribute
    evaluate = importlib.import_module("pytest_convnextpose.h36m.evaluate")
    pytester.makepyfile(**{module: source})
    pytester.syspathinsert()
    (pytester.path / "Human36M_subject9_data.json").write_text("{}")  # passes the start-up layout check
    monkeypatch.setattr(evaluate, "evaluate_mpjpe", importlib.import_module(module).evaluate_mpjpe)


def test_mpjpe_regression_gate_uses_the_evaluator(pytester, perturbed, monkeypatch):
    _use_evaluator(pytester, monkeypatch, "fake_h36m", FAKE_EVALUATOR)
    args = (f"--h36m-root={pytester.path}", "--max-output-drift=1e9", "-k", "mpjpe")
    failed = run_baseline(pytester, perturbed, TINY, *args, "--max-mpjpe-regression=0.2")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*MPJPE (protocol 2) rose by 0.300 mm: baseline 50.000 mm, candidate 50.300 mm*"])
    run_baseline(pytester, perturbed, TINY, *args, "--max-mpjpe-regression=0.4").assert_outcomes(passed=1)


COUNTING_EVALUATOR = """
    from pathlib import Path

    # stands in for the Human3.6M evaluator, and logs each file it scores
    def evaluate_mpjpe(root, ckpt):
        with open(Path(root) / "scored.txt", "a") as log:
            log.write(Path(ckpt.path).name + "\\n")
        return 50.0
"""


def test_the_baseline_is_scored_once_for_all_the_checkpoints_compared_with_it(pytester, perturbed, monkeypatch):
    _use_evaluator(pytester, monkeypatch, "counting_h36m", COUNTING_EVALUATOR)
    second = pytester.path / "second.pth.tar"
    second.write_bytes(perturbed.read_bytes())
    result = run_baseline(pytester, perturbed, TINY, f"--ckpt={second}", f"--h36m-root={pytester.path}",
                          "--max-output-drift=1e9", "-k", "mpjpe")
    result.assert_outcomes(passed=2)
    scored = sorted((pytester.path / "scored.txt").read_text().split())
    assert scored == sorted([TINY.name, perturbed.name, second.name]), scored


def test_mpjpe_needs_an_evaluator_and_says_so():
    from pytest_convnextpose.baseline.mpjpe import mpjpe_difference

    assert mpjpe_difference(None, object(), object()) == {"computed": False, "reason": "no --h36m-root given"}


def test_without_baseline_the_tests_skip_with_the_reason(pytester):
    result = pytester.runpytest(suite_file("test_baseline.py"), f"--ckpt={TINY}", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*no --baseline given*"])


def test_negative_thresholds_are_usage_errors(pytester):
    result = pytester.runpytest("--max-output-drift=-1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_one_heatmap_cell_is_the_documented_number_of_mm():
    base = np.zeros((1, 18, 3))
    cand = base.copy()
    cand[0, 3, 0] = 1.0  # one cell in x at W=32: 2000/32 = 62.5 mm, 256/32 = 8 px
    cand[0, 5, 2] = 1.0  # one depth bin at D=8: 2000/8 = 250 mm
    d = output_drift(cand, base, (32, 32, 8), (32, 32, 8), (256, 256), "test")
    assert H36M_CUBE_MM == 2000.0
    assert (d.max_mm, d.worst_joint, d.worst_joint_name) == (250.0, 5, "L_Knee")
    assert d.mean_mm == pytest.approx((62.5 + 250.0) / 18)
    assert d.max_px == 8.0 and d.max_hm == 1.0
    assert d.mm_per_unit == {"x": 62.5, "y": 62.5, "z": 250.0}


def test_drift_in_mm_compares_different_heatmap_sizes():
    base = np.full((1, 1, 3), 16.0)  # centre of a 32-cell axis...
    cand = np.full((1, 1, 3), 32.0)  # ...is the centre of a 64-cell axis: no drift in mm
    d = output_drift(cand, base, (64, 64, 64), (32, 32, 32), (256, 256), "test")
    assert d.max_mm == 0.0 and d.max_hm is None


def test_tensor_drift_statistics_are_exact():
    base = {"a": torch.tensor([3.0, 4.0]), "b": torch.zeros(2)}
    cand = {"a": torch.tensor([3.0, 4.5]), "b": torch.zeros(2)}
    (a, b) = tensor_drift(cand, base)
    assert (a.key, a.max_abs, a.mean_abs, a.rel_l2) == ("a", 0.5, 0.25, 0.5 / 5.0)
    assert not b.changed and b.rel_l2 == 0.0


def test_batchnorm_counters_never_rank_with_changed_weights():
    """The candidate's only real change is the final layer; training also advanced every BatchNorm
    counter (a large relative change). The summary names the final layer, and the counters apart."""
    from pytest_convnextpose import load_checkpoint
    from pytest_convnextpose.baseline.compare import BaselineComparison

    base = load_checkpoint(TINY).state_dict
    cand = dict(base)
    cand["head.final_layer.weight"] = base["head.final_layer.weight"] * 1.01
    counters = [k for k in base if k.endswith("num_batches_tracked")]
    for k in counters:
        cand[k] = base[k] + 700
    result = BaselineComparison({}, {}, tensors=tensor_drift(cand, base))
    assert [t.key for t in result.changed_tensors] == ["head.final_layer.weight"]
    summary = result.tensor_summary()
    assert summary.startswith("1/") and "most: head.final_layer.weight (rel 0.01" in summary, summary
    assert f"{len(counters)} BatchNorm counter(s) differ" in summary and "by 700" in summary, summary
    assert result.to_dict()["tensor_summary"]["changed_counters"] == len(counters)


def test_drift_failure_draws_the_worst_image_next_to_the_report_and_into_pytest_html(pytester, perturbed):
    from picture_checks import assert_one_picture, picture_options, require_picture_tools

    require_picture_tools()
    report, html, options = picture_options(pytester.path)
    result = run_baseline(pytester, perturbed, TINY, "-k", "drift", "--max-output-drift=0.001", *options)
    assert_one_picture(result, report, html, "test_output_drift_within_limit")
