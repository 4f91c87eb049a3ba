"""pytest plugin entry point (`pytest11: convnextpose`).

Sub-plugins with their own options and hooks register here, so `-p no:convnextpose`
disables all of them at once. Each adds its options to the shared group `OPTION_GROUP`:
    group = parser.getgroup(OPTION_GROUP)

Every pytest run imports this module and its sub-plugins, so none of them may import
numpy, torch or Hypothesis at module level (tests/test_plugin_startup.py checks it).
"""
from __future__ import annotations

import importlib
import os
import shlex

#: modules registered as part of this plugin (missing ones are skipped while in development)
SUBPLUGINS = (
    "pytest_convnextpose.plugin_core",      # --ckpt, fixtures, report (issue 3)
    "pytest_convnextpose.plugin_accuracy",  # latency benchmarks, Human3.6M gates (issue 6)
    "pytest_convnextpose.plugin_impl",      # --impl, --onnx, --baseline, --xfails-file (issue 7)
    "pytest_convnextpose.xdist_groups",     # -n N with several checkpoints: one worker each (issue 14)
)

#: the option group every sub-plugin adds to (one name: `pytest --help` shows one section)
OPTION_GROUP = "convnextpose"


def option_given(config, *flags: str) -> bool:
    """Whether one of `flags` was written out (command line, PYTEST_ADDOPTS or ini addopts),
    even with its default value (a default and an explicit choice of the same value differ)."""
    words = [*map(str, config.invocation_params.args), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
             *config.getini("addopts")]
    return any(w == f or w.startswith(f + "=") for w in words for f in flags)


def pytest_addhooks(pluginmanager) -> None:
    # pytest_addoption is a historic hook, so sub-plugins registered now still get it.
    for name in SUBPLUGINS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        if not pluginmanager.is_registered(mod):
            pluginmanager.register(mod, name)
