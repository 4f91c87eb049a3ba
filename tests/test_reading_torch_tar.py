"""The pre-1.0 torch tar format (container `torch-tar`): read bit for bit, hostile variants refused.

Torch no longer writes this format, so `writing.torch_tar_members` lays it out from torch's reader
(`legacy_load` in `torch.serialization._legacy_load`). The independent reference that the writer is
right is torch itself: `torch.load(path, weights_only=False)` still reads the format. It runs ONLY
in `reference_load` below, ONLY on files these tests just wrote from trusted tensors (never on a
hostile file): that is the one place in the project where `weights_only=False` is acceptable.
"""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from ckpt_helpers import DIALECTS, SMALL_SPEC, assert_same_tensors
from hostile_corpus import (
    ExecutionMonitor,
    assert_same,
    payloads,
    refusal_mistakes,
    small_state,
    tar_bytes,
    torch_tar_cases,
    torch_tar_with,
    truncations,
)

from pytest_convnextpose import load_checkpoint
from pytest_convnextpose.checkpoint.dialects import from_canonical
from pytest_convnextpose.cli.main import main
from pytest_convnextpose.errors import CheckpointError, UnsafeContentError
from pytest_convnextpose.reading import read_file
from pytest_convnextpose.testing.synthetic import random_state_dict
from pytest_convnextpose.testing.writers import torch_tar_bytes, torch_tar_members, write_container


