"""pytest plugin entry point (`pytest11: convnextpose`).

The plugin is a set of sub-plugins, one per feature, registered here so that
`-p no:convnextpose` disables all of them at once:

    options         every option and ini setting (one `convnextpose` group in `pytest --help`)
    core            --ckpt parametrization, header, report, markers
    fixtures        the fixtures of the suite and of users' own tests
    implementations --impl / --onnx / --xfails-file
    baseline        --baseline gating
    accuracy        Human3.6M gates
    benchmark       pytest-benchmark machine info and storage
    pictures        a PNG of the worst image for failures of implementations and baselines
    xdist           -n N with several checkpoints: one worker per checkpoint, one GPU per worker

Each is registered under a stable name (`convnextpose.<feature>`), which is what the
conformance suite checks for, not a module path. Every pytest run imports this package and
its sub-plugins, so none of them may import numpy, torch or Hypothesis at module level
(tests/test_plugin_startup.py checks it).
"""
from __future__ import annotations

import importlib

from .._lazy import lazy_exports

#: helpers for users' conftests (docs/plugin.md), loaded on first use
__getattr__, __dir__ = lazy_exports(__name__, {"get_checkpoints": "state", "CheckpointSource": "sources"})

#: feature -> module of this package (a missing module is a packaging error and fails loudly)
SUBPLUGINS = {
    "options": "options",
    "core": "core",
    "fixtures": "fixtures",
    "implementations": "implementations",
    "baseline": "baseline",
    "accuracy": "accuracy",
    "benchmark": "benchmark",
    "pictures": "pictures",
    "xdist": "xdist_groups",
}
#: registration name of the core sub-plugin: present exactly when the plugin is active
CORE_PLUGIN_NAME = "convnextpose.core"


def pytest_addhooks(pluginmanager) -> None:
    # pytest_addoption is a historic hook, so sub-plugins registered now still get it.
    for feature, module in SUBPLUGINS.items():
        name = f"convnextpose.{feature}"
        if pluginmanager.get_plugin(name) is None:
            pluginmanager.register(importlib.import_module(f".{module}", __name__), name)
