"""Per-run state of the plugin, kept in `config.stash` (never module globals).

Several pytest runs can share one process (pytester, IDEs), so everything a run decides —
its options, its checkpoints, the loaded files — hangs off that run's `Config`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from ..cli.args import head_upsample_arg, positive_int
from ..reading.wrapped import SEPARATOR, split_member_path
from .options import option_or_ini
from .sources import ENV_VAR, CheckpointSource, dedupe, explicit_paths, make_source

#: xdist: the controller hands its default-checkpoint folder to workers under this key
WORKERINPUT_DEFAULT_DIR = "convnextpose_default_dir"


@dataclass
class Options:
    """The plugin's options after command line / env / ini resolution."""

    ckpt_paths: list[str]
    ckpt_origin: str  # option | env | ini | none
    joints: Optional[int]
    head_upsample: Optional[tuple[bool, ...]]
    device: str  # auto | cpu | cuda
    report_path: Optional[Path]
    expected: list[Path]
    golden_dirs: list[Path]


@dataclass
class State:
    options: Options
    sources: Optional[list[CheckpointSource]] = None  # resolved lazily (the default is written on demand)
    default_dir: Optional[Path] = None
    loads: dict[Path, Any] = field(default_factory=dict)  # path -> Checkpoint | CheckpointError
    models: dict[Path, Any] = field(default_factory=dict)  # path -> eval-mode reference model
    outputs: dict[Path, Any] = field(default_factory=dict)  # path -> coords on sample_inputs
    selected: set[str] = field(default_factory=set)  # "<module>::<test>[<ckpt id>]" selected this run


STATE_KEY = pytest.StashKey[State]()


def state(config: pytest.Config) -> State:
    return config.stash[STATE_KEY]


def read_options(config: pytest.Config) -> Options:
    """Resolve options; raises pytest.UsageError for values that cannot work."""
    ini_ckpts = config.getini("convnextpose_ckpt") or []
    paths, origin = explicit_paths(config.getoption("convnextpose_ckpt") or [], os.environ.get(ENV_VAR), ini_ckpts)
    where = _origin_name(origin)
    for path in paths:
        full = os.path.expanduser(path)
        if os.path.lexists(full) or split_member_path(full) is not None:  # a file, a folder or ARCHIVE::MEMBER
            continue
        if SEPARATOR in path:
            raise pytest.UsageError(
                f"{where} {path}: no such file or folder, and no archive "
                f"{path.split(SEPARATOR, 1)[0]!r} to read {SEPARATOR}MEMBER from (from {os.getcwd()})"
            )
        raise pytest.UsageError(f"{where} {path}: no such file or folder (from {os.getcwd()})")
    joints = option_or_ini(config, "joints", positive_int)
    head_upsample = option_or_ini(config, "head_upsample", head_upsample_arg)
    device = config.getoption("convnextpose_device") or config.getini("convnextpose_device") or "auto"
    if device not in ("auto", "cpu", "cuda"):
        raise pytest.UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError("--device=cuda was given but CUDA is not available (use --device=auto or cpu)")
    report = config.getoption("convnextpose_report")
    expected = [Path(p).expanduser().absolute() for p in (config.getoption("convnextpose_expected") or [])]
    golden = [Path(p).expanduser().absolute() for p in (config.getoption("convnextpose_golden_dir") or [])]
    golden += [Path(p) for p in (config.getini("convnextpose_golden_dir") or [])]
    return Options(
        paths,
        origin,
        joints,
        head_upsample,
        device,
        Path(report).expanduser().absolute() if report else None,
        expected,
        golden,
    )


def get_checkpoints(config: pytest.Config) -> list[CheckpointSource]:
    """The checkpoints this run tests, in order: the user's (`--ckpt`, env, ini) or the default.

    Public helper for sub-plugins and users' conftests. The embedded default is written to a
    temporary folder the first time it is needed (or reused from the xdist controller)."""
    st = state(config)
    if st.sources is None:
        if st.options.ckpt_paths:
            st.sources = dedupe([_user_source(p, st.options.ckpt_origin) for p in st.options.ckpt_paths])
        else:
            st.sources = _default_sources(config, st)
    return st.sources


def _user_source(path: str, origin: str) -> CheckpointSource:
    """`make_source`, with a wrong `ARCHIVE::MEMBER`, or an archive of several checkpoints given without
    one, reported as the usage error it is (the archive's checkpoints listed) rather than as a failing test."""
    from ..reading.errors import MemberNotFoundError, SeveralCheckpointsError

    try:
        return make_source(path, origin=origin)
    except (MemberNotFoundError, SeveralCheckpointsError) as exc:
        raise pytest.UsageError(f"{_origin_name(origin)} {path}: {exc.message}") from None


def _origin_name(origin: str) -> str:
    """How a message names where a checkpoint path came from."""
    return {"option": "--ckpt", "env": ENV_VAR, "ini": "ini convnextpose_ckpt"}.get(origin, origin)


def uses_default(config: pytest.Config) -> bool:
    """True when no checkpoint was given, so the suite runs on the synthetic default."""
    return not state(config).options.ckpt_paths


def _default_sources(config: pytest.Config, st: State) -> list[CheckpointSource]:
    from .default_checkpoints import DEFAULT_VARIANTS, default_file_name, write_default_checkpoints

    handed = getattr(config, "workerinput", {}).get(WORKERINPUT_DEFAULT_DIR)
    if handed and all((Path(handed) / default_file_name(v)).is_file() for v in DEFAULT_VARIANTS):
        directory = Path(handed)
    else:
        directory = Path(tempfile.mkdtemp(prefix="convnextpose-default-"))
        config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
        write_default_checkpoints(directory)
    st.default_dir = directory
    return [make_source(directory / default_file_name(v), origin="default", synthetic=True) for v in DEFAULT_VARIANTS]


def resolve_device(option: str, worker: Optional[int] = None) -> Any:
    """`--device` as a torch.device; xdist worker `gwK` (`worker=K`) gets `cuda:(K mod GPU count)`
    (`checkpoint.model.resolve_device`, imported here only when called: it needs torch)."""
    from ..checkpoint.model import resolve_device as resolve

    return resolve(option, worker)


def load_cached(config: pytest.Config, source: CheckpointSource) -> Any:
    """`load_checkpoint` once per file and run: returns the Checkpoint or the CheckpointError."""
    from ..checkpoint.load import load_checkpoint
    from ..errors import CheckpointError

    st = state(config)
    if source.path not in st.loads:
        try:
            st.loads[source.path] = load_checkpoint(
                source.path, joint_num=st.options.joints, head_upsample=st.options.head_upsample
            )
        except CheckpointError as exc:
            st.loads[source.path] = exc
    return st.loads[source.path]
