"""The reference model against docs/spec.md §2: exact parameter/state counts, GMAC within 0.5%,
heatmap sizes, any input divisible by 32, clear errors on bad input.

The docs/spec.md §2 figures are typed in here from the table (not read from `VARIANTS`), so the
table, `VARIANTS`, the closed-form counts in `counting.py` and the built model are four
independent witnesses that must agree. The conv MACs are also measured a fifth way, by
hooks on every Conv2d of a model run on a meta-device input.
"""

from __future__ import annotations

import copy

import pytest
import torch
from ckpt_helpers import SMALL_SPEC as SMALL
from torch import nn

from reference_model import (
    VARIANTS,
    ArchSpec,
    build_model,
    count_conv_macs,
    count_gmac,
    count_parameters,
    count_state_values,
)

# variant: (learnable params, state values, GMAC @256^2, heatmap (D, H, W) @256^2, final_layer out channels)
SPEC_TABLE = {
    "XS": (3_528_008, 3_534_140, 0.815, (32, 32, 32), 576),
    "S": (7_438_976, 7_448_954, 1.738, (32, 32, 32), 576),
    "M": (7_587_008, 7_596_986, 2.795, (64, 64, 64), 1152),
    "L": (8_380_352, 8_391_354, 4.264, (64, 64, 64), 1152),
}


def _meta_model(spec: ArchSpec) -> nn.Module:
    with torch.device("meta"):
        return build_model(spec).eval()


def _learnable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _state_values(model: nn.Module) -> int:
    return sum(t.numel() for t in model.state_dict().values())


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_parameter_counts_equal_spec_table_exactly(name: str) -> None:
    params, state, *_ = SPEC_TABLE[name]
    spec = VARIANTS[name].spec
    model = _meta_model(spec)
    # what is counted: (the docs/spec.md §2 figure, the built model, counting.py, VARIANTS)
    counts = {
        "learnable parameters": (params, _learnable(model), count_parameters(spec), VARIANTS[name].num_parameters),
        "state values": (state, _state_values(model), count_state_values(spec), VARIANTS[name].num_state_values),
    }
    for what, (want, *witnesses) in counts.items():
        got = dict(zip(("built model", "counting.py", "VARIANTS"), witnesses, strict=True))
        assert all(v == want for v in got.values()), f"{name}: docs/spec.md §2 says {want:,} {what}, got {got}"


def _hooked_conv_macs(spec: ArchSpec, size: tuple[int, int]) -> int:
    """MACs measured on the built model: per Conv2d, output elements x (C_in/groups) x k x k.

    Measured on `straight_heatmaps`, the authors' order of operations, where every conv is a
    module call and the final 1x1 layer runs at the heatmap resolution: the architecture's
    cost that docs/spec.md §2 reports. (`forward` folds BatchNorm into conv weights and runs the final
    layer before the last upsampling, which is cheaper; see reference_model/model.py.)"""
    model, total = _meta_model(spec), [0]

    def hook(mod: nn.Conv2d, _inp, out) -> None:
        kh, kw = mod.kernel_size
        total[0] += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    model.straight_heatmaps(torch.empty(1, 3, *size, device="meta"))
    return total[0]


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_gmac_within_half_percent_of_spec_table(name: str) -> None:
    gmac = SPEC_TABLE[name][2]
    spec = VARIANTS[name].spec
    counted = count_gmac(spec)
    measured = _hooked_conv_macs(spec, (256, 256))
    assert measured == count_conv_macs(spec), (
        f"{name}: hooks measure {measured} MACs, counting.py {count_conv_macs(spec)}"
    )
    assert abs(counted - gmac) <= 0.005 * gmac, (
        f"{name}: {counted:.4f} GMAC, docs/spec.md §2 says {gmac} (tolerance 0.5%)"
    )
    assert VARIANTS[name].gmac_256 == gmac


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_heatmap_volume_at_256_matches_spec_table(name: str) -> None:
    d, h, w = SPEC_TABLE[name][3]
    spec = VARIANTS[name].spec
    heat = _meta_model(spec).heatmaps(torch.empty(2, 3, 256, 256, device="meta"))
    assert tuple(heat.shape) == (2, spec.joint_num * d, h, w), f"{name}: heatmaps {tuple(heat.shape)}"
    assert heat.shape[1] == SPEC_TABLE[name][4], f"{name}: final_layer gives {heat.shape[1]} channels"
    assert spec.heatmap_size((256, 256)) == (h, w) and VARIANTS[name].heatmap_256 == (d, h, w)


def test_published_upsampling_flags_and_joint_count() -> None:
    # docs/spec.md §2: XS/S are 2-UP (up, up, no), M/L 3-UP; 18 joints, 3x3 head kernels everywhere
    ups = {n: VARIANTS[n].spec.head_upsample for n in SPEC_TABLE}
    assert ups == {
        "XS": (True, True, False),
        "S": (True, True, False),
        "M": (True, True, True),
        "L": (True, True, True),
    }
    assert {VARIANTS[n].spec.joint_num for n in SPEC_TABLE} == {18}
    assert {VARIANTS[n].spec.head_kernels for n in SPEC_TABLE} == {(3, 3, 3)}


