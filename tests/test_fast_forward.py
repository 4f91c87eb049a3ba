"""The fast reference forward computes the straight formulation's function.

Oracles, none of them the code under test:
- `soft_argmax_reference` (the 5-D softmax of docs/spec.md §1), fed with heatmaps upsampled by
  `nn.UpsamplingBilinear2d` (the module the authors' DeConv uses);
- `ConvNeXtPose.straight_forward`: the authors' forward written out step by step (NCHW,
  each BatchNorm on its own, every upsampling before the final 1x1 conv). Benchmarks
  show it equals the authors' own code bit for bit (benchmarks/forward.py --authors-repo);
  here it is checked against the golden files in tests/test_golden_parity.py.
The fast path differs from them only by float32 rounding. Comparisons run in float64,
where rounding is ~1e-12 and any real difference (a wrong fold, a lost upsampling,
a misread layout) shows at full size, and in float32 against the parity bounds.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import ArchSpec, build_model
from reference_model.model import STAGE_BYTES, rows_per_group
from reference_model.softargmax import (
    CHUNK_BYTES,
    _batched,
    _per_chunk,
    soft_argmax,
    soft_argmax_reference,
    volumes_per_chunk,
)

J, D, H, W = 18, 8, 12, 10
ATOL = 1e-4  # heatmap units; float32 sums over D*H*W = 960 terms in a different order
EXACT = 1e-10  # float64: the two formulations agree to rounding of ~1e-15 relative

UP = nn.UpsamplingBilinear2d(scale_factor=2)  # the authors' upsampling module, the oracle's


def _heatmaps(kind: str, batch: int = 3, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed({"random": 0, "peaky": 1, "uniform": 2, "huge": 3}[kind])
    if kind == "uniform":
        return torch.full((batch, J * D, H, W), 7.5, dtype=dtype)
    h = torch.randn(batch, J * D, H, W, generator=gen, dtype=dtype)
    if kind == "peaky":
        h = h * 200.0  # logits of +-200, like trained and golden heads: nearly one-hot
    if kind == "huge":
        h = h + 1e4  # a large common offset must not overflow exp (max is subtracted)
    return h


def _layouts(h: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same values in the layouts the model can hand over: NCHW, channels-last, and a
    channel slice of a wider channels-last tensor (a view whose channels are not dense)."""
    wide = torch.cat([h, torch.zeros_like(h[:, :5])], dim=1).contiguous(memory_format=torch.channels_last)
    return {"nchw": h, "channels_last": h.contiguous(memory_format=torch.channels_last), "slice": wide[:, :h.shape[1]]}


@pytest.mark.parametrize("schedule", [_per_chunk, _batched], ids=["per-chunk", "batched"])
@pytest.mark.parametrize("kind", ["random", "peaky", "uniform", "huge"])
@pytest.mark.parametrize("upsample", [False, True], ids=["no-upsample", "upsample"])
def test_soft_argmax_equals_the_straight_formulation(schedule, kind, upsample):
    for dtype, tol in ((torch.float64, EXACT), (torch.float32, ATOL)):
        h = _heatmaps(kind, dtype=dtype)
        want = soft_argmax_reference(UP(h) if upsample else h, J, D)
        for layout, hl in _layouts(h).items():
            got = schedule(hl, J, D, UP if upsample else None)
            what = f"{kind} {layout} {dtype} upsample={upsample}"
            torch.testing.assert_close(got, want, atol=tol, rtol=0, msg=lambda m, what=what: f"{what}: {m}")


@pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 1], ids=["default", "thread-bound"])
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_on_cpu_the_upsampling_sees_one_chunk_of_one_image_at_a_time(threads, chunk_bytes, monkeypatch):
    """The point of the CPU schedule: no tensor of the full upsampled heatmap's size is made; each
    upsampling call gets whole volumes of one image, at least one per thread (the softmax kernel
    parallelises over volumes only), and together the calls cover every volume once."""
    seen = []

    def recording_upsample(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return UP(x)

    monkeypatch.setattr("reference_model.softargmax.CHUNK_BYTES", chunk_bytes)
    h = _heatmaps("peaky", batch=2)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = soft_argmax(h, J, D, upsample=recording_upsample)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(got, soft_argmax_reference(UP(h), J, D), atol=ATOL, rtol=0)
    assert sum(s[0] for s in seen) == 2 * J and all(s[1:] == (D, H, W) for s in seen), seen
    k = volumes_per_chunk(J, D * H * W * 4 * h.element_size(), threads)  # its own arithmetic: test below
    per_image = [k] * (J // k) + ([J % k] if J % k else [])
    assert [s[0] for s in seen] == per_image * 2, f"chunks of {[s[0] for s in seen]} volumes, want {per_image} twice"
    assert chunk_bytes == 1 or k == J, "tiny volumes: one image's joints in one chunk"
    assert chunk_bytes != 1 or k >= threads, "at least one volume per thread"


@pytest.mark.parametrize("upsample", [True, False], ids=["upsample", "no-upsample"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunks_are_sized_by_the_bytes_of_the_volumes_they_make(upsample, dtype, monkeypatch):
    """Room for exactly 3 volumes as the chunk holds them (upsampled: 4x the pixels of the input;
    8 bytes for float64): 18 joints go as 6 chunks of 3 on one thread."""
    pixels = (2 * H) * (2 * W) if upsample else H * W
    monkeypatch.setattr("reference_model.softargmax.CHUNK_BYTES", 3 * D * pixels * torch.finfo(dtype).bits // 8)
    seen = []

    def recording_marginals(chunk: torch.Tensor):
        seen.append(chunk.shape[0])
        return marginals(chunk)

    from reference_model import softargmax

    marginals = softargmax._marginals
    monkeypatch.setattr(softargmax, "_marginals", recording_marginals)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        h = _heatmaps("random", batch=1, dtype=dtype)
        got = soft_argmax(h, J, D, upsample=UP if upsample else None)
    finally:
        torch.set_num_threads(before)
    assert seen == [3] * 6, seen
    want = soft_argmax_reference(UP(h) if upsample else h, J, D)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_an_empty_batch_gives_no_coordinates():
    model = _model(SMALL_UP)
    with torch.inference_mode():
        out = model(_images(0))
    assert out.shape == (0, 18, 3) and model.straight_forward(_images(0)).shape == (0, 18, 3), out.shape


@pytest.mark.parametrize(
    "joints, volume_bytes, threads, want",
    [
        (18, 1 << 20, 2, 2),  # L: 64x64x64 floats = 1 MiB a volume; 2 MiB a chunk
        (18, 1 << 20, 1, 2),  # the size rule alone
        (18, 1 << 20, 8, 8),  # one volume per thread at least: 8 (8 + 8 + 2; evening out to 6 would idle 2)
        (18, 1 << 20, 16, 16),  # 16 + 2
        (18, 128 << 10, 16, 16),  # the thread count wins over the size's 16 -> 9
        (18, 128 << 10, 2, 9),  # XS/S: 32x32x32 floats; 16 fit in 2 MiB, evened out -> 2 chunks of 9
        (18, 1 << 30, 2, 2),  # a huge volume: still one per thread
        (17, 1, 2, 17),  # tiny volumes: one image's joints in one chunk
    ],
)
def test_volumes_per_chunk(joints, volume_bytes, threads, want):
    """Expected values by hand: k = min(J, max(threads, CHUNK_BYTES // volume_bytes)); when the size
    sets k it is evened out to ceil(J / ceil(J / k)), never below the thread count."""
    assert CHUNK_BYTES == 2 << 20  # the arithmetic of the cases above
    assert volumes_per_chunk(joints, volume_bytes, threads) == want


def test_uniform_heatmap_gives_the_volume_centre():
    got = soft_argmax(_heatmaps("uniform"), J, D)
    centre = torch.tensor([(W - 1) / 2, (H - 1) / 2, (D - 1) / 2])
    torch.testing.assert_close(got, centre.expand_as(got), atol=1e-5, rtol=0)


def test_one_hot_heatmap_gives_its_index():
    h = torch.full((1, J * D, H, W), -1e4)
    h[0, 5 * D + 3, 7, 2] = 0.0  # joint 5, depth 3, row 7, column 2
    got = soft_argmax(h, J, D)[0, 5]
    torch.testing.assert_close(got, torch.tensor([2.0, 7.0, 3.0]), atol=1e-6, rtol=0)


def test_input_is_untouched_and_gradients_equal_the_straight_formulation():
    h = _heatmaps("random", dtype=torch.float64).requires_grad_(True)
    before = h.detach().clone()
    soft_argmax(h, J, D, upsample=UP).pow(2).sum().backward()
    assert torch.equal(h.detach(), before), "the caller's heatmap must not change"
    ref = h.detach().clone().requires_grad_(True)
    soft_argmax_reference(UP(ref), J, D).pow(2).sum().backward()
    torch.testing.assert_close(h.grad, ref.grad, atol=1e-10, rtol=1e-8)


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match="expected joint_num\\*depth_dim"):
        soft_argmax(torch.zeros(1, J * D + 1, H, W), J, D)


# -- the whole model --------------------------------------------------------------------------

SMALL_UP = ArchSpec(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), head_channels=(16, 16, 16), head_kernels=(3, 3, 3),
                    head_upsample=(True, True, True), depth_dim=8, joint_num=18)
SMALL_NO = ArchSpec(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), head_channels=(16, 16, 16), head_kernels=(3, 3, 3),
                    head_upsample=(True, True, False), depth_dim=8, joint_num=18)
ODD = ArchSpec(depths=(2, 0, 1, 1), dims=(8, 12, 16, 20), head_channels=(12, 20), head_kernels=(5, 1),
               head_upsample=(False, True), depth_dim=4, joint_num=17)
SPECS = [pytest.param(SMALL_UP, id="last-layer-upsamples"), pytest.param(SMALL_NO, id="last-layer-no-upsample"),
         pytest.param(ODD, id="two-layers-k5-k1-no-up")]


def _model(spec: ArchSpec, seed: int = 5, dtype: torch.dtype = torch.float32) -> nn.Module:
    model = build_model(spec)
    model.load_state_dict(random_state_dict(spec, seed=seed), strict=True)
    return model.to(dtype).eval()


def _images(batch: int, size=(64, 96), dtype=torch.float32, seed: int = 9) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("stage_bytes", [STAGE_BYTES, 1], ids=["default", "one-image-per-group"])
@pytest.mark.parametrize("spec", SPECS)
def test_forward_equals_the_straight_forward(spec, stage_bytes, monkeypatch):
    # float32 runs channels-last; float64 keeps the input's layout, so both layouts are checked exactly.
    # STAGE_BYTES=1: every backbone stage takes the images one at a time (the CPU cache blocking)
    monkeypatch.setattr("reference_model.model.STAGE_BYTES", stage_bytes)
    cl = torch.channels_last
    for dtype, layout, tol in ((torch.float64, torch.contiguous_format, EXACT), (torch.float64, cl, EXACT),
                               (torch.float32, torch.contiguous_format, ATOL)):
        model, images = _model(spec, dtype=dtype), _images(3, dtype=dtype)
        with torch.no_grad():
            want = model.straight_forward(images)
            got = model(images.contiguous(memory_format=layout))
        what = f"{dtype} {layout}"
        torch.testing.assert_close(got, want, atol=tol, rtol=0, msg=lambda m, what=what: f"{what}: {m}")


@pytest.mark.parametrize("spec", SPECS)
def test_heatmaps_equal_the_authors_layer_order(spec):
    model, images = _model(spec, dtype=torch.float64), _images(2, dtype=torch.float64)
    with torch.no_grad():
        straight = model.straight_heatmaps(images)
        heat = model.heatmaps(images)
        heat_cl = model.heatmaps(images.contiguous(memory_format=torch.channels_last))
    assert heat.is_contiguous() and heat_cl.is_contiguous(), "heatmaps() returns the standard (NCHW) layout"
    torch.testing.assert_close(heat, straight, atol=EXACT, rtol=0)
    torch.testing.assert_close(heat_cl, straight, atol=EXACT, rtol=0)


def test_backbone_stages_take_the_batch_in_cache_sized_groups(monkeypatch):
    """Stage i's largest activation is its blocks' 4x expansion: 4 x dims[i] x (H/4/2^i) x (W/4/2^i)
    floats an image. With room for two images' worth in stage 0, a batch of 5 goes as 2+2+1 there
    (evened out: 3 groups), and whole in the later, smaller stages."""
    model, images = _model(SMALL_UP), _images(5, size=(64, 96))
    stage0 = 4 * 8 * 16 * 24 * 4  # bytes an image: 4 x dims[0] x (64/4) x (96/4) float32
    monkeypatch.setattr("reference_model.model.STAGE_BYTES", 2 * stage0)
    seen: dict[int, list[int]] = {i: [] for i in range(4)}
    for i, stage in enumerate(model.backbone.stages):
        stage.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0].shape[0]))
    with torch.inference_mode():
        model(images)
    # stage 1: 4 x 16 x 8 x 12 x 4 = stage0 / 2 an image, 4 fit -> 2 groups (3, 2); 2 and 3: whole
    assert seen == {0: [2, 2, 1], 1: [3, 2], 2: [5], 3: [5]}, seen


