"""`convert`: verified, deterministic, atomic safetensors conversion, read back through `load_checkpoint`."""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from pathlib import Path

import pytest
import torch
from ckpt_helpers import assert_same_tensors
from safetensors import safe_open
from safetensors.torch import load_file
from test_convert_support import (
    DIALECTS,
    SMALL,
    SMALL_3UP,
    TINY_GOLDEN,
    PriorOutput,
    in_dialect,
    save_torch,
    temp_leftovers,
    wrap,
    write_source,
)

from pytest_convnextpose.checkpoint.load import load_checkpoint
from pytest_convnextpose.cli.main import main
from pytest_convnextpose.convert import to_safetensors as convert_mod
from pytest_convnextpose.convert.atomic_output import OutputExistsError
from pytest_convnextpose.convert.safetensors_writer import safetensors_bytes
from pytest_convnextpose.convert.to_safetensors import VerificationError, convert_file
from pytest_convnextpose.errors import CheckpointError
from pytest_convnextpose.testing import writers as _writing
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import ArchSpec, build_model

META_KEYS = {
    "format",
    "convnextpose.spec",
    "convnextpose.variant",
    "convnextpose.head_upsample_source",
    "convnextpose.source_sha256",
    "convnextpose.source_container",
    "convnextpose.source_dialect",
    "convnextpose.source_wrapper",
    "convnextpose.epoch",
    "convnextpose.converter_version",
    "convnextpose.verification",
}


