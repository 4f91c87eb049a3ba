"""Boxes, crops (OpenCV), normalisation and camera geometry of the Human3.6M evaluation, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from pytest_convnextpose.h36m import geometry as g
from pytest_convnextpose.h36m.images import crop_rgb, patch_transform, read_bgr


def test_process_bbox_sanitises_squares_and_enlarges():
    # (10, 20, 101, 51): x2 = 10 + 100 = 110, y2 = 20 + 50 = 70 -> w 100, h 50, centre (60, 45);
    # squared to 100 x 100, x1.25 -> 125 x 125 around the centre.
    out = g.process_bbox([10.0, 20.0, 101.0, 51.0], 640, 480)  # floats (integers: see below)
    np.testing.assert_allclose(out, [60 - 62.5, 45 - 62.5, 125.0, 125.0])


def test_process_bbox_clips_to_the_image():
    # starts left of the image: x1 = 0, x2 = min(639, 0 + 49) = 49; y: 10..(10+99)=109
    out = g.process_bbox([-30.0, 10.0, 50.0, 100.0], 640, 480)
    w, h = 49.0, 99.0
    cx, cy = 0 + w / 2, 10 + h / 2
    np.testing.assert_allclose(out, [cx - h * 1.25 / 2, cy - h * 1.25 / 2, h * 1.25, h * 1.25])


@pytest.mark.parametrize("bbox", [[10, 10, 0, 50], [10, 10, 50, -1], [700, 10, 50, 50]])
def test_process_bbox_without_area_is_none(bbox):
    assert g.process_bbox(bbox, 640, 480) is None, f"bbox {bbox} has no area in a 640x480 image"


@pytest.mark.parametrize("bbox, width, height, expected", [
    # all four JSON values integers: the authors' array is int64 and truncates each assignment.
    # x2 = 10 + 100 = 110, y2 = 20 + 50 = 70 -> w 100, h 50, centre (60, 45); square 100, x1.25 = 125;
    # x = trunc(60 - 125/2) = trunc(-2.5) = -2, y = trunc(45 - 62.5) = trunc(-17.5) = -17
    ([10, 20, 101, 51], 640, 480, [-2.0, -17.0, 125.0, 125.0]),
    # x2 = 3 + 49 = 52 -> w 49, y2 = 4 + 40 = 44 -> h 40, centre (27.5, 24); square 49, x1.25 = 61.25 -> 61;
    # x = trunc(27.5 - 30.5) = -3, y = trunc(24 - 30.5) = trunc(-6.5) = -6
    ([3, 4, 50, 41], 640, 480, [-3.0, -6.0, 61.0, 61.0]),
    # one float among them: a float64 array, nothing truncated (centre 27.5, 24.0; side 61.25)
    ([3, 4, 50.0, 41], 640, 480, [27.5 - 30.625, 24.0 - 30.625, 61.25, 61.25]),
])
def test_process_bbox_truncates_integer_boxes_like_the_authors_numpy(bbox, width, height, expected):
    np.testing.assert_array_equal(g.process_bbox(bbox, width, height), expected)


def test_patch_transform_maps_the_box_onto_the_patch():
    bbox = [33.5, -12.25, 80.0, 80.0]
    t = patch_transform(bbox)
    corners = np.array([[33.5, -12.25, 1.0], [113.5, 67.75, 1.0], [73.5, 27.75, 1.0]])
    # from three float32 points through cv2.getAffineTransform: exact up to float32 rounding
    np.testing.assert_allclose(corners @ t.T, [[0, 0], [256, 256], [128, 128]], atol=1e-4)


def test_crop_at_unit_scale_is_a_shifted_copy_in_rgb():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, size=(300, 300, 3)).astype(np.uint8)
    # box (10, 20, 256, 256): scale 1, patch pixel (x, y) = image pixel (x + 10, y + 20), channels reversed
    patch = crop_rgb(bgr, [10, 20, 256, 256])
    assert patch.dtype == np.float32 and patch.shape == (256, 256, 3)
    np.testing.assert_array_equal(patch, bgr[20:276, 10:266, ::-1].astype(np.float32))


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


def test_crop_matches_a_scalar_bilinear_formulation_within_opencv_fixed_point():
    """OpenCV's INTER_LINEAR samples at 1/32 pixel and rounds to uint8: on a smooth picture (at
    most 3 grey levels per pixel) that is within 0.5 + 3/32 of exact bilinear interpolation."""
    ys, xs = np.mgrid[0:60, 0:80].astype(np.float64)
    rgb = np.stack([2 * xs + 30, 3 * ys + 10, xs + ys + 50], axis=2)
    bgr = np.round(rgb[:, :, ::-1]).astype(np.uint8)
    bbox = [7.3, 6.6, 41.9, 41.9]  # inside the image: no border in the comparison
    t = patch_transform(bbox)
    inv = np.linalg.inv(np.vstack([t, [0, 0, 1]]))
    patch = crop_rgb(bgr, bbox)
    for y, x in [(0, 0), (5, 3), (100, 200), (250, 250), (37, 129), (200, 10)]:
        np.testing.assert_allclose(patch[y, x], _bilinear_loop(bgr[:, :, ::-1].astype(np.float64), inv, x, y),
                                   atol=0.5 + 3 / 32 + 1e-9, err_msg=f"patch pixel ({x}, {y})")


def test_crop_outside_the_image_is_zero():
    bgr = np.full((40, 50, 3), 200, np.uint8)
    patch = crop_rgb(bgr, [-100.0, -100.0, 120.0, 120.0])  # the image covers only the bottom-right sixth
    assert (patch[:150, :150] == 0).all() and (patch[-20:, -20:] == 200).all()


def test_read_bgr_decodes_with_opencv_and_npy_files_are_rgb(tmp_path):
    import cv2

    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "blue.png"), bgr)
    np.testing.assert_array_equal(read_bgr(tmp_path / "blue.png"), bgr)
    np.save(tmp_path / "blue.npy", bgr[:, :, ::-1])  # .npy images hold RGB
    np.testing.assert_array_equal(read_bgr(tmp_path / "blue.npy"), bgr)
    assert (crop_rgb(bgr, [0, 0, 10, 10])[100:150, 100:150] == [0, 0, 255]).all()  # RGB: blue last


def test_normalise_applies_imagenet_statistics_to_0_255_values():
    import torch

    patch = torch.zeros((1, 2, 2, 3), dtype=torch.uint8)
    patch[0, 0, 0] = 255
    out = g.normalise(patch)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.float32 and out.is_contiguous()
    np.testing.assert_allclose(out[0, :, 0, 0], [(255 - 0.485) / 0.229, (255 - 0.456) / 0.224, (255 - 0.406) / 0.225],
                               rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 1, 1], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)
    # float patches (the authors' float32 RGB crop) give the same bytes as the uint8 ones
    assert g.normalise(patch.float()).numpy().tobytes() == out.numpy().tobytes()


def test_heatmap_to_pixel_denormalises_like_the_authors():
    coords = np.array([[16.0, 48.0, 48.0], [0.0, 0.0, 0.0]])
    out = g.heatmap_to_pixel(coords, [100.0, 50.0, 200.0, 200.0], (64, 64, 64), root_depth=4000.0)
    # x = 16/64*200 + 100 = 150; y = 48/64*200 + 50 = 200; z = (48/64*2 - 1)*1000 + 4000 = 4500
    assert out.dtype == np.float32  # the authors' pred_2d_kpt is the float32 network output
    np.testing.assert_array_equal(out[0], [150.0, 200.0, 4500.0])
    np.testing.assert_array_equal(out[1], [100.0, 50.0, 3000.0])


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


def test_network_input_is_torchvisions_to_tensor_and_normalize_of_the_crop(tmp_path):
    """The authors' transform: ToTensor on a float32 array (transpose, no scaling) then Normalize
    (`sub_(mean).div_(std)` in float32), written out in torch: bit for bit the same input."""
    import cv2
    import torch

    from pytest_convnextpose.h36m.images import network_input

    rng = np.random.default_rng(5)
    bgr = rng.integers(0, 256, size=(120, 160, 3)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), bgr)
    bbox = [20.5, 10.25, 90.0, 90.0]
    t = torch.from_numpy(crop_rgb(bgr, bbox).transpose(2, 0, 1).copy())
    t.sub_(torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)).div_(torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))
    got = network_input(tmp_path / "x.png", bbox)
    assert got.dtype == np.float32 and got.tobytes() == t.numpy().tobytes()
