"""pytest plugin entry point (`pytest11: convnextpose`).

Sub-plugins with their own options and hooks register here, so `-p no:convnextpose`
disables all of them at once. Each adds its options to the shared "convnextpose" group:
    group = parser.getgroup("convnextpose")
"""
from __future__ import annotations

import importlib

#: modules registered as part of this plugin (missing ones are skipped while in development)
SUBPLUGINS = (
    "pytest_convnextpose.plugin_core",      # --ckpt, fixtures, report (issue 3)
    "pytest_convnextpose.plugin_accuracy",  # latency benchmarks, Human3.6M gates (issue 6)
    "pytest_convnextpose.plugin_impl",      # --impl, --onnx, --baseline, --xfails-file (issue 7)
)

OPTION_GROUP = "convnextpose"


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
