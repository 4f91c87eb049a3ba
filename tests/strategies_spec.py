"""Hypothesis strategies for architecture specs, key dialects, containers and heatmaps (small, fast to build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from hypothesis import strategies as st

from pytest_convnextpose.checkpoint.dialects import Dialect
from pytest_convnextpose.testing.writers import write_container
from reference_model import ArchSpec

#: joint counts the loader's J*D prior knows (docs/spec.md §4); other counts are passed as --joints
KNOWN_JOINTS = (18, 17, 21, 14, 16)
WRAPPERS = ("network", "state_dict", "model_state_dict", "model", None)
#: a literal list, not the writer's own: a writer that drops a container fails the property test
ALL_CONTAINERS = ("torch-zip", "torch-legacy", "tar-directory", "directory", "pickle", "safetensors")


#: prefix chains met in the wild, in every order and depth up to two
PREFIX_CHAINS = [
    (),
    ("module.",),
    ("_orig_mod.",),
    ("module.", "_orig_mod."),
    ("_orig_mod.", "module."),
    ("model.",),
    ("module.", "model."),
]


@st.composite
def dialects(draw) -> Dialect:
    layout = draw(st.sampled_from(["named", "sequential", "modulelist"]))
    sub = draw(st.sampled_from(["named", "indexed"]))
    return Dialect(
        prefixes=draw(st.sampled_from(PREFIX_CHAINS)),
        head_prefix=draw(st.sampled_from(["head.", "head_net."])),
        head_layout=layout,
        head_sublayers=sub,
    )


@st.composite
def small_specs(draw, joint_counts=(18, 17, 21, 14, 16)) -> ArchSpec:
    """Buildable specs with widths 4..64, 1..4 head layers, a known joint count and power-of-two depth."""
    n_head = draw(st.integers(1, 4))
    return ArchSpec(
        depths=tuple(draw(st.lists(st.integers(0, 3), min_size=4, max_size=4))),
        dims=tuple(draw(st.lists(st.integers(1, 16).map(lambda x: 4 * x), min_size=4, max_size=4))),
        head_channels=tuple(draw(st.lists(st.integers(1, 32), min_size=n_head, max_size=n_head))),
        head_kernels=tuple(draw(st.lists(st.sampled_from([1, 3, 5]), min_size=n_head, max_size=n_head))),
        head_upsample=tuple(draw(st.lists(st.booleans(), min_size=n_head, max_size=n_head))),
        depth_dim=draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64])),
        joint_num=draw(st.sampled_from(list(joint_counts))),
    )


@st.composite
def head_specs(draw) -> ArchSpec:
    """Valid specs with a tiny backbone and a random head: 1-4 layers, kernels 1/3/5/7,
    channels, upsample flags, depth_dim (power of two) and joints."""
    n = draw(st.integers(1, 4))
    return ArchSpec(
        depths=tuple(draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))),
        dims=tuple(draw(st.lists(st.sampled_from([4, 8, 12, 16]), min_size=4, max_size=4))),
        head_channels=tuple(draw(st.lists(st.integers(1, 24), min_size=n, max_size=n))),
        head_kernels=tuple(draw(st.lists(st.sampled_from([1, 3, 5, 7]), min_size=n, max_size=n))),
        head_upsample=tuple(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
        depth_dim=draw(st.sampled_from([1, 2, 4, 8, 16])),
        joint_num=draw(st.one_of(st.sampled_from(KNOWN_JOINTS), st.integers(1, 24))),
    )


def available_containers() -> tuple[str, ...]:
    """Every container the project's writer produces (the property test covers all of them)."""
    return ALL_CONTAINERS


def wrap(sd: dict[str, torch.Tensor], wrapper: Optional[str], container: str) -> Any:
    """`{'epoch': 3, wrapper: sd}`, or the bare dict (always, for safetensors: flat by format)."""
    if wrapper is None or container == "safetensors":
        return dict(sd)
    return {"epoch": 3, wrapper: dict(sd)}


def write(obj: Any, path: Path, container: str) -> None:
    """Write `obj` in `container` through the project's writer (a dependency of this package,
    so a broken writer fails the property test instead of shrinking it)."""
    write_container(obj, path, container)


@st.composite
def heatmap_dims(draw) -> tuple[int, int, int, int]:
    """(J, D, H, W) small enough to enumerate."""
    return (draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
