"""Boxes, crops, normalisation and camera geometry of the Human3.6M evaluation, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from pytest_convnextpose.h36m import geometry as g


def test_process_bbox_sanitises_squares_and_enlarges():
    # (10, 20, 101, 51): x2 = 10 + 100 = 110, y2 = 20 + 50 = 70 -> w 100, h 50, centre (60, 45);
    # squared to 100 x 100, x1.25 -> 125 x 125 around the centre.
    out = g.process_bbox([10, 20, 101, 51], 640, 480)
    np.testing.assert_allclose(out, [60 - 62.5, 45 - 62.5, 125.0, 125.0])


def test_process_bbox_clips_to_the_image():
    # starts left of the image: x1 = 0, x2 = min(639, 0 + 49) = 49; y: 10..(10+99)=109
    out = g.process_bbox([-30, 10, 50, 100], 640, 480)
    w, h = 49.0, 99.0
    cx, cy = 0 + w / 2, 10 + h / 2
    np.testing.assert_allclose(out, [cx - h * 1.25 / 2, cy - h * 1.25 / 2, h * 1.25, h * 1.25])


@pytest.mark.parametrize("bbox", [[10, 10, 0, 50], [10, 10, 50, -1], [700, 10, 50, 50]])
def test_process_bbox_without_area_is_none(bbox):
    assert g.process_bbox(bbox, 640, 480) is None, f"bbox {bbox} has no area in a 640x480 image"


def test_patch_transform_maps_the_box_onto_the_patch():
    bbox = [33.5, -12.25, 80.0, 80.0]
    t = g.patch_transform(bbox)
    corners = np.array([[33.5, -12.25, 1.0], [113.5, 67.75, 1.0], [73.5, 27.75, 1.0]])
    np.testing.assert_allclose(corners @ t.T, [[0, 0], [256, 256], [128, 128]], atol=1e-12)


def test_warp_at_unit_scale_is_a_shifted_copy():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(300, 300, 3)).astype(np.uint8)
    # box (10, 20, 256, 256): scale 1, patch pixel (x, y) = image pixel (x + 10, y + 20)
    patch = g.warp_affine(img, g.patch_transform([10, 20, 256, 256]))
    np.testing.assert_array_equal(patch, img[20:276, 10:266].astype(np.float32))


def _bilinear_loop(img, inv, x, y):
    """Independent scalar bilinear sample with a zero border (OpenCV's BORDER_CONSTANT)."""
    sx = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]
    sy = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
    acc = np.zeros(3)
    for yy in (int(np.floor(sy)), int(np.floor(sy)) + 1):
        for xx in (int(np.floor(sx)), int(np.floor(sx)) + 1):
            wgt = (1 - abs(sx - xx)) * (1 - abs(sy - yy))
            if 0 <= yy < img.shape[0] and 0 <= xx < img.shape[1]:
                acc += wgt * img[yy, xx]
    return acc


def test_warp_matches_a_scalar_bilinear_formulation_including_the_border():
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, size=(60, 80, 3))
    bbox = [-7.3, 12.6, 71.9, 71.9]  # sticks out of the image: zero border in play
    t = g.patch_transform(bbox)
    inv = np.linalg.inv(np.vstack([t, [0, 0, 1]]))
    patch = g.warp_affine(img, t)
    for y, x in [(0, 0), (5, 3), (100, 200), (255, 255), (37, 129), (200, 10)]:
        np.testing.assert_allclose(patch[y, x], _bilinear_loop(img, inv, x, y), rtol=1e-5, atol=1e-3,
                                   err_msg=f"patch pixel ({x}, {y})")


def test_normalise_applies_imagenet_statistics_to_0_255_values():
    patch = np.zeros((2, 2, 3), np.float32)
    patch[0, 0] = 255.0
    out = g.normalise(patch)
    assert out.shape == (3, 2, 2)
    np.testing.assert_allclose(out[:, 0, 0], [(255 - 0.485) / 0.229, (255 - 0.456) / 0.224, (255 - 0.406) / 0.225],
                               rtol=1e-6)
    np.testing.assert_allclose(out[:, 1, 1], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)


def test_heatmap_to_pixel_denormalises_like_the_authors():
    coords = np.array([[16.0, 48.0, 48.0], [0.0, 0.0, 0.0]])
    out = g.heatmap_to_pixel(coords, [100.0, 50.0, 200.0, 200.0], (64, 64, 64), root_depth=4000.0)
    # x = 16/64*200 + 100 = 150; y = 48/64*200 + 50 = 200; z = (48/64*2 - 1)*1000 + 4000 = 4500
    np.testing.assert_allclose(out[0], [150.0, 200.0, 4500.0])
    np.testing.assert_allclose(out[1], [100.0, 50.0, 3000.0])


def test_back_projection_inverts_projection():
    rng = np.random.default_rng(2)
    cam = rng.normal(scale=300, size=(18, 3)) + [0, 0, 4500]
    f, c = np.array([1145.05, 1143.78]), np.array([512.54, 515.45])
    np.testing.assert_allclose(g.pixel_to_camera(g.camera_to_pixel(cam, f, c), f, c), cam, rtol=1e-12)
    # one point by hand: u = 300/4500*1145.05 + 512.54
    u = g.camera_to_pixel(np.array([[300.0, 0.0, 4500.0]]), f, c)[0, 0]
    assert u == pytest.approx(300 / 4500 * 1145.05 + 512.54)


def test_world_to_camera_is_rotation_then_translation():
    r = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about z
    out = g.world_to_camera(np.array([[1.0, 2.0, 3.0]]), r, [10.0, 20.0, 30.0])
    np.testing.assert_allclose(out, [[-2.0 + 10.0, 1.0 + 20.0, 3.0 + 30.0]])
