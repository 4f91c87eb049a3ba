"""A TorchScript archive is read as data: its code and constants never run, stand-ins stay inert.

The hostile stand-in pickles themselves are part of the shared corpus (`hostile_corpus.py`,
`*@torchscript` cases, checked by test_security_corpus.py); here: the records we promise never
to read, and the one-line hint for a pickled whole object.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile_corpus import (
    ExecutionMonitor,
    assert_same,
    payloads,
    small_module,
    torchscript_records,
    with_data_pkl,
    zip_bytes,
)

from pytest_convnextpose.errors import UnsafeContentError
from pytest_convnextpose.reading import read_file


def test_code_and_constants_of_a_torchscript_archive_are_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER_code_ran"
    evil_py = f"import os\nos.system('touch {marker}')\n".encode()
    evil_pkl = payloads(marker)["os.system"]
    records = []
    for name, data in torchscript_records(tmp_path):
        if name.endswith(".py"):
            data = evil_py
        elif name.endswith(("constants.pkl", ".debug_pkl")):
            data = evil_pkl
        records.append((name, data))
    assert any(n.endswith(".py") for n, _ in records), "template archive has no code/ records to poison"
    path = tmp_path / "poisoned_code.pt"
    path.write_bytes(zip_bytes(records))
    monitor = ExecutionMonitor.get()
    with monitor:
        raw = read_file(path)
    assert not marker.exists(), "code/ or constants.pkl of a TorchScript archive was executed"
    assert not monitor.events, f"code-execution audit events while reading: {monitor.events}"
    assert_same(dict(small_module().state_dict()), raw.obj, "poisoned-code archive")


@pytest.mark.parametrize("saved,cls", [
    (lambda: small_module(), "torch.nn.modules.container.Sequential"),
    (lambda: torch.nn.Conv2d(1, 1, 1), "torch.nn.modules.conv.Conv2d"),
])
def test_pickled_whole_model_gets_a_one_line_hint_with_offset(tmp_path: Path, saved, cls: str) -> None:
    path = tmp_path / "whole.pth"
    torch.save(saved(), path)
    with pytest.raises(UnsafeContentError) as info:
        read_file(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert cls in message and "torch.save(model)" in message and "state_dict()" in message, message
    assert info.value.offset is not None and "byte offset" in message, message


def test_code_running_globals_get_no_whole_object_hint(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    cmd = f"touch {marker}".encode()
    for module, name in (("os", "system"), ("subprocess", "Popen"), ("builtins", "eval"), ("posix", "system")):
        path = tmp_path / f"{module}.{name}.pkl"
        path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(V" + cmd + b"\ntR.")
        with pytest.raises(UnsafeContentError) as info:
            read_file(path)
        assert "torch.save(model)" not in str(info.value), f"{module}.{name}: misleading hint: {info.value}"
    assert not marker.exists()


def test_stand_in_pickle_without_torchscript_records_is_refused(tmp_path: Path) -> None:
    """`__torch__` classes resolve only inside a TorchScript archive: dropping code/ and
    constants.pkl turns the same data.pkl into an ordinary checkpoint, where they are refused."""
    records = [(n, d) for n, d in torchscript_records(tmp_path)
               if "/code/" not in n and not n.endswith(("constants.pkl", ".debug_pkl"))]
    path = tmp_path / "no_code.pt"
    path.write_bytes(zip_bytes(with_data_pkl(records, next(d for n, d in records if n.endswith("/data.pkl")))))
    with pytest.raises(UnsafeContentError, match="__torch__"):
        read_file(path)
