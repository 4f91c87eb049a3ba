"""Expected outputs a checkpoint is compared against: golden cases and `--expected` files.

Golden cases (`manifest.json` + `<case>_expected.pt`, see shared/golden/README.md) are found
by the checkpoint's sha256 in a manifest next to the checkpoint file or in a `--golden-dir`.

An `--expected` file is a torch file (any container the safe reader accepts, e.g. a
`torch.save` zip) holding a dict:
    input               float32 (B, 3, H, W), H and W divisible by 32, already normalised
    coords              float (B, J, 3): the expected model output in heatmap units (x, y, z)
    coords_flip_test    optional (B, J, 3): expected flip-test output (H36M flip pairs)
    heatmap_shape       optional (B, J*D, h, w)
    checkpoint_sha256   optional str: compare only against the checkpoint with this hash
    max_abs_tol         optional float (default 1e-3)
    mean_abs_tol        optional float (default 5e-5)
The golden `*_expected.pt` files have exactly this format, so one can be passed as-is.

Tolerances. The tiny golden case must agree to 1e-4 (max abs). Full-size cases get
max abs <= 1e-3 and mean abs <= 5e-5: their logits reach about +-200, and the golden
float32 outputs themselves sit 3-5e-4 from a float64 evaluation of the same network, so a
max bound tighter than 1e-3 would fail correct implementations on summation order alone.
The mean bound keeps the check sharp: a real bug (e.g. a wrong BatchNorm eps) raises the
mean error about 10x above it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..checkpoint import metadata_keys as keys
from ..reading.wrapped import archive_path

TINY_MAX_ABS = 1e-4
FULL_MAX_ABS = 1e-3
FULL_MEAN_ABS = 5e-5
#: golden cases small enough for the strict bound (see module docstring)
TINY_CASES = ("tiny",)


@dataclass(frozen=True)
class ExpectedCase:
    """Where expected outputs for one checkpoint come from, and how close they must be."""

    name: str  # golden case name, or the --expected file name
    path: Path  # the *_expected.pt / --expected file
    max_abs: float
    mean_abs: Optional[float]
    origin: str  # golden | expected-file


def provenance_hashes(sha256: Optional[str], metadata: Optional[dict] = None) -> list[str]:
    """The hashes a checkpoint answers to: its own sha256 and, for a file converted by
    `convnextpose convert`, the source's (`convnextpose.source_sha256` in its metadata).

    The converter verified that the converted tensors are bit-equal to the source's, so the
    source's expected outputs apply to it unchanged."""
    out = [sha256] if sha256 else []
    source = (metadata or {}).get(keys.SOURCE_SHA256)
    if isinstance(source, str) and source and source not in out:
        out.append(source)
    return out


def golden_case_for(path: str | Path, sha256: Optional[str], metadata: Optional[dict],
                    golden_dirs: list[Path]) -> Optional[ExpectedCase]:
    """The golden case of a checkpoint: its hashes (`provenance_hashes`) listed in a manifest.json
    beside the file (links resolved) or in one of `golden_dirs` (--golden-dir), else None.
    The one lookup used by the parity tests and the implementation tests."""
    beside = Path(archive_path(path)).resolve().parent  # `ARCHIVE::MEMBER`: beside the archive
    return find_golden_case(provenance_hashes(sha256, metadata), [beside, *golden_dirs])


def find_golden_case(sha256: Optional[str] | list[str], search_dirs: list[Path]) -> Optional[ExpectedCase]:
    """The golden case whose `checkpoint_sha256` is `sha256` (or one of a list of hashes, see
    `provenance_hashes`), looked up in each dir's manifest."""
    hashes = [h for h in ([sha256] if isinstance(sha256, str) or sha256 is None else sha256) if h]
    if not hashes:
        return None
    for directory in search_dirs:
        manifest = directory / "manifest.json"
        try:
            cases = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        for name, case in cases.items():
            if isinstance(case, dict) and case.get("checkpoint_sha256") in hashes and case.get("expected"):
                path = directory / case["expected"]
                if path.is_file():
                    if name in TINY_CASES:
                        return ExpectedCase(name, path, TINY_MAX_ABS, None, "golden")
                    return ExpectedCase(name, path, FULL_MAX_ABS, FULL_MEAN_ABS, "golden")
    return None


def read_expected_object(path: Path) -> Any:
    """The object in an expected-outputs file, read by the same hardened reader as checkpoints.

    These files come from users (or sit beside a downloaded checkpoint), so they get the same
    allowlist unpickler and container limits; `torch.load(weights_only=True)` alone would not
    stop, e.g., a DEFLATE bomb. Raises ValueError with the reader's one-line reason."""
    from ..errors import CheckpointError
    from ..reading import read_file

    try:
        return read_file(path).obj
    except CheckpointError as exc:
        raise ValueError(str(exc.with_path(str(path)))) from None


def load_expected(path: Path) -> dict[str, Any]:
    """Read an expected-outputs file without executing anything from it; check its fields."""
    import torch

    data = read_expected_object(path)
    if not isinstance(data, dict) or "input" not in data or "coords" not in data:
        raise ValueError(f"{path}: an expected-outputs file must be a dict with 'input' and 'coords'")
    x, c = data["input"], data["coords"]
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{path}: 'input' must be a (B, 3, H, W) tensor")
    if not isinstance(c, torch.Tensor) or c.dim() != 3 or c.shape[0] != x.shape[0] or c.shape[2] != 3:
        raise ValueError(f"{path}: 'coords' must be a (B, J, 3) tensor with B = {x.shape[0]}")
    return data


def expected_file_case(path: Path, sha256: Optional[str] | list[str]) -> Optional[ExpectedCase]:
    """An `--expected` file applies to a checkpoint unless it names another checkpoint's hash
    (`sha256` may be a list: see `provenance_hashes`)."""
    hashes = [h for h in ([sha256] if isinstance(sha256, str) or sha256 is None else sha256) if h]
    try:
        data = read_expected_object(path)
    except ValueError:  # unreadable: let the parity test report it through load_expected
        data = {}
    want = data.get("checkpoint_sha256") if isinstance(data, dict) else None
    if want and hashes and want not in hashes:
        return None
    max_abs = float(data.get("max_abs_tol", FULL_MAX_ABS)) if isinstance(data, dict) else FULL_MAX_ABS
    mean_abs = float(data.get("mean_abs_tol", FULL_MEAN_ABS)) if isinstance(data, dict) else FULL_MEAN_ABS
    return ExpectedCase(path.name, path, max_abs, mean_abs, "expected-file")
