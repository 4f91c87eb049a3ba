"""Compare a candidate checkpoint with a baseline (`--baseline PATH`): what changed, and how much.

Why: a CI gate on model changes needs numbers a reviewer can judge. Three levels:

1. architecture: spec fields, keys present on one side only, tensors whose shape changed;
2. weights: per-tensor drift (max/mean |diff| and the relative L2 change ||c-b|| / ||b||);
3. outputs: both reference models on the same deterministic inputs, the coordinate drift
   in heatmap units and in millimetres at the Human3.6M scale.

Units (docs/reimplementers.md, "Baseline gating"). In the authors' pipeline a crop covers
a 2000 mm cube around the root joint (`bbox_3d_shape`, docs/spec.md §6: z = (z/D*2-1)*1000 mm, so
the D depth bins span 2000 mm; the square crop of the bbox made x1.25 is the same cube
seen from the camera). So one heatmap cell is 2000/W mm in x, 2000/H mm in y and 2000/D mm
in z, and one heatmap cell in x is input_W/W pixels of the 256x256 crop. The mm figure is
that scale, not a camera back-projection: it is exact for z and the standard approximation
for x and y. Comparing in mm also works when the two heatmap sizes differ.
`--max-output-drift` bounds the largest per-joint 3D distance in mm over all inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from reference_model import ArchSpec

from ..implementations.compare import COORD_NAMES, joint_name

#: extent of the Human3.6M crop cube in millimetres (authors' cfg.bbox_3d_shape)
H36M_CUBE_MM = 2000.0
#: how many of the most-changed tensors the summary lists
TOP_TENSORS = 5


@dataclass(frozen=True)
class TensorDrift:
    key: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    rel_l2: float  # ||candidate - baseline|| / ||baseline||; inf when the baseline is all zeros and they differ
    kind: str = "weight"  # weight (learnable) | statistic (BatchNorm running mean/var) | counter (integer)

    @property
    def changed(self) -> bool:
        return self.max_abs > 0.0


def tensor_kind(key: str, is_floating_point: bool) -> str:
    """Learnable weights and BatchNorm statistics change what the network computes; integer
    counters (`num_batches_tracked`) only count training steps, so they never rank with them."""
    if not is_floating_point or key.endswith("num_batches_tracked"):
        return "counter"
    return "statistic" if key.endswith(("running_mean", "running_var")) else "weight"


@dataclass(frozen=True)
class OutputDrift:
    inputs: str
    max_hm: Optional[float]  # None when the heatmap sizes differ (units not comparable)
    mean_hm: Optional[float]
    per_coord_max_hm: Optional[dict[str, float]]
    max_px: Optional[float]  # largest |dx| or |dy| in input pixels
    max_mm: float  # largest per-joint 3D distance
    mean_mm: float
    worst_sample: int
    worst_joint: int
    worst_joint_name: str
    mm_per_unit: dict[str, float]  # candidate's heatmap cell in mm, per coordinate


@dataclass
class BaselineComparison:
    candidate: dict[str, Any]
    baseline: dict[str, Any]
    architecture_differences: list[str] = field(default_factory=list)
    tensors: list[TensorDrift] = field(default_factory=list)
    output: Optional[OutputDrift] = None
    output_unavailable: Optional[str] = None
    mpjpe: dict[str, Any] = field(default_factory=dict)
    #: the outputs compared, (B, J, 3) heatmap units, for pictures (not part of the JSON)
    candidate_coords: Optional[np.ndarray] = field(default=None, repr=False)
    baseline_coords: Optional[np.ndarray] = field(default=None, repr=False)

    def worst_pair_mm(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(baseline, candidate) poses `(J, 3)` of the worst sample in mm at the Human3.6M scale (the
        units `output_drift` measures in); None without outputs."""
        if self.output is None or self.candidate_coords is None or self.baseline_coords is None:
            return None
        s = self.output.worst_sample
        return to_mm(self.baseline_coords[s], self.coord_volumes[1]), to_mm(
            self.candidate_coords[s], self.coord_volumes[0]
        )

    coord_volumes: tuple = field(default=((1, 1, 1), (1, 1, 1)), repr=False)

    @property
    def changed_tensors(self) -> list[TensorDrift]:
        """Changed weights and statistics, most changed first (counters are not ranked with them)."""
        return sorted((t for t in self.tensors if t.changed and t.kind != "counter"), key=lambda t: -t.rel_l2)

    @property
    def changed_counters(self) -> list[TensorDrift]:
        return [t for t in self.tensors if t.changed and t.kind == "counter"]

    def tensor_summary(self) -> str:
        changed, counters = self.changed_tensors, self.changed_counters
        if not changed and not counters:
            return f"all {len(self.tensors)} shared tensors are bit-identical"
        valued = [t for t in self.tensors if t.kind != "counter"]
        if changed:
            top = ", ".join(f"{t.key} (rel {t.rel_l2:.3g}, max {t.max_abs:.3g})" for t in changed[:TOP_TENSORS])
            text = f"{len(changed)}/{len(valued)} shared weights and statistics changed; most: {top}"
        else:
            text = f"all {len(valued)} shared weights and statistics are bit-identical"
        if counters:
            text += (
                f"; {len(counters)} BatchNorm counter(s) differ (training steps, e.g. {counters[0].key} "
                f"by {counters[0].max_abs:.0f}; not weights)"
            )
        return text

    def output_summary(self) -> str:
        o = self.output
        if o is None:
            return f"output drift not measured: {self.output_unavailable}"
        hm = (
            "n/a (heatmap sizes differ)"
            if o.max_hm is None
            else f"max {o.max_hm:.3g}, mean {o.mean_hm:.3g} heatmap units"
        )
        return (
            f"output drift on {o.inputs}: {hm}; max {o.max_mm:.3g} mm, mean {o.mean_mm:.3g} mm per joint "
            f"(worst: joint {o.worst_joint} ({o.worst_joint_name}), sample {o.worst_sample})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "architecture_differences": list(self.architecture_differences),
            "tensor_summary": {
                "compared": len(self.tensors),
                "changed": len(self.changed_tensors),
                "changed_counters": len(self.changed_counters),
                "max_rel_l2": max((_finite(t.rel_l2) for t in self.tensors if t.kind != "counter"), default=0.0),
                "text": self.tensor_summary(),
            },
            "tensors": [_clean(asdict(t)) for t in self.tensors],
            "output_drift": None if self.output is None else _clean(asdict(self.output)),
            "output_drift_unavailable": self.output_unavailable,
            "units": {
                "mm_scale": f"{H36M_CUBE_MM:g} mm crop cube (Human3.6M, authors' bbox_3d_shape)",
                "heatmap": "x: width cells, y: height cells, z: depth bins",
            },
            "mpjpe": dict(self.mpjpe),
        }


