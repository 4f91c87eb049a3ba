"""The CLI never hangs, never leaks internals, never destroys its input.

Covers: non-regular files (devices, FIFOs) are refused by kind instead of hanging or being
called "empty"; `export-onnx` refuses bad opsets at argparse time and keeps torch's graph
dumps off the terminal; no `--force` can make an output replace an input; write errors name
the user's output path, not our hidden temp file; `export --epoch` is >= 0 and overrides the
source's epoch. Anything that could block runs in a subprocess with a timeout, so a
regression fails instead of hanging the suite.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pytest_convnextpose.cli.main import main
from pytest_convnextpose.convert import onnx_export
from pytest_convnextpose.convert.atomic_output import OutputPathError, atomic_write_bytes
from pytest_convnextpose.errors import UnreadableFileError
from pytest_convnextpose.reading import read_file

DATA = Path(__file__).resolve().parent / "data"
TINY = DATA / "tiny_snapshot_83.pth.tar"
TINY_EPOCH = 83  # torch.load(TINY, weights_only=True)["epoch"]
TIMEOUT = 120  # generous on 2 shared cores; the fixed code answers in seconds, the old code never

needs_mkfifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
CHAR_DEVICES = [d for d in ("/dev/zero", "/dev/null", "/dev/urandom") if os.path.exists(d)]


def run_main(argv: list[str]) -> int:
    """`main`'s exit code, also when argparse exits (a refused option)."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code)


def run_cli(*args: str | Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_convnextpose.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture
def copy(tmp_path) -> Path:
    """A private copy of the tiny golden checkpoint (tests may try to overwrite it)."""
    dst = tmp_path / "copy.pth.tar"
    shutil.copyfile(TINY, dst)
    return dst


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{text}"
    return lines[0]


# --- 1. non-regular files ------------------------------------------------------------------------


@needs_mkfifo
def test_inspect_of_a_fifo_is_refused_at_once_not_blocked(tmp_path):
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    try:
        proc = run_cli("inspect", fifo, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("`convnextpose inspect <FIFO>` blocked (opened the pipe instead of refusing it)")
    assert proc.returncode == 2, f"exit {proc.returncode}, expected 2; stderr: {proc.stderr}"
    line = one_line(proc.stderr)
    assert str(fifo) in line and "not a regular file (FIFO)" in line, line


@pytest.mark.parametrize("device", CHAR_DEVICES)
def test_character_device_is_refused_by_kind_not_called_empty(device):
    with pytest.raises(UnreadableFileError) as info:
        read_file(device)
    msg = str(info.value)
    assert "not a regular file (character device)" in msg and device in msg, f"{device}: got {msg!r}"


def test_regular_files_still_read_and_empty_ones_are_still_empty(tmp_path):
    assert read_file(TINY).size == TINY.stat().st_size
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="file is empty"):
        read_file(empty)


@needs_mkfifo
def test_source_digest_of_devices_and_fifos_is_none_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    paths = [str(fifo), *CHAR_DEVICES]
    script = ("import sys; from pathlib import Path; from pytest_convnextpose.reading.digest import file_sha256\n"
              "print([file_sha256(Path(p)) for p in sys.argv[1:]])")
    try:
        proc = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"file_sha256 did not return for {paths} (hashed a device to no end or opened a FIFO)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr([None] * len(paths)), f"expected no digest for {paths}, got {proc.stdout}"


@needs_mkfifo
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_plugin_run_on_dev_zero_and_a_fifo_fails_the_load_test_with_the_readers_line(tmp_path):
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-k", "test_checkpoint_file_loads",
           "--ckpt=/dev/zero", f"--ckpt={fifo}"]
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail("`pytest --ckpt=/dev/zero` did not finish (collection hashes the device forever)")
    out = proc.stdout
    assert "/dev/zero: not a regular file (character device)" in out, out[-3000:]
    assert f"{fifo}: not a regular file (FIFO)" in out, out[-3000:]
    assert "2 failed" in out, out[-3000:]


# --- 2. export-onnx: opsets, noise, output errors ----------------------------------------------------


@pytest.mark.parametrize("opset", ["3", "99", "-1", "10", "21", "x"])
def test_export_onnx_refuses_unsupported_opset_before_exporting(tmp_path, capfd, opset):
    out = tmp_path / "m.onnx"
    assert run_main(["export-onnx", TINY, out, "--opset", opset, "--input-size", "128"]) == 2
    captured = capfd.readouterr()
    assert captured.out == "", f"--opset {opset}: nothing belongs on stdout, got {captured.out[:300]!r}"
    assert "11 to 20" in captured.err, f"--opset {opset}: message should name the range, got {captured.err!r}"
    assert not out.exists()