@pytest.mark.parametrize("size", [(32, 32), (96, 160), (256, 192), (224, 224)])
def test_any_input_divisible_by_32_gives_b_j_3(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    with torch.no_grad():
        heat = model.heatmaps(torch.randn(2, 3, *size))
        coords = model(torch.randn(2, 3, *size))
    # stride 32, then x2 per upsampling layer (two of three here)
    assert tuple(heat.shape) == (2, 18 * 8, size[0] // 32 * 4, size[1] // 32 * 4), (
        f"input {size}: heatmaps {tuple(heat.shape)}"
    )
    assert tuple(coords.shape) == (2, 18, 3)
    assert torch.isfinite(coords).all()
    # coordinates are expectations over index ranges, so they lie inside them
    lim = torch.tensor([size[1] // 32 * 4 - 1, size[0] // 32 * 4 - 1, 8 - 1], dtype=coords.dtype)
    assert (coords >= 0).all() and (coords <= lim).all(), f"input {size}: coords outside [0, {lim.tolist()}]"


def test_head_kernels_and_layer_count_follow_spec() -> None:
    spec = ArchSpec(
        depths=(1, 0, 1, 1),
        dims=(8, 16, 24, 32),
        head_channels=(12, 20),
        head_kernels=(5, 1),
        head_upsample=(False, True),
        depth_dim=4,
        joint_num=17,
    )
    model = build_model(spec)
    assert model.head.deconv_layers_1.dwconv.kernel_size == (5, 5)
    assert model.head.deconv_layers_2.dwconv.kernel_size == (1, 1)
    assert not hasattr(model.head, "deconv_layers_3")
    assert _learnable(model) == count_parameters(spec)
    heat = model.heatmaps(torch.zeros(1, 3, 64, 64))
    assert tuple(heat.shape) == (1, 17 * 4, 4, 4)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 3, 100, 128), "divisible by 32"),
        ((1, 3, 128, 120), "divisible by 32"),
        ((1, 1, 128, 128), "(B, 3, H, W)"),
        ((3, 128, 128), "(B, 3, H, W)"),
    ],
)
def test_bad_input_raises_clear_value_error(shape, message: str) -> None:
    model = build_model(SMALL).eval()
    with pytest.raises(ValueError) as info:
        model(torch.zeros(shape))
    assert message in str(info.value), f"input {shape}: error {info.value!r} should say {message!r}"


@pytest.mark.parametrize(
    "bad",
    [
        dict(depths=(1, 1, 1)),
        dict(head_kernels=(3, 4, 3)),
        dict(head_upsample=(True,)),
        dict(depth_dim=0),
        dict(head_channels=()),
    ],
)
def test_invalid_spec_is_rejected(bad: dict) -> None:
    fields = dict(SMALL.to_dict(), **bad)
    with pytest.raises(ValueError):
        ArchSpec(**fields)


def test_model_has_no_parameters_off_the_canonical_keys() -> None:
    # canonical keys (docs/spec.md §4): the built model's state dict uses exactly these families
    keys = build_model(SMALL).state_dict().keys()
    roots = (
        "backbone.downsample_layers.",
        "backbone.stages.",
        "backbone.norm.",
        "head.deconv_layers_",
        "head.final_layer.",
    )
    stray = [k for k in keys if not k.startswith(roots)]
    assert not stray, f"keys outside the canonical families: {stray[:5]}"
    assert "head.deconv_layers_3.pwconv.weight" in keys and "backbone.stages.2.1.pwconv2.bias" in keys


# -- eval-time BatchNorm folding keeps the module's semantics ---------------------------------
# The forward folds each BatchNorm into its neighbouring conv in eval mode (reference_model/folding.py),
# recomputed from the live parameters on every call. These tests pin what users rely on: the state
# dict, train/eval behaviour, weights changed in any way taking effect at once, and gradients.


def _loaded(seed: int = 3, dtype: torch.dtype = torch.float64) -> nn.Module:
    from pytest_convnextpose.testing.synthetic import random_state_dict

    model = build_model(SMALL)
    model.load_state_dict(random_state_dict(SMALL, seed=seed), strict=True)
    return model.to(dtype)


def _images(n: int = 2, seed: int = 4, size: int = 64) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_forward_leaves_the_state_dict_as_it_was() -> None:
    model = _loaded().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model(_images())
    after = model.state_dict()
    assert list(after) == list(before), "a forward must not add, drop or rename state-dict entries"
    assert all(torch.equal(before[k], after[k]) for k in before), "an eval forward must not change any state"
    assert _learnable(model) == count_parameters(SMALL)


