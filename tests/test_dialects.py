"""Wrappers and key dialects (docs/spec.md §3) -> canonical keys (docs/spec.md §4), and back.

Every mapping rule has a test here: each wrapper, each prefix (alone, stacked, unknown
common prefix), `head_net.`, the Sequential head, the ModuleList head with named and
indexed sub-layers, foreign and unknown dicts. The reverse mapping is checked two ways:
canonical -> dialect -> canonical is the identity, and the written-back keys load strictly
into an nn.Module tree laid out the dialect's way, built without the mapper.
"""

from __future__ import annotations

import json

import pytest
import torch
from ckpt_helpers import DIALECTS, SMALL_SPEC, all_tensors, dialect_module
from hypothesis import given, settings
from strategies_spec import dialects, small_specs

from pytest_convnextpose.checkpoint.dialects import (
    Dialect,
    canonicalize,
    detect_dialect,
    dialect_key,
    from_canonical,
    to_canonical,
)
from pytest_convnextpose.checkpoint.shapes import canonical_shapes
from pytest_convnextpose.checkpoint.unwrap import unwrap
from pytest_convnextpose.errors import ArchitectureError, ForeignCheckpointError, UnknownFormatError
from pytest_convnextpose.testing.synthetic import random_state_dict


@pytest.fixture(scope="module")
def canon() -> dict[str, torch.Tensor]:
    return random_state_dict(SMALL_SPEC, seed=1)


# --------------------------------------------------------------------------- single rules
@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("module.backbone.norm.weight", "backbone.norm.weight"),
        ("_orig_mod.backbone.stages.0.0.dwconv.weight", "backbone.stages.0.0.dwconv.weight"),
        ("module._orig_mod.head.final_layer.bias", "head.final_layer.bias"),
        ("_orig_mod.module.head.final_layer.bias", "head.final_layer.bias"),
        ("head_net.deconv_layers_2.norm.running_var", "head.deconv_layers_2.norm.running_var"),
        ("head.deconv_layers_1.0.weight", "head.deconv_layers_1.dwconv.weight"),
        ("head.deconv_layers_3.1.num_batches_tracked", "head.deconv_layers_3.norm.num_batches_tracked"),
        ("head.deconv_layers_2.2.bias", "head.deconv_layers_2.pwconv.bias"),
        ("head.deconv_layers.0.dwconv.weight", "head.deconv_layers_1.dwconv.weight"),
        ("head.deconv_layers.2.pwconv.bias", "head.deconv_layers_3.pwconv.bias"),
        ("head.deconv_layers.1.1.running_mean", "head.deconv_layers_2.norm.running_mean"),
        ("module.head_net.deconv_layers.0.2.weight", "head.deconv_layers_1.pwconv.weight"),
        ("head_net.final_layer.weight", "head.final_layer.weight"),
        ("backbone.downsample_layers.0.0.weight", "backbone.downsample_layers.0.0.weight"),  # canonical untouched
        ("head.deconv_layers_1.5.weight", "head.deconv_layers_1.5.weight"),  # unknown sub-module kept, not dropped
    ],
)
def test_each_mapping_rule_gives_the_canonical_key(raw: str, canonical: str) -> None:
    got = list(to_canonical({raw: torch.zeros(1)}))
    assert got == [canonical], f"{raw!r} should map to {canonical!r}, got {got}"


@pytest.mark.parametrize("name", list(DIALECTS))
def test_detect_dialect_recognises_each_dialect(name: str, canon) -> None:
    d = DIALECTS[name]
    assert detect_dialect(from_canonical(canon, d)) == d, f"{name}: detected {detect_dialect(from_canonical(canon, d))}"


def test_unknown_common_prefix_is_stripped_and_recorded(canon) -> None:
    sd = {"model." + k: v for k, v in canon.items()}  # e.g. a Lightning module's `self.model`
    d = detect_dialect(sd)
    assert d.prefixes == ("model.",)
    assert to_canonical(sd, d).keys() == canon.keys()
    assert from_canonical(canon, d).keys() == sd.keys()


def test_mixed_prefixes_still_map_every_key(canon) -> None:
    keys = list(canon)
    sd = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(canon.items())}
    assert list(to_canonical(sd)) == keys


