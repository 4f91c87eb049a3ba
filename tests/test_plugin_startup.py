"""The plugin is imported by every pytest run (pytest11 entry point), so a run that never
uses the suite must not import torch, numpy or Hypothesis because of it.

Checked in fresh interpreters (the test process itself has long imported everything):
what the plugin modules import, and what a whole unrelated pytest run has imported at its
end. No timings: which modules are loaded is the cause of the slow start, and it is exact.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "numpy", "hypothesis", "reference_model")
FEATURES = ("options", "core", "fixtures", "implementations", "baseline", "accuracy", "benchmark", "pictures", "xdist")
PLUGIN_MODULES = ("pytest_convnextpose.plugin", *(f"pytest_convnextpose.plugin.{f}" for f in FEATURES
                                                  if f != "xdist"), "pytest_convnextpose.plugin.xdist_groups")
#: registration names of the sub-plugins (stable, unlike module paths)
SUBPLUGIN_NAMES = tuple(f"convnextpose.{f}" for f in FEATURES)

#: conftest of the unrelated run: records the heavy top-level packages loaded during the test
#: (after configure and collection) and at unconfigure (after every hook of the run).
PROBE_CONFTEST = f"""
import json, sys
from pathlib import Path

HEAVY = {HEAVY!r}


def heavy_loaded():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))


def pytest_unconfigure(config):
    names = [n for n, _ in config.pluginmanager.list_name_plugin()]
    Path("probe_end.json").write_text(json.dumps({{"heavy": heavy_loaded(), "plugins": names}}))
"""

PROBE_TEST = """
import json
from pathlib import Path

from conftest import heavy_loaded


def test_unrelated():
    Path("probe_test.json").write_text(json.dumps(heavy_loaded()))
"""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CONVNEXTPOSE_CKPT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_importing_the_plugin_modules_imports_no_heavy_package():
    code = ("import json, sys\n"
            + "".join(f"import {m}\n" for m in PLUGIN_MODULES)
            + f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(),
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the plugin modules imported {loaded}; expected none of {HEAVY}"


def test_unrelated_pytest_run_imports_no_torch_numpy_or_hypothesis(tmp_path: Path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # rootdir here, no ini of the project
    (tmp_path / "conftest.py").write_text(PROBE_CONFTEST)
    (tmp_path / "test_unrelated.py").write_text(PROBE_TEST)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_unrelated.py"],
                          cwd=tmp_path, capture_output=True, text=True, env=_clean_env(), timeout=120, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    end = json.loads((tmp_path / "probe_end.json").read_text())
    missing = [m for m in SUBPLUGIN_NAMES if m not in end["plugins"]]
    assert "convnextpose" in end["plugins"] and not missing, \
        f"the convnextpose plugin and its sub-plugins should be registered; missing {missing} in {end['plugins']}"
    during = json.loads((tmp_path / "probe_test.json").read_text())
    assert during == [], f"by the time the unrelated test ran, {during} were imported; expected none of {HEAVY}"
    # Hypothesis' own plugin imports hypothesis in its terminal summary (not ours to change),
    # so the end-of-run check is about torch, numpy and the reference model.
    late = [m for m in end["heavy"] if m != "hypothesis"]
    assert late == [], f"by the end of the unrelated run, {late} were imported; expected no torch, numpy or model"
    # and it leaves nothing behind: pytest-benchmark (our dependency) would make ./.benchmarks
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["conftest.py", "probe_end.json", "probe_test.json", "pytest.ini", "test_unrelated.py"], \
        f"an unrelated pytest run (-p no:cacheprovider) left {left} in its folder"


def test_suite_under_xdist_keeps_pytest_benchmarks_warning_out_of_the_progress_line(tmp_path: Path):
    """pytest-benchmark warns that it is disabled under xdist, in the middle of the progress line.
    A path-less `pytest --ckpt=X -n 2` (the suite found by the plugin) must print no such warning."""
    tiny = Path(__file__).resolve().parent / "data" / "tiny_snapshot_83.pth.tar"
    proc = subprocess.run([sys.executable, "-m", "pytest", f"--ckpt={tiny}", "-n", "2", "-p", "no:cacheprovider",
                           "-k", "load"], cwd=tmp_path, capture_output=True, text=True, env=_clean_env(), timeout=300,
                          check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "PytestBenchmarkWarning" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the run left files behind"
