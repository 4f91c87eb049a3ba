"""Reading the authors' Human3.6M annotation layout into evaluation samples.

Layout (as in 3DMPPE_POSENET / ConvNeXtPose `data/Human36M/`), under `--h36m-root`:
    annotations/Human36M_subject{S}_data.json    COCO style: "images", "annotations"
    annotations/Human36M_subject{S}_camera.json  {cam_idx: {"R", "t", "f", "c"}}
    annotations/Human36M_subject{S}_joint_3d.json {action: {subaction: {frame: 17x3 world mm}}}
    images/<file_name from the data json>
    (optional) bbox_root/bbox_root_human36m_output.json  RootNet boxes and roots
The annotation files may also sit directly in the root folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .geometry import process_bbox, world_to_camera

ACTION_NAMES = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases", "Sitting",
                "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog", "WalkTogether")
L_SHOULDER, R_SHOULDER = 11, 14
TEST_SUBJECTS = {1: (11,), 2: (9, 11)}
SAMPLING_RATIO = 64  # every 64th frame of the test subjects
ROOTNET_FILE = Path("bbox_root") / "bbox_root_human36m_output.json"


class H36MDataError(ValueError):
    """The Human3.6M folder or a predictions file is missing something or malformed."""


@dataclass(frozen=True)
class Sample:
    """One test image with everything the evaluation needs (camera mm, 18 joints with Thorax)."""

    image_id: int
    image_path: Path
    subject: int
    action_idx: int
    bbox: np.ndarray  # processed (square, x1.25) box in image pixels
    joint_cam: np.ndarray  # (18, 3) float32 ground truth, camera coordinates, mm
    root_cam: np.ndarray  # (3,) root for de-normalising depth: GT pelvis (float32) or RootNet's (float64)
    f: np.ndarray  # float32, as the authors' loader
    c: np.ndarray

    @property
    def action(self) -> str:
        i = self.action_idx - 2  # the authors' file names number actions from 2
        return ACTION_NAMES[i] if 0 <= i < len(ACTION_NAMES) else f"action_{self.action_idx}"


def annotation_dir(root: str | Path) -> Path:
    """The folder holding `Human36M_subject*_data.json` (`root/annotations` or `root` itself).

    Cheap (one glob per candidate), so the plugin calls it at start-up to turn a wrong
    `--h36m-root` into a usage error instead of a failure deep inside the evaluation."""
    root = Path(root)
    for cand in (root / "annotations", root):
        if any(cand.glob("Human36M_subject*_data.json")):
            return cand
    raise H36MDataError(f"{root}: no Human36M_subject*_data.json in {root / 'annotations'} or {root}")


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise H36MDataError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise H36MDataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def add_thorax(joints: np.ndarray) -> np.ndarray:
    """17 Human3.6M joints -> 18 with Thorax = midpoint of the shoulders (authors' `add_thorax`)."""
    thorax = (joints[L_SHOULDER] + joints[R_SHOULDER]) * 0.5
    return np.concatenate([joints, thorax[None]], axis=0)


def read_rootnet(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """image_id -> (bbox, root_cam) from RootNet's output (boxes already square and enlarged)."""
    out = {}
    for i, rec in enumerate(_read_json(path)):
        try:
            out[int(rec["image_id"])] = (np.asarray(rec["bbox"], np.float64), np.asarray(rec["root_cam"], np.float64))
        except (KeyError, TypeError) as exc:
            raise H36MDataError(f"{path}: entry {i} lacks image_id/bbox/root_cam ({exc})") from None
    return out


def load_samples(root: str | Path, protocol: int = 2, *, bbox_source: str = "gt",
                 rootnet_file: Optional[str | Path] = None, max_frames: Optional[int] = None) -> list[Sample]:
    """Test samples of `protocol` (1: S11, 2: S9+S11), every 64th frame, in annotation order."""
    if protocol not in TEST_SUBJECTS:
        raise H36MDataError(f"protocol must be 1 or 2, got {protocol}")
    if bbox_source not in ("gt", "rootnet"):
        raise H36MDataError(f"bbox source must be 'gt' or 'rootnet', got {bbox_source!r}")
    root = Path(root)
    ann_dir = annotation_dir(root)
    rootnet = None
    if bbox_source == "rootnet":
        rootnet = read_rootnet(Path(rootnet_file) if rootnet_file else root / ROOTNET_FILE)
    samples: list[Sample] = []
    for subject in TEST_SUBJECTS[protocol]:
        samples += _subject_samples(root, ann_dir, subject, rootnet)
        if max_frames is not None and len(samples) >= max_frames:
            return samples[:max_frames]
    return samples


def _subject_samples(root: Path, ann_dir: Path, subject: int, rootnet) -> list[Sample]:
    stem = ann_dir / f"Human36M_subject{subject}"
    data = _read_json(Path(f"{stem}_data.json"))
    cameras = _read_json(Path(f"{stem}_camera.json"))
    joints = _read_json(Path(f"{stem}_joint_3d.json"))
    if not isinstance(data, dict):
        raise H36MDataError(f"{stem}_data.json: expected an object with 'images' and 'annotations', "
                            f"got a JSON {type(data).__name__}")
    try:
        images = {img["id"]: img for img in data.get("images", [])}
        out = []
        for ann in data.get("annotations", []):
            img = images.get(ann["image_id"])
            if img is None:
                raise H36MDataError(f"{stem}_data.json: annotation {ann.get('id')} names image {ann['image_id']}, "
                                    "which is not in 'images'")
            if img["subject"] != subject or img["frame_idx"] % SAMPLING_RATIO:
                continue
            sample = _sample(root, stem, img, ann, cameras, joints, rootnet)
            if sample is not None:
                out.append(sample)
    except (KeyError, TypeError, AttributeError) as exc:  # a record without a field the layout requires
        raise H36MDataError(f"{stem}_data.json: malformed image or annotation record "
                            f"({type(exc).__name__}: {exc})") from None
    return out


def _sample(root, stem, img, ann, cameras, joints, rootnet) -> Optional[Sample]:
    try:
        cam = cameras[str(img["cam_idx"])]
        world = joints[str(img["action_idx"])][str(img["subaction_idx"])][str(img["frame_idx"])]
    except KeyError as exc:
        raise H36MDataError(f"{stem}: no camera/joints for image {img['id']} (missing key {exc})") from None
    # float32 throughout, as the authors' loader (`np.array(..., dtype=np.float32)`): the ground
    # truth is the float32 result of their float32 arithmetic, not a float64 refinement of it
    rot, trans, f, c = (np.asarray(cam[k], np.float32) for k in ("R", "t", "f", "c"))
    joint_cam = world_to_camera(add_thorax(np.asarray(world, np.float32)), rot, trans)
    if rootnet is not None:
        if img["id"] not in rootnet:
            raise H36MDataError(f"RootNet file has no entry for image_id {img['id']}")
        bbox, root_cam = rootnet[img["id"]]
    else:
        bbox = process_bbox(ann["bbox"], img["width"], img["height"])
        if bbox is None:  # no area inside the image: skipped, as the authors do
            return None
        root_cam = joint_cam[0]
    return Sample(int(img["id"]), root / "images" / img["file_name"], int(img["subject"]), int(img["action_idx"]),
                  bbox, joint_cam, root_cam, f, c)
