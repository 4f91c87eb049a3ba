"""Bounding boxes, normalisation and camera geometry exactly as the authors' Human3.6M pipeline.

`process_bbox` follows `common/utils/pose_utils.py::process_bbox`, including what numpy
does to a box whose four JSON values are integers (the authors' array is then int64, so
every assignment truncates); the crop itself (OpenCV) is in `images.py`.

The camera functions keep the dtype they are given: the evaluation feeds them float32, as
the authors do (`np.array(cam_param['R'], dtype=np.float32)`, float32 joints).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    import torch

#: ImageNet statistics, which the authors apply to 0-255 pixel values (see `normalise`).
PIXEL_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
PIXEL_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SHAPE = (256, 256)  # (height, width) of the network input
BBOX_3D_DEPTH_MM = 2000.0  # cfg.bbox_3d_shape[0]: the depth axis spans +-1000 mm around the root


def process_bbox(bbox, width: int, height: int, aspect_ratio: float = 1.0) -> Optional[np.ndarray]:
    """Sanitise a COCO (x, y, w, h) box to the image, make it `aspect_ratio`, enlarge x1.25.

    Returns None for a box with no area inside the image (the authors skip such samples).
    When all four values are integers (JSON `[10, 20, 101, 51]`), the authors' `np.array(bbox)`
    is int64 and each of their assignments `bbox[2] = w*1.25`, `bbox[0] = c_x - bbox[2]/2.`
    truncates towards zero; that is reproduced, so the same crops and the same scores follow.
    """
    integer = all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in bbox)
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
    if integer:  # int64 storage: sizes truncated first, the corner computed from the truncated size
        w, h = float(math.trunc(w)), float(math.trunc(h))
        return np.array([math.trunc(cx - w / 2.0), math.trunc(cy - h / 2.0), w, h], dtype=np.float64)
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float64)


def normalise(patches: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) RGB patches, 0-255 (uint8 as warped, or float) -> (N, 3, H, W) contiguous
    float32, as the authors feed the network: torchvision's ToTensor + Normalize, i.e.
    `(x - mean) / std` per channel in float32, on whatever device the patches are.

    The quirk: ToTensor leaves float arrays unscaled, so ImageNet's mean and std (meant for
    0-1 values) are applied to 0-255 values. The released weights were trained this way, so
    evaluation must do the same. uint8 -> float32 is exact and IEEE float32 subtraction and
    division round the same on every device, so normalising the uint8 batch here, on the
    GPU when there is one, gives the authors' bytes while the workers ship 4x less data.
    """
    import torch

    x = patches.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    mean = torch.as_tensor(PIXEL_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(PIXEL_STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def world_to_camera(joints_world: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """X_cam = R X_world + t (the convention of the released `_camera.json` files)."""
    rot, trans = np.asarray(rot), np.asarray(trans)
    return joints_world @ rot.T + trans.reshape(1, 3)


def camera_to_pixel(joints_cam: np.ndarray, f, c) -> np.ndarray:
    """Pinhole projection; the third column keeps the camera depth (mm)."""
    f, c = np.asarray(f), np.asarray(c)
    u = joints_cam[:, 0] / joints_cam[:, 2] * f[0] + c[0]
    v = joints_cam[:, 1] / joints_cam[:, 2] * f[1] + c[1]
    return np.stack([u, v, joints_cam[:, 2]], axis=1)


def pixel_to_camera(joints_px: np.ndarray, f, c) -> np.ndarray:
    """Back-projection of (u, v, depth) with focal lengths f and principal point c."""
    f, c = np.asarray(f), np.asarray(c)
    x = (joints_px[:, 0] - c[0]) / f[0] * joints_px[:, 2]
    y = (joints_px[:, 1] - c[1]) / f[1] * joints_px[:, 2]
    return np.stack([x, y, joints_px[:, 2]], axis=1)


def heatmap_to_pixel(coords: np.ndarray, bbox, heatmap_shape: tuple[int, int, int], root_depth) -> np.ndarray:
    """Network output (J, 3) in heatmap units -> (u, v, depth mm) in the original image.

    x = x / W * bbox_w + bbox_x, y likewise, z = (z / D * 2 - 1) * 1000 + root depth. Like the
    authors' `evaluate`, the result is a float32 array (their `preds[n].copy()`): each column is
    computed with numpy's promotion (bbox values are float64 scalars, the root depth keeps its
    dtype: float32 for the ground truth, float64 for RootNet's) and stored as float32.
    """
    depth, height, width = heatmap_shape
    bx, by, bw, bh = (np.float64(v) for v in bbox)
    out = np.array(coords, dtype=np.float32, copy=True)
    out[:, 0] = out[:, 0] / width * bw + bx
    out[:, 1] = out[:, 1] / height * bh + by
    out[:, 2] = (out[:, 2] / depth * 2 - 1) * (BBOX_3D_DEPTH_MM / 2.0) + root_depth
    return out