def _finite(v: float) -> float | str:
    return v if np.isfinite(v) else str(v)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, float):
            out[k] = _finite(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out


# -- architecture ----------------------------------------------------------------


def architecture_differences(candidate: ArchSpec, baseline: ArchSpec) -> list[str]:
    c, b = candidate.to_dict(), baseline.to_dict()
    return [f"spec.{k}: baseline {b[k]}, candidate {c[k]}" for k in sorted(c) if c[k] != b[k]]


def key_differences(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    out = [f"{k}: only in the baseline" for k in sorted(set(baseline) - set(candidate))]
    out += [f"{k}: only in the candidate" for k in sorted(set(candidate) - set(baseline))]
    out += [
        f"{k}: shape {list(baseline[k].shape)} in the baseline, {list(candidate[k].shape)} in the candidate"
        for k in sorted(set(candidate) & set(baseline))
        if tuple(candidate[k].shape) != tuple(baseline[k].shape)
    ]
    return out


# -- weights ---------------------------------------------------------------------


def tensor_drift(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[TensorDrift]:
    """Drift of every tensor present in both with the same shape, in canonical key order."""
    out = []
    for key in sorted(set(candidate) & set(baseline)):
        c = candidate[key].detach().cpu().double().numpy()
        b = baseline[key].detach().cpu().double().numpy()
        if c.shape != b.shape:
            continue
        diff = np.abs(c - b)
        max_abs = float(diff.max()) if diff.size else 0.0
        mean_abs = float(diff.mean()) if diff.size else 0.0
        norm_b, norm_d = float(np.linalg.norm(b)), float(np.linalg.norm(c - b))
        rel = norm_d / norm_b if norm_b > 0 else (0.0 if norm_d == 0 else float("inf"))
        kind = tensor_kind(key, bool(candidate[key].is_floating_point()))
        out.append(TensorDrift(key, tuple(c.shape), max_abs, mean_abs, rel, kind))
    return out


# -- outputs ---------------------------------------------------------------------


def heatmap_volume(spec: ArchSpec, input_size: tuple[int, int]) -> tuple[int, int, int]:
    """(W, H, D) of the heatmap for `input_size` = (H, W): the x, y, z index ranges."""
    h, w = spec.heatmap_size(input_size)
    return w, h, spec.depth_dim


def to_mm(coords: np.ndarray, volume: tuple[int, int, int]) -> np.ndarray:
    """Heatmap units -> mm at the Human3.6M scale (offsets dropped: only differences matter)."""
    scale = np.array([H36M_CUBE_MM / n for n in volume], dtype=np.float64)
    return np.asarray(coords, dtype=np.float64) * scale


def output_drift(
    candidate: np.ndarray,
    baseline: np.ndarray,
    cand_volume: tuple[int, int, int],
    base_volume: tuple[int, int, int],
    input_size: tuple[int, int],
    inputs: str,
) -> OutputDrift:
    """Coordinate drift between two `(B, J, 3)` outputs of the same inputs."""
    c, b = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64)
    dist = np.linalg.norm(to_mm(c, cand_volume) - to_mm(b, base_volume), axis=2)  # (B, J)
    s, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    same_units = cand_volume == base_volume
    hm = np.abs(c - b) if same_units else None
    px = None
    if same_units:
        px_per_cell = np.array([input_size[1] / cand_volume[0], input_size[0] / cand_volume[1]])
        px = float((hm[..., :2] * px_per_cell).max())
    return OutputDrift(
        inputs=inputs,
        max_hm=None if hm is None else float(hm.max()),
        mean_hm=None if hm is None else float(hm.mean()),
        per_coord_max_hm=None if hm is None else {n: float(hm[..., i].max()) for i, n in enumerate(COORD_NAMES)},
        max_px=px,
        max_mm=float(dist.max()),
        mean_mm=float(dist.mean()),
        worst_sample=int(s),
        worst_joint=int(j),
        worst_joint_name=joint_name(int(j), c.shape[1]),
        mm_per_unit={n: H36M_CUBE_MM / v for n, v in zip(COORD_NAMES, cand_volume)},
    )


def describe(ckpt: Any) -> dict[str, Any]:
    return {"path": str(ckpt.path), "sha256": ckpt.sha256, "variant": ckpt.variant, "spec": ckpt.spec.to_dict()}


def compare_checkpoints(
    candidate: Any,
    baseline: Any,
    *,
    images: np.ndarray,
    candidate_coords: Optional[np.ndarray] = None,
    baseline_coords: Optional[np.ndarray] = None,
    inputs: str = "inputs",
    run_model: Any = None,
) -> BaselineComparison:
    """Everything `--baseline` reports. `run_model(ckpt, images) -> (B, J, 3)` computes outputs
    that are not given (default: the reference model on the CPU)."""
    run = run_model or _reference_coords
    result = BaselineComparison(candidate=describe(candidate), baseline=describe(baseline))
    result.architecture_differences = architecture_differences(candidate.spec, baseline.spec) + key_differences(
        candidate.state_dict, baseline.state_dict
    )
    result.tensors = tensor_drift(candidate.state_dict, baseline.state_dict)
    if candidate.spec.joint_num != baseline.spec.joint_num:
        result.output_unavailable = (
            f"joint counts differ (baseline {baseline.spec.joint_num}, candidate {candidate.spec.joint_num})"
        )
        return result
    size = (int(images.shape[2]), int(images.shape[3]))
    cand = candidate_coords if candidate_coords is not None else run(candidate, images)
    base = baseline_coords if baseline_coords is not None else run(baseline, images)
    volumes = (heatmap_volume(candidate.spec, size), heatmap_volume(baseline.spec, size))
    result.output = output_drift(cand, base, *volumes, size, inputs)
    result.candidate_coords, result.baseline_coords, result.coord_volumes = np.asarray(cand), np.asarray(base), volumes
    return result


def _reference_coords(ckpt: Any, images: np.ndarray) -> np.ndarray:
    from ..checkpoint.model import reference_model_for, run_reference

    return run_reference(reference_model_for(ckpt.spec, ckpt.state_dict), images)
