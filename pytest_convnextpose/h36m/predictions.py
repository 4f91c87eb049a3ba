"""Predictions-file mode: score 3D poses predicted elsewhere against the annotations.

Accepted JSON (a list of records, one per test image, any order):
    {"image_id": 123, "joint_cam": [[x, y, z], ...]}   camera coordinates in mm, 17 or 18
        joints in the Human3.6M order (this is also what the authors' tester writes to
        bbox_root_pose_human36m_output.json; root-relative values are fine: the Pelvis
        is subtracted anyway)
or an object {"heatmap_shape": [D, H, W], "predictions": [{"image_id": 123,
"coords": [[x, y, z], ...]}]} with raw network outputs in heatmap units, which are
de-normalised and back-projected with each image's box, root depth and camera.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .annotations import H36MDataError, Sample, load_samples
from .evaluate import EvalResult, score, to_camera


def _records(path: Path) -> tuple[Optional[tuple[int, int, int]], list[dict]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise H36MDataError(f"{path}: predictions file not found") from None
    except json.JSONDecodeError as exc:
        raise H36MDataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(doc, list):
        return None, doc
    if isinstance(doc, dict) and "predictions" in doc and "heatmap_shape" in doc:
        shape = tuple(int(v) for v in doc["heatmap_shape"])
        if len(shape) != 3:
            raise H36MDataError(f"{path}: heatmap_shape must be [D, H, W], got {doc['heatmap_shape']}")
        return shape, doc["predictions"]
    raise H36MDataError(f"{path}: expected a list of {{image_id, joint_cam}} or {{heatmap_shape, predictions}}")


def _pose(path: Path, rec: Any, key: str) -> np.ndarray:
    try:
        arr = np.asarray(rec[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise H36MDataError(f"{path}: record for image_id {rec.get('image_id')!r} has no numeric {key!r}") from None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] not in (17, 18):
        raise H36MDataError(f"{path}: image_id {rec.get('image_id')}: {key} must be 17 or 18 joints x 3, "
                            f"got shape {arr.shape}")
    return arr  # 17 joints: `score` adds the Thorax (predicted shoulders' midpoint) where it is needed


def score_predictions_file(path: str | Path, root: str | Path, *, protocol: int = 2, bbox_source: str = "gt",
                           rootnet_file: Optional[str | Path] = None,
                           max_frames: Optional[int] = None, aligned: bool = False) -> EvalResult:
    """Score a predictions file; every selected test sample must have a prediction.

    `aligned=True` (protocol 1 only, camera-mm poses): the poses were rigidly aligned already,
    as in the authors' protocol-1 output `bbox_root_pose_human36m_output.json`; they are
    scored as they are (re-aligning them would fit on 17 joints instead of the authors' 18
    and move the figure). Without it, every pose is root-aligned and rigidly aligned here.
    """
    path = Path(path)
    if aligned and protocol != 1:
        raise H36MDataError(f"{path}: already aligned poses can only be scored with protocol 1 (PA-MPJPE)")
    samples: list[Sample] = load_samples(root, protocol, bbox_source=bbox_source, rootnet_file=rootnet_file,
                                         max_frames=max_frames)
    heatmap_shape, records = _records(path)
    key = "joint_cam" if heatmap_shape is None else "coords"
    by_id = {}
    for rec in records:
        if not isinstance(rec, dict) or "image_id" not in rec:
            raise H36MDataError(f"{path}: every record needs an image_id, got {str(rec)[:80]}")
        by_id[int(rec["image_id"])] = rec
    missing = [s.image_id for s in samples if s.image_id not in by_id]
    if missing:
        raise H36MDataError(f"{path}: no prediction for {len(missing)} of {len(samples)} test images "
                            f"(first image_id {missing[0]})")
    if aligned and heatmap_shape is not None:
        raise H36MDataError(f"{path}: poses in heatmap units cannot be already aligned (give joint_cam in mm)")
    poses = []
    for s in samples:
        pose = _pose(path, by_id[s.image_id], key)
        if poses and len(pose) != len(poses[0]):
            raise H36MDataError(f"{path}: records mix {len(poses[0])} and {len(pose)} joints "
                                f"(image_id {samples[0].image_id} has {len(poses[0])}, {s.image_id} has {len(pose)})")
        poses.append(pose if heatmap_shape is None else to_camera(pose, s, heatmap_shape))
    settings = {"predictions_file": str(path), "bbox_source": bbox_source, "max_frames": max_frames,
                "root": str(root), "units": "camera mm" if heatmap_shape is None else "heatmap", "aligned": aligned}
    return score(np.stack(poses), samples, protocol, settings, aligned=aligned)
