"""Forward: the reference model loaded with the checkpoint gives (B, J, 3) finite coordinates
inside the heatmap volume, deterministically, row-for-row equal to single-image runs, for the
sample batch and for any input size and intensity Hypothesis draws (real inputs reach ~1100:
the authors normalise 0-255 values with ImageNet's 0-1 mean and std)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_convnextpose.implementations.compare import worst_position
from pytest_convnextpose.plugin.hypothesis_profiles import suite_settings

pytestmark = pytest.mark.conformance

BATCH_TOL = 1e-5  # each row vs its single-image run (relative to the largest |logit|)
_AXES = "xyz"


def _worst(diff: torch.Tensor) -> str:
    """Where the largest |difference| sits: image, joint and axis."""
    b, j, a = worst_position(diff.detach().cpu().numpy())
    return f"image {b}, joint {j}, {_AXES[a]}"


def test_output_shape_is_batch_joints_3(convnextpose_ref_coords, convnextpose_sample_inputs, convnextpose_ckpt_spec):
    want = (convnextpose_sample_inputs.shape[0], convnextpose_ckpt_spec.joint_num, 3)
    assert tuple(convnextpose_ref_coords.shape) == want, (
        f"output shape: expected {want}, got {tuple(convnextpose_ref_coords.shape)}"
    )


def test_outputs_are_finite(convnextpose_ref_coords):
    bad = (~torch.isfinite(convnextpose_ref_coords)).nonzero().tolist()
    assert not bad, f"non-finite outputs at (image, joint, axis) {bad[:5]}"


def test_outputs_lie_inside_the_heatmap_volume(
    convnextpose_ref_coords, convnextpose_sample_inputs, convnextpose_ckpt_spec
):
    h, w = convnextpose_ckpt_spec.heatmap_size(tuple(convnextpose_sample_inputs.shape[2:]))
    upper = torch.tensor(
        [w - 1, h - 1, convnextpose_ckpt_spec.depth_dim - 1],
        dtype=convnextpose_ref_coords.dtype,
        device=convnextpose_ref_coords.device,
    )
    eps = 1e-4 * float(upper.max())  # soft-argmax rounding at the volume's edge
    below = (convnextpose_ref_coords < -eps).nonzero().tolist()
    above = (convnextpose_ref_coords > upper + eps).nonzero().tolist()
    assert not below and not above, (
        f"coordinates must lie in [0, {w - 1}] x [0, {h - 1}] x [0, {convnextpose_ckpt_spec.depth_dim - 1}]; "
        f"out of range at (image, joint, axis) {(below + above)[:5]}, e.g. "
        f"{convnextpose_ref_coords[tuple((below + above)[0][:2])].tolist()}"
    )


def test_forward_is_deterministic(convnextpose_ref_model, convnextpose_sample_inputs, convnextpose_ref_coords):
    with torch.no_grad():
        again = convnextpose_ref_model(convnextpose_sample_inputs)
    if convnextpose_sample_inputs.device.type == "cpu":
        assert torch.equal(again, convnextpose_ref_coords), (
            f"two CPU runs differ, max abs {float((again - convnextpose_ref_coords).abs().max()):.3g} at "
            f"{_worst(again - convnextpose_ref_coords)}"
        )
    else:  # GPU kernels may pick different reduction orders between calls
        diff = (again - convnextpose_ref_coords).abs().max()
        assert diff <= BATCH_TOL, (
            f"two runs differ by {float(diff):.3g} > {BATCH_TOL} at {_worst(again - convnextpose_ref_coords)}"
        )


def test_batch_rows_do_not_influence_each_other(
    convnextpose_ref_model, convnextpose_sample_inputs, convnextpose_ref_coords
):
    """Changing image 0 leaves the other rows' outputs bit-for-bit unchanged (same batch size,
    so the same kernels): catches BatchNorm in training mode or any op mixing batch rows."""
    if convnextpose_sample_inputs.shape[0] < 2:
        pytest.skip("needs a batch of at least two images")
    changed = convnextpose_sample_inputs.clone()
    changed[0] = torch.flip(convnextpose_sample_inputs[0], dims=(1, 2)) * 0.5
    with torch.no_grad():
        out = convnextpose_ref_model(changed)
    diff = out[1:] - convnextpose_ref_coords[1:]
    if convnextpose_sample_inputs.device.type == "cpu":
        assert torch.equal(out[1:], convnextpose_ref_coords[1:]), (
            f"changing image 0 changed other rows, max abs {float(diff.abs().max()):.3g} at {_worst(diff)} (rows "
            "counted from 1)"
        )
    else:
        assert float(diff.abs().max()) <= BATCH_TOL, (
            f"changing image 0 changed other rows by {float(diff.abs().max()):.3g}"
        )


def test_each_batch_row_equals_its_single_image_run(convnextpose_ref_model, convnextpose_sample_inputs):
    """Each row of the batched head output equals the single-image run to 1e-5 relative to
    the logit scale. Relative, because float32 kernels pick a different blocking per batch
    size: on the golden `tiny` case (sharpened head, |logit| up to 49) the logits move by
    2.3e-5 (about 4 ulp) and a sharp soft-argmax turns that into 6e-5 in coordinates, with
    nothing wrong. Bugs that mix rows move outputs by orders of magnitude more (and are
    caught exactly by test_batch_rows_do_not_influence_each_other)."""
    with torch.no_grad():
        batched = convnextpose_ref_model.heatmaps(convnextpose_sample_inputs)
        singles = torch.cat(
            [
                convnextpose_ref_model.heatmaps(convnextpose_sample_inputs[i : i + 1])
                for i in range(convnextpose_sample_inputs.shape[0])
            ]
        )
    scale = max(1.0, float(batched.abs().max()))
    diff = (singles - batched).abs()
    worst = float(diff.max())
    b, channel, _, _ = worst_position(diff.cpu().numpy())
    assert worst <= BATCH_TOL * scale, (
        f"batched vs single-image heatmaps: expected max abs <= {BATCH_TOL} x {scale:.3g} (largest |logit|), "
        f"got {worst:.3g} at image {b}, joint {channel // (diff.shape[1] // convnextpose_ref_model.spec.joint_num)}"
    )


@suite_settings()
@given(
    batch=st.integers(1, 2),
    height=st.integers(2, 10),
    width=st.integers(2, 10),
    scale=st.sampled_from([1e-2, 1.0, 30.0, 1100.0]),
    seed=st.integers(0, 2**16),
)
def test_any_input_gives_finite_coordinates_inside_the_volume(
    convnextpose_ref_model, convnextpose_ckpt_spec, convnextpose_torch_device, batch, height, width, scale, seed
):
    """Sizes 64..320 in steps of 32 and intensities up to the largest a normalised crop can
    have: weights that overflow (tiny BatchNorm variances, huge scales) show here as NaN or inf."""
    h, w = 32 * height, 32 * width
    gen = torch.Generator().manual_seed(seed)
    x = (scale * torch.randn((batch, 3, h, w), generator=gen)).to(convnextpose_torch_device)
    with torch.no_grad():
        coords = convnextpose_ref_model(x)
    where = f"input {batch}x3x{h}x{w}, scale {scale:g}, seed {seed}"
    assert torch.isfinite(coords).all(), f"{where}: non-finite coordinates at {_worst(~torch.isfinite(coords))}"
    depth, hh, ww = convnextpose_ckpt_spec.depth_dim, *convnextpose_ckpt_spec.heatmap_size((h, w))
    upper = torch.tensor([ww - 1, hh - 1, depth - 1], dtype=coords.dtype, device=coords.device)
    slack = 1e-4 * float(upper.max())  # soft-argmax rounding at the volume's edge
    outside = (coords < -slack) | (coords > upper + slack)
    assert not outside.any(), (
        f"{where}: coordinates outside [0, W-1]x[0, H-1]x[0, D-1] = {upper.tolist()} "
        f"at {_worst(outside.to(coords.dtype))}"
    )
