"""The authors' Human3.6M evaluation: crop, predict (batched, optional flip test), de-normalise,
back-project, root-align, score (MPJPE, PA-MPJPE without and with scale), per action.

Fast and scalable without changing a figure: crops in DataLoader workers (`loader.py`),
shards of whole batches under torch.distributed (`distributed.py`)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from reference_model import H36M_EVAL_JOINTS, H36M_FLIP_PAIRS, H36M_ROOT_JOINT, flip_test

from . import metrics
from .annotations import H36MDataError, Sample, add_thorax, load_samples
from .distributed import gather_outputs, process_group, shard_bounds, share_sizes
from .geometry import INPUT_SHAPE, heatmap_to_pixel, normalise, pixel_to_camera
from .loader import default_workers, input_batches

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


def predict(model: Callable[[torch.Tensor], torch.Tensor], samples: Sequence[Sample], heatmap_width: int, *,
            device: Any = "cpu", use_flip_test: bool = True, batch_size: int = 32, workers: Optional[int] = None,
            progress: bool | str = "auto") -> np.ndarray:
    """Network outputs (N, J, 3) float32 in heatmap units, in sample order.

    Decoding and cropping run in `workers` DataLoader processes (default: `default_workers()`;
    0 = in this process) while the model runs here; on CUDA the batches arrive in pinned
    memory and outputs stay on the device until the end, so nothing waits for the GPU. Under
    torch.distributed (a process group initialised, e.g. by torchrun) each rank runs its share
    of whole batches and every rank returns all N outputs (see `distributed.py`).
    `progress`: a tqdm bar (rank 0 only); "auto" shows it only on a terminal, so logs get no
    carriage-return frames.
    """
    device = torch.device(device)
    workers = default_workers() if workers is None else workers
    rank, world = process_group()
    lo, hi = shard_bounds(len(samples), batch_size, rank, world)
    show = rank == 0 and (progress is True or (progress == "auto" and sys.stderr.isatty()))
    try:
        local, error = _predict_share(model, samples[lo:hi], heatmap_width, device, use_flip_test, batch_size,
                                      workers, show), None
    except H36MDataError as exc:
        if world == 1:
            raise
        local, error = torch.zeros((0, 0, 3)), str(exc)
    if world > 1:
        local, error = gather_outputs(local, share_sizes(len(samples), batch_size, world), error)
        if error is not None:
            raise H36MDataError(error)
    return local.float().cpu().numpy() if local.numel() else np.zeros((len(samples), 0, 3), np.float32)


def _predict_share(model, samples, heatmap_width, device, use_flip_test, batch_size, workers, show) -> torch.Tensor:
    outs = []
    bar = tqdm(total=len(samples), desc="Human3.6M", unit="img", disable=not show)
    with torch.inference_mode():
        for patches in input_batches(samples, batch_size, workers=workers, pin_memory=device.type == "cuda"):
            images = normalise(patches.to(device, non_blocking=True))
            coords = (flip_test(model, images, heatmap_width, H36M_FLIP_PAIRS) if use_flip_test
                      else model(images))
            outs.append(coords.float())  # stays on the device: no synchronisation per batch
            bar.update(len(images))
    bar.close()
    return torch.cat(outs) if outs else torch.zeros((0, 0, 3), device=device)


def to_camera(coords: np.ndarray, sample: Sample, heatmap_shape: tuple[int, int, int]) -> np.ndarray:
    """Heatmap-unit output (J, 3) -> camera coordinates in mm (de-normalise, back-project), float32
    like the authors' (their arrays are float32 from the network output to the error)."""
    return pixel_to_camera(heatmap_to_pixel(coords, sample.bbox, heatmap_shape, sample.root_cam[2]), sample.f, sample.c)


def score(pred_cam: np.ndarray, samples: Sequence[Sample], protocol: int,
          settings: Optional[dict] = None, *, aligned: bool = False) -> EvalResult:
    """Root-relative errors over the 17 evaluated joints, overall and per action.

    `pred_cam` (N, 18, 3) camera mm, Thorax last; (N, 17, 3) without a Thorax gets the midpoint
    of its predicted shoulders as Thorax (how the ground truth's is defined, and what the
    network is trained to put there). As the authors' `evaluate`: the Pelvis is
    subtracted from prediction and ground truth, the rigid alignments are fitted on all 18
    joints (Thorax included) and only then is the Thorax dropped. `aligned=True` scores poses
    that the authors' tester has already aligned (its protocol-1 output: (N, 17, 3), Thorax
    dropped, translated by the alignment): they are compared as they are, and only the
    protocol-1 metric exists for them.
    """
    if len(pred_cam) != len(samples):
        raise H36MDataError(f"{len(pred_cam)} predictions for {len(samples)} samples")
    if not samples:
        names = ("pa_mpjpe_authors",) if aligned else ("mpjpe", "pa_mpjpe_authors", "pa_mpjpe_scaled")
        return EvalResult(protocol, 0, metrics.summarize({n: [] for n in names}, []), settings or {})
    ev = list(H36M_EVAL_JOINTS)
    gt = np.stack([s.joint_cam for s in samples]).astype(np.float64)
    gt = gt - gt[:, H36M_ROOT_JOINT:H36M_ROOT_JOINT + 1]
    pred = np.asarray(pred_cam, np.float64)
    if not aligned and pred.shape[1] == len(ev):  # no Thorax predicted: the shoulders' midpoint (as the GT's)
        pred = np.stack([add_thorax(p) for p in pred])
    if aligned:
        per_pose = {"pa_mpjpe_authors": metrics.joint_errors(pred[:, :len(ev)], gt[:, ev]).mean(axis=1)}
    else:
        pred = pred - pred[:, H36M_ROOT_JOINT:H36M_ROOT_JOINT + 1]

        def aligned_errors(with_scale: bool) -> np.ndarray:
            return metrics.joint_errors(metrics.align(pred, gt, with_scale=with_scale)[:, ev], gt[:, ev]).mean(axis=1)

        per_pose = {"mpjpe": metrics.joint_errors(pred[:, ev], gt[:, ev]).mean(axis=1),
                    "pa_mpjpe_authors": aligned_errors(False), "pa_mpjpe_scaled": aligned_errors(True)}
    return EvalResult(protocol, len(samples), metrics.summarize(per_pose, [s.action for s in samples]), settings or {})


def evaluate_model(model: Callable[[torch.Tensor], torch.Tensor], heatmap_shape: tuple[int, int, int], root: str | Path,
                   *, protocol: int = 2, use_flip_test: bool = True, bbox_source: str = "gt",
                   rootnet_file: Optional[str | Path] = None, max_frames: Optional[int] = None,
                   device: Any = "cpu", batch_size: int = 32, workers: Optional[int] = None,
                   progress: bool | str = "auto") -> EvalResult:
    """Evaluate a model (images -> (B, J, 3) heatmap units) on Human3.6M like the authors' tester.

    `workers`, `batch_size`, `device` and sharding under torch.distributed change the speed,
    never a figure (same crops, same batches)."""
    samples = load_samples(root, protocol, bbox_source=bbox_source, rootnet_file=rootnet_file, max_frames=max_frames)
    if not samples:
        raise H36MDataError(f"{root}: no test samples for protocol {protocol} (subjects, every 64th frame)")
    coords = predict(model, samples, heatmap_shape[2], device=device, use_flip_test=use_flip_test,
                     batch_size=batch_size, workers=workers, progress=progress)
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
    from ..checkpoint.model import resolve_device

    return evaluate_checkpoint(ckpt, root, protocol=2, device=resolve_device("auto")).primary_mm