def metadata_of(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


# --- round trips -----------------------------------------------------------------------------------------


def test_golden_metadata_records_source_and_verification(tiny_safetensors):
    md = metadata_of(tiny_safetensors)
    assert set(md) == META_KEYS, f"metadata keys differ: {sorted(set(md) ^ META_KEYS)}"
    manifest = json.loads((TINY_GOLDEN.parent / "manifest.json").read_text())["tiny"]
    assert md["format"] == "pt"
    assert md["convnextpose.source_sha256"] == manifest["checkpoint_sha256"]
    assert md["convnextpose.source_container"] == "torch-zip"
    assert md["convnextpose.source_wrapper"] == "network"
    assert json.loads(md["convnextpose.source_dialect"])["prefixes"] == ["module."]
    assert md["convnextpose.epoch"] == "83", "golden tiny file is snapshot_83 with epoch 83"
    assert md["convnextpose.variant"] == ""
    spec = json.loads(md["convnextpose.spec"])
    for field in ("depths", "dims", "head_channels", "head_upsample", "depth_dim", "joint_num"):
        assert spec[field] == manifest[field], f"spec.{field}: {spec[field]} vs manifest {manifest[field]}"
    ver = json.loads(md["convnextpose.verification"])
    assert ver["tensors_bit_equal"] is True and ver["outputs_identical"] is True
    assert ver["max_output_abs_diff"] == 0.0
    assert ver["input_shape"] == [2, 3, 128, 128] and ver["input_seed"] == 0
    assert str(tiny_safetensors.parent) not in json.dumps(md), "metadata must not contain the output path"
    assert str(TINY_GOLDEN.parent) not in json.dumps(md), "metadata must not contain the source path"


def test_output_is_canonical_contiguous_and_holds_only_the_model(tiny_safetensors):
    tensors = load_file(str(tiny_safetensors))
    want = build_model(ArchSpec.from_json(metadata_of(tiny_safetensors)["convnextpose.spec"])).state_dict()
    assert sorted(tensors) == sorted(want), "keys must be exactly the canonical model keys (no optimizer)"
    raw = torch.load(TINY_GOLDEN, weights_only=True)["network"]
    assert_same_tensors({k[len("module.") :]: v for k, v in raw.items()}, tensors, "golden network vs file")


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("wrapper", ["network", "state_dict", "model_state_dict", "model", None])
def test_every_dialect_and_wrapper_round_trips(tmp_path, dialect, wrapper):
    sd = random_state_dict(SMALL, seed=3)
    src = save_torch(wrap(in_dialect(sd, dialect), wrapper), tmp_path / "src.pth")
    spec = SMALL_3UP if dialect == "modulelist" else SMALL  # that layout's code upsamples in every layer
    out = tmp_path / "out.safetensors"
    assert convert_file(src, out).ok
    back = load_checkpoint(out)
    assert back.spec == spec, f"{dialect}/{wrapper}: spec {back.spec.summary()}"
    assert_same_tensors(sd, back.state_dict, f"{dialect}/{wrapper}")
    md = metadata_of(out)
    assert md["convnextpose.source_wrapper"] == (wrapper or "")
    assert md["convnextpose.source_container"] == "torch-zip"


@pytest.mark.parametrize("container", ["torch-legacy", "safetensors"])
def test_other_containers_round_trip(tmp_path, container):
    sd = random_state_dict(SMALL, seed=4)
    if container == "torch-legacy":
        src = save_torch({"epoch": 2, "network": in_dialect(sd, "module")}, tmp_path / "src.pth", legacy=True)
    else:
        src = tmp_path / "plain.safetensors"
        src.write_bytes(safetensors_bytes(in_dialect(sd, "module"), {"format": "pt"}))
    out = tmp_path / "out.safetensors"
    assert convert_file(src, out).ok
    back = load_checkpoint(out)
    assert back.spec == SMALL
    assert_same_tensors(sd, back.state_dict, container)
    assert metadata_of(out)["convnextpose.source_container"] == container


WRITTEN = [(c, None, "cpu") for c in _writing.CONTAINERS] + [("torch-zip", "snapshot_83.pth", "cuda:0")]


@pytest.mark.parametrize("container,root,location", WRITTEN)
def test_every_written_container_round_trips(tmp_path, container, root, location):
    """Every container the reader engineer's writer produces converts and reads back the same."""
    sd = random_state_dict(SMALL, seed=5)
    net = in_dialect(sd, "module")
    obj = net if container == "safetensors" else {"epoch": 1, "network": net}
    src = _writing.write_container(obj, tmp_path / f"src-{container}", container, root_name=root, location=location)
    out = tmp_path / "out.safetensors"
    assert convert_file(src, out).ok, container
    back = load_checkpoint(out)
    assert back.spec == SMALL, container
    assert_same_tensors(sd, back.state_dict, container)
    assert metadata_of(out)["convnextpose.source_container"] == container


# --- the spec in metadata, cross-checked by the loader -------------------------------------------------


def test_custom_head_upsample_survives_conversion(tmp_path):
    """3-UP on a non-variant shape cannot be read from weights: the metadata must carry it."""
    src = write_source(tmp_path / "src.pth", SMALL_3UP)
    assert load_checkpoint(src).spec.head_upsample == (True, True, False), "precondition: default is 2-UP"
    out = tmp_path / "out.safetensors"
    assert convert_file(src, out, head_upsample=(True, True, True)).ok
    assert metadata_of(out)["convnextpose.head_upsample_source"] == "user"
    back = load_checkpoint(out)
    assert back.spec == SMALL_3UP, f"re-read spec {back.spec.summary()}"
    assert back.problems == []


def test_metadata_contradicting_tensors_is_a_problem_not_trusted(tmp_path):
    out = tmp_path / "ok.safetensors"
    convert_file(write_source(tmp_path / "src.pth"), out)
    tensors, md = load_file(str(out)), metadata_of(out)
    lie = ArchSpec(**{**SMALL.to_dict(), "head_channels": [32, 32, 32]}).to_json()
    forged = tmp_path / "forged.safetensors"
    forged.write_bytes(safetensors_bytes(tensors, {**md, "convnextpose.spec": lie}))
    ckpt = load_checkpoint(forged)
    assert ckpt.spec == SMALL, f"loader trusted forged metadata: {ckpt.spec.summary()}"
    assert any(p.key == "convnextpose.spec" for p in ckpt.problems), f"no problem reported: {ckpt.problems}"
    rc = main(["convert", str(forged), str(tmp_path / "again.safetensors")])
    assert rc == 1 and not (tmp_path / "again.safetensors").exists()


# --- determinism -----------------------------------------------------------------------------------------


def test_same_input_gives_byte_identical_output(tiny_safetensors, tmp_path):
    """A second conversion, at another name in another folder, writes the session conversion's bytes."""
    b = tmp_path / "other-name.safetensors"
    assert convert_file(TINY_GOLDEN, b).ok
    assert tiny_safetensors.read_bytes() == b.read_bytes()


@pytest.mark.slow
def test_another_process_with_another_hash_seed_writes_the_same_bytes(tmp_path):
    """No dict/set/hash ordering leaks into the bytes (a fresh interpreter: seconds, hence slow)."""
    import os
    import subprocess
    import sys

    here = tmp_path / "here.safetensors"
    convert_file(TINY_GOLDEN, here)
    there = tmp_path / "there.safetensors"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_convnextpose.cli.main", "convert", str(TINY_GOLDEN), str(there)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert here.read_bytes() == there.read_bytes()


def test_renamed_source_gives_the_same_bytes(tmp_path):
    """The source is named by its sha256, not its path."""
    src = write_source(tmp_path / "one.pth")
    copy = tmp_path / "sub" / "two.tar"
    copy.parent.mkdir()
    copy.write_bytes(src.read_bytes())
    convert_file(src, tmp_path / "1.safetensors")
    convert_file(copy, tmp_path / "2.safetensors")
    assert (tmp_path / "1.safetensors").read_bytes() == (tmp_path / "2.safetensors").read_bytes()


# --- refusals ---------------------------------------------------------------------------------------------


def _nan(sd):
    sd["head.final_layer.weight"][0, 0, 0, 0] = float("nan")


def _neg_var(sd):
    sd["backbone.norm.running_var"][1] = -1.0


def _missing(sd):
    del sd["backbone.stages.2.0.pwconv1.bias"]


@pytest.mark.parametrize(
    "tweak,kind,key",
    [
        (_nan, "nonfinite", "head.final_layer.weight"),
        (_neg_var, "bn_variance", "backbone.norm.running_var"),
        (_missing, "missing", "backbone.stages.2.0.pwconv1.bias"),
    ],
)
def test_checkpoint_with_problems_is_listed_exit_1_nothing_written(tmp_path, capsys, tweak, kind, key):
    src = write_source(tmp_path / "bad.pth", tweak=tweak)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(out)]) == 1
    err = capsys.readouterr().err
    assert kind in err and key in err, f"expected {kind} {key} listed, got: {err}"
    assert not out.exists() and temp_leftovers(tmp_path) == []


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def _hostile(path: Path) -> None:
    torch.save({"network": {"x": torch.zeros(1)}, "payload": _Evil()}, path)