@pytest.mark.parametrize("stage_bytes", [None, 1], ids=["default", "cache-blocking-forced"])
def test_train_mode_uses_batch_statistics_and_updates_running_ones(stage_bytes, monkeypatch) -> None:
    """Batch statistics are the whole batch's: the CPU forward's taking of a batch a few images at a
    time (STAGE_BYTES=1: one at a time, were it allowed) must not happen in training mode."""
    if stage_bytes is not None:
        monkeypatch.setattr("reference_model.model.STAGE_BYTES", stage_bytes)
    model = _loaded().train()
    oracle = copy.deepcopy(model)
    images = _images(4)
    got = model(images)
    want = oracle.straight_forward(images)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0, msg="train-mode forward vs the straight formulation")
    eval_out = _loaded().eval()(images)
    assert (got - eval_out).abs().max() > 1e-3, "train mode must normalise with batch statistics, not running ones"
    for (k, a), (_, b) in zip(model.state_dict().items(), oracle.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0, msg=f"{k} after one training-mode forward")
    fresh = _loaded().state_dict()
    assert not torch.equal(model.state_dict()["backbone.norm.running_mean"], fresh["backbone.norm.running_mean"])


@pytest.mark.parametrize("kind", ["sync-batchnorm-training", "no-running-stats"])
def test_batch_statistics_of_any_batchnorm_see_the_whole_batch(kind, monkeypatch) -> None:
    """SyncBatchNorm (training; without a process group it normalises like BatchNorm) and a BatchNorm
    without running statistics (batch statistics even in eval mode) are neither folded nor fed a
    part of the batch: the forward equals the straight formulation with the grouping forced."""
    monkeypatch.setattr("reference_model.model.STAGE_BYTES", 1)
    model = _loaded()
    if kind == "sync-batchnorm-training":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model).train()
    else:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = False, None, None, None
        model.eval()
    oracle, images = copy.deepcopy(model), _images(4)
    torch.testing.assert_close(model(images), oracle.straight_forward(images), atol=1e-10, rtol=0, msg=kind)


def test_eval_train_eval_round_trip_gives_the_eval_outputs_again() -> None:
    model, images = _loaded(), _images()
    with torch.no_grad():
        first = model.eval()(images)
        model.train()
        model.eval()
        again = model(images)
    torch.testing.assert_close(again, first, atol=0, rtol=0)


def test_changed_weights_take_effect_at_once() -> None:
    from pytest_convnextpose.testing.synthetic import random_state_dict

    model, images = _loaded(seed=3).eval(), _images()
    with torch.no_grad():
        model(images)  # a first forward: nothing from it may linger
        model.load_state_dict(random_state_dict(SMALL, seed=8), strict=True)
        torch.testing.assert_close(model(images), _loaded(seed=8).eval()(images), atol=0, rtol=0)
        for name, change in (("in place", lambda t: t.mul_(1.5)), ("through .data", lambda t: t.data.mul_(1.5))):
            before = model(images)
            change(model.backbone.stages[0][0].norm.running_var)  # a folded BatchNorm's statistic
            after = model(images)
            assert (after - before).abs().max() > 1e-6, f"a running_var changed {name} was ignored"
            torch.testing.assert_close(after, model.straight_forward(images), atol=1e-10, rtol=0)


def test_eval_mode_gradients_equal_those_of_the_straight_formulation() -> None:
    model = _loaded().eval()
    oracle = copy.deepcopy(model)
    images = _images(1, size=32)
    model(images).pow(2).sum().backward()
    oracle.straight_forward(images).pow(2).sum().backward()
    checked = 0
    for (name, p), (_, q) in zip(model.named_parameters(), oracle.named_parameters()):
        assert p.grad is not None, f"no gradient reached {name}"
        torch.testing.assert_close(p.grad, q.grad, atol=1e-9, rtol=1e-7, msg=f"gradient of {name}")
        checked += ".norm." in name or ".downsample_layers." in name
    assert checked > 0, "the folded BatchNorm parameters must be among those checked"


@pytest.mark.parametrize("padding", [0, 1])
def test_folding_helpers_equal_the_unfolded_modules(padding: int) -> None:
    from reference_model.folding import bn_conv, conv_bn

    gen = torch.Generator().manual_seed(0)
    bn = nn.BatchNorm2d(6).double().eval()
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(6, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(0.5 + torch.rand(6, generator=gen, dtype=torch.float64))
    conv_after = nn.Conv2d(4, 6, 3, padding=padding).double()
    conv_before = nn.Conv2d(6, 5, 2, stride=2, padding=padding).double()
    x = torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(conv_bn(x, conv_after, bn), bn(conv_after(x)), atol=1e-12, rtol=0)
        y = torch.randn(2, 6, 8, 8, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(bn_conv(y, bn, conv_before), conv_before(bn(y)), atol=1e-12, rtol=0)
