"""Issue 12 item 7: archives that wrap a checkpoint (a Drive folder download, a Kaggle zip, a tar.gz,
a .gz), used from a user's folder: `convnextpose inspect` and `convert` in a subprocess, the plugin
through pytester. Expected values come from the bytes the test put in the archive (their sha256)
and from torch.load(weights_only=True) on the checkpoint file the test itself wrote.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from ckpt_helpers import SMALL_SPEC, assert_same_tensors

from pytest_convnextpose.testing.synthetic import random_state_dict

pytest_plugins = ["pytester"]

DRIVE_ZIP = "ConvNeXtPose-20230423T040706Z-001.zip"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One torch-zip and one legacy checkpoint of the small spec, as bytes, and their state dict."""
    tmp = tmp_path_factory.mktemp("inner")
    state = random_state_dict(SMALL_SPEC)
    torch.save({"network": state, "epoch": 7}, tmp / "z.pth")
    torch.save({"network": state}, tmp / "l.pth.tar", _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(tmp / "z.pth") as zf:  # the file the test wrote, unpacked as people unpack it
        unpacked = [(i.filename, zf.read(i)) for i in zf.infolist()]
    oracle = torch.load(tmp / "z.pth", weights_only=True)["network"]
    assert_same_tensors(state, oracle, "torch.load of the test's own file")
    return {"zip": (tmp / "z.pth").read_bytes(), "legacy": (tmp / "l.pth.tar").read_bytes(), "state": oracle,
            "unpacked": unpacked}


def zip_of(path: Path, records: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in records:
            zf.writestr(name, data)
    return path


def tar_gz_of(path: Path, records: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in records:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_convnextpose", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_line_refusal(proc: subprocess.CompletedProcess, *parts: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


# ------------------------------------------------------------------------ one checkpoint: read through
@pytest.mark.parametrize("layout", ["drive-zip-of-torch-zip", "zip-of-legacy", "zip-of-folder", "tar.gz", "gz",
                                    "zip-with-readme", "zip-of-safetensors"])
def test_archive_of_one_checkpoint_is_read_through_naming_the_member(tmp_path: Path, files: dict, layout: str) -> None:
    from safetensors.torch import save as st_save
    st = st_save({k: v.contiguous() for k, v in files["state"].items()})
    folder = [(f"ConvNeXtPose/{n}", d) for n, d in files["unpacked"]]
    root = files["unpacked"][0][0].split("/")[0]
    member, data, archive = {
        "drive-zip-of-torch-zip": ("ConvNeXtPose/model.pth", files["zip"], DRIVE_ZIP),
        "zip-of-legacy": ("ConvNeXtPose/snapshot_68.pth.tar", files["legacy"], "kaggle.zip"),
        "zip-of-folder": (f"ConvNeXtPose/{root}", None, DRIVE_ZIP),
        "tar.gz": ("weights/model.pth", files["zip"], "weights.tar.gz"),
        "gz": ("model.pth", files["zip"], "model.pth.gz"),
        "zip-with-readme": ("d/model.pth", files["zip"], "with-readme.zip"),
        "zip-of-safetensors": ("d/model.safetensors", st, "st.zip"),
    }[layout]
    path = tmp_path / archive
    if layout == "zip-of-folder":
        zip_of(path, folder)
    elif layout == "tar.gz":
        tar_gz_of(path, [(member, data)])
    elif layout == "gz":
        path.write_bytes(gzip.compress(data))
    elif layout == "zip-with-readme":
        zip_of(path, [("d/README.txt", b"ConvNeXtPose weights\n"), (member, data), ("d/config.json", b"{}")])
    else:
        zip_of(path, [(member, data)])

    proc = cli(tmp_path, "inspect", "--json", archive)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["path"] == f"{archive}::{member}"
    assert obj["metadata"]["archive"]["member"] == member
    assert obj["metadata"]["archive"]["sha256"] == sha(path.read_bytes())
    if data is not None:  # the member's digest is that of the bytes the test put in
        assert obj["sha256"] == sha(data)
    text = cli(tmp_path, "inspect", archive)
    assert text.returncode == 0 and f"member {member}" in text.stdout, text.stdout

    from pytest_convnextpose.checkpoint.load import load_checkpoint
    ckpt = load_checkpoint(path)
    assert_same_tensors(files["state"], ckpt.state_dict, layout)
    named = load_checkpoint(f"{path}::{member}")  # the explicit form reads the same member
    assert named.sha256 == ckpt.sha256 and named.path == ckpt.path


def test_name_check_reads_the_member_name_then_the_name_of_an_archive_of_one(tmp_path: Path, files: dict) -> None:
    zip_of(tmp_path / DRIVE_ZIP, [("ConvNeXtPose/ConvNeXtPose_L.pth", files["zip"])])
    zip_of(tmp_path / "ConvNeXtPose_L.zip", [("weights/model.pth", files["zip"])])
    claimed = json.loads(cli(tmp_path, "inspect", "--json", DRIVE_ZIP).stdout)
    names = [p for p in claimed["problems"] if p["kind"] == "name"]
    assert [p["key"] for p in names] == ["ConvNeXtPose_L.pth"], claimed["problems"]  # small tensors, not L
    # an archive read through as its one checkpoint claims what its own name says, when the member's path
    # claims nothing (a Kaggle `convnextpose-l.zip`); the Drive download's name above claims nothing
    whole = json.loads(cli(tmp_path, "inspect", "--json", "ConvNeXtPose_L.zip").stdout)
    names = [p for p in whole["problems"] if p["kind"] == "name"]
    assert [p["key"] for p in names] == ["ConvNeXtPose_L.zip"], whole["problems"]
    assert names[0]["detail"].startswith("archive name says L; tensors are no published variant"), names
    # a member picked by name is judged by its own path: the archive may hold every variant
    picked = json.loads(cli(tmp_path, "inspect", "--json", "ConvNeXtPose_L.zip::weights/model.pth").stdout)
    assert not [p for p in picked["problems"] if p["kind"] == "name"], picked["problems"]


# ------------------------------------------------------------------------ several: list, ARCHIVE::MEMBER
def test_archive_of_several_lists_them_and_reads_the_member_named(tmp_path: Path, files: dict) -> None:
    zip_of(tmp_path / "two.zip", [("a/one.pth", files["zip"]), ("a/two.pth.tar", files["legacy"]),
                                  ("a/README.md", b"two checkpoints\n")])
    proc = cli(tmp_path, "inspect", "two.zip")
    one_line_refusal(proc, "two.zip", "2 checkpoints", "a/one.pth", "a/two.pth.tar", "two.zip::a/one.pth")
    obj = json.loads(cli(tmp_path, "inspect", "--json", "two.zip").stdout)
    assert obj["error"]["members"] == ["a/one.pth", "a/two.pth.tar"]
    for member, data in (("a/one.pth", files["zip"]), ("a/two.pth.tar", files["legacy"])):
        got = json.loads(cli(tmp_path, "inspect", "--json", f"two.zip::{member}").stdout)
        assert got["sha256"] == sha(data) and got["metadata"]["archive"]["member"] == member
    wrong = cli(tmp_path, "inspect", "two.zip::a/three.pth")
    one_line_refusal(wrong, "two.zip::a/three.pth", "no member named 'a/three.pth'", "a/one.pth, a/two.pth.tar")


def test_convert_member_records_archive_and_member_digests(tmp_path: Path, files: dict) -> None:
    zip_of(tmp_path / "two.zip", [("a/one.pth", files["zip"]), ("a/two.pth.tar", files["legacy"])])
    proc = cli(tmp_path, "convert", "two.zip::a/two.pth.tar", "out.safetensors")
    assert proc.returncode == 0, proc.stderr
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(tmp_path / "out.safetensors", "pt") as fh:
        meta = fh.metadata()
    assert meta["convnextpose.source_sha256"] == sha(files["legacy"])
    archive = json.loads(meta["convnextpose.source_archive"])
    assert archive == {"format": "zip", "member": "a/two.pth.tar", "sha256": sha((tmp_path / "two.zip").read_bytes()),
                       "size": (tmp_path / "two.zip").stat().st_size}
    assert_same_tensors(files["state"], load_file(tmp_path / "out.safetensors"), "converted member")
    over = cli(tmp_path, "convert", "two.zip::a/one.pth", "two.zip", "--force")  # the archive is the source
    one_line_refusal(over, "overwrite the input")


# ------------------------------------------------------------------------ refused, one line naming the archive
def test_nested_archive_is_refused_clearly(tmp_path: Path, files: dict) -> None:
    inner = zip_of(tmp_path / "inner.zip", [("m.pth", files["zip"])]).read_bytes()
    zip_of(tmp_path / "outer.zip", [("ConvNeXtPose/inner.zip", inner)])
    one_line_refusal(cli(tmp_path, "inspect", "outer.zip"), "outer.zip", "archives inside archives")
    one_line_refusal(cli(tmp_path, "inspect", "outer.zip::ConvNeXtPose/inner.zip"),
                     "outer.zip::ConvNeXtPose/inner.zip", "archives inside archives")


@pytest.mark.parametrize("kind", ["gz", "tar.gz", "zip"])
def test_decompression_bomb_inside_a_wrapper_stops_at_the_budget(tmp_path: Path, kind: str) -> None:
    """64 MiB of zeros compress to ~64 KiB: past the budget of 2 x 64 KiB + 48 MiB (SECURITY.md)."""
    zeros = bytes(64 << 20)
    name = {"gz": "bomb.pth.gz", "tar.gz": "bomb.tar.gz", "zip": "bomb.zip"}[kind]
    if kind == "gz":
        (tmp_path / name).write_bytes(gzip.compress(zeros))
    elif kind == "tar.gz":
        tar_gz_of(tmp_path / name, [("m.pth", zeros)])
    else:
        zip_of(tmp_path / name, [("m.pth", zeros)])
    one_line_refusal(cli(tmp_path, "inspect", name), name, "MiB of memory")


@pytest.mark.parametrize("damage", ["second-member", "trailing-zeros", "reserved-flag"])
def test_gzip_that_readers_read_differently_is_refused(tmp_path: Path, files: dict, damage: str) -> None:
    gz = gzip.compress(files["zip"])
    data = {"second-member": gz + gzip.compress(files["legacy"]), "trailing-zeros": gz + bytes(512),
            "reserved-flag": gz[:3] + bytes([gz[3] | 0x20]) + gz[4:]}[damage]
    (tmp_path / "m.pth.gz").write_bytes(data)
    one_line_refusal(cli(tmp_path, "inspect", "m.pth.gz"), "m.pth.gz")


def test_wrapper_with_case_twins_is_refused(tmp_path: Path, files: dict) -> None:
    zip_of(tmp_path / "twins.zip", [("d/Model.pth", files["zip"]), ("d/model.pth", files["legacy"])])
    one_line_refusal(cli(tmp_path, "inspect", "twins.zip"), "twins.zip")


# ------------------------------------------------------------------------ the pytest plugin
def test_plugin_accepts_archive_member_and_names_the_member(pytester: pytest.Pytester, files: dict) -> None:
    zip_of(pytester.path / "two.zip", [("a/one.pth", files["zip"]), ("a/two.pth.tar", files["legacy"])])
    archive = pytester.path / "two.zip"
    result = pytester.runpytest("--ckpt=two.zip::a/two.pth.tar", "-p", "no:cacheprovider", "-k", "load", "-v",
                                "--conformance-report=r.json")
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert f"two.pth.tar-{sha(files['legacy'])[:8]}" in out, out[-3000:]  # the id and verdict name the member
    (entry,) = json.loads((pytester.path / "r.json").read_text())["checkpoints"]
    assert entry["sha256"] == sha(files["legacy"]), entry  # the member's bytes
    want = {"member": "a/two.pth.tar", "format": "zip", "sha256": sha(archive.read_bytes()),
            "size": archive.stat().st_size}
    assert {k: entry["archive"][k] for k in want} == want, entry["archive"]


@pytest.mark.parametrize("arg, words", [
    ("two.zip::a/three.pth", ("two.zip::a/three.pth", "no member named", "a/one.pth, a/two.pth.tar")),
    ("two.zip", ("two.zip", "2 checkpoints", "a/one.pth, a/two.pth.tar")),
    ("missing.zip::a/one.pth", ("missing.zip::a/one.pth", "no archive 'missing.zip'")),
])
def test_plugin_wrong_member_or_archive_is_one_usage_error(pytester: pytest.Pytester, files: dict, arg: str,
                                                           words: tuple[str, ...]) -> None:
    zip_of(pytester.path / "two.zip", [("a/one.pth", files["zip"]), ("a/two.pth.tar", files["legacy"])])
    result = pytester.runpytest(f"--ckpt={arg}", "-p", "no:cacheprovider")
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert result.ret == pytest.ExitCode.USAGE_ERROR, (result.ret, result.stdout.str()[-2000:])
    assert len(errors) == 1, result.stderr.str()
    for word in words:
        assert word in errors[0], (word, errors[0])


def test_plugin_dedupes_an_archive_and_its_member(pytester: pytest.Pytester, files: dict) -> None:
    zip_of(pytester.path / DRIVE_ZIP, [("ConvNeXtPose/model.pth", files["zip"])])
    result = pytester.runpytest(f"--ckpt={DRIVE_ZIP}", f"--ckpt={DRIVE_ZIP}::ConvNeXtPose/model.pth",
                                "-p", "no:cacheprovider", "-k", "load", "--collect-only", "-q")
    ids = {line.split("[", 1)[1] for line in result.stdout.lines if "[" in line and "load" in line}
    assert ids == {f"model.pth-{sha(files['zip'])[:8]}]"}, result.stdout.str()[-2000:]