@pytest.mark.parametrize("batch, per_image, want", [
    (8, 3 << 20, 2),  # L at 256x256, stage 0: 3 MiB an image, 8 MiB -> 2 (8 // 3), 4 groups of 2
    (8, 1 << 20, 8),  # 8 fit: the whole batch
    (8, 3 << 19, 4),  # 1.5 MiB: 5 fit -> 2 groups, evened out to 4 + 4
    (1, 1 << 30, 1),  # larger than the budget: one image at a time
    (7, 3 << 20, 2),  # 2 fit -> 4 groups: 2, 2, 2, 1
])
def test_rows_per_group(batch, per_image, want):
    assert STAGE_BYTES == 8 << 20  # the arithmetic of the cases above
    assert rows_per_group(batch, per_image) == want


def test_batch_rows_equal_single_image_runs():
    model, images = _model(SMALL_UP), _images(4, size=(64, 64), seed=10)
    with torch.inference_mode():
        batch = model(images)
        singles = torch.cat([model(images[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=0)


def test_forward_runs_the_modules_it_is_built_from():
    """Edited modules take effect in `forward` as in the straight formulation (the plugin's
    diagnosis reproduces porting mistakes this way: another upsampling, another activation)."""
    model, images = _model(SMALL_UP, dtype=torch.float64), _images(2, dtype=torch.float64)
    for i in range(1, model.head.num_layers + 1):
        getattr(model.head, f"deconv_layers_{i}").upsample = nn.Upsample(scale_factor=2, mode="bilinear",
                                                                          align_corners=False)
    model.backbone.stages[0][0].act = nn.GELU()
    model.head.deconv_layers_3.act = nn.GELU()
    with torch.no_grad():
        got, want = model(images), model.straight_forward(images)
        plain = _model(SMALL_UP, dtype=torch.float64)(images)
    torch.testing.assert_close(got, want, atol=EXACT, rtol=0)
    assert (got - plain).abs().max() > 1e-3, "the edits must change the output"


def test_frozen_opt_in_computes_the_same_coordinates():
    from reference_model.fast import frozen

    model, images = _model(SMALL_UP), _images(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-level shape arithmetic
        fast = frozen(model, images)
    with torch.no_grad():
        torch.testing.assert_close(fast(images), model.straight_forward(images), atol=ATOL, rtol=0)
