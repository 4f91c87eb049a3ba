"""Causes read from the coordinates alone, when no re-run of the reference reproduces them.

Why: some porting mistakes leave the network intact and change what comes out of it: the
coordinates rescaled (input pixels instead of heatmap units, z normalised to [0, 1] or to
[-1, 1]), the joints in another order, or no information at all (weights that were never
loaded give flat heatmaps, whose soft-argmax is the volume's centre). Each is recognised
from the implementation's output against the reference output on the same batch: a
per-axis linear fit, a joint-to-joint matching, the spread of the output, and its range
against the heatmap volume. Cheap (no forward pass), so they run on every failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from reference_model import H36M_FLIP_PAIRS, ArchSpec

from .compare import COORD_NAMES, joint_name

#: bbox_3d_shape of the authors' config: a 2000 mm cube around the root (docs/spec.md §6)
BBOX_3D_MM = 2000.0
#: a linear map is only reported when its scale is at least this (an output that ignores the
#: reference, e.g. a flat one, fits y = 0*x + c)
MIN_SCALE = 0.005
#: an output whose spread over samples and joints is below this fraction of the reference's is "flat"
FLAT_FRACTION = 0.05


@dataclass(frozen=True)
class Finding:
    """A cause recognised from the output: its name, one-sentence description and the evidence."""

    name: str
    description: str
    evidence: str
    max_abs: float  # what is left of the error once the cause is accounted for (inf: not a reproduction)


def _close(value: float, target: float, rel: float = 2e-3) -> bool:
    return abs(value - target) <= rel * max(abs(target), 1e-9)


def _extents(spec: ArchSpec, input_size: tuple[int, int]) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """(W, H, D) of the heatmap volume and (W, H) of the input."""
    h, w = spec.heatmap_size(input_size)
    return (w, h, spec.depth_dim), (input_size[1], input_size[0])


def _describe_axis(c: int, a: float, b: float, spec: ArchSpec, input_size: tuple[int, int]) -> str:
    name = COORD_NAMES[c]
    (vol, inp) = _extents(spec, input_size)
    n = vol[c]
    unit = "D" if c == 2 else ("W" if c == 0 else "H")
    small_b = abs(b) <= 1e-3 * max(1.0, abs(a) * n)
    wrong = f"{name} not rescaled to [0, {unit})" if c == 2 else f"{name} not in heatmap units [0, {unit})"
    if c < 2:
        px = inp[c] / n
        if _close(a, px) and (small_b or _close(b, px / 2 - 0.5, 1e-2)):
            centres = "" if small_b else f", offset {b:g} (cell centres)"
            return (
                f"{name} in input pixels instead of heatmap units (per-axis linear fit: scale {px:g} = "
                f"{inp[c]}/{n} px per heatmap cell{centres})"
            )
    if c == 2 and _close(a, BBOX_3D_MM / n) and _close(b, -BBOX_3D_MM / 2, 1e-2):
        return (
            f"{wrong}: z in millimetres, (z/D*2-1)*1000, the evaluation's de-normalisation (docs/spec.md §6) (per-axis "
            f"linear fit: scale 2000/D = {a:.4g}, offset {b:.4g})"
        )
    if small_b and _close(a, 1.0 / (n - 1)):
        return (
            f"{wrong}: scaled to [0, 1] by 1/({unit}\u22121) (per-axis linear fit: scale 1/({unit}\u22121) = 1/{n - 1})"
        )
    if small_b and _close(a, 1.0 / n):
        return f"{wrong}: scaled to [0, 1) by 1/{unit} (per-axis linear fit: scale 1/{unit} = 1/{n})"
    if _close(b, -1.0, 1e-2) and (_close(a, 2.0 / n) or _close(a, 2.0 / (n - 1))):
        how = f"{name}/{unit}*2-1" if _close(a, 2.0 / n) else f"{name}/({unit}-1)*2-1"
        return f"{wrong}: rescaled to [-1, 1] as {how} (per-axis linear fit: scale {a:.4g}, offset -1)"
    return f"{wrong}: per-axis linear fit: yours = {a:.6g}*{name} + {b:.6g}"


def _float64_coords(actual: np.ndarray, reference: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Both outputs in float64 when they are comparable `(B, J, 3)` coordinates and yours are finite
    (a detector that fits or measures spreads has nothing to say otherwise); else None."""
    if actual.shape != reference.shape or actual.ndim != 3 or actual.shape[2] != 3:
        return None
    a64 = actual.astype(np.float64)
    return (a64, reference.astype(np.float64)) if np.isfinite(a64).all() else None


