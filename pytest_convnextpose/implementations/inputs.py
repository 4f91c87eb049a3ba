"""The deterministic input set for implementation parity, each case with its own recipe.

Why recipes: a parity failure must print a snippet that rebuilds the very batch that
failed, so every input here is either seeded NumPy noise (`seeded_images`) or the
`input` of a golden case (`<case>_expected.pt`), plus the horizontal flips of both.
Golden files are found as the plugin finds them (`expected.find_golden_case`): a
`manifest.json` beside the checkpoint or in a `--golden-dir` whose case has the
checkpoint's SHA-256.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from .golden import ExpectedCase

#: seeded batch: 2 images are enough to show batch effects and cheap for slow ports
SEEDED_BATCH = 2
SEED = 0


@dataclass(frozen=True)
class InputCase:
    """A named float32 batch `(B, 3, H, W)` and a Python expression that rebuilds it."""

    name: str
    images: np.ndarray
    recipe: str
    setup: tuple[str, ...] = ()


@dataclass(frozen=True)
class GoldenCase:
    """A golden case matched to a checkpoint by SHA-256."""

    name: str
    expected_path: Path
    input: np.ndarray
    coords: Optional[np.ndarray]
    coords_flip_test: Optional[np.ndarray]


def seeded_images(n: int, height: int, width: int, seed: int = SEED) -> np.ndarray:
    """Standard-normal images, like normalised crops in scale; independent of any global RNG."""
    return np.random.default_rng(seed).standard_normal((n, 3, height, width), dtype=np.float32)


def flip_images(images: np.ndarray) -> np.ndarray:
    """Horizontal flip (width axis), contiguous."""
    return np.ascontiguousarray(images[..., ::-1])


def golden_inputs(case: ExpectedCase) -> GoldenCase:
    """The arrays of a golden case (found by `golden.golden_case_for`), read by the hardened reader."""
    from .golden import load_expected

    data = load_expected(case.path)  # hardened reader: the manifest may sit beside a downloaded file

    def arr(key: str) -> Optional[np.ndarray]:
        value = data.get(key)
        return None if value is None else value.detach().numpy().astype(np.float32)

    return GoldenCase(name=case.name, expected_path=case.path, input=arr("input"), coords=arr("coords"),
                      coords_flip_test=arr("coords_flip_test"))


def seeded_cases(height: int, width: int) -> list[InputCase]:
    """The seeded batch and its flip."""
    images = seeded_images(SEEDED_BATCH, height, width)
    setup = ("from pytest_convnextpose.implementations.inputs import seeded_images",)
    base = f"seeded_images({SEEDED_BATCH}, {height}, {width}, seed={SEED})"
    return [InputCase("seeded", images, base, setup),
            InputCase("seeded-flipped", flip_images(images), f"np.ascontiguousarray({base}[..., ::-1])", setup)]


#: second sizes tried for graphs with a dynamic height and width (the first not already tested)
OTHER_SIZES = ((192, 256), (320, 256), (256, 192))


def other_size_case(used: set[tuple[int, int]], name: str) -> InputCase:
    """The seeded batch at a size not in `used` (non-square, so a height/width mix-up shows too)."""
    h, w = next(size for size in OTHER_SIZES if size not in used)
    images = seeded_images(SEEDED_BATCH, h, w)
    setup = ("from pytest_convnextpose.implementations.inputs import seeded_images",)
    return InputCase(name, images, f"seeded_images({SEEDED_BATCH}, {h}, {w}, seed={SEED})", setup)


def golden_cases(golden: GoldenCase) -> list[InputCase]:
    """The golden input batch and its flip."""
    base = f"torch.load({str(golden.expected_path)!r}, weights_only=True)['input'].numpy()"
    return [InputCase("golden", golden.input, base),
            InputCase("golden-flipped", flip_images(golden.input), f"np.ascontiguousarray({base}[..., ::-1])")]
