"""Every container we write reads back to the same object, bit for bit; other formats are named.

Files are written by `writing.write_container`, which uses torch.save / pickle / tarfile /
safetensors (not our reader), so a round trip compares two independent implementations.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import onnx  # [test] extra: the ONNX-file test must fail, never skip, without it
import pytest
import torch
from hostile_corpus import LEGIT_CONTAINERS, assert_same, legit_files, truncations
from onnx import TensorProto, helper

from pytest_convnextpose.errors import (
    CheckpointError,
    CorruptFileError,
    UnknownFormatError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from pytest_convnextpose.reading import read_file
from pytest_convnextpose.testing.writers import write_container


@pytest.fixture(scope="module")
def legit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("legit")
    files = legit_files(tmp)
    files.update({f"{k}@cuda": v for k, v in legit_files(tmp, location="cuda:0").items()})
    return files


@pytest.mark.parametrize("container", LEGIT_CONTAINERS)
@pytest.mark.parametrize("location", ["cpu", "cuda"])
def test_round_trip_is_identity(legit: dict, container: str, location: str) -> None:
    path, obj = legit[container if location == "cpu" else f"{container}@cuda"]
    raw = read_file(path)
    assert raw.container == container, f"{path.name}: container {raw.container}, expected {container}"
    if container == "safetensors":
        assert set(raw.obj) == set(obj)
        for key in obj:
            assert_same(obj[key], raw.obj[key], key)
    else:
        assert_same(obj, raw.obj)
        assert raw.obj["network"]._metadata == obj["network"]._metadata


def test_cuda_tags_are_really_written_and_mapped_to_cpu(legit: dict) -> None:
    path, _ = legit["torch-zip@cuda"]
    assert b"cuda:0" in path.read_bytes(), "writer did not tag storages cuda:0"
    raw = read_file(path, map_location={"cuda:0": "cpu"})
    assert {t.device.type for t in raw.obj["network"].values()} == {"cpu"}


def test_views_keep_sharing_their_storage(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    obj = {"base": base, "col": base[:, 1], "t": base.t()}
    for container in ("torch-zip", "torch-legacy"):  # pickle.dumps itself copies each view's storage
        path = write_container(obj, tmp_path / container, container)
        got = read_file(path).obj
        assert_same(obj, got, container)
        got["base"][0, 1] = -1.0
        assert got["col"][0] == -1.0, f"{container}: views no longer share their storage"


def test_any_root_name_and_nested_folder_read(tmp_path: Path) -> None:
    obj = {"network": {"w": torch.ones(2)}}
    for root in ("archive", "snapshot_83.pth", "weird name"):
        raw = read_file(write_container(obj, tmp_path / f"{root}.tar", "torch-zip", root_name=root))
        assert raw.root == root, f"root {raw.root!r}, expected {root!r}"
    folder = write_container(obj, tmp_path / "outer", "directory", root_name="inner")
    assert read_file(folder).root == "inner"
    assert_same(obj, read_file(folder).obj)


def test_safetensors_metadata_is_returned(tmp_path: Path) -> None:
    path = write_container({"w": torch.ones(2)}, tmp_path / "m.safetensors", "safetensors",
                           metadata={"spec": "{}", "source": "x"})
    assert read_file(path).metadata == {"spec": "{}", "source": "x"}


def test_plain_pickle_protocols_2_to_5_read(tmp_path: Path) -> None:
    import pickle
    obj = {"network": {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor(3)}, "epoch": 1}
    for proto in (2, 3, 4, 5):
        path = tmp_path / f"p{proto}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        raw = read_file(path)
        assert raw.container == "pickle"
        assert_same(obj, raw.obj, f"protocol {proto}")


@pytest.mark.parametrize("container", LEGIT_CONTAINERS)
def test_every_truncation_of_a_legit_file_is_a_one_line_refusal(legit: dict, container: str,
                                                                tmp_path: Path) -> None:
    path, _ = legit[container]
    if path.is_dir():
        data_pkl = next(path.rglob("data.pkl"))
        files = [data_pkl, next(p for p in path.rglob("*") if p.parent.name == "data")]
    else:
        files = [path]
    for victim in files:
        data = victim.read_bytes()
        # A tar cut inside its trailing zero padding (after the end marker) is still complete.
        end = len(data.rstrip(b"\x00")) + 512 if container in ("tar-directory", "torch-tar") else len(data)
        for cut in [c for c in truncations(data) if c < end]:
            work = tmp_path / "work"
            shutil.rmtree(work, ignore_errors=True)
            if path.is_dir():
                shutil.copytree(path, work)
                (work / victim.relative_to(path)).write_bytes(data[:cut])
            else:
                work.write_bytes(data[:cut])
            with pytest.raises(CheckpointError) as info:
                read_file(work)
            message = str(info.value)
            assert "\n" not in message, f"{container} cut at {cut}: multi-line message {message!r}"
            assert str(work) in message, f"{container} cut at {cut}: message does not name {work}: {message!r}"


@pytest.mark.parametrize("name,data,family,words", [
    ("empty.pth", b"", UnreadableFileError, "empty"),
    ("page.tar", b"<!DOCTYPE html><html><head><title>Sign in</title>", UnsupportedFormatError, "HTML"),
    ("page2.pth", b"\n  <html lang='en'><body>404</body></html>", UnsupportedFormatError, "download"),
    ("model.tflite", b"\x1c\x00\x00\x00TFL3\x00\x00\x0e\x00" + bytes(64), UnsupportedFormatError, "TensorFlow Lite"),
    ("lfs.pth", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 97000000\n",
     UnsupportedFormatError, "LFS"),
    # a gzip is read (it may wrap a checkpoint, test_reading_wrapped.py); garbage inside is named
    ("x.pth.gz", b"\x1f\x8b\x08\x00" + bytes(40), CorruptFileError, "gzip"),
    ("random.pth", bytes(range(7, 250)) * 3, UnknownFormatError, "unrecognised"),
])
def test_foreign_formats_are_named(tmp_path: Path, name: str, data: bytes, family: type, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(family) as info:
        read_file(path)
    assert words in str(info.value) and str(path) in str(info.value), str(info.value)


def test_onnx_export_is_named(tmp_path: Path) -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "model.pth"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedFormatError, match="ONNX"):
        read_file(path)


def test_torchscript_archive_reads_as_its_module_state(tmp_path: Path) -> None:
    """More in test_reading_torchscript.py; here only that the container is recognised."""
    path = tmp_path / "scripted.pth.tar"
    linear = torch.nn.Linear(2, 2)
    with pytest.warns(DeprecationWarning):
        torch.jit.save(torch.jit.script(linear), str(path))
    raw = read_file(path)
    assert raw.container == "torchscript", raw.container
    assert_same(dict(linear.state_dict()), raw.obj, "scripted Linear")


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError):
        read_file(tmp_path / "nope.pth")


def test_big_endian_zip_records_are_byteswapped(tmp_path: Path) -> None:
    from hostile_corpus import archive_records, zip_bytes
    obj = {"w": torch.tensor([1.5, -2.0]), "n": torch.tensor([7], dtype=torch.int64)}
    recs = []
    for name, data in archive_records(obj):
        if name.endswith("byteorder"):
            data = b"big"
        elif "/data/" in name:
            size = 4 if len(data) == 8 and name.endswith("/0") else 8
            data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
        recs.append((name, data))
    path = tmp_path / "be.pt"
    path.write_bytes(zip_bytes(recs))
    assert_same(obj, read_file(path).obj)


def test_bool_storage_with_other_bytes_is_corrupt(tmp_path: Path) -> None:
    from hostile_corpus import archive_records, zip_bytes
    recs = [(n, b"\x02" if "/data/" in n else d) for n, d in archive_records({"b": torch.tensor([True])})]
    path = tmp_path / "b.pt"
    path.write_bytes(zip_bytes(recs))
    with pytest.raises(CorruptFileError):
        read_file(path)