def _truncated(path: Path) -> None:
    path.write_bytes(TINY_GOLDEN.read_bytes()[:50_000])


def _pickle_bomb(path: Path) -> None:
    path.write_bytes(pickle.dumps(_Evil(), protocol=2))


def _foreign(path: Path) -> None:
    torch.save(
        {
            "network": {
                "module.backbone.conv1.weight": torch.zeros(64, 3, 7, 7),
                "module.backbone.bn1.weight": torch.zeros(64),
                "module.backbone.layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1),
            }
        },
        path,
    )


@pytest.mark.parametrize(
    "make",
    [
        _hostile,
        _truncated,
        _pickle_bomb,
        _foreign,
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(b"\x00garbage" * 100),
    ],
    ids=["hostile", "truncated", "plain-pickle-reduce", "foreign", "empty", "garbage"],
)
def test_refused_inputs_exit_2_with_one_line_and_nothing_written(tmp_path, capsys, monkeypatch, make):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.pth"
    make(src)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(src) in err, f"expected one line naming the file, got: {err!r}"
    assert not out.exists() and temp_leftovers(tmp_path) == []
    assert not (tmp_path / "PWNED").exists(), "code from the file was executed"


def test_existing_output_is_refused_without_force_and_untouched(tmp_path, capsys):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    assert main(["convert", str(TINY_GOLDEN), str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(TINY_GOLDEN), str(out), "--force"]) == 0
    assert load_checkpoint(out).ok