def linear_fit(
    actual: np.ndarray, reference: np.ndarray, spec: ArchSpec, input_size: tuple[int, int], tolerance: float
) -> Optional[Finding]:
    """Each coordinate of `actual` an affine function of the reference's (not all the identity)?"""
    pair = _float64_coords(actual, reference)
    if pair is None:
        return None
    a64, r64 = pair
    fits, worst = [], 0.0
    for c in range(3):
        x, y = r64[..., c].ravel(), a64[..., c].ravel()
        if np.ptp(x) <= 1e-6:
            return None
        (a, b), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
        resid = float(np.max(np.abs(y - (a * x + b))))
        limit = max(10.0 * tolerance * max(1.0, abs(a)), 1e-5 * float(np.max(np.abs(y))))
        if resid > limit or abs(a) < MIN_SCALE:
            return None
        worst = max(worst, resid)
        fits.append((float(a), float(b)))
    changed = [c for c, (a, b) in enumerate(fits) if abs(a - 1.0) > 1e-3 or abs(b) > 10.0 * tolerance]
    if not changed:
        return None
    parts = [_describe_axis(c, *fits[c], spec, input_size) for c in changed]
    return Finding(
        "rescaled_coordinates",
        "coordinates rescaled: " + "; ".join(parts),
        f"a per-axis linear fit of your output against the reference leaves {worst:.2g}",
        worst,
    )


def joint_permutation(actual: np.ndarray, reference: np.ndarray, tolerance: float) -> Optional[Finding]:
    """The reference's joints in another order?"""
    if actual.shape != reference.shape or actual.ndim != 3:
        return None
    j = actual.shape[1]
    a64, r64 = actual.astype(np.float64), reference.astype(np.float64)
    cost = np.abs(a64[:, :, None, :] - r64[:, None, :, :]).max(axis=(0, 3))  # (J yours, J reference)
    perm = cost.argmin(axis=1)
    left = float(cost[np.arange(j), perm].max())
    if sorted(perm.tolist()) != list(range(j)) or (perm == np.arange(j)).all():
        return None
    if left > max(10.0 * tolerance, 1e-5 * float(np.abs(a64).max())):
        return None
    moved = [(i, int(p)) for i, p in enumerate(perm) if p != i]
    swapped = {frozenset(p) for p in H36M_FLIP_PAIRS}
    if j in (17, 18) and {frozenset((i, p)) for i, p in moved} == swapped:
        text = "left/right joints swapped in the output: a joint permutation equal to the flip pairs " + " ".join(
            f"({a},{b})" for a, b in H36M_FLIP_PAIRS
        )
    else:
        listed = ", ".join(
            f"your {i} ({joint_name(i, j)}) is the reference's {p} ({joint_name(p, j)})" for i, p in moved[:6]
        )
        text = f"joints in another order ({len(moved)} moved): {listed}{', ...' if len(moved) > 6 else ''}"
    return Finding("joint_permutation", text, f"reordered, the reference matches your output to {left:.2g}", left)


def flat_output(
    actual: np.ndarray, reference: np.ndarray, spec: ArchSpec, input_size: tuple[int, int]
) -> Optional[Finding]:
    """Every joint of every image at about one point: the network carries no information."""
    pair = _float64_coords(actual, reference)
    if pair is None:
        return None
    a64, r64 = pair
    spread_a = a64.reshape(-1, 3).std(axis=0)
    spread_r = r64.reshape(-1, 3).std(axis=0)
    if (spread_r <= 0).any() or float((spread_a / spread_r).max()) > FLAT_FRACTION:
        return None
    vol, _ = _extents(spec, input_size)
    centre = np.array([(n - 1) / 2.0 for n in vol])
    mean = a64.reshape(-1, 3).mean(axis=0)
    near = bool((np.abs(mean - centre) <= 0.25 * np.array(vol)).all())
    where = (
        f"near the centre of the heatmap volume ({', '.join(f'{v:g}' for v in centre)})"
        if near
        else "whatever the input"
    )
    err = float(np.abs(a64 - r64).max())
    text = (
        "head weights (or all weights) never loaded: every joint of every image comes out at about the same point "
        f"({', '.join(f'{v:.3g}' for v in mean)}), {where}, so every joint is wrong by about the coordinate "
        "range; untrained head layers (random init) give flat heatmaps whose soft-argmax is the centre. Typical: "
        "load_state_dict(strict=False) with keys that do not match, e.g. the head's deconv_layers_N (the "
        "checkpoint) vs deconv_layers.(N-1) (a ModuleList head); load strictly"
    )
    return Finding(
        "flat_output",
        text,
        f"your output's spread is {float((spread_a / spread_r).max()):.2g} of the reference's; max error {err:.3g}",
        float("inf"),
    )


def outside_volume(actual: np.ndarray, spec: ArchSpec, input_size: tuple[int, int], tolerance: float) -> Optional[str]:
    """Where `actual` leaves this checkpoint's heatmap volume [0, W-1] x [0, H-1] x [0, D-1], in words."""
    if actual.ndim != 3 or actual.shape[2] != 3 or not np.isfinite(actual).all():
        return None
    vol, _ = _extents(spec, input_size)
    out = []
    for c, n in enumerate(vol):
        lo, hi = float(actual[..., c].min()), float(actual[..., c].max())
        if hi > n - 1 + 10 * tolerance or lo < -10 * tolerance:
            out.append(f"{COORD_NAMES[c]} spans {lo:.3g}..{hi:.3g}, this checkpoint's volume 0..{n - 1}")
    return "; ".join(out) or None
