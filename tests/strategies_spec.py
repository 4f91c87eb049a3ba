"""Hypothesis strategies for architecture specs and key dialects (small, fast to build)."""
from __future__ import annotations

from hypothesis import strategies as st

from pytest_convnextpose.checkpoint.dialects import Dialect
from reference_model import ArchSpec

#: prefix chains met in the wild, in every order and depth up to two
PREFIX_CHAINS = [(), ("module.",), ("_orig_mod.",), ("module.", "_orig_mod."), ("_orig_mod.", "module."),
                 ("model.",), ("module.", "model.")]


@st.composite
def dialects(draw) -> Dialect:
    layout = draw(st.sampled_from(["named", "sequential", "modulelist"]))
    sub = draw(st.sampled_from(["named", "indexed"]))
    return Dialect(prefixes=draw(st.sampled_from(PREFIX_CHAINS)), head_prefix=draw(st.sampled_from(["head.", "head_net."])),
                   head_layout=layout, head_sublayers=sub)


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