def test_duplicate_spellings_are_reported_not_lost(canon) -> None:
    sd = dict(from_canonical(canon, Dialect(prefixes=("module.",))))
    sd["backbone.norm.weight"] = torch.zeros(64)  # also present as module.backbone.norm.weight
    res = canonicalize(sd)
    assert res.duplicates == [("backbone.norm.weight", "backbone.norm.weight")]
    assert res.origin["backbone.norm.weight"] == "module.backbone.norm.weight"
    assert torch.equal(res.state_dict["backbone.norm.weight"], canon["backbone.norm.weight"])


def test_dialect_normalises_implied_sublayers_and_serialises() -> None:
    d = Dialect(prefixes=["module."], head_layout="sequential")
    assert d.head_sublayers == "indexed" and d.prefixes == ("module.",)
    assert Dialect(head_layout="named", head_sublayers="indexed").head_sublayers == "named"
    for d in DIALECTS.values():
        assert Dialect.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    with pytest.raises(ValueError):
        Dialect(head_layout="list")
    assert (
        dialect_key("head.deconv_layers_1.norm.weight", DIALECTS["modulelist-indexed"])
        == "module.head.deconv_layers.0.1.weight"
    )


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", list(DIALECTS))
def test_canonical_to_dialect_to_canonical_is_identity(name: str, canon) -> None:
    back = to_canonical(from_canonical(canon, DIALECTS[name]), DIALECTS[name])
    assert list(back) == list(canon), f"{name}: keys changed on the round trip"
    assert all(back[k] is canon[k] for k in canon), f"{name}: tensors changed on the round trip"


@pytest.mark.parametrize("name", list(DIALECTS))
def test_written_back_dialect_loads_strictly_into_that_layout(name: str, canon) -> None:
    module = dialect_module(SMALL_SPEC, DIALECTS[name])
    module.load_state_dict(from_canonical(canon, DIALECTS[name]), strict=True)
    # and the module's own keys map back to exactly the canonical keys
    assert set(to_canonical(module.state_dict())) == set(canon)


@settings(max_examples=40, deadline=None)
@given(spec=small_specs(), dialect=dialects())
def test_round_trip_is_identity_for_any_spec_and_dialect(spec, dialect) -> None:
    canon = {k: torch.zeros(()) for k in canonical_shapes(spec)}
    written = from_canonical(canon, dialect)
    assert len(written) == len(canon), "two canonical keys collided in the dialect"
    assert detect_dialect(written) == dialect
    assert list(to_canonical(written)) == list(canon)


# --------------------------------------------------------------------------- wrappers
@pytest.mark.parametrize("wrapper", ["network", "state_dict", "model_state_dict", "model"])
def test_unwrap_finds_each_wrapper_and_keeps_the_rest_as_metadata(wrapper: str, canon) -> None:
    obj = {
        "epoch": 83,
        wrapper: canon,
        "optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"lr": 0.001, "params": [0]}]},
        "note": "x",
        "best": torch.tensor(1.5),
    }
    u = unwrap(obj)
    assert u.wrapper == wrapper and u.state_dict.keys() == canon.keys()
    assert u.metadata["epoch"] == 83 and u.metadata["has_optimizer"] is True and u.metadata["note"] == "x"
    assert u.metadata["best"] == 1.5
    assert u.metadata["optimizer_summary"]["param_groups"] == [{"lr": 0.001}]
    assert list(all_tensors(u.metadata)) == [], "metadata must never hold tensors (optimizer state included)"
    json.dumps(u.metadata)


def test_unwrap_bare_state_dict_has_no_wrapper_and_no_optimizer(canon) -> None:
    u = unwrap(dict(canon))
    assert u.wrapper is None and u.state_dict.keys() == canon.keys()
    assert u.metadata == {"has_optimizer": False}


def test_unwrap_nested_wrappers_are_recorded_as_a_path(canon) -> None:
    u = unwrap({"model": {"state_dict": canon, "step": 7}, "epoch": 2})
    assert u.wrapper == "model.state_dict" and u.metadata["step"] == 7 and u.metadata["epoch"] == 2


def test_unwrap_prefers_network_over_later_wrappers(canon) -> None:
    u = unwrap({"network": canon, "state_dict": {"x": torch.zeros(1)}})
    assert u.wrapper == "network" and u.state_dict.keys() == canon.keys()
    assert list(all_tensors(u.metadata)) == []


@pytest.mark.parametrize("obj", [[torch.zeros(1)], torch.zeros(3), {}, {"network": {}}, {"epoch": 3, "name": "x"}])
def test_unwrap_refuses_objects_without_a_state_dict(obj) -> None:
    with pytest.raises(UnknownFormatError):
        unwrap(obj)


