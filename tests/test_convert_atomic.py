"""Atomic output and the deterministic safetensors writer, without any model."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from test_convert_support import PriorOutput, metadata_dicts, temp_leftovers, tensor_dicts

from pytest_convnextpose.convert import atomic_output as atomic
from pytest_convnextpose.convert.atomic_output import OutputExistsError, atomic_write, atomic_write_bytes
from pytest_convnextpose.convert.safetensors_writer import safetensors_bytes


def test_new_file_gets_exact_bytes_and_no_temp_is_left(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert temp_leftovers(tmp_path) == [], "temporary file left behind after a successful write"


def test_existing_target_is_refused_without_force_and_kept(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="--force"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert temp_leftovers(tmp_path) == []


def test_force_replaces_existing_target(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new", force=True)
    assert target.read_bytes() == b"new"


def test_target_created_during_write_is_not_clobbered_without_force(tmp_path):
    """The existence check and the publish are separate moments; the publish itself must refuse."""
    target = tmp_path / "out.bin"

    def write(fh):
        fh.write(b"ours")
        target.write_bytes(b"someone else's")  # appears after our up-front check

    with pytest.raises(OutputExistsError):
        atomic_write(target, write)
    assert target.read_bytes() == b"someone else's"
    assert temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("stage", ["write", "verify", "publish"])
@pytest.mark.parametrize("had_old", [False, True])
def test_failure_at_any_stage_leaves_target_untouched_and_no_temp(tmp_path, monkeypatch, stage, had_old):
    prior = PriorOutput.make(tmp_path / "out.bin", had_old, b"old")
    target = prior.path

    def write(fh):
        fh.write(b"partial")
        if stage == "write":
            raise KeyboardInterrupt  # Ctrl-C half-way: BaseException must clean up too

    def verify(tmp: Path):
        assert tmp.parent == tmp_path, f"temp file must live in the target folder, got {tmp}"
        assert tmp.read_bytes() == b"partial", "verify must see the complete, flushed temp file"
        if stage == "verify":
            raise RuntimeError("verification failed")

    def broken(*a, **k):
        raise OSError("disk gone")

    if stage == "publish":
        monkeypatch.setattr(atomic.os, "replace", broken)
        monkeypatch.setattr(atomic.os, "link", broken)
    with pytest.raises((KeyboardInterrupt, RuntimeError, OSError)):
        atomic_write(target, write, force=True, verify=verify)
    prior.assert_untouched(stage)


def test_killed_process_never_leaves_a_partial_target(tmp_path):
    """SIGKILL mid-write: no cleanup code runs, yet the target keeps its old bytes (only a temp may remain)."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import os, signal
        from pytest_convnextpose.convert.atomic_output import atomic_write
        def write(fh):
            fh.write(b"x" * 100000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(target)!r}, write, force=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert target.read_bytes() == b"old"
    assert all(name.startswith(".out.bin.") for name in temp_leftovers(tmp_path))


def test_output_has_normal_permissions(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


# --- safetensors bytes ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(tensors=tensor_dicts(), metadata=metadata_dicts)
def test_written_safetensors_read_back_exactly_by_the_library(tensors, metadata):
    data = safetensors_bytes(tensors, metadata)
    back = st_load(data)
    assert sorted(back) == sorted(tensors)
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape and torch.equal(back[k], t), f"tensor {k!r}"
    n = int.from_bytes(data[:8], "little")
    assert (8 + n) % 8 == 0, "data section must start 8-byte aligned"


@settings(max_examples=40, deadline=None)
@given(tensors=tensor_dicts())
def test_bytes_equal_the_library_writer_when_metadata_order_cannot_differ(tensors):
    """With at most one metadata entry the library's hash-ordered map is fixed: its bytes must equal ours."""
    assert safetensors_bytes(tensors, {"format": "pt"}) == st_save(tensors, {"format": "pt"})


def test_metadata_order_does_not_change_bytes():
    t = {"a": torch.arange(3.0)}
    m = {f"k{i}": str(i) for i in range(20)}
    assert safetensors_bytes(t, m) == safetensors_bytes(t, dict(reversed(list(m.items()))))


def test_non_string_metadata_is_rejected():
    with pytest.raises(TypeError, match="str"):
        safetensors_bytes({"a": torch.zeros(1)}, {"epoch": 3})  # type: ignore[dict-item]
