"""Head configurations and the soft-argmax, as properties (Hypothesis).

Self-checks of the tool (they never read a user's checkpoint), so they live here and not in
the conformance suite.

Random valid specs are built with tiny backbones, saved in a random container, wrapper and
key dialect, read back with `load_checkpoint` (given the upsample flags, as a user would:
they are invisible in the weights), and must give the same spec and identical outputs.
The soft-argmax must put a one-hot heatmap exactly on its voxel, a uniform one at the
centre, and any heatmap inside the volume.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import strategies_spec as cs
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_convnextpose import load_checkpoint
from pytest_convnextpose.checkpoint.dialects import from_canonical
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import build_model, soft_argmax

_IMAGE = (1, 3, 64, 64)


@settings(max_examples=20, deadline=None)
@given(
    spec=cs.head_specs(),
    dialect=cs.dialects(),
    container=st.sampled_from(cs.available_containers()),
    wrapper=st.sampled_from(cs.WRAPPERS),
    seed=st.integers(0, 2**16),
)
def test_saved_head_config_reads_back_with_same_spec_and_outputs(spec, dialect, container, wrapper, seed):
    sd = random_state_dict(spec, seed=seed)
    joints = None if spec.joint_num in cs.KNOWN_JOINTS else spec.joint_num
    with tempfile.TemporaryDirectory(prefix="cnp-headcfg-") as tmp:
        # a fixed folder: the random one's name may claim a variant (`..._l`), which the name check reads
        (Path(tmp) / "case").mkdir()
        path = Path(tmp) / "case" / "ckpt.pth"
        cs.write(cs.wrap(from_canonical(sd, dialect), wrapper, container), path, container)
        loaded = load_checkpoint(path, joint_num=joints, head_upsample=spec.head_upsample)
    where = f"{container}, wrapper {None if container == 'safetensors' else wrapper}, dialect {dialect.to_dict()}"
    assert loaded.spec == spec, f"{where}: spec read back as {loaded.spec.summary()}, written {spec.summary()}"
    assert not loaded.problems, f"{where}: problems {[p.to_dict() for p in loaded.problems][:3]}"
    original, reloaded = build_model(spec).eval(), build_model(loaded.spec).eval()
    original.load_state_dict(sd, strict=True)
    reloaded.load_state_dict(loaded.state_dict, strict=True)
    x = torch.randn(_IMAGE, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        a, b = original(x), reloaded(x)
    assert torch.equal(a, b), f"{where}: outputs differ after the round trip, max abs {float((a - b).abs().max()):.3g}"


@settings(max_examples=20, deadline=None)
@given(dims=cs.heatmap_dims(), data=st.data())
def test_one_hot_heatmap_gives_exact_voxel_coordinates(dims, data):
    j, d, h, w = dims
    voxels = [
        (data.draw(st.integers(0, d - 1)), data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1)))
        for _ in range(j)
    ]
    logits = torch.full((1, j, d, h, w), -1e4)  # exp(-1e4) is exactly 0 in float32
    for i, (z, y, x) in enumerate(voxels):
        logits[0, i, z, y, x] = 0.0
    got = soft_argmax(logits.reshape(1, j * d, h, w), j, d)
    want = torch.tensor([[[float(x), float(y), float(z)] for z, y, x in voxels]])
    assert torch.equal(got, want), f"one-hot voxels (x, y, z): expected {want.tolist()}, got {got.tolist()}"


@settings(max_examples=20, deadline=None)
@given(dims=cs.heatmap_dims(), level=st.floats(-50, 50))
def test_uniform_heatmap_gives_the_volume_centre(dims, level):
    j, d, h, w = dims
    got = soft_argmax(torch.full((2, j * d, h, w), level), j, d)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2, (d - 1) / 2])
    worst = float((got - centre).abs().max())
    assert worst <= 1e-5 * max(w, h, d), (
        f"uniform heatmap: expected every joint at {centre.tolist()}, got max abs {worst:.3g} off"
    )


@settings(max_examples=20, deadline=None)
@given(dims=cs.heatmap_dims(), scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**16))
def test_soft_argmax_always_lies_inside_the_volume(dims, scale, seed):
    j, d, h, w = dims
    logits = scale * torch.randn((2, j * d, h, w), generator=torch.Generator().manual_seed(seed))
    got = soft_argmax(logits, j, d)
    upper = torch.tensor([w - 1, h - 1, d - 1], dtype=got.dtype)
    slack = 1e-5 * float(upper.max() + 1)  # probabilities sum to 1 only up to rounding
    assert torch.isfinite(got).all(), f"non-finite coordinates for logits scaled by {scale}"
    bad = ((got < -slack) | (got > upper + slack)).nonzero().tolist()
    assert not bad, (
        f"coordinates outside [0, W-1]x[0, H-1]x[0, D-1] = {upper.tolist()} at (image, joint, axis) {bad[:5]}: "
        f"{got.tolist()}"
    )
