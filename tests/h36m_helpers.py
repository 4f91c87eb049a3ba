"""A tiny Human3.6M folder in the authors' annotation layout, written by the tests.

Two test subjects (9, 11) and one training subject's frame numbering rules: frames 0,
64 and 128 are test frames, frame 5 is not (every 64th frame). One camera per subject
with a real rotation, translation, focal lengths and principal point. Each image is
black with a bright 5x5 square centred on the (rounded) projection of the Pelvis, so a
model that finds that square knows where the Pelvis is.

Options for the comparisons with the authors' pipeline and the benchmarks: `frames` (more
test frames), `size` (e.g. Human3.6M's 1000x1000), `textured` (a smooth random picture
under the square, so interpolation and JPEG decoding do real work), `image_format`
"jpg"/"png" (written with OpenCV, read back by `cv2.imread` as the authors do) and
`integer_boxes` (boxes written as JSON integers, which the authors' numpy truncates).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_W, IMAGE_H = 320, 240
FRAMES = (0, 5, 64, 128)
ACTIONS = (2, 3)  # Directions, Discussion
BLOB = 2  # half-size of the bright square


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


CAMERAS = {
    9: {"R": rotation(np.array([0.2, 1.0, 0.1]), 0.3), "t": np.array([35.5, -120.25, 4100.0]),
        "f": np.array([301.5, 299.25]), "c": np.array([158.7, 121.3])},
    11: {"R": rotation(np.array([-0.1, 1.0, 0.3]), -0.4), "t": np.array([-60.0, 80.5, 3900.0]),
         "f": np.array([288.0, 290.5]), "c": np.array([163.2, 117.9])},
}


@dataclass
class Written:
    root: Path
    pelvis_px: dict[int, tuple[int, int]]  # image_id -> blob centre (u, v) in pixels
    joints_world: dict[int, np.ndarray]  # image_id -> (17, 3)


def _pose(rng: np.random.Generator) -> np.ndarray:
    base = rng.normal(scale=250.0, size=(17, 3))
    base[0] = rng.normal(scale=50.0, size=3)  # Pelvis near the world origin
    return base


def write_dataset(root: Path, image_format: str = "npy", seed: int = 0, *, frames: tuple[int, ...] = FRAMES,
                  size: tuple[int, int] = (IMAGE_W, IMAGE_H), textured: bool = False,
                  integer_boxes: bool = False) -> Written:
    """Write annotations/ and images/ under `root`; returns what the tests need to know."""
    rng = np.random.default_rng(seed)
    width, height = size
    (root / "annotations").mkdir(parents=True)
    pelvis_px, world_by_id = {}, {}
    image_id = 0
    for subject in (9, 11):
        cam = CAMERAS[subject]
        images, anns, joints = [], [], {}
        for action in ACTIONS:
            for frame in frames:
                image_id += 1
                world = _pose(rng)
                cam_xyz = world @ cam["R"].T + cam["t"]
                u = cam_xyz[:, 0] / cam_xyz[:, 2] * cam["f"][0] + cam["c"][0]
                v = cam_xyz[:, 1] / cam_xyz[:, 2] * cam["f"][1] + cam["c"][1]
                seq = f"s_{subject:02d}_act_{action:02d}_subact_01_ca_01"
                name = f"{seq}/{seq}_{frame + 1:06d}.{image_format}"
                centre = (int(round(u[0])), int(round(v[0])))
                _write_image(root / "images" / name, centre, image_format, (width, height),
                             rng if textured else None)
                images.append({"id": image_id, "file_name": name, "width": width, "height": height,
                               "subject": subject, "action_idx": action, "subaction_idx": 1, "cam_idx": 1,
                               "frame_idx": frame})
                x0, y0 = float(u.min()) - 8.0, float(v.min()) - 8.0
                box = [x0, y0, float(u.max()) + 8.0 - x0, float(v.max()) + 8.0 - y0]
                anns.append({"id": image_id, "image_id": image_id,
                             "bbox": [int(round(b)) for b in box] if integer_boxes else box})
                joints.setdefault(str(action), {}).setdefault("1", {})[str(frame)] = world.tolist()
                pelvis_px[image_id], world_by_id[image_id] = centre, world
        stem = root / "annotations" / f"Human36M_subject{subject}"
        Path(f"{stem}_data.json").write_text(json.dumps({"images": images, "annotations": anns}))
        Path(f"{stem}_camera.json").write_text(json.dumps({"1": {k: v.tolist() for k, v in cam.items()}}))
        Path(f"{stem}_joint_3d.json").write_text(json.dumps(joints))
    return Written(root, pelvis_px, world_by_id)


def _write_image(path: Path, centre: tuple[int, int], image_format: str, size: tuple[int, int],
                 rng: np.random.Generator | None) -> None:
    width, height = size
    if rng is None:
        img = np.zeros((height, width, 3), dtype=np.uint8)
    else:  # smooth random picture: low-resolution noise blown up (bilinear), plus fine noise
        import cv2

        coarse = rng.uniform(0, 160, size=(height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
        fine = rng.standard_normal(size=smooth.shape, dtype=np.float32) * 3.0
        img = np.clip(smooth + fine, 0, 255).astype(np.uint8)
    u, v = centre
    img[max(v - BLOB, 0):v + BLOB + 1, max(u - BLOB, 0):u + BLOB + 1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    if image_format == "npy":
        np.save(path, img)
    else:
        import cv2

        if not cv2.imwrite(str(path), img[:, :, ::-1]):  # RGB -> OpenCV's BGR
            raise OSError(f"OpenCV could not write {path}")


class BlobFinder:
    """A stand-in network: every joint at the intensity centroid of the crop, depth mid-volume.

    Works on the normalised input, so it sees exactly what a network would see; outputs
    are in heatmap units x = col * W / 256 like the authors' training targets.
    """

    def __init__(self, heatmap_shape: tuple[int, int, int], joints: int = 18) -> None:
        self.depth, self.height, self.width = heatmap_shape
        self.joints = joints

    def __call__(self, images):
        import torch

        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        rgb = images * std + mean  # back to 0-255 values
        weight = rgb.sum(dim=1).clamp(min=0)  # (B, H, W)
        weight = torch.where(weight > 1.0, weight, torch.zeros_like(weight))
        rows = torch.arange(images.shape[2], dtype=images.dtype)
        cols = torch.arange(images.shape[3], dtype=images.dtype)
        total = weight.sum(dim=(1, 2))
        cx = (weight.sum(dim=1) * cols).sum(dim=1) / total
        cy = (weight.sum(dim=2) * rows).sum(dim=1) / total
        x = cx * self.width / images.shape[3]
        y = cy * self.height / images.shape[2]
        z = torch.full_like(x, self.depth / 2.0)
        return torch.stack([x, y, z], dim=1)[:, None, :].expand(-1, self.joints, -1).clone()
