"""`convnextpose inspect` (docs/spec.md §5): containers x dialects x wrappers, the released layout,
exit codes 0/1/2, the JSON fields, and refusals as one stderr line without a traceback.

Most cases run the CLI in-process (`cli.main`) to stay fast; a few run the installed
`convnextpose` script in a subprocess, where a traceback or executed payload would show.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ckpt_helpers import DIALECTS, SMALL_SPEC, save, save_released_layout

from pytest_convnextpose.checkpoint.dialects import from_canonical
from pytest_convnextpose.cli.main import main
from pytest_convnextpose.testing.synthetic import random_state_dict
from pytest_convnextpose.testing.writers import CONTAINERS
from reference_model import VARIANTS

SPEC_FIELDS = {
    "path",
    "sha256",
    "container",
    "wrapper",
    "dialect",
    "spec",
    "head_upsample_source",
    "variant",
    "num_parameters",
    "metadata",
    "problems",
}


@pytest.fixture(scope="module")
def canon() -> dict[str, torch.Tensor]:
    return random_state_dict(SMALL_SPEC, seed=11)


def inspect_json(path: Path, capsys, *extra: str) -> tuple[int, dict, str]:
    code = main(["inspect", str(path), "--json", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def spec_dict(spec) -> dict:
    return json.loads(spec.to_json())


# --------------------------------------------------------------------------- matrix
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_inspect_reports_container_dialect_and_spec(
    container: str, dialect: str, tmp_path: Path, capsys, canon
) -> None:
    path = save({"epoch": 3, "network": from_canonical(canon, DIALECTS[dialect])}, tmp_path / "ckpt.pth", container)
    code, obj, err = inspect_json(path, capsys)
    assert code == 0, f"{container}/{dialect}: exit {code}, stderr {err!r}, problems {obj.get('problems')}"
    assert obj["container"] == container
    assert obj["wrapper"] == (None if container == "safetensors" else "network")
    assert obj["dialect"] == DIALECTS[dialect].to_dict()
    want = spec_dict(SMALL_SPEC)
    if DIALECTS[dialect].head_layout == "modulelist":  # the fork upsamples in every layer (docs/spec.md §4)
        want["head_upsample"] = [True, True, True]
        assert obj["head_upsample_source"] == "layout"
    else:
        assert obj["head_upsample_source"] == "default"
    assert obj["spec"] == want and obj["variant"] is None and obj["problems"] == []
    assert obj["num_parameters"] == 77_072  # counted by hand for the golden tiny spec (manifest)


@pytest.mark.parametrize("container", [c for c in CONTAINERS if c != "safetensors"])
def test_gpu_tagged_storages_load_in_every_torch_container(container: str, tmp_path: Path, capsys, canon) -> None:
    obj = {"epoch": 83, "network": from_canonical(canon, DIALECTS["sequential"])}
    path = save(obj, tmp_path / "snapshot_83.pth.tar", container, root_name="snapshot_83.pth", location="cuda:0")
    code, out, err = inspect_json(path, capsys)
    assert code == 0, f"{container}: exit {code}: {err}"
    assert out["container"] == container and out["spec"] == spec_dict(SMALL_SPEC)
    assert out["dialect"] == DIALECTS["sequential"].to_dict() and out["metadata"]["epoch"] == 83


@pytest.mark.parametrize("wrapper", ["network", "state_dict", "model_state_dict", "model", None])
def test_inspect_reports_each_wrapper(wrapper, tmp_path: Path, capsys, canon) -> None:
    sd = from_canonical(canon, DIALECTS["module"])
    obj = sd if wrapper is None else {wrapper: sd, "epoch": 5}
    code, out, _ = inspect_json(save(obj, tmp_path / "w.pth", "torch-zip"), capsys)
    assert code == 0 and out["wrapper"] == wrapper
    assert out["metadata"].get("epoch") == (None if wrapper is None else 5)


@pytest.mark.parametrize("name", ["XS", "M"])
def test_released_layout_names_the_variant(name: str, tmp_path: Path, capsys) -> None:
    spec = VARIANTS[name].spec
    sd = from_canonical(random_state_dict(spec, seed=1), DIALECTS["sequential"])
    path = save_released_layout({"epoch": 83, "network": sd}, tmp_path, f"ConvNeXtPose_{name}.tar")
    code, obj, _ = inspect_json(path, capsys)
    assert code == 0 and obj["variant"] == name and obj["spec"] == spec_dict(spec)
    assert obj["container"] == "torch-zip" and obj["dialect"]["head_layout"] == "sequential"
    assert obj["head_upsample_source"] == "variant" and obj["num_parameters"] == VARIANTS[name].num_parameters


def test_mislabelled_file_is_judged_by_its_tensors(tmp_path: Path, capsys) -> None:
    sd = from_canonical(random_state_dict(VARIANTS["XS"].spec, seed=2), DIALECTS["module"])
    path = save_released_layout({"network": sd}, tmp_path, "ConvNeXtPose_L.tar")
    code, obj, _ = inspect_json(path, capsys)
    assert code == 1 and obj["variant"] == "XS"
    assert [p["kind"] for p in obj["problems"]] == ["name"], obj["problems"]
    assert obj["problems"][0]["key"] == "ConvNeXtPose_L.tar"
    assert obj["problems"][0]["detail"].startswith(
        "file name says L; tensors are XS: depths 2,2,6,2, dims 40,80,160,320"
    )


@pytest.mark.parametrize(
    "name, folder, problem",
    [
        ("ConvNeXtPose_XS (1).tar", None, None),  # correctly named
        ("snapshot_68.pth", None, None),  # claims nothing
        ("model_s.pth", None, "file name says S"),  # lower case, as people write it
        ("weights-M.v2.pth", None, "file name says M"),
        ("snapshot_68.pth", "ConvNeXtPose_L", "folder name says L"),  # the folder claims it
        ("xs_final.pth", "ConvNeXtPose_L", None),  # the file's own claim wins, and is right
        ("my ckpt's.pth", None, None),  # an apostrophe is no separator: claims nothing
    ],
)
def test_names_that_claim_a_variant_are_checked_against_the_tensors(
    tmp_path: Path, capsys, name, folder, problem
) -> None:
    sd = from_canonical(random_state_dict(VARIANTS["XS"].spec, seed=2), DIALECTS["module"])
    where = tmp_path / folder if folder else tmp_path
    where.mkdir(exist_ok=True)
    path = save_released_layout({"network": sd}, where, name)
    code, obj, _ = inspect_json(path, capsys)
    named = [p["detail"] for p in obj["problems"] if p["kind"] == "name"]
    if problem is None:
        assert code == 0 and not named, obj["problems"]
    else:
        assert code == 1 and len(named) == 1 and named[0].startswith(problem + "; tensors are XS"), named


def test_a_wrong_name_is_reported_whatever_the_joints_option(tmp_path: Path, capsys) -> None:
    sd = from_canonical(random_state_dict(VARIANTS["XS"].spec, seed=2), DIALECTS["module"])
    path = save_released_layout({"network": sd}, tmp_path, "ConvNeXtPose_S.tar")  # XS tensors, S name
    code, obj, _ = inspect_json(path, capsys, "--joints", "16")
    assert code == 1 and sorted(p["kind"] for p in obj["problems"]) == ["joints", "name"], obj["problems"]


def test_a_name_on_a_file_that_needs_the_joints_option_is_checked_not_crashed(tmp_path: Path, capsys) -> None:
    """40 final-layer channels split into no known joint count: read as saved (without --joints) the
    tensors are unreadable, so they cannot be the L their folder claims; the name problem stands."""
    spec = dataclasses.replace(VARIANTS["XS"].spec, joint_num=10, depth_dim=4)
    folder = tmp_path / "run_l"
    folder.mkdir()
    path = save_released_layout({"network": random_state_dict(spec, seed=2)}, folder, "ckpt.pth")
    code, obj, _ = inspect_json(path, capsys, "--joints", "10")
    assert code == 1 and [p["kind"] for p in obj["problems"]] == ["name"], obj["problems"]
    assert obj["problems"][0]["detail"].startswith("folder name says L; tensors are no published variant"), obj


@pytest.mark.parametrize("joints, kinds", [(16, ["joints"]), (36, ["name"])])
def test_joints_option_is_not_blamed_on_the_file_name(tmp_path: Path, capsys, joints, kinds) -> None:
    """A correctly named XS file read with --joints: 16 gives 36 depth bins (the `joints` problem says what
    fits, alone); 36 gives 36 x 16, a reading the tensors allow, which the name problem then attributes to
    the option, not to the file's name."""
    sd = from_canonical(random_state_dict(VARIANTS["XS"].spec, seed=2), DIALECTS["module"])
    path = save_released_layout({"network": sd}, tmp_path, "ConvNeXtPose_XS.tar")
    code, obj, _ = inspect_json(path, capsys, "--joints", str(joints))
    assert code == 1 and [p["kind"] for p in obj["problems"]] == kinds, obj["problems"]
    if kinds == ["name"]:
        detail = obj["problems"][0]["detail"]
        assert detail.startswith("file name says XS, and the tensors are XS as saved; read with --joints 36 "
                                 "instead, tensors are no published variant"), detail


