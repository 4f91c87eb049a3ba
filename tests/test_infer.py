"""Architecture inference from shapes (docs/spec.md §4): spec, J x D prior, head_upsample source,
variant matching, and problems that name the canonical key.

Shape-only tests use meta tensors (no memory); value checks use real tensors.
"""
from __future__ import annotations

import json

import pytest
import torch
from ckpt_helpers import SMALL_SPEC
from hypothesis import given, settings
from strategies_spec import small_specs

from pytest_convnextpose.checkpoint.infer import factor_joints_depth, infer
from pytest_convnextpose.checkpoint.shapes import canonical_shapes
from pytest_convnextpose.errors import ArchitectureError
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import VARIANTS, ArchSpec


def meta_sd(spec: ArchSpec) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in canonical_shapes(spec).items()}


def kinds(problems) -> list[tuple[str, str]]:
    return [(p.kind, p.key) for p in problems]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_published_variant_is_recognised_with_its_flags(name: str) -> None:
    res = infer(meta_sd(VARIANTS[name].spec))
    assert res.spec == VARIANTS[name].spec, f"{name}: inferred {res.spec.summary()}"
    assert (res.variant, res.nearest_variant, res.head_upsample_source) == (name, name, "variant")
    assert res.problems == [] and res.variant_differences == []


@settings(max_examples=30, deadline=None)
@given(spec=small_specs())
def test_shape_fields_are_recovered_for_any_spec(spec: ArchSpec) -> None:
    res = infer(meta_sd(spec), head_upsample=spec.head_upsample)
    assert res.spec == spec and res.head_upsample_source == "user" and res.problems == []


# J*D factoring: expected pairs by arithmetic (odd part of C picks J, the rest is D = 2^k)
@pytest.mark.parametrize("channels, joints, depth", [
    (576, 18, 32), (1152, 18, 64), (544, 17, 32), (1344, 21, 64), (448, 14, 32), (1024, 16, 64), (18, 18, 1),
])
def test_joints_times_depth_is_factored_with_the_prior(channels: int, joints: int, depth: int) -> None:
    assert factor_joints_depth(channels) == (joints, depth)


@pytest.mark.parametrize("channels", [54, 100, 18 * 48, 7])
def test_unexplained_joints_times_depth_asks_for_joints(channels: int) -> None:
    with pytest.raises(ArchitectureError, match="--joints") as info:
        factor_joints_depth(channels)
    assert info.value.key == "head.final_layer.weight"


def test_user_joint_count_overrides_the_prior() -> None:
    assert factor_joints_depth(1152, joint_num=36) == (36, 32)
    assert factor_joints_depth(54, joint_num=18) == (18, 3)
    with pytest.raises(ArchitectureError, match="not a multiple"):
        factor_joints_depth(1152, joint_num=17)
    spec = ArchSpec(**{**SMALL_SPEC.to_dict(), "joint_num": 24, "depth_dim": 6})
    assert infer(meta_sd(spec), joint_num=24).spec.joint_num == 24


# --------------------------------------------------------------------------- head_upsample source
def test_head_upsample_source_order_user_variant_layout_default() -> None:
    l_sd = meta_sd(VARIANTS["L"].spec)
    user = infer(l_sd, head_upsample=(True, True, False))
    assert (user.spec.head_upsample, user.head_upsample_source, user.variant) == ((True, True, False), "user", None)
    assert user.nearest_variant == "L" and any("head_upsample" in d for d in user.variant_differences)
    assert infer(l_sd, head_layout="modulelist").head_upsample_source == "variant"  # variant beats layout
    small = meta_sd(SMALL_SPEC)
    lay = infer(small, head_layout="modulelist")
    assert (lay.spec.head_upsample, lay.head_upsample_source) == ((True, True, True), "layout")
    default = infer(small)
    assert (default.spec.head_upsample, default.head_upsample_source) == ((True, True, False), "default")


def test_user_flags_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ArchitectureError, match="3 layers"):
        infer(meta_sd(SMALL_SPEC), head_upsample=(True, False))


def test_consistent_metadata_spec_supplies_head_upsample() -> None:
    spec = ArchSpec(**{**SMALL_SPEC.to_dict(), "head_upsample": [False, True, False]})
    res = infer(meta_sd(spec), metadata={"convnextpose.spec": spec.to_json()})
    assert (res.spec, res.head_upsample_source, res.problems) == (spec, "metadata", [])


