"""Reading images: JPEG/PNG through Pillow (`pip install pillow`), or `.npy` arrays.

The authors read with OpenCV (BGR) and flip to RGB; Pillow gives RGB directly. `.npy`
files (H, W, 3) RGB uint8 or float 0-255 need no image library at all.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .annotations import H36MDataError


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) RGB array with values 0-255."""
    path = Path(path)
    if not path.exists():
        raise H36MDataError(f"{path}: image not found")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:  # truncated, not an .npy, or an object array
            raise H36MDataError(f"{path}: cannot read the .npy image ({exc})") from None
    else:
        try:
            from PIL import Image
        except ModuleNotFoundError:
            raise H36MDataError(f"{path}: reading {path.suffix} images needs Pillow (pip install pillow)") from None
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
            raise H36MDataError(f"{path}: cannot read the image ({exc})") from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise H36MDataError(f"{path}: expected an RGB image (H, W, 3), got shape {arr.shape}")
    return arr
