"""End to end on a tiny Human3.6M folder the test writes (tests/h36m_helpers.py): reading,
subsampling, cropping, flip test, de-normalisation, back-projection, scoring, JSON."""
from __future__ import annotations

import json

import cv2  # noqa: F401 - [test] extra: the image tests must fail, never skip, without it
import numpy as np
import pytest
from h36m_helpers import CAMERAS, BlobFinder, write_dataset

from pytest_convnextpose import h36m
from pytest_convnextpose.h36m.geometry import camera_to_pixel

HM = (64, 64, 64)  # (D, H, W) of an M/L heatmap


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("h36m"))


def test_protocols_select_subjects_and_every_64th_frame(dataset):
    p2 = h36m.load_samples(dataset.root, 2)
    p1 = h36m.load_samples(dataset.root, 1)
    # 2 subjects x 2 actions x frames {0, 64, 128} (frame 5 is not a multiple of 64)
    assert len(p2) == 12 and {s.subject for s in p2} == {9, 11}
    assert len(p1) == 6 and {s.subject for s in p1} == {11}
    assert {s.action for s in p2} == {"Directions", "Discussion"}
    assert len(h36m.load_samples(dataset.root, 2, max_frames=5)) == 5


def test_ground_truth_has_the_thorax_between_the_shoulders(dataset):
    s = h36m.load_samples(dataset.root, 1)[0]
    assert s.joint_cam.shape == (18, 3)
    # an affine map keeps midpoints: equal up to float32 rounding (the ground truth is float32)
    np.testing.assert_allclose(s.joint_cam[17], (s.joint_cam[11] + s.joint_cam[14]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(s.root_cam, s.joint_cam[0])


def test_ground_truth_and_camera_are_float32_like_the_authors(dataset):
    """The authors load R, t, f, c and the world joints as float32 and compute in float32: the
    ground truth is that float32 result (within float32 rounding of the float64 value)."""
    for s in h36m.load_samples(dataset.root, 2):
        assert s.joint_cam.dtype == s.root_cam.dtype == s.f.dtype == s.c.dtype == np.float32
        cam = CAMERAS[s.subject]
        world = dataset.joints_world[s.image_id]
        world = np.vstack([world, (world[11] + world[14]) / 2])
        exact = world @ cam["R"].T + cam["t"]  # float64, from the same JSON values
        np.testing.assert_allclose(s.joint_cam, exact, atol=1e-3, rtol=0)  # 4000 mm * 2^-24 * few ops
        f32 = world.astype(np.float32) @ cam["R"].astype(np.float32).T + cam["t"].astype(np.float32)
        assert np.abs(s.joint_cam[:17] - f32[:17]).max() <= 2 * np.spacing(np.float32(5000.0))


def _write_preds(path, records):
    path.write_text(json.dumps(records))
    return path


def test_ground_truth_predictions_score_zero(dataset, tmp_path):
    samples = h36m.load_samples(dataset.root, 2)
    preds = _write_preds(tmp_path / "p.json", [{"image_id": s.image_id, "joint_cam": s.joint_cam[:17].tolist()}
                                               for s in samples])
    res = h36m.score_predictions_file(preds, dataset.root, protocol=2)
    assert res.scores["mpjpe"]["mean"] == 0.0
    # 17 joints: the Thorax is made from the predicted shoulders in float64, the ground truth's in
    # float32 (as the authors'), 1e-4 mm apart; the alignments fitted with it move by less than that
    for name in ("pa_mpjpe_authors", "pa_mpjpe_scaled"):
        assert res.scores[name]["mean"] == pytest.approx(0.0, abs=1e-4), name


def test_offset_of_non_root_joints_scores_that_offset_times_16_over_17(dataset, tmp_path):
    samples = h36m.load_samples(dataset.root, 2)
    records = []
    for s in samples:
        pose = s.joint_cam.astype(np.float64)  # float64: the offset is added exactly
        pose[1:] += [3.0, 4.0, 0.0]  # 5 mm on each of the 16 non-root evaluated joints
        records.append({"image_id": s.image_id, "joint_cam": pose.tolist()})
    res = h36m.score_predictions_file(_write_preds(tmp_path / "p.json", records), dataset.root, protocol=2)
    assert res.primary_metric == "mpjpe"
    assert res.primary_mm == pytest.approx(5.0 * 16 / 17, abs=1e-9)
    for action, err in res.scores["mpjpe"]["per_group"].items():
        assert err == pytest.approx(5.0 * 16 / 17, abs=1e-9), action


def test_heatmap_unit_predictions_are_denormalised_and_back_projected(dataset, tmp_path):
    """Ground truth turned into heatmap units by hand (inverse of docs/spec.md §6) scores zero."""
    samples = h36m.load_samples(dataset.root, 2)
    d, h, w = HM
    records = []
    for s in samples:
        px = camera_to_pixel(s.joint_cam, s.f, s.c)
        bx, by, bw, bh = s.bbox
        coords = np.stack([(px[:, 0] - bx) / bw * w, (px[:, 1] - by) / bh * h,
                           ((px[:, 2] - s.root_cam[2]) / 1000.0 + 1.0) / 2.0 * d], axis=1)
        records.append({"image_id": s.image_id, "coords": coords.tolist()})
    path = tmp_path / "hm.json"
    path.write_text(json.dumps({"heatmap_shape": list(HM), "predictions": records}))
    res = h36m.score_predictions_file(path, dataset.root, protocol=2)
    # de-normalised in float32 as the authors' (float32 spacing at 4 m: 2.4e-4 mm)
    assert res.scores["mpjpe"]["mean"] == pytest.approx(0.0, abs=1e-3)


def test_missing_prediction_is_named(dataset, tmp_path):
    samples = h36m.load_samples(dataset.root, 2)
    preds = _write_preds(tmp_path / "p.json", [{"image_id": s.image_id, "joint_cam": s.joint_cam.tolist()}
                                               for s in samples[1:]])
    with pytest.raises(h36m.H36MDataError, match=f"first image_id {samples[0].image_id}"):
        h36m.score_predictions_file(preds, dataset.root)


def test_crop_and_back_projection_find_the_pelvis(dataset):
    """The blob on the Pelvis, found in the crop, maps back to the Pelvis (crop + de-normalisation)."""
    samples = h36m.load_samples(dataset.root, 2)
    coords = h36m.predict(BlobFinder(HM), samples, HM[2], use_flip_test=False, progress=False)
    for c, s in zip(coords, samples):
        u, v = dataset.pelvis_px[s.image_id]
        cam = h36m.to_camera(c, s, HM)[0]
        # x = (u - cx) / fx * Z_root with the blob's pixel (rounded projection, <= 0.5 px off)
        expected = [(u - s.c[0]) / s.f[0] * s.root_cam[2], (v - s.c[1]) / s.f[1] * s.root_cam[2], s.root_cam[2]]
        tol = 0.05 * s.root_cam[2] / s.f[0]  # 0.05 px of centroid error after resampling
        np.testing.assert_allclose(cam, expected, atol=tol, err_msg=f"image {s.image_id}")
        gt_px = camera_to_pixel(s.joint_cam[:1], s.f, s.c)[0]
        assert abs(gt_px[0] - u) <= 0.5 and abs(gt_px[1] - v) <= 0.5


def test_flip_test_averages_with_the_authors_mirror_of_heatmap_x(dataset):
    """Flip test: x_avg = (x + (W-1) - x_flipped) / 2; with x_flipped = (255 - col) W/256 that is
    x + (W/256 - 1) / 2 (the authors' W-1 mirror, a known sub-pixel shift); y and z unchanged."""
    samples = h36m.load_samples(dataset.root, 1)
    finder = BlobFinder(HM)
    plain = h36m.predict(finder, samples, HM[2], use_flip_test=False, progress=False)
    flipped = h36m.predict(finder, samples, HM[2], use_flip_test=True, progress=False)
    shift = (HM[2] / 256 - 1) / 2
    np.testing.assert_allclose(flipped[..., 0], plain[..., 0] + shift, atol=1e-3)
    np.testing.assert_allclose(flipped[..., 1:], plain[..., 1:], atol=1e-3)


def test_evaluate_model_writes_per_action_json(dataset, tmp_path):
    res = h36m.evaluate_model(BlobFinder(HM), HM, dataset.root, protocol=1, use_flip_test=False, batch_size=4,
                              progress=False)
    assert res.primary_metric == "pa_mpjpe_authors" and res.num_samples == 6
    out = tmp_path / "res.json"
    res.write(out)
    doc = json.loads(out.read_text())
    assert set(doc["metrics"]) == {"mpjpe", "pa_mpjpe_authors", "pa_mpjpe_scaled"}
    assert set(doc["metrics"]["mpjpe"]["per_action_mm"]) == {"Directions", "Discussion"}
    # every joint predicted at the Pelvis: root-relative prediction is 0, so MPJPE is the mean
    # distance of the 17 ground-truth joints from the Pelvis (known from the ground truth alone)
    samples = h36m.load_samples(dataset.root, 1)
    want = np.mean([np.linalg.norm(s.joint_cam[:17] - s.joint_cam[0], axis=1).mean() for s in samples])
    assert doc["metrics"]["mpjpe"]["mean_mm"] == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("image_format", ["png", "jpg"])
def test_image_files_are_read_through_opencv(tmp_path, image_format):
    """PNG is lossless: the same predictions as the .npy arrays. JPEG blurs the square's edges a
    little: the blob is still found within a tenth of a heatmap unit."""
    written = write_dataset(tmp_path / image_format, image_format=image_format)
    samples = h36m.load_samples(written.root, 1, max_frames=2)
    coords = h36m.predict(BlobFinder(HM), samples, HM[2], use_flip_test=False, progress=False)
    npy = write_dataset(tmp_path / "npy", image_format="npy")
    ref = h36m.predict(BlobFinder(HM), h36m.load_samples(npy.root, 1, max_frames=2), HM[2], use_flip_test=False,
                       progress=False)
    np.testing.assert_allclose(coords, ref, atol=1e-5 if image_format == "png" else 0.1)


def test_rootnet_boxes_and_roots_replace_the_ground_truth(dataset, tmp_path):
    gt = h36m.load_samples(dataset.root, 1)
    recs = [{"image_id": s.image_id, "bbox": (s.bbox + [1.0, 2.0, 0.0, 0.0]).tolist(),
             "root_cam": (s.root_cam + [0.0, 0.0, 100.0]).tolist()} for s in gt]
    path = tmp_path / "rootnet.json"
    path.write_text(json.dumps(recs))
    rn = h36m.load_samples(dataset.root, 1, bbox_source="rootnet", rootnet_file=path)
    for a, b in zip(gt, rn):
        np.testing.assert_allclose(b.bbox, a.bbox + [1.0, 2.0, 0.0, 0.0])
        assert b.root_cam[2] == pytest.approx(a.root_cam[2] + 100.0)
        np.testing.assert_allclose(b.joint_cam, a.joint_cam)  # scored against the same ground truth