def test_direct_api_refuses_existing_output(tmp_path):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        convert_file(TINY_GOLDEN, out)


# --- crash safety ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["serialise", "verify", "loader-check"])
@pytest.mark.parametrize("had_old", [False, True])
def test_interrupted_conversion_leaves_no_output_and_old_file_untouched(tmp_path, monkeypatch, where, had_old):
    prior = PriorOutput.make(tmp_path / "out.safetensors", had_old, b"old bytes")

    def boom(*a, **k):
        raise KeyboardInterrupt

    target = {"serialise": "safetensors_bytes", "verify": "_check_copy", "loader-check": "_verify_through_loader"}
    if where == "verify":  # the in-memory probe uses _check_copy too: fail only on its second (on-disk) call
        real, calls = convert_mod._check_copy, []

        def boom(*a, **k):  # noqa: F811
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*a, **k)

    monkeypatch.setattr(convert_mod, target[where], boom)
    with pytest.raises(KeyboardInterrupt):
        convert_file(TINY_GOLDEN, prior.path, force=True)
    prior.assert_untouched(where)


def test_corrupted_write_is_caught_by_verification(tmp_path, monkeypatch):
    """If the bytes on disk are not what we meant (a flipped bit), the copy is discarded."""
    real = convert_mod.atomic_write_bytes

    def flip_a_bit(out, data, **kw):
        bad = bytearray(data)
        bad[-5] ^= 0x01
        return real(out, bytes(bad), **kw)

    monkeypatch.setattr(convert_mod, "atomic_write_bytes", flip_a_bit)
    out = tmp_path / "out.safetensors"
    with pytest.raises(VerificationError, match="not exact"):
        convert_file(TINY_GOLDEN, out)
    assert not out.exists() and temp_leftovers(tmp_path) == []


def test_verification_failure_is_exit_3_one_line(tmp_path, monkeypatch, capsys):
    def fail(*a, **k):
        raise VerificationError("simulated mismatch")

    monkeypatch.setattr(convert_mod, "_verify_file", fail)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(TINY_GOLDEN), str(out)]) == 3
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists() and temp_leftovers(tmp_path) == []


# --- many files ---------------------------------------------------------------------------------------------


def test_batch_converts_good_files_despite_bad_ones_and_exits_with_worst(tmp_path, capsys):
    good = write_source(tmp_path / "good.pth.tar")
    problem = write_source(tmp_path / "nan.pth", tweak=_nan)
    broken = tmp_path / "broken.pth"
    _truncated(broken)
    out_dir = tmp_path / "out"
    rc = main(["convert", str(problem), str(broken), str(good), "--out-dir", str(out_dir)])
    assert rc == 2, "worst outcome is the refused file (2)"
    assert sorted(p.name for p in out_dir.iterdir()) == ["good.safetensors"]
    assert load_checkpoint(out_dir / "good.safetensors").ok
    table = capsys.readouterr().out
    for status, name in (("converted", "good.pth.tar"), ("problems", "nan.pth"), ("refused", "broken.pth")):
        line = next((ln for ln in table.splitlines() if name in ln and ln.startswith(status)), None)
        assert line, f"summary table lacks a '{status}' row for {name}:\n{table}"


