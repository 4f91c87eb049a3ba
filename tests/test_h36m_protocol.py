"""The authors' scoring details, each against an independent formulation or arithmetic:
protocol-1 rigid alignment fitted on all 18 joints (Thorax included) before the Thorax is
dropped (scipy's Kabsch solver as the reference), 17-joint predictions, re-scoring already
aligned poses, integer boxes; and the fast path (DataLoader workers, batch sharding) giving
the same numbers as the plain one."""
from __future__ import annotations

import json

import numpy as np
import pytest
from h36m_helpers import BlobFinder, write_dataset
from scipy.spatial.transform import Rotation  # [test] extra: the independent reference, so never a skip

from pytest_convnextpose import h36m
from pytest_convnextpose.h36m.distributed import shard_bounds, share_sizes

HM = (64, 64, 64)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("h36m_protocol"))


def kabsch_errors(pred: np.ndarray, gt: np.ndarray, fit: list[int], scored: list[int]) -> np.ndarray:
    """Per-joint errors on `scored` after the best rotation + translation fitted on joints `fit`
    (scipy's `Rotation.align_vectors`: min sum |a_i - R b_i|^2 over rotations)."""
    p, g = pred[fit], gt[fit]
    rot, _ = Rotation.align_vectors(g - g.mean(0), p - p.mean(0))
    moved = (pred - p.mean(0)) @ rot.as_matrix().T + g.mean(0)
    return np.linalg.norm(moved[scored] - gt[scored], axis=1)


def _noisy_predictions(samples, seed: int, thorax_off_mm: float) -> list[np.ndarray]:
    """Ground truth, rotated a little, with 30 mm noise, and the Thorax moved `thorax_off_mm`."""
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        gt = s.joint_cam.astype(np.float64)
        rot = Rotation.from_rotvec(rng.normal(scale=0.1, size=3)).as_matrix()
        pose = (gt - gt[0]) @ rot.T + gt[0] + rng.normal(scale=30.0, size=gt.shape)
        pose[17] += [thorax_off_mm, -thorax_off_mm, 0.0]
        out.append(pose)
    return out


def _write(path, samples, poses, joints: int = 18):
    path.write_text(json.dumps([{"image_id": s.image_id, "joint_cam": p[:joints].tolist()}
                                for s, p in zip(samples, poses)]))
    return path


@pytest.mark.parametrize("thorax_off_mm", [0.0, 400.0])
def test_protocol1_aligns_on_all_18_joints_then_drops_the_thorax(dataset, tmp_path, thorax_off_mm):
    samples = h36m.load_samples(dataset.root, 1)
    poses = _noisy_predictions(samples, 1, thorax_off_mm)
    res = h36m.score_predictions_file(_write(tmp_path / "p.json", samples, poses), dataset.root, protocol=1)
    all18, eval17 = list(range(18)), list(range(17))
    gts = [s.joint_cam.astype(np.float64) for s in samples]
    want = np.mean([kabsch_errors(p, g, all18, eval17).mean() for p, g in zip(poses, gts)])
    assert res.primary_metric == "pa_mpjpe_authors"
    assert res.primary_mm == pytest.approx(want, rel=1e-9)
    # fitting on the 17 evaluated joints instead is a different figure (12.6 mm apart in the issue
    # for a far-off Thorax): the test can tell the two orders apart
    on17 = np.mean([kabsch_errors(p, g, eval17, eval17).mean() for p, g in zip(poses, gts)])
    assert abs(want - on17) > (1.0 if thorax_off_mm else 1e-3), (want, on17)


