"""Bounding boxes, crops and camera geometry exactly as the authors' Human3.6M pipeline.

`process_bbox` follows `common/utils/pose_utils.py::process_bbox`; the affine patch
transform follows `data/dataset.py::gen_trans_from_patch_cv` without augmentation
(scale 1, no rotation); `warp_affine` samples like OpenCV's `warpAffine` with
`INTER_LINEAR` and a constant zero border (pixel i sits at coordinate i; the output
pixel (x, y) takes the input at M^-1 (x, y)). No OpenCV needed: the warp is numpy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

#: ImageNet statistics, which the authors apply to 0-255 pixel values (see `normalise`).
PIXEL_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
PIXEL_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SHAPE = (256, 256)  # (height, width) of the network input
BBOX_3D_DEPTH_MM = 2000.0  # cfg.bbox_3d_shape[0]: the depth axis spans +-1000 mm around the root


def process_bbox(bbox, width: int, height: int, aspect_ratio: float = 1.0) -> Optional[np.ndarray]:
    """Sanitise a COCO (x, y, w, h) box to the image, make it `aspect_ratio`, enlarge x1.25.

    Returns None for a box with no area inside the image (the authors skip such samples).
    """
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if not (w * h > 0 and x2 >= x1 and y2 >= y1):
        return None
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2.0, y1 + h / 2.0
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    w, h = w * 1.25, h * 1.25
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float64)


def patch_transform(bbox, out_shape: tuple[int, int] = INPUT_SHAPE) -> np.ndarray:
    """2x3 affine matrix taking image pixels to patch pixels: the bbox fills the patch."""
    bx, by, bw, bh = (float(v) for v in bbox)
    out_h, out_w = out_shape
    sx, sy = out_w / bw, out_h / bh
    cx, cy = bx + 0.5 * bw, by + 0.5 * bh
    return np.array([[sx, 0.0, out_w * 0.5 - sx * cx], [0.0, sy, out_h * 0.5 - sy * cy]])


def warp_affine(image: np.ndarray, trans: np.ndarray, out_shape: tuple[int, int] = INPUT_SHAPE) -> np.ndarray:
    """Bilinear warp of an (H, W, C) image by `trans` (image -> patch), zero outside. float32."""
    out_h, out_w = out_shape
    full = np.vstack([trans, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    xs, ys = np.meshgrid(np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64))
    src_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    src_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(src_x).astype(np.int64), np.floor(src_y).astype(np.int64)
    ax, ay = (src_x - x0)[..., None], (src_y - y0)[..., None]
    img = np.asarray(image, dtype=np.float32)

    def tap(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (xx >= 0) & (xx < img.shape[1]) & (yy >= 0) & (yy < img.shape[0])
        vals = img[np.clip(yy, 0, img.shape[0] - 1), np.clip(xx, 0, img.shape[1] - 1)]
        return np.where(inside[..., None], vals, 0.0)

    top = tap(y0, x0) * (1 - ax) + tap(y0, x0 + 1) * ax
    bottom = tap(y0 + 1, x0) * (1 - ax) + tap(y0 + 1, x0 + 1) * ax
    return (top * (1 - ay) + bottom * ay).astype(np.float32)


def normalise(patch_rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB float 0-255 -> (3, H, W) float32 as the authors feed the network.

    The quirk: torchvision's ToTensor leaves float arrays unscaled, so ImageNet's mean and
    std (meant for 0-1 values) are applied to 0-255 values. The released weights were
    trained this way, so evaluation must do the same.
    """
    out = (np.asarray(patch_rgb, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def world_to_camera(joints_world: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """X_cam = R X_world + t (the convention of the released `_camera.json` files)."""
    return joints_world @ np.asarray(rot, np.float64).T + np.asarray(trans, np.float64).reshape(1, 3)


def camera_to_pixel(joints_cam: np.ndarray, f, c) -> np.ndarray:
    """Pinhole projection; the third column keeps the camera depth (mm)."""
    f, c = np.asarray(f, np.float64), np.asarray(c, np.float64)
    u = joints_cam[:, 0] / joints_cam[:, 2] * f[0] + c[0]
    v = joints_cam[:, 1] / joints_cam[:, 2] * f[1] + c[1]
    return np.stack([u, v, joints_cam[:, 2]], axis=1)


def pixel_to_camera(joints_px: np.ndarray, f, c) -> np.ndarray:
    """Back-projection of (u, v, depth) with focal lengths f and principal point c."""
    f, c = np.asarray(f, np.float64), np.asarray(c, np.float64)
    x = (joints_px[:, 0] - c[0]) / f[0] * joints_px[:, 2]
    y = (joints_px[:, 1] - c[1]) / f[1] * joints_px[:, 2]
    return np.stack([x, y, joints_px[:, 2]], axis=1)


def heatmap_to_pixel(coords: np.ndarray, bbox, heatmap_shape: tuple[int, int, int], root_depth: float) -> np.ndarray:
    """Network output (J, 3) in heatmap units -> (u, v, depth mm) in the original image.

    x = x / W * bbox_w + bbox_x, y likewise, z = (z / D * 2 - 1) * 1000 + root depth.
    """
    depth, height, width = heatmap_shape
    bx, by, bw, bh = (float(v) for v in bbox)
    out = np.array(coords, dtype=np.float64, copy=True)
    out[:, 0] = out[:, 0] / width * bw + bx
    out[:, 1] = out[:, 1] / height * bh + by
    out[:, 2] = (out[:, 2] / depth * 2.0 - 1.0) * (BBOX_3D_DEPTH_MM / 2.0) + float(root_depth)
    return out
