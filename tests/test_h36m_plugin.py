"""The accuracy gate through pytest: a predictions file is gated against the published figure
of the variant it claims (docs/spec.md §2: L, protocol 2, 49.75 mm) plus `--mpjpe-tolerance`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from h36m_helpers import write_dataset

from pytest_convnextpose import h36m

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "conformance" / "test_accuracy.py"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("h36m_plugin"))


def _preds(dataset, path: Path, offset_mm: float) -> Path:
    """Ground truth with every non-root joint moved offset_mm along x: MPJPE = offset * 16/17."""
    records = []
    for s in h36m.load_samples(dataset.root, 2):
        pose = s.joint_cam.astype(np.float64)  # float64: the offset is added exactly
        pose[1:, 0] += offset_mm
        records.append({"image_id": s.image_id, "joint_cam": pose.tolist()})
    path.write_text(json.dumps(records))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"{SUITE}::test_h36m_predictions_file",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("offset, passes", [(53.0, True), (54.0, False)])
def test_predictions_file_is_gated_at_published_plus_tolerance(dataset, tmp_path, offset, passes):
    # L protocol 2: 49.75 + 1.0 = 50.75 mm; 53 * 16/17 = 49.88 passes, 54 * 16/17 = 50.82 fails
    preds = _preds(dataset, tmp_path / "p.json", offset)
    out = tmp_path / "res.json"
    proc = _run(f"--h36m-root={dataset.root}", f"--h36m-preds={preds}", "--h36m-preds-variant=L",
                f"--h36m-results={out}")
    assert (proc.returncode == 0) == passes, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["primary_mm"] == pytest.approx(offset * 16 / 17, abs=1e-9)
    assert set(doc["metrics"]["mpjpe"]["per_action_mm"]) == {"Directions", "Discussion"}


def test_predictions_file_without_variant_is_reported_not_gated(dataset, tmp_path):
    preds = _preds(dataset, tmp_path / "p.json", 500.0)
    proc = _run(f"--h36m-root={dataset.root}", f"--h36m-preds={preds}")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "reported only" in proc.stdout


def test_accuracy_tests_skip_with_a_reason_without_data():
    proc = _run("-rs")
    assert proc.returncode == 0 and "pass --h36m-preds FILE" in proc.stdout, proc.stdout[-2000:]


def test_already_aligned_predictions_are_scored_as_they_are(dataset, tmp_path):
    """`--h36m-preds-aligned --protocol 1`: the poses are compared as given (no root subtraction,
    no alignment): 17 joints, each 6 mm off the root-relative ground truth -> PA-MPJPE 6 mm."""
    records = []
    for s in h36m.load_samples(dataset.root, 1):
        gt = s.joint_cam.astype(np.float64)
        records.append({"image_id": s.image_id, "joint_cam": (gt[:17] - gt[0] + [6.0, 0.0, 0.0]).tolist()})
    preds = tmp_path / "aligned.json"
    preds.write_text(json.dumps(records))
    out = tmp_path / "res.json"
    proc = _run(f"--h36m-root={dataset.root}", f"--h36m-preds={preds}", "--protocol=1", "--h36m-preds-aligned",
                f"--h36m-results={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["primary_metric"] == "pa_mpjpe_authors" and list(doc["metrics"]) == ["pa_mpjpe_authors"]
    assert doc["primary_mm"] == pytest.approx(6.0, abs=1e-9)
    usage = _run(f"--h36m-root={dataset.root}", f"--h36m-preds={preds}", "--h36m-preds-aligned")  # protocol 2
    assert usage.returncode == 4 and "--h36m-preds-aligned needs --h36m-preds FILE and --protocol 1" in usage.stderr, \
        usage.stderr[-2000:]
