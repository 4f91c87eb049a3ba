"""A picture of two poses side by side, for failures people would rather look at than read.

One figure per failure: the reference and the candidate skeleton of the worst image seen from
the front (x-y, as in the image) and from the side (z-y), and the error of every joint as a bar
chart. Drawn with matplotlib (the `plots` extra), on the Agg backend so it works headless.
Units are whatever the caller passes (heatmap cells or mm) and are named on the axes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .compare import joint_name

#: Human3.6M bones (parent, child) over the 17 evaluated joints, as the authors draw them
H36M_BONES = ((0, 7), (7, 8), (8, 9), (9, 10), (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
              (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6))
#: the joints of the right side (drawn in a second shade, so a left/right swap shows at a glance)
_RIGHT = {1, 2, 3, 14, 15, 16}


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed (`pip install matplotlib, or the package's plots extra`)."""


def draw_comparison(path: Path, expected: np.ndarray, actual: np.ndarray, *, title: str,
                    labels: Sequence[str] = ("reference", "candidate"), unit: str = "heatmap cells") -> Path:
    """Write a PNG comparing two poses `(J, 3)` (x, y, z), with each joint's 3-D distance as a bar
    chart; returns `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotsUnavailable(
            "matplotlib is not installed: pip install matplotlib, or the package's plots extra"
        ) from exc
    exp, act = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    joints = exp.shape[0]
    err = np.linalg.norm(act - exp, axis=1)
    names = [joint_name(i, joints) for i in range(joints)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [1, 1, 1.4]})
    for ax, (a, b, xlabel) in zip(axes[:2], ((0, 1, "x"), (2, 1, "z"))):
        for pose, colour, label in ((exp, "tab:blue", labels[0]), (act, "tab:red", labels[1])):
            _draw_pose(ax, pose, a, b, colour, label)
        ax.set_xlabel(f"{xlabel} ({unit})")
        ax.set_ylabel(f"y ({unit})")
        ax.invert_yaxis()  # image convention: y grows downwards
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title("front (x-y)" if a == 0 else "side (z-y)")
        ax.legend(loc="best", fontsize=8)
    worst = int(np.argmax(err))
    bars = axes[2].barh(range(joints), err, color=["tab:red" if i == worst else "tab:gray" for i in range(joints)])
    axes[2].set_yticks(range(joints), names, fontsize=7)
    axes[2].invert_yaxis()
    axes[2].set_xlabel(f"error per joint, 3-D distance ({unit})")
    axes[2].set_title(f"worst: {names[worst]} {err[worst]:.3g}")
    axes[2].bar_label(bars, fmt="%.2g", fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _draw_pose(ax, pose: np.ndarray, a: int, b: int, colour: str, label: str) -> None:
    joints = pose.shape[0]
    if joints >= 17:
        for i, (p, c) in enumerate(H36M_BONES):
            style = "-" if c not in _RIGHT else "--"
            ax.plot(pose[[p, c], a], pose[[p, c], b], style, color=colour, lw=2, alpha=0.8,
                    label=label if i == 0 else None)
        ax.scatter(pose[:, a], pose[:, b], s=10, color=colour)
    else:  # no skeleton known for this joint set: points only
        ax.scatter(pose[:, a], pose[:, b], s=14, color=colour, label=label)
