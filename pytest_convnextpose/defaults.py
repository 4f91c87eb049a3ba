"""The embedded default: synthetic checkpoints of the four published variants.

Without `--ckpt` the conformance suite still has something to check: one file per
published variant (XS, S, M, L), written exactly as the authors' training code saves a
snapshot — `torch.save({'epoch': ..., 'network': {'module.' + key: tensor}})`, zip format —
with seeded synthetic weights (`synthetic.random_state_dict`). They are *not* trained
weights and are always labelled `synthetic` in test ids and in the report.

`torch.save` output is byte-for-byte deterministic for the same tensors, so every
pytest-xdist worker that writes its own copy gets the same sha256 and the same test ids.

Also the documented default parity tolerances (`DEFAULT_ATOL`, `DEFAULT_RTOL`). They live
here, not in `compare` (which re-exports them), because the plugin needs them for its
`--help` text at start-up, and this module imports nothing heavy: a pytest run that never
uses the suite must not pay for importing numpy or torch.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_VARIANTS = ("XS", "S", "M", "L")
#: seeds per variant (fixed: the files, their sha256 and the test ids never change)
SEEDS = {"XS": 101, "S": 102, "M": 103, "L": 104}
EPOCH = 0

#: documented parity defaults (docs/reimplementers.md). Heatmap units: 1e-3 of a heatmap cell is
#: ~0.03 mm at the Human3.6M scale for a 64-bin volume, far below any accuracy effect, yet
#: 100x above float32 rounding of a faithful port.
DEFAULT_ATOL = 1e-3
DEFAULT_RTOL = 1e-4


def default_file_name(variant: str) -> str:
    return f"{variant}.pth.tar"


def write_default_checkpoints(directory: Path, variants: tuple[str, ...] = DEFAULT_VARIANTS) -> list[Path]:
    """Write one authors'-layout snapshot per variant into `directory`; return their paths."""
    import torch

    from reference_model import VARIANTS

    from .synthetic import random_state_dict

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in variants:
        sd = random_state_dict(VARIANTS[name].spec, seed=SEEDS[name])
        snapshot = {"epoch": EPOCH, "network": {"module." + k: v for k, v in sd.items()}}
        path = directory / default_file_name(name)
        tmp = path.with_name(path.name + ".partial")
        torch.save(snapshot, tmp)
        tmp.replace(path)
        paths.append(path)
    return paths