def reference_load(path: Path) -> Any:
    """torch's own reader of the format, on a file the calling test wrote from trusted tensors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tarfile/torch deprecation notices
        return torch.load(path, weights_only=False, map_location="cpu")


@pytest.fixture(scope="module")
def canon() -> dict[str, torch.Tensor]:
    return random_state_dict(SMALL_SPEC, seed=21)


def _objects(canon: dict) -> dict[str, Any]:
    module = from_canonical(canon, DIALECTS["module"])
    return {
        "canonical": dict(canon),
        "module": module,
        "wrapper": {"epoch": 83, "network": module},
        "snapshot": small_state(),
    }


@pytest.mark.parametrize("layout", ["canonical", "module", "wrapper", "snapshot"])
@pytest.mark.parametrize("location", ["cpu", "cuda:0"])
def test_round_trip_is_bit_equal_and_torch_reads_the_same(
    layout: str, location: str, canon: dict, tmp_path: Path
) -> None:
    obj = _objects(canon)[layout]
    path = write_container(obj, tmp_path / "old.pth", "torch-tar", location=location)
    assert_same(obj, reference_load(path), f"torch.load of our {layout} writer output")
    raw = read_file(path)
    assert raw.container == "torch-tar", f"container {raw.container}, expected torch-tar"
    assert_same(obj, raw.obj, layout)
    if layout == "snapshot":
        assert raw.obj["network"]._metadata == obj["network"]._metadata, "state dict _metadata lost"


@pytest.mark.parametrize("storage_views", [False, True])
def test_views_and_storage_views_read_as_torch_reads_them(storage_views: bool, tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    obj = {"base": base, "col": base[:, 1], "t": base.t(), "tail": torch.arange(7)[3:], "empty": torch.zeros(0)}
    path = tmp_path / "views.pth"
    path.write_bytes(torch_tar_bytes(obj, storage_views=storage_views))
    assert_same(obj, reference_load(path), "torch.load")
    got = read_file(path).obj
    assert_same(obj, got, "read_file")
    got["base"][0, 1] = -1.0
    assert got["col"][0] == -1.0, "views of one storage no longer share it"


def test_padding_after_ndim_is_ignored_as_torch_ignores_it(tmp_path: Path) -> None:
    """Old writers stored the int ndim with sizeof(long): the 4 bytes after it are struct padding."""
    obj = {"w": torch.arange(6.0).reshape(2, 3)}
    members = dict(torch_tar_members(obj))
    tensors = bytearray(members["tensors"])
    pos = tensors.index(struct.pack("<ii", 2, 0), 2)
    tensors[pos + 4 : pos + 8] = b"\xde\xad\xbe\xef"
    path = tmp_path / "padding.pth"
    path.write_bytes(tar_bytes(torch_tar_with_members(members, tensors=bytes(tensors))))
    assert_same(obj, reference_load(path), "torch.load")
    assert_same(obj, read_file(path).obj, "read_file")


def test_member_order_does_not_matter(tmp_path: Path) -> None:
    obj = {"w": torch.ones(3), "n": torch.tensor(5)}
    path = tmp_path / "reordered.pth"
    path.write_bytes(tar_bytes(list(reversed(torch_tar_members(obj)))))
    assert_same(obj, reference_load(path), "torch.load")
    assert_same(obj, read_file(path).obj, "read_file")


def test_inspect_reports_torch_tar_and_the_spec(canon: dict, tmp_path: Path, capsys) -> None:
    path = write_container(
        {"epoch": 83, "network": from_canonical(canon, DIALECTS["module"])},
        tmp_path / "snapshot_83.pth.tar",
        "torch-tar",
        location="cuda:0",
    )
    code = main(["inspect", str(path), "--json"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 0, f"exit {code}, stderr {err!r}, problems {report.get('problems')}"
    assert report["container"] == "torch-tar", report["container"]
    assert report["wrapper"] == "network" and report["dialect"] == DIALECTS["module"].to_dict()
    assert report["spec"] == json.loads(SMALL_SPEC.to_json()) and report["problems"] == []


def test_load_checkpoint_gives_the_spec_and_canonical_tensors(canon: dict, tmp_path: Path) -> None:
    path = write_container(
        {"epoch": 1, "network": from_canonical(canon, DIALECTS["module"])}, tmp_path / "ckpt.pth", "torch-tar"
    )
    ckpt = load_checkpoint(path)
    assert (ckpt.container, ckpt.wrapper, ckpt.spec) == ("torch-tar", "network", SMALL_SPEC)
    assert_same_tensors(canon, ckpt.state_dict, "canonical tensors vs those written")


# Every truncation of a whole legit torch-tar file: test_reading_containers (torch-tar is in LEGIT_CONTAINERS).


@pytest.mark.parametrize("member", ["sys_info", "pickle", "tensors", "storages"])
def test_every_truncated_member_in_a_sound_tar_is_refused(member: str, tmp_path: Path) -> None:
    members = dict(torch_tar_members(small_state()))
    work = tmp_path / "cut.pth"
    for cut in truncations(members[member]):
        work.write_bytes(tar_bytes(torch_tar_with_members(members, **{member: members[member][:cut]})))
        with pytest.raises(CheckpointError) as info:
            read_file(work)
        assert "\n" not in str(info.value), f"{member} cut at {cut}: multi-line message"


def test_hostile_variants_are_refused_with_their_family_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER_payload_ran"
    cases = [
        (f"{name}-in-pickle", tmp_path / f"p-{i}.pth", UnsafeContentError, torch_tar_with(pickle=payload))
        for i, (name, payload) in enumerate(payloads(marker).items())
    ]
    for _name, path, _, members in cases:
        path.write_bytes(tar_bytes(members))
    listed = [(c.name, c.path, c.family) for c in torch_tar_cases(tmp_path / "corpus", marker)]
    assert len(listed) >= 50, f"only {len(listed)} torch-tar corpus cases"
    wrong = refusal_mistakes([(n, p, f) for n, p, f, _ in cases] + listed)
    assert not marker.exists(), "a payload ran: the marker file was created"
    assert not ExecutionMonitor.get().events, (
        f"code-execution audit events while reading: {ExecutionMonitor.get().events}"
    )
    assert not wrong, "\n".join(wrong)


def test_same_members_in_a_folder_are_not_read_as_this_format(tmp_path: Path) -> None:
    folder = tmp_path / "unpacked"
    folder.mkdir()
    for name, data in torch_tar_members({"w": torch.ones(2)}):
        (folder / name).write_bytes(data)
    with pytest.raises(CheckpointError, match="pre-1.0 torch tar members"):
        read_file(folder)


def torch_tar_with_members(members: dict[str, bytes], **replaced: bytes) -> list[tuple[str, bytes]]:
    return [(name, replaced.get(name, data)) for name, data in members.items()]


def test_legacy_stream_storage_view_reads_its_own_elements(tmp_path: Path) -> None:
    """The view fix shared with this format (`tensors.view_of`): a tensor on a storage view that starts
    at element 2 of [0, 1, 2, 3] holds [2, 3] (arithmetic), as torch.load reads our hand-made stream."""
    from hostile_corpus import legacy_stream

    def text(value: str) -> bytes:  # BINUNICODE, as torch writes strings (and weights_only reads them)
        return b"X" + struct.pack("<I", len(value)) + value.encode()

    pid = (
        b"("
        + text("storage")
        + b"ctorch\nFloatStorage\n"
        + text("0")
        + text("cpu")
        + b"K\x04("
        + text("1")
        + b"K\x02K\x02ttQ"
    )
    body = (
        b"\x80\x02}(" + text("x") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"K\x00K\x02\x85K\x01\x85\x89"
        b"ccollections\nOrderedDict\n)RtRu."
    )
    path = tmp_path / "view.legacy"
    path.write_bytes(legacy_stream(body, keys=["0"], tail=struct.pack("<q4f", 4, 0.0, 1.0, 2.0, 3.0)))
    want = torch.tensor([2.0, 3.0])
    assert torch.equal(reference_load(path)["x"], want), "torch.load disagrees with the hand-made stream"
    got = read_file(path).obj["x"]
    assert torch.equal(got, want), f"read {got.tolist()}, expected [2.0, 3.0]"
