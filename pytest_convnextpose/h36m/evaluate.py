"""The authors' Human3.6M evaluation: crop, predict (batched, optional flip test), de-normalise,
back-project, root-align, score (MPJPE, PA-MPJPE without and with scale), per action."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from reference_model import H36M_EVAL_JOINTS, H36M_FLIP_PAIRS, H36M_ROOT_JOINT, flip_test

from . import metrics
from .annotations import H36MDataError, Sample, load_samples
from .geometry import INPUT_SHAPE, heatmap_to_pixel, normalise, patch_transform, pixel_to_camera, warp_affine
from .images import load_rgb

PRIMARY_METRIC = {1: "pa_mpjpe_authors", 2: "mpjpe"}


@dataclass
class EvalResult:
    """Scores of one evaluation; `to_dict` is the per-action JSON written by `--h36m-results`."""

    protocol: int
    num_samples: int
    scores: dict[str, dict]  # metric -> {"mean": mm, "per_group": {action: mm}}
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.protocol]

    @property
    def primary_mm(self) -> float:
        return self.scores[self.primary_metric]["mean"]

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "num_samples": self.num_samples, "primary_metric": self.primary_metric,
                "primary_mm": self.primary_mm,
                "metrics": {k: {"mean_mm": v["mean"], "per_action_mm": v["per_group"]} for k, v in self.scores.items()},
                "settings": self.settings}

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def crop(sample: Sample) -> np.ndarray:
    """(3, 256, 256) normalised network input for one sample."""
    patch = warp_affine(load_rgb(sample.image_path), patch_transform(sample.bbox), INPUT_SHAPE)
    return normalise(patch)


def _batches(samples: Sequence[Sample], size: int) -> Iterator[Sequence[Sample]]:
    for i in range(0, len(samples), size):
        yield samples[i:i + size]


def predict(model: Callable[[torch.Tensor], torch.Tensor], samples: Sequence[Sample], heatmap_width: int, *,
            device: Any = "cpu", use_flip_test: bool = True, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Network outputs (N, J, 3) in heatmap units, batch by batch with a progress bar."""
    outs = []
    bar = tqdm(total=len(samples), desc="Human3.6M", unit="img", disable=not progress)
    with torch.inference_mode():
        for chunk in _batches(samples, batch_size):
            images = torch.from_numpy(np.stack([crop(s) for s in chunk])).to(device)
            coords = (flip_test(model, images, heatmap_width, H36M_FLIP_PAIRS) if use_flip_test
                      else model(images))
            outs.append(coords.float().cpu().numpy())
            bar.update(len(chunk))
    bar.close()
    return np.concatenate(outs) if outs else np.zeros((0, 0, 3))


def to_camera(coords: np.ndarray, sample: Sample, heatmap_shape: tuple[int, int, int]) -> np.ndarray:
    """Heatmap-unit output (J, 3) -> camera coordinates in mm (de-normalise, back-project)."""
    return pixel_to_camera(heatmap_to_pixel(coords, sample.bbox, heatmap_shape, sample.root_cam[2]), sample.f, sample.c)


def score(pred_cam: np.ndarray, samples: Sequence[Sample], protocol: int,
          settings: Optional[dict] = None) -> EvalResult:
    """Root-relative errors over the 17 evaluated joints, overall and per action."""
    if len(pred_cam) != len(samples):
        raise H36MDataError(f"{len(pred_cam)} predictions for {len(samples)} samples")
    eval_idx = list(H36M_EVAL_JOINTS)
    pred = np.asarray(pred_cam, np.float64)
    pred = pred - pred[:, H36M_ROOT_JOINT:H36M_ROOT_JOINT + 1]
    gt = np.stack([s.joint_cam for s in samples]) if samples else np.zeros((0, 18, 3))
    gt = gt - gt[:, H36M_ROOT_JOINT:H36M_ROOT_JOINT + 1]
    pred, gt = pred[:, eval_idx], gt[:, eval_idx]
    per_pose = {
        "mpjpe": metrics.joint_errors(pred, gt).mean(axis=1),
        "pa_mpjpe_authors": metrics.pa_joint_errors_authors(pred, gt).mean(axis=1),
        "pa_mpjpe_scaled": metrics.pa_joint_errors_scaled(pred, gt).mean(axis=1),
    } if len(samples) else {"mpjpe": [], "pa_mpjpe_authors": [], "pa_mpjpe_scaled": []}
    return EvalResult(protocol, len(samples), metrics.summarize(per_pose, [s.action for s in samples]), settings or {})


def evaluate_model(model: Callable[[torch.Tensor], torch.Tensor], heatmap_shape: tuple[int, int, int], root: str | Path,
                   *, protocol: int = 2, use_flip_test: bool = True, bbox_source: str = "gt",
                   rootnet_file: Optional[str | Path] = None, max_frames: Optional[int] = None,
                   device: Any = "cpu", batch_size: int = 32, progress: bool = True) -> EvalResult:
    """Evaluate a model (images -> (B, J, 3) heatmap units) on Human3.6M like the authors' tester."""
    samples = load_samples(root, protocol, bbox_source=bbox_source, rootnet_file=rootnet_file, max_frames=max_frames)
    if not samples:
        raise H36MDataError(f"{root}: no test samples for protocol {protocol} (subjects, every 64th frame)")
    coords = predict(model, samples, heatmap_shape[2], device=device, use_flip_test=use_flip_test,
                     batch_size=batch_size, progress=progress)
    pred_cam = np.stack([to_camera(c, s, heatmap_shape) for c, s in zip(coords, samples)])
    settings = {"flip_test": use_flip_test, "bbox_source": bbox_source, "max_frames": max_frames,
                "heatmap_shape": list(heatmap_shape), "root": str(root)}
    return score(pred_cam, samples, protocol, settings)


def evaluate_checkpoint(ckpt: Any, root: str | Path, *, device: Any = "cpu", **kwargs: Any) -> EvalResult:
    """Build the reference model for a loaded `Checkpoint` and evaluate it."""
    from ..checkpoint.model import reference_model_for

    model = reference_model_for(ckpt.spec, ckpt.state_dict, device)
    h, w = ckpt.spec.heatmap_size(INPUT_SHAPE)
    result = evaluate_model(model, (ckpt.spec.depth_dim, h, w), root, device=device, **kwargs)
    result.settings.update({"checkpoint": str(ckpt.path), "sha256": ckpt.sha256, "variant": ckpt.variant})
    return result


def evaluate_mpjpe(root: str | Path, ckpt: Any) -> float:
    """Protocol 2 MPJPE (mm) of a loaded checkpoint, with the defaults (GT boxes, flip test)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return evaluate_checkpoint(ckpt, root, protocol=2, device=device).primary_mm