def test_protocol1_with_scale_is_fitted_on_18_joints_too(dataset, tmp_path):
    """Umeyama with scale, independently: scale = trace(S D) / |centred source|^2 after Kabsch."""
    samples = h36m.load_samples(dataset.root, 1)
    poses = _noisy_predictions(samples, 2, 250.0)
    res = h36m.score_predictions_file(_write(tmp_path / "p.json", samples, poses), dataset.root, protocol=1)
    want = []
    for p, s in zip(poses, samples):
        g = s.joint_cam.astype(np.float64)
        p0, g0 = p - p.mean(0), g - g.mean(0)
        rot, _ = Rotation.align_vectors(g0, p0)
        rotated = p0 @ rot.as_matrix().T
        scale = (rotated * g0).sum() / (p0 ** 2).sum()
        want.append(np.linalg.norm(scale * rotated[:17] + g.mean(0) - g[:17], axis=1).mean())
    assert res.scores["pa_mpjpe_scaled"]["mean"] == pytest.approx(np.mean(want), rel=1e-9)


def test_seventeen_joint_predictions_get_the_shoulders_midpoint_as_thorax(dataset, tmp_path):
    samples = h36m.load_samples(dataset.root, 1)
    poses = _noisy_predictions(samples, 3, 0.0)
    res = h36m.score_predictions_file(_write(tmp_path / "p.json", samples, poses, joints=17), dataset.root,
                                      protocol=1)
    want = []
    for p, s in zip(poses, samples):
        p18 = np.vstack([p[:17], (p[11] + p[14]) / 2])
        want.append(kabsch_errors(p18, s.joint_cam.astype(np.float64), list(range(18)), list(range(17))).mean())
    assert res.primary_mm == pytest.approx(np.mean(want), rel=1e-9)
    # protocol 2 never looks at the Thorax: same MPJPE as the 18-joint file
    p2 = h36m.score_predictions_file(_write(tmp_path / "p17.json", samples, poses, joints=17), dataset.root,
                                     protocol=1).scores["mpjpe"]["mean"]
    p2_18 = h36m.score_predictions_file(_write(tmp_path / "p18.json", samples, poses), dataset.root,
                                        protocol=1).scores["mpjpe"]["mean"]
    assert p2 == pytest.approx(p2_18, rel=1e-12)


def test_already_aligned_poses_are_scored_as_they_are(dataset, tmp_path):
    """The authors' protocol-1 output: 17 joints, root-relative ground truth frame, moved by the
    alignment (the Pelvis is not at 0). Scored as given: mean |pose - root-relative GT|."""
    samples = h36m.load_samples(dataset.root, 1)
    rng = np.random.default_rng(4)
    poses, want = [], []
    for s in samples:
        g = s.joint_cam.astype(np.float64)
        g = g - g[0]
        pose = g[:17] + rng.normal(scale=20.0, size=(17, 3)) + [7.0, -3.0, 2.0]
        poses.append(pose)
        want.append(np.linalg.norm(pose - g[:17], axis=1).mean())
    path = _write(tmp_path / "aligned.json", samples, poses, joints=17)
    res = h36m.score_predictions_file(path, dataset.root, protocol=1, aligned=True)
    assert list(res.scores) == ["pa_mpjpe_authors"] and res.primary_metric == "pa_mpjpe_authors"
    assert res.primary_mm == pytest.approx(np.mean(want), rel=1e-12)
    realigned = h36m.score_predictions_file(path, dataset.root, protocol=1).primary_mm
    assert realigned < res.primary_mm - 0.1, "re-aligning already aligned poses lowers the figure"
    with pytest.raises(h36m.H36MDataError, match="only be scored with protocol 1"):
        h36m.score_predictions_file(path, dataset.root, protocol=2, aligned=True)


def test_records_mixing_17_and_18_joints_are_refused(dataset, tmp_path):
    samples = h36m.load_samples(dataset.root, 1)
    recs = [{"image_id": s.image_id, "joint_cam": s.joint_cam[:17 if i else 18].tolist()}
            for i, s in enumerate(samples)]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(recs))
    with pytest.raises(h36m.H36MDataError, match="mix 18 and 17 joints"):
        h36m.score_predictions_file(path, dataset.root, protocol=1)