@pytest.mark.parametrize("claim", [
    json.dumps({**SMALL_SPEC.to_dict(), "depth_dim": 16, "joint_num": 9}),  # contradicts J x D
    json.dumps({**SMALL_SPEC.to_dict(), "dims": [8, 16, 32, 96]}),
    json.dumps({**SMALL_SPEC.to_dict(), "head_channels": [16, 16], "head_kernels": [3, 3], "head_upsample": [1, 1]}),
    "{not json",
])
def test_contradicting_metadata_is_a_problem_never_trusted(claim: str) -> None:
    res = infer(meta_sd(SMALL_SPEC), metadata={"convnextpose.spec": claim})
    assert res.spec == SMALL_SPEC and res.head_upsample_source == "default"
    assert kinds(res.problems) == [("metadata", "convnextpose.spec")], res.problems


# --------------------------------------------------------------------------- variant matching
def test_near_variant_names_the_nearest_and_every_difference() -> None:
    spec = ArchSpec(**{**VARIANTS["XS"].spec.to_dict(), "depth_dim": 64})
    res = infer(meta_sd(spec))
    assert res.variant is None and res.nearest_variant == "XS"
    assert res.variant_differences == ["depth_dim: 64 here, 32 in the variant"]
    assert res.head_upsample_source == "default"


def test_s_and_m_are_told_apart_by_depth_dim() -> None:
    assert infer(meta_sd(VARIANTS["S"].spec)).variant == "S"
    assert infer(meta_sd(VARIANTS["M"].spec)).variant == "M"


# --------------------------------------------------------------------------- problems
@pytest.fixture
def small_sd() -> dict[str, torch.Tensor]:
    return random_state_dict(SMALL_SPEC, seed=3)


def test_consistent_state_dict_has_no_problems(small_sd) -> None:
    assert infer(small_sd).problems == []


def test_missing_middle_block_keeps_depth_and_reports_each_key(small_sd) -> None:
    gone = [k for k in small_sd if k.startswith("backbone.stages.2.0.")]
    sd = {k: v for k, v in small_sd.items() if k not in gone}
    res = infer(sd)
    assert res.spec == SMALL_SPEC, res.spec.summary()
    assert sorted(kinds(res.problems)) == sorted(("missing", k) for k in gone)


@pytest.mark.parametrize("key", ["backbone.downsample_layers.0.0.weight", "backbone.downsample_layers.2.1.weight",
                                 "head.deconv_layers_2.pwconv.weight", "backbone.norm.running_var"])
def test_missing_structural_tensor_is_outvoted_and_reported(key: str, small_sd) -> None:
    sd = {k: v for k, v in small_sd.items() if k != key}
    res = infer(sd)
    assert res.spec == SMALL_SPEC and kinds(res.problems) == [("missing", key)]


@pytest.mark.parametrize("key, shape", [("backbone.stages.1.0.pwconv1.weight", (64, 16, 3, 3)),
                                        ("head.deconv_layers_1.norm.weight", (63,)),
                                        ("backbone.downsample_layers.1.1.weight", (16, 8, 2, 2, 1)),
                                        ("head.final_layer.bias", (3,))])
def test_wrong_shape_is_reported_without_changing_the_spec(key: str, shape, small_sd) -> None:
    sd = dict(small_sd, **{key: torch.zeros(shape)})
    res = infer(sd)
    assert res.spec == SMALL_SPEC, res.spec.summary()
    assert kinds(res.problems) == [("shape", key)]
    assert str(list(shape)) in res.problems[0].detail


def test_unexpected_tensor_is_reported(small_sd) -> None:
    res = infer(dict(small_sd, **{"head.extra.weight": torch.zeros(2)}))
    assert kinds(res.problems) == [("unexpected", "head.extra.weight")]


