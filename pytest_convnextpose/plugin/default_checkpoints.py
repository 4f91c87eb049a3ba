"""The embedded default: synthetic checkpoints of the four published variants.

Without `--ckpt` the conformance suite still has something to check: one file per
published variant (XS, S, M, L), written exactly as the authors' training code saves a
snapshot — `torch.save({'epoch': ..., 'network': {'module.' + key: tensor}})`, zip format —
with seeded synthetic weights (`synthetic.random_state_dict`). They are *not* trained
weights and are always labelled `synthetic` in test ids and in the report.

`torch.save` output is byte-for-byte deterministic for the same tensors, so every
pytest-xdist worker that writes its own copy gets the same sha256 and the same test ids.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_VARIANTS = ("XS", "S", "M", "L")
#: seeds per variant (fixed: the files, their sha256 and the test ids never change)
SEEDS = {"XS": 101, "S": 102, "M": 103, "L": 104}
EPOCH = 0


def default_file_name(variant: str) -> str:
    return f"{variant}.pth.tar"


def write_default_checkpoints(directory: Path, variants: tuple[str, ...] = DEFAULT_VARIANTS) -> list[Path]:
    """Write one authors'-layout snapshot per variant into `directory`; return their paths."""
    from reference_model import VARIANTS

    from ..convert.atomic_output import atomic_write_bytes
    from ..testing.synthetic import random_state_dict
    from ..testing.writers import torch_zip_bytes

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in variants:
        sd = random_state_dict(VARIANTS[name].spec, seed=SEEDS[name])
        snapshot = {"epoch": EPOCH, "network": {"module." + k: v for k, v in sd.items()}}
        path = directory / default_file_name(name)
        atomic_write_bytes(path, torch_zip_bytes(snapshot, root_name=path.name), force=True)
        paths.append(path)
    return paths
