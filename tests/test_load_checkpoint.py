"""`load_checkpoint` end to end (docs/spec.md §5): read -> unwrap -> canonical keys -> spec -> problems.

Expected values come from what the test wrote (the spec and seeded tensors it saved), from
the golden manifest, or from docs/spec.md §2; never from the loader's own output.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from ckpt_helpers import DIALECTS, SMALL_SPEC, all_tensors, assert_same_tensors, save, save_released_layout
from safetensors.torch import save_file

from pytest_convnextpose import CheckpointError, ForeignCheckpointError, load_checkpoint
from pytest_convnextpose.checkpoint.dialects import Dialect, from_canonical
from pytest_convnextpose.checkpoint.load import checkpoint_from_object
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import VARIANTS, ArchSpec, build_model


@pytest.fixture(scope="module")
def canon() -> dict[str, torch.Tensor]:
    return random_state_dict(SMALL_SPEC, seed=5)


def test_tiny_golden_file_is_read_completely(tiny_case) -> None:
    ckpt = load_checkpoint(tiny_case.checkpoint)
    m = tiny_case.manifest
    assert (ckpt.container, ckpt.wrapper) == ("torch-zip", "network")
    assert ckpt.dialect == Dialect(prefixes=("module.",))
    assert ckpt.sha256 == m["checkpoint_sha256"] and ckpt.num_parameters == m["num_parameters"]
    assert sum(t.numel() for t in ckpt.state_dict.values()) == m["num_state_values"]
    assert ckpt.spec.head_upsample == tuple(m["head_upsample"]) and ckpt.head_upsample_source == "default"
    assert ckpt.variant is None and ckpt.nearest_variant is not None and ckpt.variant_differences
    assert ckpt.metadata["epoch"] == 83 and ckpt.metadata["has_optimizer"] is True
    assert list(all_tensors(ckpt.metadata)) == [], "optimizer tensors must not be copied into metadata"
    json.dumps(ckpt.metadata)
    assert ckpt.short_id == f"{tiny_case.checkpoint.name}-{m['checkpoint_sha256'][:8]}"
    assert all(k.startswith(("backbone.", "head.")) for k in ckpt.state_dict)
    assert ckpt.key_origin["head.final_layer.weight"] == "module.head.final_layer.weight"


def test_released_layout_loads_to_cpu_with_canonical_keys(tmp_path: Path, canon) -> None:
    obj = {"epoch": 83, "network": from_canonical(canon, DIALECTS["sequential"])}
    path = save_released_layout(obj, tmp_path)
    assert path.name.endswith(".tar")
    with zipfile.ZipFile(path) as zf:  # the layout really is the released one
        assert b"cuda:0" in zf.read("snapshot_83.pth/data.pkl"), "storages should be tagged cuda:0"
    ckpt = load_checkpoint(path)
    assert ckpt.container == "torch-zip" and ckpt.dialect == DIALECTS["sequential"] and ckpt.wrapper == "network"
    assert ckpt.spec == SMALL_SPEC and ckpt.problems == []
    assert {t.device.type for t in ckpt.state_dict.values()} == {"cpu"}
    assert_same_tensors(canon, ckpt.state_dict)
    assert load_checkpoint(path, map_location=torch.device("cpu")).spec == SMALL_SPEC


@pytest.mark.parametrize("container", ["torch-zip", "torch-legacy"])
@pytest.mark.parametrize("dialect", ["canonical", "orig_mod+module", "head_net", "modulelist-indexed"])
def test_every_dialect_loads_back_to_the_written_tensors(container: str, dialect: str, tmp_path: Path, canon) -> None:
    path = save({"state_dict": from_canonical(canon, DIALECTS[dialect])}, tmp_path / "c.pth", container)
    ckpt = load_checkpoint(path)
    assert (ckpt.container, ckpt.wrapper, ckpt.dialect) == (container, "state_dict", DIALECTS[dialect])
    assert_same_tensors(canon, ckpt.state_dict)
    model = build_model(ckpt.spec)
    model.load_state_dict(ckpt.state_dict, strict=True)


def test_full_size_released_m_is_named_m_with_three_upsampling_layers(tmp_path: Path) -> None:
    spec = VARIANTS["M"].spec
    sd = from_canonical(random_state_dict(spec, seed=0), DIALECTS["sequential"])
    ckpt = load_checkpoint(save_released_layout({"epoch": 83, "network": sd}, tmp_path, "ConvNeXtPose_M.tar"))
    assert (ckpt.variant, ckpt.spec, ckpt.head_upsample_source) == ("M", spec, "variant")
    assert ckpt.num_parameters == 7_587_008  # docs/spec.md §2


def test_problems_are_reported_under_canonical_keys(tmp_path: Path, canon) -> None:
    sd = from_canonical(canon, DIALECTS["sequential"])
    rv = sd["module.head.deconv_layers_1.1.running_var"].clone()
    rv[0] = -1.0
    sd["module.head.deconv_layers_1.1.running_var"] = rv
    del sd["module.backbone.stages.2.1.pwconv1.bias"]
    ckpt = load_checkpoint(save({"network": sd}, tmp_path / "bad.pth", "torch-zip"))
    assert sorted((p.kind, p.key) for p in ckpt.problems) == [
        ("bn_variance", "head.deconv_layers_1.norm.running_var"),
        ("missing", "backbone.stages.2.1.pwconv1.bias"),
    ]
    assert not ckpt.ok


def test_user_overrides_reach_the_spec(tmp_path: Path, canon) -> None:
    path = save({"network": canon}, tmp_path / "c.pth", "torch-zip")
    ckpt = load_checkpoint(path, joint_num=36, head_upsample=(False, False, True))
    assert (ckpt.spec.joint_num, ckpt.spec.depth_dim) == (36, 4)
    assert ckpt.spec.head_upsample == (False, False, True) and ckpt.head_upsample_source == "user"
    assert load_checkpoint(path, head_upsample="up,no,up").spec.head_upsample == (True, False, True)


def test_safetensors_metadata_spec_is_used_when_consistent(tmp_path: Path, canon) -> None:
    spec = ArchSpec(**{**SMALL_SPEC.to_dict(), "head_upsample": [True, False, True]})
    path = tmp_path / "c.safetensors"
    save_file(canon, str(path), metadata={"convnextpose.spec": spec.to_json(), "convnextpose.epoch": "83"})
    ckpt = load_checkpoint(path)
    assert (ckpt.container, ckpt.wrapper, ckpt.spec, ckpt.head_upsample_source) == (
        "safetensors",
        None,
        spec,
        "metadata",
    )
    assert ckpt.metadata["convnextpose.epoch"] == "83" and ckpt.problems == []


def test_safetensors_metadata_contradicting_tensors_is_a_problem(tmp_path: Path, canon) -> None:
    claim = ArchSpec(**{**SMALL_SPEC.to_dict(), "depths": [2, 2, 6, 2]})
    path = tmp_path / "c.safetensors"
    save_file(canon, str(path), metadata={"convnextpose.spec": claim.to_json()})
    ckpt = load_checkpoint(path)
    assert ckpt.spec == SMALL_SPEC and ckpt.head_upsample_source == "default"
    assert [(p.kind, p.key) for p in ckpt.problems] == [("metadata", "convnextpose.spec")]
    assert "depths" in ckpt.problems[0].detail


def test_duplicate_keys_are_reported_as_unexpected(canon) -> None:
    sd = from_canonical(canon, DIALECTS["module"])
    sd["backbone.norm.bias"] = torch.zeros(64)
    ckpt = checkpoint_from_object({"network": sd}, path="x.pth")
    assert [(p.kind, p.key) for p in ckpt.problems] == [("unexpected", "backbone.norm.bias")]
    assert torch.equal(ckpt.state_dict["backbone.norm.bias"], canon["backbone.norm.bias"])


def test_foreign_checkpoint_error_names_file_and_key(tmp_path: Path) -> None:
    sd = {
        "module.backbone.conv1.weight": torch.zeros(4, 3, 7, 7),
        "module.backbone.layer1.0.conv1.weight": torch.zeros(4, 4, 1, 1),
        "module.root.xy_layer.weight": torch.zeros(1, 4, 1, 1),
    }
    path = save({"epoch": 20, "network": sd}, tmp_path / "snapshot_19.pth.tar", "torch-zip")
    with pytest.raises(ForeignCheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and "RootNet" in msg and "module.backbone.conv1.weight" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "obj", [[1, 2, 3], {"epoch": 1}, {"network": {}}, {"model": {"encoder.weight": torch.zeros(1)}}]
)
def test_non_checkpoints_raise_checkpoint_errors_with_the_path(obj, tmp_path: Path) -> None:
    path = save(obj, tmp_path / "x.pth", "torch-zip")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- old PyTorch files
def test_file_without_any_bn_counter_loads_like_torch_does(tmp_path, canon) -> None:
    """PyTorch < 0.4.1 saved no num_batches_tracked; torch's BatchNorm fills 0 on a strict load."""
    old = {k: v for k, v in canon.items() if not k.endswith("num_batches_tracked")}
    n_bn = len(canon) - len(old)
    path = tmp_path / "old.pth"
    torch.save({"network": {"module." + k: v for k, v in old.items()}}, path)
    ckpt = load_checkpoint(path)
    assert ckpt.problems == [], f"expected no problems for an all-absent counter set, got {ckpt.problems[:3]}"
    # 13 = stem BN + 3 downsample BNs + 5 blocks (depths 1,1,2,1) + final norm + 3 head layers
    assert ckpt.metadata["num_batches_tracked_filled"] == n_bn == 13, ckpt.metadata
    assert len(ckpt.notes) == 1 and "num_batches_tracked" in ckpt.notes[0], ckpt.notes
    # what torch itself does with the same tensors: strict load into a fresh model, counters 0
    reference = build_model(SMALL_SPEC)
    reference.load_state_dict(old, strict=True)
    want = reference.state_dict()
    assert_same_tensors(dict(want), {k: ckpt.state_dict[k] for k in want})


def test_file_with_some_bn_counters_missing_reports_each_missing_one(tmp_path, canon) -> None:
    gone = "head.deconv_layers_2.norm.num_batches_tracked"
    partial = {k: v for k, v in canon.items() if k != gone}
    torch.save({"network": partial}, tmp_path / "partial.pth")
    ckpt = load_checkpoint(tmp_path / "partial.pth")
    assert [(p.kind, p.key) for p in ckpt.problems] == [("missing", gone)], ckpt.problems
    assert ckpt.notes == [] and "num_batches_tracked_filled" not in ckpt.metadata