@pytest.mark.parametrize(
    "case, variant, container, layout",
    [("tiny", None, "torch-zip", "named"), ("xs", "XS", "torch-zip", "named"), ("l", "L", "torch-zip", "sequential")],
)
def test_golden_files_are_reported_correctly(case, variant, container, layout, golden_cases, capsys) -> None:
    g = golden_cases[case]
    code, obj, _ = inspect_json(g.checkpoint, capsys)
    assert code == 0 and obj["variant"] == variant and obj["container"] == container
    assert obj["dialect"]["head_layout"] == layout and obj["dialect"]["prefixes"] == ["module."]
    assert obj["sha256"] == g.manifest["checkpoint_sha256"] and obj["num_parameters"] == g.manifest["num_parameters"]
    assert obj["spec"]["head_upsample"] == g.manifest["head_upsample"]


# --------------------------------------------------------------------------- output contract
def test_json_has_every_contract_field_and_no_error_when_loaded(tiny_case, capsys) -> None:
    code, obj, err = inspect_json(tiny_case.checkpoint, capsys)
    assert code == 0 and err == ""
    assert SPEC_FIELDS <= obj.keys(), f"missing fields {SPEC_FIELDS - obj.keys()}"
    assert "error" not in obj
    assert obj["path"] == str(tiny_case.checkpoint) and obj["metadata"]["epoch"] == 83
    assert obj["metadata"]["has_optimizer"] is True


