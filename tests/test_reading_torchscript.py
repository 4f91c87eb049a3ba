"""A `torch.jit.save` archive reads as the state dict of the module it holds, bit for bit.

Archives are written by torch itself (`torch.jit.trace` / `torch.jit.script` + `torch.jit.save`)
from a model loaded with seeded tensors; the expected values are that model's own
`state_dict()`, which shares no code with our reader.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ckpt_helpers import SMALL_SPEC
from hostile_corpus import TORCHSCRIPT_LAYOUTS, assert_same, save_torchscript, torchscript_files, truncations

from pytest_convnextpose import load_checkpoint
from pytest_convnextpose.errors import CheckpointError
from pytest_convnextpose.reading import read_file
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import VARIANTS, ArchSpec, build_model


def _traced(spec: ArchSpec, seed: int, path: Path) -> tuple[Path, dict]:
    model = build_model(spec)
    model.load_state_dict(random_state_dict(spec, seed))
    model.eval()
    save_torchscript(model, path, "trace", torch.zeros(1, 3, 64, 64))
    return path, dict(model.state_dict())


@pytest.fixture(scope="module")
def small_traced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return _traced(SMALL_SPEC, 11, tmp_path_factory.mktemp("ts") / "convnextpose_traced.pt")


@pytest.fixture(scope="module")
def small_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return torchscript_files(tmp_path_factory.mktemp("ts_small"))


def test_traced_convnextpose_reads_as_its_state_dict_bit_for_bit(small_traced: tuple[Path, dict]) -> None:
    path, expected = small_traced
    raw = read_file(path)
    assert raw.container == "torchscript", f"container {raw.container}, expected torchscript"
    assert raw.metadata["torchscript"] is True
    # TorchScript mangles the class name when the same class was scripted before in this process
    # (`___torch_mangle_N.`), e.g. by another test on the same xdist worker
    assert re.fullmatch(r"__torch__\.reference_model\.model\.(___torch_mangle_\d+\.)?ConvNeXtPose",
                        raw.metadata["module_class"]), raw.metadata
    assert raw.root == "convnextpose_traced", raw.root
    assert_same(expected, raw.obj, "traced ConvNeXtPose")


@pytest.mark.parametrize("layout", TORCHSCRIPT_LAYOUTS)
def test_traced_and_scripted_modules_read_as_their_state_dict(small_layouts: dict, layout: str) -> None:
    path, expected = small_layouts[layout]
    raw = read_file(path)
    assert raw.container == "torchscript", f"{layout}: container {raw.container}"
    assert_same(dict(expected), raw.obj, layout)
    assert raw.obj["1.num_batches_tracked"].item() == 83, "BatchNorm counter not read from the archive"


def test_load_checkpoint_takes_a_torchscript_archive(small_traced: tuple[Path, dict]) -> None:
    path, expected = small_traced
    ckpt = load_checkpoint(path)
    assert ckpt.container == "torchscript", ckpt.container
    assert ckpt.spec == SMALL_SPEC, f"spec {ckpt.spec}, expected {SMALL_SPEC}"
    assert ckpt.problems == [], ckpt.problems
    assert ckpt.state_dict.keys() == expected.keys()
    for key, want in expected.items():
        assert torch.equal(ckpt.state_dict[key], want), f"tensor {key} changed on the way through"
    model = build_model(ckpt.spec)
    model.load_state_dict(ckpt.state_dict, strict=True)


def test_inspect_names_container_spec_and_variant_of_a_traced_xs(tmp_path: Path) -> None:
    spec = VARIANTS["XS"].spec
    path, _ = _traced(spec, 3, tmp_path / "xs_traced.pt")
    proc = subprocess.run([sys.executable, "-m", "pytest_convnextpose.cli.main", "inspect", str(path), "--json"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, f"exit {proc.returncode}, expected 0: {proc.stderr}"
    report = json.loads(proc.stdout)
    assert report["container"] == "torchscript", report["container"]
    assert report["variant"] == "XS", report["variant"]
    assert ArchSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in report["spec"].items()}) == spec
    assert report["num_parameters"] == VARIANTS["XS"].num_parameters
    assert report["metadata"]["torchscript"] is True


def test_every_truncation_of_a_torchscript_archive_is_a_one_line_refusal(small_layouts: dict,
                                                                         tmp_path: Path) -> None:
    for layout in TORCHSCRIPT_LAYOUTS:
        data = small_layouts[layout][0].read_bytes()
        for cut in truncations(data):
            work = tmp_path / "cut.pt"
            work.write_bytes(data[:cut])
            with pytest.raises(CheckpointError) as info:
                read_file(work)
            assert "\n" not in str(info.value), f"{layout} cut at {cut}: multi-line message"


def test_unpacked_torchscript_folder_is_named_not_read(small_layouts: dict, tmp_path: Path) -> None:
    import zipfile
    path = small_layouts["torchscript-script"][0]
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as zf:  # torch's own freshly written archive
        for info in zf.infolist():
            target = folder / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    with pytest.raises(CheckpointError, match="unpacked TorchScript"):
        read_file(folder)
    shutil.rmtree(folder)