# --------------------------------------------------------------------------- foreign / unknown
def _resnet_keys(prefix: str = "module.") -> dict[str, torch.Tensor]:
    return {
        prefix + k: torch.zeros(2)
        for k in (
            "backbone.conv1.weight",
            "backbone.bn1.weight",
            "backbone.layer1.0.conv1.weight",
            "backbone.layer4.2.bn3.bias",
        )
    }


@pytest.mark.parametrize(
    "extra, name",
    [
        ({"module.root.xy_layer.weight": torch.zeros(1), "module.root.depth_layer.weight": torch.zeros(1)}, "RootNet"),
        (
            {
                "module.head.deconv_layers.0.weight": torch.zeros(8, 4, 4, 4),
                "module.head.final_layer.weight": torch.zeros(1),
            },
            "PoseNet",
        ),
    ],
)
def test_resnet_backbone_checkpoints_are_refused_by_name(extra, name: str) -> None:
    with pytest.raises(ForeignCheckpointError) as info:
        detect_dialect({**_resnet_keys(), **extra})
    assert name in str(info.value) and "module.backbone.conv1.weight" in str(info.value), str(info.value)


def test_posenet_convtranspose_head_is_refused_even_without_resnet_keys(canon) -> None:
    sd = {k: v for k, v in canon.items() if k.startswith("backbone.")}
    sd.update(
        {
            "head.deconv_layers.0.weight": torch.zeros(64, 16, 4, 4),
            "head.deconv_layers.1.weight": torch.zeros(16),
            "head.final_layer.weight": torch.zeros(144, 16, 1, 1),
        }
    )
    with pytest.raises(ForeignCheckpointError, match="PoseNet"):
        detect_dialect(sd)


def test_convnext_classifier_is_refused_as_foreign() -> None:
    sd = {
        "downsample_layers.0.0.weight": torch.zeros(1),
        "stages.0.0.gamma": torch.zeros(1),
        "head.weight": torch.zeros(1),
    }
    with pytest.raises((ForeignCheckpointError, UnknownFormatError)):
        detect_dialect(sd)
    with pytest.raises(ForeignCheckpointError, match="ConvNeXt"):
        detect_dialect({k: v for k, v in sd.items() if k != "head.weight"})


def test_unrecognisable_keys_are_unknown_and_name_an_example_key() -> None:
    with pytest.raises(UnknownFormatError) as info:
        detect_dialect({"encoder.layers.0.weight": torch.zeros(1), "decoder.weight": torch.zeros(1)})
    assert info.value.key == "encoder.layers.0.weight" and "encoder.layers.0.weight" in str(info.value)


def test_backbone_only_weights_are_an_architecture_error(canon) -> None:
    with pytest.raises(ArchitectureError, match="head"):
        detect_dialect({k: v for k, v in canon.items() if k.startswith("backbone.")})


# --- the released layouts, through load_checkpoint (once conformance/test_keys.py: they test this
# module, not a user's checkpoint, so they live here and run on the golden files) ----------------
class _DataParallelLayout(torch.nn.Module):
    """The authors train under `nn.DataParallel`, whose state dict prefixes every key with `module.`."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.module = model


@pytest.mark.parametrize("name", ["tiny", "xs", "l"])
def test_golden_files_round_trip_through_their_dialect(golden_case, name: str) -> None:
    from pytest_convnextpose import load_checkpoint
    from reference_model import build_model

    ckpt = load_checkpoint(golden_case(name).checkpoint)
    back = to_canonical(from_canonical(ckpt.state_dict, ckpt.dialect), ckpt.dialect)
    assert list(back) == list(ckpt.state_dict), f"{name}: round trip through {ckpt.dialect.to_dict()} changed the keys"
    assert all(back[k] is ckpt.state_dict[k] for k in back), f"{name}: round trip replaced tensors"
    # each canonical key, spelled in the detected dialect, is the key the file used
    wrong = [
        (k, ckpt.key_origin[k], dialect_key(k, ckpt.dialect))
        for k in ckpt.state_dict
        if dialect_key(k, ckpt.dialect) != ckpt.key_origin[k]
    ]
    assert not wrong, f"{name}: dialect {ckpt.dialect.to_dict()} does not reproduce the file's keys: {wrong[:3]}"
    # the canonical form loads strictly into the authors' DataParallel layout once `module.` is put back
    with torch.device("meta"):
        wrapped = _DataParallelLayout(build_model(ckpt.spec))
    wrapped.load_state_dict({"module." + k: v for k, v in ckpt.state_dict.items()}, strict=True, assign=True)
