"""3D pose error metrics, named so the two Procrustes conventions cannot be confused.

* `mpjpe`: mean per-joint position error (Euclidean, in the poses' unit, mm here).
* `pa_mpjpe_authors`: the 3DMPPE/ConvNeXtPose `rigid_align` -- rotation + translation,
  **no scale** -- then MPJPE. This is what the paper's "PA-MPJPE, protocol 1" figures are.
* `pa_mpjpe_scaled`: the standard Procrustes-aligned MPJPE (Umeyama: rotation,
  translation **and** a global scale), what most other papers call PA-MPJPE.

Poses are arrays (J, 3) or batches (N, J, 3); per-pose functions return one error per
pose so callers can aggregate per action (`mean_by_group`). numpy in float64 throughout:
this is evaluation, not a hot path.
"""
from __future__ import annotations

from typing import Hashable, Iterable, Mapping

import numpy as np


def _as_batch(poses: np.ndarray) -> np.ndarray:
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"poses must be (J, 3) or (N, J, 3), got shape {arr.shape}")
    return arr


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean error of each joint, (N, J)."""
    p, g = _as_batch(pred), _as_batch(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in shape")
    return np.linalg.norm(p - g, axis=2)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error over all poses and joints."""
    return float(joint_errors(pred, gt).mean())


def similarity_transform(source: np.ndarray, target: np.ndarray, *,
                         with_scale: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares (s, R, t) with target ~ s * R @ source + t, for each pose pair of a batch.

    Closed form of Umeyama (1991): SVD of the cross-covariance, with the reflection fix
    (det R = +1). `with_scale=False` fixes s = 1, which is the authors' `rigid_align`.
    Batched ((N, J, 3) -> s (N,), R (N, 3, 3), t (N, 3)): one stacked SVD instead of a Python
    loop, so scoring the whole test set takes milliseconds.
    """
    a, b = _as_batch(source), _as_batch(target)
    mu_a, mu_b = a.mean(axis=1), b.mean(axis=1)
    a0, b0 = a - mu_a[:, None], b - mu_b[:, None]
    u, sing, vt = np.linalg.svd(np.einsum("nji,njk->nik", b0, a0))  # cross-covariance (target x source)
    d = np.ones_like(sing)
    det = np.sign(np.linalg.det(u @ vt))
    d[:, 2] = np.where(det == 0, 1.0, det)
    rot = u @ (d[:, :, None] * vt)
    spread = (a0 ** 2).sum(axis=(1, 2))
    if with_scale:  # a source collapsed to one point aligns best at scale 0 (onto the target's centroid)
        scale = np.where(spread > 0, (sing * d).sum(axis=1) / np.where(spread > 0, spread, 1.0), 0.0)
    else:
        scale = np.ones(len(a))
    trans = mu_b - scale[:, None] * np.einsum("nij,nj->ni", rot, mu_a)
    return scale, rot, trans


def align(pred: np.ndarray, gt: np.ndarray, *, with_scale: bool) -> np.ndarray:
    """`pred` moved onto `gt` by the best rigid (or similarity) transform, pose by pose."""
    p, g = _as_batch(pred), _as_batch(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in shape")
    scale, rot, trans = similarity_transform(p, g, with_scale=with_scale)
    return scale[:, None, None] * np.einsum("nij,nkj->nki", rot, p) + trans[:, None]


def pa_joint_errors_authors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, J) errors after the authors' rigid alignment (rotation + translation, no scale)."""
    return joint_errors(align(pred, gt, with_scale=False), gt)


def pa_joint_errors_scaled(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, J) errors after the standard similarity alignment (with scale)."""
    return joint_errors(align(pred, gt, with_scale=True), gt)


def pa_mpjpe_authors(pred: np.ndarray, gt: np.ndarray) -> float:
    """PA-MPJPE as the ConvNeXtPose/3DMPPE code computes it: no scale (protocol 1 figures)."""
    return float(pa_joint_errors_authors(pred, gt).mean())


def pa_mpjpe_scaled(pred: np.ndarray, gt: np.ndarray) -> float:
    """Standard PA-MPJPE: Procrustes with rotation, translation and scale."""
    return float(pa_joint_errors_scaled(pred, gt).mean())


def mean_by_group(per_pose: Iterable[float], groups: Iterable[Hashable]) -> dict[Hashable, float]:
    """Mean of per-pose errors per group (e.g. action), groups in first-seen order."""
    sums: dict[Hashable, float] = {}
    counts: dict[Hashable, int] = {}
    for err, key in zip(per_pose, groups, strict=True):
        sums[key] = sums.get(key, 0.0) + float(err)
        counts[key] = counts.get(key, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


def summarize(per_pose: Mapping[str, np.ndarray], groups: Iterable[Hashable]) -> dict[str, dict]:
    """{metric: {"mean": overall, "per_group": {group: mean}}} for several per-pose error arrays."""
    groups = list(groups)
    return {name: {"mean": float(np.mean(errs)) if len(errs) else float("nan"),
                   "per_group": mean_by_group(errs, groups)}
            for name, errs in per_pose.items()}