@pytest.mark.parametrize("opset", [onnx_export.MIN_OPSET, onnx_export.MAX_OPSET])
def test_both_ends_of_the_opset_range_export_and_verify(tmp_path, capsys, opset):
    out = tmp_path / "m.onnx"
    assert run_main(["export-onnx", TINY, out, "--opset", str(opset), "--input-size", "128"]) == 0, \
        capsys.readouterr().err
    assert f"opset {opset}" in capsys.readouterr().out


def test_opset_range_stays_within_torchs_torchscript_exporter():
    constants = pytest.importorskip("torch.onnx._constants")
    top = getattr(constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", None)
    if top is None:
        pytest.skip("this torch does not publish ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET")
    assert onnx_export.MAX_OPSET <= top, f"MAX_OPSET {onnx_export.MAX_OPSET} > torch's {top}"
    assert onnx_export.MIN_OPSET >= constants.ONNX_MIN_OPSET


def _tiny():
    from pytest_convnextpose.checkpoint.load import load_checkpoint
    return load_checkpoint(TINY)


def test_exporter_failure_is_one_error_and_its_graph_dump_stays_off_the_terminal(monkeypatch, capfd):
    ckpt = _tiny()
    monkeypatch.setattr(onnx_export, "check_opset", lambda opset: None)  # reach torch with an opset it rejects
    monkeypatch.delenv("CONVNEXTPOSE_DEBUG", raising=False)
    with pytest.raises(onnx_export.OnnxExportError, match="opset 3"):
        onnx_export.onnx_bytes(ckpt.spec, ckpt.state_dict, input_size=(128, 128), opset=3)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "", \
        f"torch's exporter output leaked: stdout {captured.out[:200]!r}, stderr {captured.err[:200]!r}"

    monkeypatch.setenv("CONVNEXTPOSE_DEBUG", "1")
    with pytest.raises(onnx_export.OnnxExportError):
        onnx_export.onnx_bytes(ckpt.spec, ckpt.state_dict, input_size=(128, 128), opset=3)
    captured = capfd.readouterr()
    assert captured.out == "", "even in debug mode the dump goes to stderr, not stdout"
    assert "Torch IR graph at exception" in captured.err, "CONVNEXTPOSE_DEBUG=1 should show the exporter's output"


@pytest.mark.parametrize("command", ["convert", "export", "export-onnx"])
def test_output_in_a_missing_folder_names_the_folder_not_a_temp_file(tmp_path, capsys, command):
    out = tmp_path / "nodir" / ("o.onnx" if command == "export-onnx" else "o.safetensors")
    assert run_main([command, TINY, out]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"output folder {out.parent} does not exist" in line and str(out) in line, line
    assert ".tmp" not in line, f"the temp file's name leaked: {line}"


@pytest.mark.parametrize("command", ["convert", "export", "export-onnx"])
@pytest.mark.parametrize("force", [[], ["--force"]], ids=["without-force", "with-force"])
def test_output_that_is_a_directory_is_refused_saying_so(tmp_path, capsys, command, force):
    """Without --force too the message is "a directory", never "exists; use --force" (which would not help)."""
    out = tmp_path / "adir"
    out.mkdir()
    assert run_main([command, TINY, out, *force]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{out}: cannot write output: output is a directory" in line and "--force" not in line, line
    assert list(out.iterdir()) == []


def test_output_folder_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(OutputPathError, match=r"output folder .*file is not a directory") as info:
        atomic_write_bytes(blocker / "o.bin", b"data")
    assert ".tmp" not in str(info.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_without_write_permission_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="is not writable"):
            atomic_write_bytes(ro / "o.bin", b"data")
    finally:
        ro.chmod(0o700)


def test_filesystem_error_during_write_names_the_output_not_the_temp(tmp_path):
    target = tmp_path / "o.bin"

    def full_disk(fh):
        raise OSError(28, "No space left on device")

    from pytest_convnextpose.convert.atomic_output import atomic_write
    with pytest.raises(OutputPathError) as info:
        atomic_write(target, full_disk)
    assert str(info.value) == f"{target}: cannot write output: No space left on device"
    assert list(tmp_path.iterdir()) == [], "the temp file must be removed"


# --- 3. never overwrite the input --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["convert", "export", "export-onnx"])
def test_force_never_overwrites_the_input(copy, capsys, command):
    before = copy.read_bytes()
    assert run_main([command, copy, copy, "--force"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "output would overwrite the input" in line and str(copy) in line, line
    assert copy.read_bytes() == before, f"{command} --force replaced its own input"


def test_output_through_a_symlink_to_the_input_is_refused(copy, tmp_path, capsys):
    link = tmp_path / "link.safetensors"
    link.symlink_to(copy)
    before = copy.read_bytes()
    assert run_main(["convert", copy, link, "--force"]) == 2
    assert "output would overwrite the input" in capsys.readouterr().err
    assert copy.read_bytes() == before


def test_batch_export_into_the_inputs_folder_keeps_every_input(copy, capsys):
    before = copy.read_bytes()
    assert run_main(["export", copy, "--out-dir", copy.parent, "--force", "--no-progress"]) == 2
    assert "output would overwrite the input" in capsys.readouterr().out
    assert copy.read_bytes() == before


def test_batch_output_that_is_another_input_is_refused_before_anything_is_written(copy, tmp_path, capsys):
    """`a.pth -> a.safetensors` while `a.safetensors` is also an input: neither may be replaced."""
    other = tmp_path / "copy.safetensors"
    other.write_bytes(b"someone's file")
    assert run_main(["convert", copy, other, "--out-dir", tmp_path, "--force", "--no-progress"]) == 2
    out = capsys.readouterr().out
    assert out.count("output would overwrite the input") == 2, out
    assert other.read_bytes() == b"someone's file", "an input of the batch was overwritten"


# --- 5. export --epoch ----------------------------------------------------------------------------------


def test_negative_epoch_is_refused_by_the_parser(tmp_path, capsys):
    out = tmp_path / "o.pth"
    assert run_main(["export", TINY, out, "--epoch", "-1"]) == 2
    assert "--epoch" in capsys.readouterr().err
    assert not out.exists()


def test_explicit_epoch_overrides_the_sources(tmp_path):
    out = tmp_path / "o.pth"
    assert run_main(["export", TINY, out, "--epoch", "5"]) == 0
    assert torch.load(out, weights_only=True)["epoch"] == 5, "docs: an explicit --epoch overrides the source's"
    plain = tmp_path / "plain.pth"
    assert run_main(["export", TINY, plain]) == 0
    assert torch.load(plain, weights_only=True)["epoch"] == TINY_EPOCH, "without --epoch the source's is kept"


# --------------------------------------------------------------------------- shared spec options
@pytest.mark.parametrize("command", [["inspect", "x"], ["convert", "a", "b.safetensors"],
                                     ["export", "a", "b.pth"], ["export-onnx", "a", "b.onnx"]])
@pytest.mark.parametrize("option, message", [(["--joints", "0"], "must be positive, got 0"),
                                             (["--joints", "-3"], "must be positive, got -3"),
                                             (["--joints", "many"], "not an integer: 'many'"),
                                             (["--head-upsample", "up,maybe"], "'maybe' is not 'up' or 'no'")])
def test_every_command_rejects_the_same_bad_spec_options_the_same_way(command, option, message, capsys):
    from pytest_convnextpose.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main([*command, *option])
    err = capsys.readouterr().err
    assert exc.value.code == 2, f"{command[0]} {option}: expected argparse exit 2, got {exc.value.code}"
    assert message in err, f"{command[0]} {option}: expected {message!r} in stderr, got {err!r}"


def test_each_message_line_reaches_stderr_in_one_write(monkeypatch):
    """stderr is write-through, so `print` would write the text and its newline apart, and two
    `torchrun` ranks refusing at once spliced their errors into one line; one write a line cannot."""
    from pytest_convnextpose.cli import messages

    writes: list[str] = []

    class Recorder:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Recorder())
    messages.error(UnreadableFileError("bad bytes", offset=7))
    messages.line("convnextpose: interrupted")
    assert writes == ["convnextpose: error: bad bytes (at byte offset 7)\n", "convnextpose: interrupted\n"], writes


def test_cli_modules_write_stderr_lines_only_through_messages():
    """The one-write guarantee holds only if no subcommand prints to stderr itself (tqdm's progress
    bar, in cli/progress.py, draws its own line and is the one exception)."""
    import ast

    cli = Path(__file__).resolve().parent.parent / "pytest_convnextpose" / "cli"
    found = []
    for path in sorted(cli.glob("*.py")):
        if path.name in ("messages.py", "progress.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(
                isinstance(kw.value, ast.Attribute) and kw.value.attr == "stderr" for kw in node.keywords
            ) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "print":
                found.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "write" and ast.unparse(node.value) == "sys.stderr":
                found.append(f"{path.name}:{node.lineno}")
    assert not found, f"stderr written outside cli/messages.py at {found}"
