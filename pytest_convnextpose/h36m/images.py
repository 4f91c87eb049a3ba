"""Reading images and cutting the network's input patch, with OpenCV, exactly as the authors.

The authors' test loader (`data/dataset.py`: `DatasetLoader.__getitem__`,
`generate_patch_image`, `gen_trans_from_patch_cv`) reads with `cv2.imread` (BGR uint8),
builds the affine matrix with `cv2.getAffineTransform` from three float32 points (box
centre, centre + half height down, centre + half width right -> the same points of the
256x256 patch), warps the uint8 image with `cv2.warpAffine` (INTER_LINEAR, constant zero
border), flips BGR -> RGB and converts to float32. Doing the same calls with the same
OpenCV gives the same bytes; OpenCV is also what makes the crop cheap (a fraction of a
millisecond, against the JPEG decode's several).

`.npy` files (H, W, 3) RGB uint8 are read with numpy instead of decoded (the tests' tiny
datasets); they go through the same warp.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .annotations import H36MDataError
from .geometry import INPUT_SHAPE, normalise


def opencv(path: Optional[Path] = None) -> Any:
    """The `cv2` module, or a one-line error (naming the image that needed it, when known)."""
    try:
        import cv2
    except ModuleNotFoundError:
        where = f"{path}: " if path is not None else ""
        raise H36MDataError(f"{where}the Human3.6M evaluation needs OpenCV "
                            "(pip install opencv-python-headless, or the [h36m] extra)") from None
    return cv2


def read_bgr(path: Path) -> np.ndarray:
    """(H, W, 3) BGR image as the authors read it (`cv2.imread`, colour, EXIF orientation ignored)."""
    path = Path(path)
    if not path.exists():
        raise H36MDataError(f"{path}: image not found")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:  # truncated, not an .npy, or an object array
            raise H36MDataError(f"{path}: cannot read the .npy image ({exc})") from None
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise H36MDataError(f"{path}: expected an RGB uint8 image (H, W, 3), got {arr.dtype} {arr.shape}")
        return np.ascontiguousarray(arr[:, :, ::-1])
    cv2 = opencv(path)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise H36MDataError(f"{path}: cannot read the image (OpenCV could not decode it)")
    return img


def patch_transform(bbox, out_shape: tuple[int, int] = INPUT_SHAPE) -> np.ndarray:
    """2x3 float64 matrix taking image pixels to patch pixels: the box fills the patch.

    The authors' `gen_trans_from_patch_cv` at scale 1, rotation 0: three float32 points
    (centre, centre + (0, h/2), centre + (w/2, 0)) mapped by `cv2.getAffineTransform` onto the
    patch's centre, bottom-centre and right-centre. Built the same way so that the matrix,
    and so the crop, is the same to the last bit (an analytic matrix differs in the last
    digits, which moves INTER_LINEAR's fixed-point weights)."""
    cv2 = opencv()
    bx, by, bw, bh = (float(v) for v in bbox)
    out_h, out_w = out_shape
    centre = np.array([bx + 0.5 * bw, by + 0.5 * bh], dtype=np.float32)
    down = np.array([0.0, bh * 0.5], dtype=np.float32)
    right = np.array([bw * 0.5, 0.0], dtype=np.float32)
    src = np.stack([centre, centre + down, centre + right])
    dst = np.array([[out_w * 0.5, out_h * 0.5], [out_w * 0.5, out_h], [out_w, out_h * 0.5]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def warp(image_bgr: np.ndarray, bbox, out_shape: tuple[int, int] = INPUT_SHAPE) -> np.ndarray:
    """(out_h, out_w, 3) patch of `bbox`, in the image's dtype and channel order (cv2.warpAffine,
    INTER_LINEAR, zero border)."""
    cv2 = opencv()
    out_h, out_w = out_shape
    return cv2.warpAffine(image_bgr, patch_transform(bbox, out_shape), (int(out_w), int(out_h)),
                          flags=cv2.INTER_LINEAR)


def crop_rgb(image_bgr: np.ndarray, bbox, out_shape: tuple[int, int] = INPUT_SHAPE) -> np.ndarray:
    """(out_h, out_w, 3) RGB float32 patch (0-255) of `bbox`, the authors' `generate_patch_image`
    output: warpAffine, BGR -> RGB, float32."""
    return warp(image_bgr, bbox, out_shape)[:, :, ::-1].astype(np.float32)


def patch_rgb(image_path: Path, bbox, out: Optional[np.ndarray] = None) -> np.ndarray:
    """(256, 256, 3) uint8 RGB patch of one test image: `crop_rgb`'s values before the exact
    uint8 -> float32 step (written into `out` when given: a row of a shared batch)."""
    cv2 = opencv(image_path)  # a missing OpenCV is named with the image that needed it
    # BGR -> RGB is a pure channel permutation: cvtColor writes it straight into `out`
    return cv2.cvtColor(warp(read_bgr(image_path), bbox), cv2.COLOR_BGR2RGB, dst=out)


def network_input(image_path: Path, bbox) -> np.ndarray:
    """(3, 256, 256) float32 network input of one test image: read, crop, normalise."""
    import torch

    return normalise(torch.from_numpy(patch_rgb(image_path, bbox)[None]))[0].numpy()
