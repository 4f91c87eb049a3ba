"""The fast reference forward computes the straight formulation's function.

`soft_argmax` (marginals, per-sample, optionally in place, any memory format) is compared
with `soft_argmax_reference` (the 5-D softmax of docs/spec.md §1); the model's reordered head
(final 1x1 conv before the last upsampling, channels-last upsampling) with the straight
order of the authors' layers. Parity with the golden files is tests/test_golden_parity.py.
"""
from __future__ import annotations

import pytest
import torch

from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import ArchSpec, build_model
from reference_model.softargmax import soft_argmax, soft_argmax_reference

J, D, H, W = 18, 8, 12, 10
ATOL = 1e-4  # heatmap units; float32 sums over D*H*W = 960 terms in a different order


def _heatmaps(kind: str, batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed({"random": 0, "peaky": 1, "uniform": 2, "huge": 3}[kind])
    if kind == "uniform":
        return torch.full((batch, J * D, H, W), 7.5)
    h = torch.randn(batch, J * D, H, W, generator=gen)
    if kind == "peaky":
        h = h * 200.0  # logits of +-200, like trained and golden heads: nearly one-hot
    if kind == "huge":
        h = h + 1e4  # a large common offset must not overflow exp (max is subtracted)
    return h


@pytest.mark.parametrize("kind", ["random", "peaky", "uniform", "huge"])
def test_fast_soft_argmax_equals_the_straight_formulation(kind):
    h = _heatmaps(kind)
    want = soft_argmax_reference(h, J, D)
    got = soft_argmax(h, J, D)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0, msg=lambda m: f"{kind} heatmaps: {m}")


def test_uniform_heatmap_gives_the_volume_centre():
    got = soft_argmax(_heatmaps("uniform"), J, D)
    centre = torch.tensor([(W - 1) / 2, (H - 1) / 2, (D - 1) / 2])
    torch.testing.assert_close(got, centre.expand_as(got), atol=1e-5, rtol=0)


def test_one_hot_heatmap_gives_its_index():
    h = torch.full((1, J * D, H, W), -1e4)
    h[0, 5 * D + 3, 7, 2] = 0.0  # joint 5, depth 3, row 7, column 2
    got = soft_argmax(h, J, D)[0, 5]
    torch.testing.assert_close(got, torch.tensor([2.0, 7.0, 3.0]), atol=1e-6, rtol=0)


def test_channels_last_and_in_place_give_the_same_values():
    h = _heatmaps("peaky")
    want = soft_argmax(h, J, D)
    cl = h.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(soft_argmax(cl, J, D), want, atol=ATOL, rtol=0)
    spare = h.clone()
    torch.testing.assert_close(soft_argmax(spare, J, D, inplace=True), want, atol=ATOL, rtol=0)
    assert not torch.equal(spare, h), "inplace=True is allowed to reuse the tensor (and does)"


def test_input_is_untouched_without_inplace_and_gradients_flow():
    h = _heatmaps("random").requires_grad_(True)
    before = h.detach().clone()
    out = soft_argmax(h, J, D, inplace=True)  # ignored: autograd needs the values
    out.sum().backward()
    assert torch.equal(h.detach(), before), "the caller's heatmap must not change when autograd needs it"
    ref = _heatmaps("random").requires_grad_(True)
    soft_argmax_reference(ref, J, D).sum().backward()
    torch.testing.assert_close(h.grad, ref.grad, atol=1e-5, rtol=1e-3)


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match="expected joint_num\\*depth_dim"):
        soft_argmax(torch.zeros(1, J * D + 1, H, W), J, D)


SMALL_UP = ArchSpec(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), head_channels=(16, 16, 16), head_kernels=(3, 3, 3),
                    head_upsample=(True, True, True), depth_dim=8, joint_num=18)
SMALL_NO = ArchSpec(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), head_channels=(16, 16, 16), head_kernels=(3, 3, 3),
                    head_upsample=(True, True, False), depth_dim=8, joint_num=18)


def _straight_heatmaps(model, images):
    """The authors' order: every layer including its upsampling, then the final 1x1 conv."""
    x = model.backbone(images)
    for i in range(1, model.head.num_layers + 1):
        x = getattr(model.head, f"deconv_layers_{i}")(x)
    return model.head.final_layer(x)


@pytest.mark.parametrize("spec", [SMALL_UP, SMALL_NO], ids=["last-layer-upsamples", "last-layer-no-upsample"])
def test_model_heatmaps_and_coords_equal_the_straight_order(spec):
    model = build_model(spec).eval()
    model.load_state_dict(random_state_dict(spec, seed=5), strict=True)
    images = torch.randn(3, 3, 64, 96, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        straight = _straight_heatmaps(model, images)
        heat = model.heatmaps(images)
        coords = model(images)
    assert heat.is_contiguous(), "heatmaps() returns the standard (NCHW) layout"
    torch.testing.assert_close(heat, straight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(coords, soft_argmax_reference(straight, spec.joint_num, spec.depth_dim),
                               atol=1e-4, rtol=0)


def test_model_batch_rows_equal_single_image_runs():
    model = build_model(SMALL_UP).eval()
    model.load_state_dict(random_state_dict(SMALL_UP, seed=6), strict=True)
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(10))
    with torch.inference_mode():
        batch = model(images)
        singles = torch.cat([model(images[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=0)