def test_batch_of_good_files_exits_0_and_problems_only_exit_1(tmp_path):
    a, b = write_source(tmp_path / "a.pth", seed=1), write_source(tmp_path / "b.pth", seed=2)
    assert main(["convert", str(a), str(b), "--out-dir", str(tmp_path / "o1"), "--no-progress"]) == 0
    bad = write_source(tmp_path / "c.pth", tweak=_neg_var)
    assert main(["convert", str(a), str(bad), "--out-dir", str(tmp_path / "o2"), "--no-progress"]) == 1


def test_batch_refuses_two_inputs_mapping_to_one_output(tmp_path):
    a = write_source(tmp_path / "x.pth", seed=1)
    (tmp_path / "d").mkdir()
    b = write_source(tmp_path / "d" / "x.pth.tar", seed=2)
    assert main(["convert", str(a), str(b), "--out-dir", str(tmp_path / "o"), "--no-progress"]) == 2
    back = load_checkpoint(tmp_path / "o" / "x.safetensors")
    assert_same_tensors(random_state_dict(SMALL, 1), back.state_dict, "first input keeps the name")


def test_single_mode_needs_exactly_in_and_out(tmp_path, capsys):
    assert main(["convert", str(TINY_GOLDEN)]) == 2
    assert "--out-dir" in capsys.readouterr().err