def test_human_summary_names_the_essentials(tiny_case, capsys) -> None:
    assert main(["inspect", str(tiny_case.checkpoint)]) == 0
    out = capsys.readouterr().out
    for needle in (
        "torch-zip",
        "network",
        "module.",
        "8,16,32,64",
        "up,up,no (source: default)",
        "77,072",
        "problems:      none",
        "nearest",
    ):
        assert needle in out, f"summary lacks {needle!r}:\n{out}"


def test_user_flags_change_spec_and_source(tmp_path: Path, capsys, canon) -> None:
    path = save({"network": canon}, tmp_path / "c.pth", "torch-zip")
    code, obj, _ = inspect_json(path, capsys, "--joints", "36", "--head-upsample", "no,up,up")
    assert code == 0 and obj["spec"]["joint_num"] == 36 and obj["spec"]["depth_dim"] == 4
    assert obj["spec"]["head_upsample"] == [False, True, True] and obj["head_upsample_source"] == "user"


def test_problems_give_exit_1_and_are_listed(tmp_path: Path, capsys, canon) -> None:
    sd = dict(canon)
    sd["backbone.norm.weight"] = torch.full((64,), float("nan"))
    del sd["head.deconv_layers_3.dwconv.bias"]
    path = save({"network": sd}, tmp_path / "bad.pth", "torch-zip")
    code, obj, _ = inspect_json(path, capsys)
    assert code == 1
    assert {(p["kind"], p["key"]) for p in obj["problems"]} == {
        ("nonfinite", "backbone.norm.weight"),
        ("missing", "head.deconv_layers_3.dwconv.bias"),
    }
    assert all(set(p) == {"kind", "key", "detail"} for p in obj["problems"])
    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert "[nonfinite] backbone.norm.weight" in out and "[missing] head.deconv_layers_3.dwconv.bias" in out