def test_integer_boxes_in_the_annotations_are_truncated(tmp_path):
    written = write_dataset(tmp_path / "int", integer_boxes=True)
    doc = json.loads((written.root / "annotations" / "Human36M_subject11_data.json").read_text())
    boxes = {a["image_id"]: a["bbox"] for a in doc["annotations"]}
    for s in h36m.load_samples(written.root, 1):
        assert all(isinstance(v, int) for v in boxes[s.image_id])
        np.testing.assert_array_equal(s.bbox, np.trunc(s.bbox))  # every value a whole number
        x, y, w, h = boxes[s.image_id]
        side = max(min(319.0, x + w - 1.0) - x, min(239.0, y + h - 1.0) - y)  # inside the 320x240 image here
        assert s.bbox[2] == s.bbox[3] == np.trunc(side * 1.25)


# --------------------------------------------------------------------------- the fast path changes nothing
@pytest.mark.slow
def test_workers_and_batch_sizes_give_the_same_outputs(dataset):
    samples = h36m.load_samples(dataset.root, 2)
    ref = h36m.predict(BlobFinder(HM), samples, HM[2], use_flip_test=True, workers=0, batch_size=32, progress=False)
    for workers, batch in ((2, 5), (1, 1), (2, 32)):
        out = h36m.predict(BlobFinder(HM), samples, HM[2], use_flip_test=True, workers=workers, batch_size=batch,
                           progress=False)
        np.testing.assert_array_equal(out, ref, err_msg=f"workers {workers}, batch {batch}")


def test_bad_image_in_a_worker_is_one_line_naming_it(tmp_path):
    written = write_dataset(tmp_path / "bad", image_format="png")
    samples = h36m.load_samples(written.root, 2)
    samples[7].image_path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(h36m.H36MDataError) as info:
        h36m.predict(BlobFinder(HM), samples, HM[2], workers=2, batch_size=3, progress=False)
    message = str(info.value)
    assert message == f"{samples[7].image_path}: cannot read the image (OpenCV could not decode it)", message


def test_no_progress_frames_off_a_terminal(dataset, capfd):
    h36m.predict(BlobFinder(HM), h36m.load_samples(dataset.root, 1), HM[2], workers=0)  # progress="auto"
    assert "\r" not in capfd.readouterr().err


@pytest.mark.parametrize("items, batch, world", [(12, 32, 2), (548, 32, 2), (548, 32, 3), (100, 7, 4), (5, 2, 8)])
def test_shards_are_whole_batches_that_tile_the_frames_in_order(items, batch, world):
    bounds = [shard_bounds(items, batch, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == items
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])), bounds  # contiguous, in rank order
    assert all(lo % batch == 0 for lo, hi in bounds if hi > lo), bounds  # each share starts a batch
    batches = [-(-(hi - lo) // batch) for lo, hi in bounds]
    assert max(batches) - min(batches) <= 1, batches
    assert share_sizes(items, batch, world) == [hi - lo for lo, hi in bounds]


@pytest.mark.slow
def test_workers_start_after_opencv_has_run_threads_in_this_process(tmp_path):
    """Forked workers must not touch OpenCV's thread pool (a child reconfiguring it deadlocked on
    state copied from the parent). Run in a subprocess with a timeout: a hang fails, not blocks."""
    import subprocess
    import sys
    import textwrap

    written = write_dataset(tmp_path / "fork", image_format="png")
    code = textwrap.dedent(f"""
        import cv2, numpy as np, torch
        from pytest_convnextpose import h36m
        big = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3)).astype(np.uint8)
        for _ in range(5):  # multi-stripe calls: OpenCV's pool runs threads in this process
            cv2.warpAffine(big, np.float64([[0.9, 0.1, 5], [0, 0.9, 7]]), (1400, 1400))
            cv2.cvtColor(big, cv2.COLOR_BGR2RGB)
        model = lambda x: x.mean(dim=(2, 3))[:, None, :].expand(-1, 18, -1)
        samples = h36m.load_samples({str(written.root)!r}, 2)
        for _ in range(3):
            assert h36m.predict(model, samples, 64, workers=2, batch_size=2, progress=False).shape == (12, 18, 3)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
