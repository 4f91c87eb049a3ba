"""Parity statistics between two coordinate arrays, and the failure text built from them.

Why its own module: every parity check (implementation vs reference, batch vs single,
flip test) fails the same way, and a reimplementer needs the same three things from
each failure: *where* it is worst (sample, joint by name, coordinate), *how bad* (max
and mean error, how many values are out of tolerance), and *how to reproduce it*.

Tolerance follows `numpy.allclose`: a value passes when |actual - expected| <=
atol + rtol * |expected|. Non-finite values always fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reference_model import H36M_JOINT_NAMES

from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL

COORD_NAMES = ("x", "y", "z")


def joint_name(index: int, joint_num: int) -> str:
    """Human3.6M name for 17/18-joint outputs (same order), else `joint N`."""
    if joint_num in (17, 18) and index < joint_num:
        return H36M_JOINT_NAMES[index]
    return f"joint {index}"


@dataclass(frozen=True)
class ParityStats:
    """Where and how much two `(B, J, 3)` arrays differ."""

    max_abs: float
    mean_abs: float
    worst_sample: int
    worst_joint: int
    worst_coord: int
    worst_actual: float
    worst_expected: float
    num_bad: int
    num_values: int
    atol: float
    rtol: float
    joint_num: int

    @property
    def ok(self) -> bool:
        return self.num_bad == 0

    @property
    def worst_joint_name(self) -> str:
        return joint_name(self.worst_joint, self.joint_num)

    @property
    def worst_coord_name(self) -> str:
        return COORD_NAMES[self.worst_coord]

    def summary(self) -> str:
        """Two lines: the worst value, then the overall figures."""
        return (
            f"worst: joint {self.worst_joint} ({self.worst_joint_name}), coordinate {self.worst_coord_name}, "
            f"sample {self.worst_sample}: got {self.worst_actual:.6g}, expected {self.worst_expected:.6g}\n"
            f"max error {self.max_abs:.3g}, mean error {self.mean_abs:.3g} (heatmap units); "
            f"{self.num_bad}/{self.num_values} values outside atol={self.atol:g} + rtol={self.rtol:g}*|expected|"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ok=self.ok, worst_joint_name=self.worst_joint_name, worst_coord_name=self.worst_coord_name)
        return {k: (v if not isinstance(v, float) or np.isfinite(v) else str(v)) for k, v in out.items()}


class ShapeMismatch(ValueError):
    """The arrays cannot be compared value by value."""


def _nonfinite_as_inf(err: np.ndarray) -> np.ndarray:
    """Every non-finite error (NaN, inf) as inf: always the worst, never `nan > tol == False`."""
    return np.where(np.isfinite(err), err, np.inf)


def worst_position(diff: Any) -> tuple[int, ...]:
    """Index of the largest |difference| in `diff` (NaN and inf count as the largest), one int per axis."""
    err = _nonfinite_as_inf(np.abs(np.asarray(diff, dtype=np.float64)))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))


def compare_coords(
    actual: Any, expected: Any, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL
) -> ParityStats:
    """Statistics of `actual` against `expected`, both `(B, J, 3)`; raises ShapeMismatch otherwise."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ShapeMismatch(f"expected coordinates of shape {e.shape}, got {a.shape}")
    err = _nonfinite_as_inf(np.abs(a - e))
    bad = ~(err <= atol + rtol * np.abs(e))
    s, j, c = worst_position(err)
    finite = err[np.isfinite(err)]
    mean = float(err.mean()) if finite.size == err.size else float("inf")
    return ParityStats(
        max_abs=float(err.max()),
        mean_abs=mean,
        worst_sample=int(s),
        worst_joint=int(j),
        worst_coord=int(c),
        worst_actual=float(a[s, j, c]),
        worst_expected=float(e[s, j, c]),
        num_bad=int(bad.sum()),
        num_values=int(err.size),
        atol=atol,
        rtol=rtol,
        joint_num=int(e.shape[1]),
    )


def per_coordinate_max(actual: Any, expected: Any) -> dict[str, float]:
    """Largest |error| of each coordinate: shows at a glance whether only x, y or z is off."""
    err = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(expected, dtype=np.float64))
    return {name: float(np.nanmax(err[..., i])) for i, name in enumerate(COORD_NAMES)}


def repro_snippet(
    *,
    ckpt_path: str,
    target: str,
    images_expr: str,
    sample: int,
    joint: int,
    coord: int,
    expected_expr: str = "ref(torch.from_numpy(x)).numpy()",
    actual_expr: str = "impl(x)",
    load_kwargs: str = "",
    setup: Sequence[str] = (),
) -> str:
    """A few lines of Python that recompute the worst value with the user's own implementation.

    `target` is `module:factory` or `onnx:PATH`; `images_expr` rebuilds the input batch;
    `load_kwargs` (e.g. `joint_num=18`) repeats options the checkpoint was loaded with.
    """
    if target.startswith("onnx:"):
        make = f"impl = load_onnx({str(Path(target[5:]).absolute())!r})"
        imp = (
            "from pytest_convnextpose.checkpoint.model import reference_model_for\n"
            "from pytest_convnextpose.implementations.onnx_runner import load_onnx"
        )
    else:
        module, _, attr = target.rpartition(":")
        if module.endswith(".py"):
            target = f"{Path(module).absolute()}:{attr}"
        make = f"impl = load_implementation({target!r}, ckpt)"
        imp = (
            "from pytest_convnextpose.checkpoint.model import reference_model_for\n"
            "from pytest_convnextpose.implementations.adapter import load_implementation"
        )
    lines = [
        "import numpy as np, torch",
        "from pytest_convnextpose import load_checkpoint",
        imp,
        *setup,
        f"ckpt = load_checkpoint({ckpt_path!r}{', ' + load_kwargs if load_kwargs else ''})",
        make,
        "ref = reference_model_for(ckpt.spec, ckpt.state_dict)",
        f"x = {images_expr}",
        "with torch.no_grad():",
        f"    want = {expected_expr}",
        f"got = {actual_expr}",
        f"print('got', got[{sample}, {joint}, {coord}], 'expected', want[{sample}, {joint}, {coord}])",
    ]
    return "\n".join(lines)
