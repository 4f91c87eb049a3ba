"""Against the authors' own pipeline, when a checkout of their code is at hand.

    CONVNEXTPOSE_AUTHORS_CODE=/path/to/ConvNeXtPose pytest tests/test_h36m_authors.py

Skipped (with this reason) without it: the other Human3.6M tests carry their own evidence
(independent formulations and arithmetic); this one adds the authors' code itself as the
oracle, run in a subprocess from a temporary folder (tests/authors_h36m_oracle.py). On a
generated dataset in their layout with real-valued cameras (JPEG, textured), for both
protocols and both box sources: the same frames, boxes, roots and float32 ground truth,
byte-identical network inputs (same OpenCV), and their `evaluate` on the same network
outputs within 0.01 mm of ours; re-scoring their protocol-1 output with `aligned=True`
gives their figure.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from h36m_helpers import write_dataset

from pytest_convnextpose import h36m

AUTHORS = os.environ.get("CONVNEXTPOSE_AUTHORS_CODE")
ORACLE = Path(__file__).resolve().parent / "authors_h36m_oracle.py"
HM = (32, 32, 32)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not AUTHORS,
        reason="set CONVNEXTPOSE_AUTHORS_CODE to a checkout of medialab-ku/ConvNeXtPose "
        "to compare with the authors' own Human3.6M code",
    ),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors") / "Human36M"
    written = write_dataset(
        root, image_format="jpg", seed=7, frames=(0, 5, 64, 128, 192), size=(400, 300), textured=True
    )
    recs = []  # a RootNet file: real-valued boxes and roots near the ground truth
    for s in h36m.load_samples(root, 2):
        recs.append(
            {
                "image_id": s.image_id,
                "bbox": (s.bbox + [1.3, -2.7, 3.1, 3.1]).tolist(),
                "root_cam": (s.root_cam.astype(np.float64) + [5.5, -3.25, 87.125]).tolist(),
            }
        )
    (root / "bbox_root").mkdir()
    (root / "bbox_root" / "bbox_root_human36m_output.json").write_text(json.dumps(recs))
    return written


@pytest.mark.parametrize("bbox_source", ["gt", "rootnet"])
@pytest.mark.parametrize("protocol", [1, 2])
def test_the_authors_pipeline_agrees(dataset, tmp_path, protocol, bbox_source):
    samples = h36m.load_samples(dataset.root, protocol, bbox_source=bbox_source)
    rng = np.random.default_rng(protocol)
    coords = rng.uniform(4, 28, size=(len(samples), 18, 3)).astype(np.float32)  # network outputs, heatmap units
    np.save(tmp_path / "preds.npy", coords)
    proc = subprocess.run(
        [
            sys.executable,
            str(ORACLE),
            AUTHORS,
            str(dataset.root),
            str(tmp_path / "work"),
            str(protocol),
            str(tmp_path / "preds.npy"),
            *(["--rootnet"] if bbox_source == "rootnet" else []),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, ORACLE_HEATMAP="32,32,32"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [f["image_id"] for f in theirs["frames"]] == [s.image_id for s in samples]
    for f, s in zip(theirs["frames"], samples):
        np.testing.assert_array_equal(s.bbox, f["bbox"])
        np.testing.assert_array_equal(s.root_cam.astype(np.float64), f["root_cam"])
        assert f["gt_dtype"] == "float32" and s.joint_cam.dtype == np.float32
        np.testing.assert_array_equal(s.joint_cam.astype(np.float64), f["joint_cam"])
        ours = hashlib.sha256(h36m.network_input(s.image_path, s.bbox).tobytes()).hexdigest()
        assert ours == f["input_sha256"], f"image {s.image_id}: network input differs from the authors'"
    pred_cam = np.stack([h36m.to_camera(c, s, HM) for c, s in zip(coords, samples)])
    res = h36m.score(pred_cam, samples, protocol)
    assert res.primary_mm == pytest.approx(theirs["mean_mm"], abs=0.01)
    if protocol == 1:
        again = h36m.score_predictions_file(
            theirs["saved"], dataset.root, protocol=1, bbox_source=bbox_source, aligned=True
        )
        assert again.primary_mm == pytest.approx(theirs["mean_mm"], abs=0.01)