# --------------------------------------------------------------------------- refusals
def _foreign(tmp_path: Path) -> Path:
    sd = {
        "module.backbone.conv1.weight": torch.zeros(4, 3, 7, 7),
        "module.backbone.layer1.0.conv1.weight": torch.zeros(4, 4, 1, 1),
        "module.head.deconv_layers.0.weight": torch.zeros(4, 4, 4, 4),
        "module.head.final_layer.weight": torch.zeros(18, 4, 1, 1),
    }
    return save({"epoch": 24, "network": sd}, tmp_path / "snapshot_24.pth.tar", "torch-zip")


def _refused_files(tmp_path: Path, tiny: Path) -> dict[str, Path]:
    data = tiny.read_bytes()
    files = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "random": os.urandom(4096),
        "html": b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Google Drive</body></html>\n",
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.pth.tar"
        out[name].write_bytes(content)
    out["foreign"] = _foreign(tmp_path)
    out["missing"] = tmp_path / "no_such_file.pth"
    return out


@pytest.mark.parametrize("kind", ["empty", "truncated", "random", "html", "foreign", "missing"])
def test_refused_files_exit_2_with_one_line_and_json_error(kind: str, tmp_path: Path, capsys, tiny_case) -> None:
    path = _refused_files(tmp_path, tiny_case.checkpoint)[kind]
    code, obj, err = inspect_json(path, capsys)
    assert code == 2, f"{kind}: exit {code}"
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err, f"{kind}: stderr {err!r}"
    assert obj["error"]["message"] and obj["path"] == str(path) and obj["spec"] is None
    assert SPEC_FIELDS <= obj.keys()
    assert main(["inspect", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1


def test_foreign_refusal_names_the_model(tmp_path: Path, capsys) -> None:
    code, obj, err = inspect_json(_foreign(tmp_path), capsys)
    assert code == 2 and obj["error"]["kind"] == "foreign" and "PoseNet" in err


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest_convnextpose.cli.main", "inspect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("container", ["torch-zip", "torch-legacy"])
def test_hostile_pickle_is_refused_and_nothing_runs(container: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    path = save(
        {"network": {"backbone.norm.weight": torch.zeros(2)}, "epoch": _Payload(marker)},
        tmp_path / "evil.pth.tar",
        container,
    )
    proc = _run_cli(str(path), "--json")
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists(), "the payload in the file was executed"
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    error = json.loads(proc.stdout)["error"]
    # both containers hold a pickle naming os.system: the allowlist refuses it as hostile
    assert (error["kind"], error["type"]) == ("hostile", "ForbiddenPickleError"), (
        f"{container}: expected a hostile ForbiddenPickleError, got {error}"
    )
    assert "system" in error["message"] and "not on the allowlist" in error["message"], error["message"]


def test_cli_process_refuses_without_traceback(tmp_path: Path, tiny_case) -> None:
    path = _refused_files(tmp_path, tiny_case.checkpoint)["truncated"]
    proc = _run_cli(str(path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args, needle", [(["--head-upsample", "up,no"], "3 layers"), (["--joints", "17"], "--joints 17")]
)
def test_impossible_user_flags_are_refused_with_one_line(args, needle: str, tmp_path: Path, capsys, canon) -> None:
    path = save({"network": canon}, tmp_path / "c.pth", "torch-zip")
    code, obj, err = inspect_json(path, capsys, *args)
    assert code == 2 and obj["error"]["kind"] == "architecture"
    assert err.count("\n") == 1 and needle in err, err


def test_malformed_flag_values_are_usage_errors(tiny_case, capsys) -> None:
    for bad in (["--joints", "zero"], ["--head-upsample", "up,maybe,no"]):
        with pytest.raises(SystemExit) as info:
            main(["inspect", str(tiny_case.checkpoint), *bad])
        assert info.value.code == 2
        assert "Traceback" not in capsys.readouterr().err
