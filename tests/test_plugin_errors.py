"""How the plugin reports bad input: one usage error at start-up for a bad `--impl`, `--onnx`,
`--baseline` or `--h36m-root`/`--h36m-preds` path; one clear failure line (no traceback
through our internals) for broken Human3.6M data; and a suite run that leaves no
`.hypothesis/` or `.benchmarks/` behind in the directory it was started from."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from h36m_helpers import write_dataset

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
#: frames of our own code that must not appear in a data-error failure
INTERNAL_FRAMES = ("annotations.py:", "images.py:", "predictions.py:", "evaluate.py:", "Traceback",
                   "During handling of the above exception")


def suite_file(name: str) -> str:
    from pytest_convnextpose.plugin.core import conformance_dir

    return str(conformance_dir() / name)


def error_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stderr.lines if line.startswith("ERROR:")]


def assert_one_usage_error(result: pytest.RunResult, *parts: str) -> None:
    """Exit code 4, exactly one `ERROR:` line containing every part, and no test ran."""
    lines = error_lines(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, (result.ret, result.stdout.str()[-2000:], lines)
    assert len(lines) == 1, result.stderr.str()
    for part in parts:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    assert "passed" not in result.stdout.str() and "error" not in result.stdout.str().lower()


def run_suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(f"--ckpt={TINY}", "-p", "no:cacheprovider", *args)


# --------------------------------------------------------------------------- start-up usage errors
def test_missing_baseline_file_is_one_usage_error_naming_it(pytester):
    missing = pytester.path / "no_such_baseline.pth"
    result = run_suite(pytester, f"--baseline={missing}")
    assert_one_usage_error(result, "--baseline", str(missing), "cannot read file")
    assert "During handling" not in result.stderr.str() + result.stdout.str()


def test_unreadable_baseline_file_is_one_usage_error_naming_the_byte_offset(pytester):
    broken = pytester.path / "truncated.pth"
    broken.write_bytes(TINY.read_bytes()[:3000])
    assert_one_usage_error(run_suite(pytester, f"--baseline={broken}"), "--baseline", str(broken), "byte offset")


def test_missing_impl_module_is_one_usage_error(pytester):
    assert_one_usage_error(run_suite(pytester, "--impl=surely_missing_port_xyz:build"),
                           "module 'surely_missing_port_xyz' not found")


def test_missing_impl_factory_is_one_usage_error_naming_it(pytester):
    pytester.makepyfile(my_port="def build(checkpoint):\n    return None\n")
    assert_one_usage_error(run_suite(pytester, f"--impl={pytester.path / 'my_port.py'}:buld"),
                           "has no attribute 'buld'")


def test_impl_module_that_raises_on_import_is_one_usage_error_naming_file_and_line(pytester):
    port = pytester.makepyfile(my_port="import math\nimport not_installed_dependency_xyz\n")
    assert_one_usage_error(run_suite(pytester, f"--impl={port}:build"),
                           "ModuleNotFoundError", "not_installed_dependency_xyz", f"{port}:2")


def test_missing_onnx_file_is_one_usage_error(pytester):
    missing = pytester.path / "missing.onnx"
    assert_one_usage_error(run_suite(pytester, f"--onnx={missing}"), f"--onnx {missing}: no such file")


def test_unreadable_onnx_file_is_one_usage_error(pytester):
    bad = pytester.path / "garbage.onnx"
    bad.write_bytes(b"not a protobuf")
    assert_one_usage_error(run_suite(pytester, f"--onnx={bad}"), f"--onnx {bad}: onnxruntime cannot load it")


def test_h36m_root_without_annotations_is_one_usage_error(pytester):
    empty = pytester.mkdir("empty_h36m")
    assert_one_usage_error(run_suite(pytester, f"--h36m-root={empty}"),
                           "--h36m-root", "no Human36M_subject*_data.json", str(empty))


def test_missing_predictions_file_is_one_usage_error(pytester):
    write_dataset(pytester.path / "h36m")
    missing = pytester.path / "preds.json"
    assert_one_usage_error(run_suite(pytester, f"--h36m-root={pytester.path / 'h36m'}", f"--h36m-preds={missing}"),
                           f"--h36m-preds {missing}: no such file")


# --------------------------------------------------------------------------- data errors while testing
@pytest.fixture
def h36m_root(pytester: pytest.Pytester) -> Path:
    return write_dataset(pytester.path / "h36m").root


def run_accuracy(pytester: pytest.Pytester, root: Path, *args: str) -> pytest.RunResult:
    return run_suite(pytester, suite_file("test_accuracy.py"), f"--h36m-root={root}", "--device=cpu", *args)


def assert_one_line_failure(result: pytest.RunResult, *parts: str) -> None:
    result.assert_outcomes(failed=1, skipped=1)
    out = result.stdout.str()
    line = next((ln for ln in result.stdout.lines if ln.startswith("Human3.6M data error: ")), None)
    assert line is not None, out[-3000:]
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"
    leaked = [frame for frame in INTERNAL_FRAMES if frame in out]
    assert not leaked, f"internal frames {leaked} in the failure:\n{out[-3000:]}"


def test_invalid_annotation_json_fails_with_one_line_naming_the_file(pytester, h36m_root):
    data = h36m_root / "annotations" / "Human36M_subject9_data.json"
    data.write_text("{not json")
    assert_one_line_failure(run_accuracy(pytester, h36m_root), str(data), "not valid JSON", "line 1")


def test_annotation_record_without_a_field_fails_with_one_line_naming_the_file(pytester, h36m_root):
    data = h36m_root / "annotations" / "Human36M_subject11_data.json"
    doc = json.loads(data.read_text())
    del doc["images"][0]["frame_idx"]
    data.write_text(json.dumps(doc))
    assert_one_line_failure(run_accuracy(pytester, h36m_root), str(data), "KeyError", "frame_idx")


def test_missing_image_fails_with_one_line_naming_it(pytester, h36m_root):
    image = sorted((h36m_root / "images").rglob("*.npy"))[0]
    image.unlink()
    assert_one_line_failure(run_accuracy(pytester, h36m_root), str(image), "image not found")


def test_corrupt_image_fails_with_one_line_naming_it(pytester, h36m_root):
    image = sorted((h36m_root / "images").rglob("*.npy"))[0]
    image.write_bytes(b"\x93NUMPY garbage")
    assert_one_line_failure(run_accuracy(pytester, h36m_root), str(image), "cannot read the .npy image")


def test_invalid_predictions_file_fails_with_one_line_naming_it(pytester, h36m_root):
    preds = pytester.path / "preds.json"
    preds.write_text('[{"image_id": 1, "joint_cam": ')
    result = run_accuracy(pytester, h36m_root, f"--h36m-preds={preds}")
    assert_one_line_failure(result, str(preds), "not valid JSON")


def test_broken_data_fails_the_baseline_mpjpe_gate_with_one_line(pytester, h36m_root):
    data = h36m_root / "annotations" / "Human36M_subject9_data.json"
    data.write_text("[]")
    result = run_suite(pytester, suite_file("test_baseline.py"), f"--baseline={TINY}", f"--h36m-root={h36m_root}",
                       "--device=cpu", "-k", "mpjpe")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"MPJPE difference not computed: Human3.6M data error: {data}: expected an object*"])
    assert "Traceback" not in result.stdout.str()


# --------------------------------------------------------------------------- nothing left in the current directory
def run_in(cwd: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed suite in a fresh interpreter started in `cwd` (as a user would), without
    the xdist variables a subprocess of one of our `-n` workers would inherit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "HYPOTHESIS_STORAGE"))}
    env.update(env_extra or {}, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pytest", f"--ckpt={TINY}", "-q", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


def test_suite_run_from_any_directory_leaves_nothing_there(tmp_path):
    proc = run_in(tmp_path, "-p", "no:cacheprovider")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "passed" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the suite run left files in its directory"


def test_with_pytest_cache_hypothesis_storage_lives_in_it(tmp_path):
    proc = run_in(tmp_path, "-k", "test_any_input_gives")  # no path: the rootdir (and so the cache) is tmp_path
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pytest_cache"]
    home = tmp_path / ".pytest_cache" / "d" / "convnextpose-hypothesis"
    written = [p for p in home.rglob("*") if p.is_file()]
    assert written, f"Hypothesis wrote nothing under {home} (its constants cache lands there on every run)"


def test_explicit_hypothesis_storage_directory_is_kept(monkeypatch, tmp_path):
    from hypothesis.configuration import set_hypothesis_home_dir

    from pytest_convnextpose.plugin import hypothesis_profiles as hp
    class Config:  # what keep_storage_out_of_cwd uses of pytest's Config
        cache = None
        cleanups: list = []

        def add_cleanup(self, fn):
            self.cleanups.append(fn)

    monkeypatch.setenv(hp.HOME_ENV, str(tmp_path / "mine"))
    before = hp._current_home()
    hp.keep_storage_out_of_cwd(Config())
    assert hp._current_home() == before and not Config.cleanups, \
        "the user's HYPOTHESIS_STORAGE_DIRECTORY was overridden"
    monkeypatch.delenv(hp.HOME_ENV)
    previous = before[0]
    set_hypothesis_home_dir(tmp_path / "set_in_conftest")
    try:
        hp.keep_storage_out_of_cwd(Config())
        assert hp._current_home()[0] == tmp_path / "set_in_conftest" and not Config.cleanups
    finally:
        set_hypothesis_home_dir(previous)


def test_benchmark_storage_stays_out_of_the_directory_unless_asked_for(pytester):
    latency = suite_file("test_latency.py")
    run_suite(pytester, latency).assert_outcomes(skipped=2)
    assert not (pytester.path / ".benchmarks").exists(), "pytest-benchmark storage made in the current directory"
    mine = pytester.path / "my_storage"
    run_suite(pytester, latency, f"--benchmark-storage=file://{mine}").assert_outcomes(skipped=2)
    assert mine.is_dir(), "an explicit --benchmark-storage was not used"
    run_suite(pytester, latency, "--benchmark-storage=file://./.benchmarks").assert_outcomes(skipped=2)
    assert (pytester.path / ".benchmarks").is_dir(), "an explicit default --benchmark-storage was overridden"
