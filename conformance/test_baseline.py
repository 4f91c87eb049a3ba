"""Each checkpoint against `--baseline PATH`: the gate on model changes in CI.

Skipped, with the reason, when no --baseline is given. The full comparison (architecture
differences, per-tensor drift, output drift in heatmap units and mm at the Human3.6M
scale, MPJPE when --h36m-root is given) goes into the JSON report under the checkpoint's
"baseline" field; the failure messages summarise it.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.conformance


def test_architecture_matches_baseline(convnextpose_baseline_comparison):
    diffs = convnextpose_baseline_comparison.architecture_differences
    if diffs:
        pytest.fail(
            f"{len(diffs)} architecture difference(s) from the baseline "
            f"{convnextpose_baseline_comparison.baseline['path']}: "
            + "; ".join(diffs[:10])
            + (" ..." if len(diffs) > 10 else ""),
            pytrace=False,
        )


def test_output_drift_within_limit(convnextpose_baseline_comparison, pytestconfig, convnextpose_pictures):
    limit = pytestconfig.getoption("convnextpose_max_output_drift")
    out = convnextpose_baseline_comparison.output
    if out is None:
        pytest.fail(
            f"cannot compare outputs with the baseline: {convnextpose_baseline_comparison.output_unavailable}",
            pytrace=False,
        )
    if not out.max_mm <= limit:
        base, cand = convnextpose_baseline_comparison.worst_pair_mm()
        picture = convnextpose_pictures.compare(
            base,
            cand,
            labels=("baseline", "candidate"),
            unit="mm, Human3.6M scale",
            title=f"output drift, sample {out.worst_sample}: worst joint {out.worst_joint_name} {out.max_mm:.3g} mm "
            f"(limit {limit:g} mm)",
        )
        pytest.fail(
            f"output drift {out.max_mm:.4g} mm exceeds --max-output-drift={limit:g} mm\n"
            f"{convnextpose_baseline_comparison.output_summary()}\nweights: "
            f"{convnextpose_baseline_comparison.tensor_summary()}\n"
            f"{picture}",
            pytrace=False,
        )


def test_mpjpe_regression_within_limit(convnextpose_baseline_comparison, pytestconfig):
    mpjpe = convnextpose_baseline_comparison.mpjpe
    if mpjpe.get("error"):
        pytest.fail(f"MPJPE difference not computed: {mpjpe['error']}", pytrace=False)
    if not mpjpe.get("computed"):
        pytest.skip(f"MPJPE difference not computed: {mpjpe.get('reason')}")
    limit = pytestconfig.getoption("convnextpose_max_mpjpe_regression")
    if not mpjpe["regression_mm"] <= limit:
        pytest.fail(
            f"MPJPE (protocol 2) rose by {mpjpe['regression_mm']:.3f} mm: baseline {mpjpe['baseline_mm']:.3f} "
            f"mm, candidate {mpjpe['candidate_mm']:.3f} mm (--max-mpjpe-regression={limit:g} mm)",
            pytrace=False,
        )
