"""`export`: verified checkpoints back to the authors' `torch.save` layouts."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from ckpt_helpers import assert_same_tensors
from test_convert_support import SMALL, SMALL_3UP, TINY_GOLDEN, AuthorsSequentialModel, temp_leftovers, write_source
from torch import nn

from pytest_convnextpose.checkpoint.load import load_checkpoint
from pytest_convnextpose.cli.main import main
from pytest_convnextpose.convert import authors_layouts as export_mod
from pytest_convnextpose.convert.authors_layouts import export_file
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import build_model


def read_back(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_official_layout_loads_strictly_into_dataparallel_model(tmp_path):
    src = write_source(tmp_path / "src.pth", dialect="sequential", epoch=41)
    out = tmp_path / "official.pth.tar"
    assert export_file(src, out, "official").ok
    obj = read_back(out)
    assert set(obj) == {"epoch", "network"} and obj["epoch"] == 41
    assert all(k.startswith("module.") for k in obj["network"])
    model = nn.DataParallel(build_model(SMALL))  # the authors' tester wraps the model like this
    model.load_state_dict(obj["network"], strict=True)
    assert_same_tensors({"module." + k: v for k, v in random_state_dict(SMALL, 0).items()}, obj["network"], "official")


def test_sequential_head_layout_loads_strictly_into_released_ml_layout(tmp_path):
    src = write_source(tmp_path / "src.pth", SMALL_3UP, dialect="module")
    out = tmp_path / "seq.pth.tar"
    assert export_file(src, out, "sequential-head", head_upsample=(True, True, True)).ok
    net = read_back(out)["network"]
    assert "module.head.deconv_layers_1.0.weight" in net and "module.head.deconv_layers_3.2.bias" in net
    model = nn.DataParallel(AuthorsSequentialModel(SMALL_3UP))
    model.load_state_dict(net, strict=True)
    # the same weights in the canonical model compute the same heatmaps (up to float rounding)
    ref = build_model(SMALL_3UP).eval()
    ref.load_state_dict(random_state_dict(SMALL_3UP, 0), strict=True)
    x = torch.randn((1, 3, 64, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = model.module.eval()(x), ref.heatmaps(x)
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-5), \
        f"max diff {float((got - want).abs().max())}"


def test_bare_layout_is_the_canonical_state_dict(tmp_path):
    src = write_source(tmp_path / "src.pth", dialect="orig_mod", wrapper="state_dict")
    out = tmp_path / "bare.pth"
    assert export_file(src, out, "bare").ok
    obj = read_back(out)
    assert_same_tensors(random_state_dict(SMALL, 0), obj, "bare")
    build_model(SMALL).load_state_dict(obj, strict=True)


@pytest.mark.parametrize("layout", ["official", "sequential-head", "bare"])
def test_export_reads_back_as_the_source(tmp_path, layout):
    out = tmp_path / f"{layout}.pth"
    assert export_file(TINY_GOLDEN, out, layout).ok
    src, back = load_checkpoint(TINY_GOLDEN), load_checkpoint(out)
    assert back.spec == src.spec and back.problems == []
    assert_same_tensors(src.state_dict, back.state_dict, layout)
    assert back.dialect.head_layout == ("sequential" if layout == "sequential-head" else "named")
    if layout != "bare":
        assert read_back(out)["epoch"] == 83


def test_converted_file_exports_back_to_the_official_bytes_of_its_tensors(tiny_safetensors, tmp_path):
    """safetensors -> official: the epoch comes from the metadata, the tensors are the golden ones."""
    out = tmp_path / "official.pth.tar"
    assert export_file(tiny_safetensors, out, "official").ok
    obj, golden = read_back(out), read_back(TINY_GOLDEN)
    assert obj["epoch"] == golden["epoch"] == 83
    assert_same_tensors(golden["network"], obj["network"], "official export vs golden network")


def test_zip_root_is_archive_and_export_is_deterministic(tmp_path):
    a, b = tmp_path / "a.pth", tmp_path / "b.tar"
    export_file(TINY_GOLDEN, a, "official")
    export_file(TINY_GOLDEN, b, "official")
    assert a.read_bytes() == b.read_bytes()
    names = zipfile.ZipFile(io.BytesIO(a.read_bytes())).namelist()
    assert all(n.startswith("archive/") for n in names), names[:3]


def test_non_variant_head_upsample_note_names_the_flag(tmp_path, capsys):
    src = write_source(tmp_path / "src.pth", SMALL_3UP)
    out = tmp_path / "o.pth"
    assert main(["export", str(src), str(out), "--head-upsample", "up,up,up"]) == 0
    assert "--head-upsample up,up,up" in capsys.readouterr().out
    assert load_checkpoint(out, head_upsample=(True, True, True)).spec == SMALL_3UP


def test_epoch_override_and_default(tmp_path):
    src = write_source(tmp_path / "src.pth", wrapper=None)  # bare source: no epoch known
    assert export_file(src, tmp_path / "a.pth", "official").ok
    assert read_back(tmp_path / "a.pth")["epoch"] == 0
    assert export_file(src, tmp_path / "b.pth", "official", epoch=12).ok
    assert read_back(tmp_path / "b.pth")["epoch"] == 12


def test_problems_refuse_export_and_existing_output_is_kept(tmp_path, capsys):
    def nan(sd):
        sd["backbone.stages.0.0.dwconv.weight"][0] = float("inf")

    bad = write_source(tmp_path / "bad.pth", tweak=nan)
    assert main(["export", str(bad), str(tmp_path / "o.pth")]) == 1
    assert "nonfinite" in capsys.readouterr().err and not (tmp_path / "o.pth").exists()
    keep = tmp_path / "keep.pth"
    keep.write_bytes(b"old")
    assert main(["export", str(TINY_GOLDEN), str(keep), "--layout", "bare"]) == 2
    assert keep.read_bytes() == b"old"
    assert main(["export", str(TINY_GOLDEN), str(keep), "--layout", "bare", "--force"]) == 0


def test_refused_input_exit_2_nothing_written(tmp_path, capsys):
    bad = tmp_path / "x.pth"
    bad.write_bytes(TINY_GOLDEN.read_bytes()[:4096])
    assert main(["export", str(bad), str(tmp_path / "o.pth")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o.pth").exists() and temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("had_old", [False, True])
def test_interrupted_export_leaves_no_output(tmp_path, monkeypatch, had_old):
    out = tmp_path / "o.pth"
    if had_old:
        out.write_bytes(b"old")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod, "_verify_export", boom)
    with pytest.raises(KeyboardInterrupt):
        export_file(TINY_GOLDEN, out, "official", force=True)
    assert (out.read_bytes() == b"old") if had_old else not out.exists()
    assert temp_leftovers(tmp_path) == []


def test_batch_export_keeps_names_and_exits_with_worst(tmp_path, capsys):
    good = write_source(tmp_path / "good.pth.tar")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nonsense")
    rc = main(["export", str(good), str(bad), "--out-dir", str(tmp_path / "o"), "--layout", "sequential-head"])
    assert rc == 2
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.pth.tar"]
    assert "exported" in capsys.readouterr().out


def test_export_of_views_does_not_carry_the_rest_of_their_storage(tmp_path):
    """A tensor viewing a big shared storage must be exported alone, not with the whole storage."""
    sd = random_state_dict(SMALL, seed=6)
    payload = sum(t.numel() * t.element_size() for t in sd.values())
    big = torch.zeros(10 * payload // 4)
    at, net = 0, {}
    for k, v in sd.items():
        if v.dtype == torch.float32:
            net["module." + k] = big[at:at + v.numel()].view(v.shape).copy_(v)
            at += v.numel()
        else:
            net["module." + k] = v
    src = tmp_path / "src.pth"
    torch.save({"epoch": 1, "network": net}, src)
    out = tmp_path / "o.pth"
    assert export_file(src, out, "official").ok
    assert out.stat().st_size < 1.2 * payload + 100_000, f"{out.stat().st_size} bytes for {payload} of tensors"
    assert src.stat().st_size > 5 * payload, "precondition: the source carries the whole storage"
    assert_same_tensors({"module." + k: v for k, v in sd.items()}, read_back(out)["network"], "views export")
