"""pytest-xdist for checkpoint sweeps: one worker per checkpoint, one GPU per worker.

`pytest -n N --ckpt=a --ckpt=b ...` with two or more checkpoints runs each checkpoint's
tests on one worker, so each file is read, verified and built into a model once (xdist's
default `load` mode scatters a checkpoint's tests over every worker, which then all load
it). This is xdist's `loadgroup` idea with the checkpoint as the group, chosen by the
plugin so nobody has to remember a `--dist` flag: a scheduler (xdist's `LoadScopeScheduling`
with the checkpoint id as the scope) that keeps node ids as they are (no `@group` suffix in
reports or JUnit files). Tests that take no checkpoint are spread one by one. An explicit
`--dist` (or `-d`) is the user's choice and is kept. With fewer checkpoints than workers the
extra workers only run the tests that take no checkpoint (`--dist load` spreads again).

With several GPUs, worker `gwK` uses `cuda:(K mod device count)` for `--device auto|cuda`
(`state.resolve_device`). Nothing here imports torch (unrelated pytest runs stay light).
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import pytest

from .options import option_given


def group_by_checkpoint(config: pytest.Config, checkpoint_ids: Sequence[str]) -> bool:
    """Whether this xdist run groups by checkpoint: implicit `load` mode, two or more checkpoints."""
    return (getattr(config.option, "dist", "no") == "load" and not option_given(config, "--dist", "-d")
            and len(set(checkpoint_ids)) >= 2)


def checkpoint_scope(nodeid: str, checkpoint_ids: Sequence[str]) -> Optional[str]:
    """The checkpoint id in `nodeid`'s parameter part (`[<id>]`, or joined with other ids by `-`),
    or None. Longest ids first, and only whole ids: `a.pth-1234abcd` is not found in
    `xa.pth-1234abcd`."""
    params = nodeid[nodeid.find("[") + 1:nodeid.rfind("]")] if nodeid.endswith("]") and "[" in nodeid else ""
    for cid in sorted(set(checkpoint_ids), key=len, reverse=True):
        if re.search(rf"(^|-){re.escape(cid)}($|-)", params):
            return cid
    return None


def make_scheduler(config: pytest.Config, log: Any, checkpoint_ids: Sequence[str]) -> Any:
    """xdist's scope scheduler with the checkpoint as the scope of checkpoint-parametrized tests."""
    from xdist.scheduler import LoadScopeScheduling

    class CheckpointScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            cid = checkpoint_scope(nodeid, checkpoint_ids)
            return f"checkpoint {cid}" if cid is not None else nodeid

    return CheckpointScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from .state import STATE_KEY, get_checkpoints

    if STATE_KEY not in config.stash:
        return None
    ids = [s.id for s in get_checkpoints(config)] if config.stash[STATE_KEY].options.ckpt_paths else []
    if not group_by_checkpoint(config, ids):
        return None
    return make_scheduler(config, log, ids)


def worker_index(config: pytest.Config) -> Optional[int]:
    """K of xdist worker `gwK`; None outside xdist workers."""
    workerid = getattr(config, "workerinput", {}).get("workerid", "")
    return int(workerid[2:]) if workerid.startswith("gw") and workerid[2:].isdigit() else None
