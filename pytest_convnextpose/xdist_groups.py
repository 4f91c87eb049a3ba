"""pytest-xdist for checkpoint sweeps: one worker per checkpoint, one GPU per worker.

`pytest -n N --ckpt=a --ckpt=b ...` with two or more checkpoints runs each checkpoint's
tests on one worker, so each file is read, verified and built into a model once (xdist's
default `load` mode scatters a checkpoint's tests over every worker, which then all load
it). This is xdist's `loadgroup` mode: the plugin marks every checkpoint-parametrized test
`xdist_group(<checkpoint id>)` and selects `--dist loadgroup` itself, unless `--dist` was
given (that choice is kept; with an explicit `--dist loadgroup` the marks still apply).
With fewer checkpoints than workers the extra workers only run the tests that take no
checkpoint; `--dist load` spreads one checkpoint's tests again.

With several GPUs, worker `gwK` uses `cuda:(K mod device count)` for `--device auto|cuda`.
Nothing here imports torch at start-up (unrelated pytest runs stay light).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import pytest

from .plugin import option_given

#: workerinput key: the controller tells its workers to tag tests for loadgroup
WORKERINPUT_LOADGROUP = "convnextpose_loadgroup"


def choose_loadgroup(config: pytest.Config, ckpt_paths: Sequence[str]) -> None:
    """Controller: switch xdist's implicit `load` to `loadgroup` for a run of several checkpoints."""
    if getattr(config.option, "dist", "no") != "load" or option_given(config, "--dist", "-d"):
        return
    if len({Path(p).expanduser().absolute() for p in ckpt_paths}) >= 2:
        config.option.dist = "loadgroup"


def configure_node(node: Any) -> None:
    """Controller, per worker: hand over the decision (workers parse the command line afresh)."""
    if getattr(node.config.option, "dist", None) == "loadgroup":
        node.workerinput[WORKERINPUT_LOADGROUP] = True


def configure_worker(config: pytest.Config) -> None:
    """Worker: make xdist append the group to node ids, as its own `--dist loadgroup` would."""
    if getattr(config, "workerinput", {}).get(WORKERINPUT_LOADGROUP):
        config.option.loadgroup = True


def checkpoint_params(config: pytest.Config, sources: Sequence[Any]) -> list[Any]:
    """`sources`, each marked `xdist_group(<id>)` when this worker groups by checkpoint."""
    if not getattr(config.option, "loadgroup", False):
        return list(sources)
    return [pytest.param(s, marks=pytest.mark.xdist_group(s.id.replace("@", "_"))) for s in sources]


def worker_index(config: pytest.Config) -> Optional[int]:
    """K of xdist worker `gwK`; None outside xdist workers."""
    workerid = getattr(config, "workerinput", {}).get("workerid", "")
    return int(workerid[2:]) if workerid.startswith("gw") and workerid[2:].isdigit() else None