def test_nonfinite_and_bad_bn_variance_name_their_keys(small_sd) -> None:
    sd = dict(small_sd)
    w = sd["backbone.stages.0.0.pwconv2.weight"].clone()
    w.view(-1)[[0, 5]] = torch.tensor([float("nan"), float("inf")])
    rv = sd["head.deconv_layers_2.norm.running_var"].clone()
    rv[[1, 2]] = torch.tensor([0.0, -0.5])
    rv2 = sd["backbone.norm.running_var"].clone()
    rv2[0] = float("nan")
    sd.update({"backbone.stages.0.0.pwconv2.weight": w, "head.deconv_layers_2.norm.running_var": rv,
               "backbone.norm.running_var": rv2})
    res = infer(sd)
    got = {(p.kind, p.key): p.detail for p in res.problems}
    assert set(got) == {("nonfinite", "backbone.stages.0.0.pwconv2.weight"), ("nonfinite", "backbone.norm.running_var"),
                        ("bn_variance", "head.deconv_layers_2.norm.running_var")}, got
    assert got[("nonfinite", "backbone.stages.0.0.pwconv2.weight")].startswith("2 of ")
    assert got[("bn_variance", "head.deconv_layers_2.norm.running_var")].startswith("2 of ")


@pytest.mark.parametrize("drop, key", [("head.deconv_layers_", "head.deconv_layers_1"),
                                       ("head.final_layer.", "head.final_layer.weight")])
def test_undeterminable_head_is_an_architecture_error(drop: str, key: str, small_sd) -> None:
    with pytest.raises(ArchitectureError) as info:
        infer({k: v for k, v in small_sd.items() if not k.startswith(drop)})
    assert info.value.key == key


def test_implausible_block_index_is_refused_not_built(small_sd) -> None:
    with pytest.raises(ArchitectureError, match="implausible"):
        infer(dict(small_sd, **{"backbone.stages.1.100000.dwconv.weight": torch.zeros(16, 1, 7, 7)}))


def test_even_kernel_is_a_shape_problem_not_a_crash(small_sd) -> None:
    res = infer(dict(small_sd, **{"head.deconv_layers_1.dwconv.weight": torch.zeros(64, 1, 4, 4)}))
    assert res.spec == SMALL_SPEC and kinds(res.problems) == [("shape", "head.deconv_layers_1.dwconv.weight")]


# --------------------------------------------------------------------------- finite check edges
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_huge_but_finite_weights_are_not_reported_nonfinite(dtype):
    big = torch.full((4096, 1024), torch.finfo(dtype).max, dtype=dtype)  # sums past float32 range
    assert check_tensors_values("backbone.norm.weight", big) == []


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("bad", [[float("nan")], [float("inf")], [-float("inf")], [float("inf"), -float("inf")]])
def test_every_nonfinite_pattern_is_reported_with_its_count(dtype, bad):
    t = torch.ones(100, dtype=dtype)
    t[: len(bad)] = torch.tensor(bad, dtype=dtype)
    problems = check_tensors_values("head.final_layer.weight", t)
    assert [(p.kind, p.key) for p in problems] == [("nonfinite", "head.final_layer.weight")], problems
    assert problems[0].detail.startswith(f"{len(bad)} of 100 "), problems[0].detail


def check_tensors_values(key, t):
    from pytest_convnextpose.checkpoint.infer import _value_problems
    return _value_problems(key, t)


def test_integer_running_var_is_still_checked_for_non_positive_values():
    t = torch.tensor([1, 0, 2, -3], dtype=torch.int64)
    problems = check_tensors_values("backbone.norm.running_var", t)
    assert [(p.kind, p.key) for p in problems] == [("bn_variance", "backbone.norm.running_var")], problems
    assert problems[0].detail.startswith("2 of 4 "), problems[0].detail
    assert check_tensors_values("backbone.norm.running_var", torch.tensor([1, 2], dtype=torch.int64)) == []


def test_user_joint_count_that_contradicts_a_clean_fit_is_a_problem_naming_what_fits() -> None:
    """576 channels are 18 joints x 32 depth bins (XS): `--joints 16` is honoured (a custom model may
    really be 16 x 36) but never silently: a `joints` problem says what fits."""
    xs = meta_sd(VARIANTS["XS"].spec)
    result = infer(xs, joint_num=16)
    assert (result.spec.joint_num, result.spec.depth_dim) == (16, 36)
    (problem,) = [p for p in result.problems if p.kind == "joints"]
    assert "16 = 36 depth bins, not a power of two" in problem.detail, problem.detail
    assert problem.detail.endswith("the tensors fit 18 joints x 32 depth bins"), problem.detail
    assert not [p for p in infer(xs, joint_num=18).problems if p.kind == "joints"]
    assert not [p for p in infer(xs, joint_num=36).problems if p.kind == "joints"]  # 36 x 16: powers of two