def test_progress_bar_goes_to_stderr_in_a_terminal(tmp_path, capsys, monkeypatch):
    a = write_source(tmp_path / "a.pth")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    main(["convert", str(a), "--out-dir", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert "1/1" in captured.err and "1/1" not in captured.out


def test_no_progress_frames_in_a_log(tmp_path, capsys):
    """stderr is not a terminal here (captured, like a CI log): no bar, so no `\r` frames."""
    a = write_source(tmp_path / "a.pth")
    assert main(["convert", str(a), "--out-dir", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "1/1" not in captured.err, captured.err


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "dir" / "x.safetensors"
    assert main(["convert", str(TINY_GOLDEN), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write output" in err, err


def _corpus_cases(corpus: tuple[list, Path], slow: bool) -> tuple[list, Path]:
    """The session's hostile corpus (conftest `corpus`), split: billion-laughs (slow) or the rest."""
    cases, marker = corpus
    assert len(cases) > 50, "corpus unexpectedly small"
    # the billion-laughs cases take seconds each in the reader; they run in the slow test
    return [c for c in cases if c.name.startswith("billion-laughs") == slow], marker


def _assert_corpus_refused(tmp_path: Path, capsys, corpus: tuple[list, Path], commands=("convert", "export")) -> None:
    cases, marker = corpus
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert cases, "no corpus cases selected"
    for case in cases:
        for cmd in commands:
            out = out_dir / ("o.safetensors" if cmd == "convert" else "o.pth")
            rc = main([cmd, str(case.path), str(out)])
            err = capsys.readouterr().err.strip()
            assert rc == 2, f"{case.name}: {cmd} exit {rc}, expected 2 (refused): {err}"
            assert len(err.splitlines()) == 1, f"{case.name}: {cmd} printed {err!r}"
            assert list(out_dir.iterdir()) == [], f"{case.name}: {cmd} wrote {list(out_dir.iterdir())}"
        assert not marker.exists(), f"{case.name}: code from the file ran"


def test_hostile_corpus_is_refused_by_convert_and_export_with_nothing_written(tmp_path, capsys, corpus):
    """The reader's hostile/corrupt corpus (tests/hostile_corpus.py): exit 2, one line, no output, no code run."""
    _assert_corpus_refused(tmp_path, capsys, _corpus_cases(corpus, slow=False))


@pytest.mark.slow
def test_billion_laughs_is_refused_by_convert_with_nothing_written(tmp_path, capsys, corpus):
    """Seconds per file in the reader, so convert only (export loads through the same path)."""
    _assert_corpus_refused(tmp_path, capsys, _corpus_cases(corpus, slow=True), commands=("convert",))


def _views_into_one_big_storage(sd):
    """Every tensor becomes a view into one flat float buffer 4x larger than the weights (like a flat optimizer)."""
    floats = {k: v for k, v in sd.items() if v.dtype == torch.float32}
    total = sum(v.numel() for v in floats.values())
    big = torch.full((4 * total,), 7.0)
    at = 0
    for k, v in floats.items():
        view = big[at : at + v.numel()].view(v.shape)
        view.copy_(v)
        sd[k] = view
        at += v.numel()
    return sd


def test_tensors_sharing_a_storage_are_written_once_each_and_nothing_else(tmp_path):
    sd = random_state_dict(SMALL, seed=6)
    src = save_torch({"network": in_dialect(_views_into_one_big_storage(dict(sd)), "module")}, tmp_path / "src.pth")
    out = tmp_path / "out.safetensors"
    assert convert_file(src, out).ok
    data = out.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    payload = sum(t.numel() * t.element_size() for t in sd.values())
    assert len(data) - header == payload, f"data section {len(data) - header} bytes, tensors hold {payload}"
    assert_same_tensors(sd, load_checkpoint(out).state_dict, "views")


def test_reconverting_a_converted_file_keeps_its_spec_and_tensors(tmp_path):
    """The 3-UP head given once by the user survives a second conversion with no flags at all."""
    first, second = tmp_path / "1.safetensors", tmp_path / "2.safetensors"
    convert_file(write_source(tmp_path / "src.pth", SMALL_3UP), first, head_upsample=(True, True, True))
    assert convert_file(first, second).ok
    md = metadata_of(second)
    assert ArchSpec.from_json(md["convnextpose.spec"]) == SMALL_3UP
    assert md["convnextpose.source_container"] == "safetensors"
    assert md["convnextpose.source_sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert md["convnextpose.epoch"] == "7", "epoch carried through the first file's metadata"
    assert_same_tensors(load_file(str(first)), load_file(str(second)), "second conversion")


def test_joints_given_at_conversion_are_not_needed_to_read_the_file_back(tmp_path):
    """96 = J x D fits no known joint count: the user says 24 once, the converted file remembers it."""
    spec = ArchSpec(**{**SMALL.to_dict(), "joint_num": 24})
    src = write_source(tmp_path / "src.pth", spec)
    with pytest.raises(CheckpointError, match="--joints"):
        load_checkpoint(src)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(out), "--joints", "24"]) == 0
    assert load_checkpoint(out).spec == spec


def test_a_converted_file_the_loader_cannot_read_back_is_not_published(tmp_path, monkeypatch, capsys):
    """If our loader refuses our own output, that is a failed verification (exit 3), and nothing is written."""
    from pytest_convnextpose.errors import ArchitectureError

    real = convert_mod.load_checkpoint

    def refuses_temp_files(path, **kw):
        if str(path).endswith(".tmp"):
            raise ArchitectureError("simulated: cannot factor joints x depth", path=str(path))
        return real(path, **kw)

    monkeypatch.setattr(convert_mod, "load_checkpoint", refuses_temp_files)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(TINY_GOLDEN), str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert "does not load back" in err and len(err.splitlines()) == 1, err
    assert not out.exists() and temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("source, want", [
    ("ConvNeXtPose_L.tar", "ConvNeXtPose_L.safetensors"),
    ("snapshot_83.pth.tar", "snapshot_83.safetensors"),
    ("one.tar.gz", "one.safetensors"),  # an archive wrapping one checkpoint
    ("xs.pth.gz", "xs.safetensors"),
    ("drive.zip::ConvNeXtPose/ConvNeXtPose_S.pth", "ConvNeXtPose_S.safetensors"),  # the member's name
    ("model.v2", "model.v2.safetensors"),  # not a checkpoint suffix: kept
])
def test_out_dir_names_drop_checkpoint_and_archive_suffixes(source, want):
    from pytest_convnextpose.cli.convert import output_name

    assert output_name(source) == want
