"""pytest sub-plugin: Human3.6M accuracy gates (docs/accuracy.md).

Options (`options.py`): `--h36m-root DIR` enables the gates; `--protocol 1|2`, `--max-frames N`
(reported, never gated), `--flip-test/--no-flip-test`, `--h36m-bbox gt|rootnet`,
`--rootnet-file FILE`, `--mpjpe-tolerance MM`, `--h36m-preds FILE` (score predictions made
elsewhere), `--h36m-preds-variant V`, `--h36m-preds-aligned` (the authors' protocol-1 output,
aligned already), `--h36m-results PATH`, `--h36m-batch-size N`, `--h36m-workers N`.

Start-up checks: a `--h36m-root` without annotation files, a missing `--h36m-preds` or
RootNet file is a usage error (one line), not a failure per test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from ..convert.atomic_output import atomic_write_json

RESULTS_KEY = pytest.StashKey[list]()


@dataclass(frozen=True)
class AccuracyOptions:
    root: Optional[Path]
    protocol: int
    max_frames: Optional[int]
    flip_test: bool
    bbox_source: str
    rootnet_file: Optional[Path]
    tolerance_mm: float
    preds: Optional[Path]
    preds_variant: Optional[str]
    results: Optional[Path]
    batch_size: int
    workers: Optional[int]
    preds_aligned: bool

    @property
    def enabled(self) -> bool:
        return self.root is not None


def read_accuracy_options(config: pytest.Config) -> AccuracyOptions:
    opt = config.getoption

    def path(name: str) -> Optional[Path]:
        value = opt(name)
        return Path(value) if value else None

    return AccuracyOptions(path("convnextpose_h36m_root"), opt("convnextpose_protocol"),
                           opt("convnextpose_max_frames"), opt("convnextpose_flip_test"),
                           opt("convnextpose_h36m_bbox"), path("convnextpose_rootnet_file"),
                           opt("convnextpose_mpjpe_tolerance"), path("convnextpose_h36m_preds"),
                           opt("convnextpose_h36m_preds_variant"), path("convnextpose_h36m_results"),
                           opt("convnextpose_h36m_batch_size"), opt("convnextpose_h36m_workers"),
                           opt("convnextpose_h36m_preds_aligned"))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS_KEY] = []
    opts = read_accuracy_options(config)
    if opts.preds is not None and opts.root is None:
        raise pytest.UsageError("--h36m-preds needs --h36m-root (the annotations to score against)")
    if opts.preds_aligned and (opts.preds is None or opts.protocol != 1):
        raise pytest.UsageError("--h36m-preds-aligned needs --h36m-preds FILE and --protocol 1 "
                                "(aligned poses have only a PA-MPJPE)")
    if opts.root is not None:
        _check_data_paths(opts)


def _check_data_paths(opts: AccuracyOptions) -> None:
    """The cheap checks (files exist, annotations are where the layout says); contents are read later."""
    from ..h36m import H36MDataError, annotation_dir
    from ..h36m.annotations import ROOTNET_FILE

    if not opts.root.is_dir():
        raise pytest.UsageError(f"--h36m-root {opts.root}: not a folder")
    try:
        annotation_dir(opts.root)
    except H36MDataError as exc:
        message = f"--h36m-root: {exc} (see docs/accuracy.md for the layout)"
        raise pytest.UsageError(message) from None
    if opts.preds is not None and not opts.preds.is_file():
        raise pytest.UsageError(f"--h36m-preds {opts.preds}: no such file")
    if opts.bbox_source == "rootnet":
        rootnet = opts.rootnet_file or opts.root / ROOTNET_FILE
        if not rootnet.is_file():
            raise pytest.UsageError(f"--h36m-bbox rootnet: RootNet file {rootnet} not found (pass --rootnet-file FILE)")


@pytest.fixture(scope="session")
def convnextpose_h36m_options(pytestconfig: pytest.Config) -> AccuracyOptions:
    """The Human3.6M options of this run (`AccuracyOptions`)."""
    return read_accuracy_options(pytestconfig)


def record_result(config: pytest.Config, label: str, result: Any, verdict: Any) -> None:
    """Keep a result and its `h36m.gate.Verdict` for the terminal summary and write it where
    --h36m-results says."""
    from ..h36m.gate import result_document

    config.stash[RESULTS_KEY].append((label, result, verdict.text))
    raw = config.getoption("convnextpose_h36m_results")
    if not raw:
        return
    target = Path(raw)
    doc = result_document(result, label, verdict)
    if target.is_dir() or raw.endswith(("/", "\\")):  # Path() drops the trailing slash
        target.mkdir(parents=True, exist_ok=True)
        out = target / f"{label}.json"
    else:
        out = target
        if out.exists() and len(config.stash[RESULTS_KEY]) > 1:
            out = target.with_name(f"{target.stem}-{label}{target.suffix}")
    atomic_write_json(out, doc)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS_KEY, [])
    if not results:
        return
    from ..h36m.report import headline, per_action_line

    terminalreporter.section("Human3.6M accuracy")
    for label, res, verdict in results:
        terminalreporter.write_line(f"{label}: {headline(res)} -- {verdict}")
        terminalreporter.write_line(f"    per action: {per_action_line(res)}")
