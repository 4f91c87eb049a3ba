"""pytest sub-plugin: `--baseline PATH` gating (docs/reimplementers.md, "CI gating").

Each `--ckpt` is compared with the baseline checkpoint: architecture, per-tensor drift,
output drift in heatmap units and mm, and the MPJPE difference when `--h36m-root` is given.
The baseline is loaded at start-up (a bad path is one usage error), with the same
`--joints` / `--head-upsample` as the checkpoints. Each comparison is stored in
`config.stash[BASELINE_RESULTS_KEY][<ckpt id>]` and attached to the checkpoint's
description on the test report (the "baseline" field of the JSON report).
"""

from __future__ import annotations

from typing import Any

import pytest

from .report import REPORT_ATTR

BASELINE_RESULTS_KEY = pytest.StashKey[dict]()
_LOADED_KEY = pytest.StashKey[dict]()  # path -> Checkpoint, or the one-line error
_MPJPE_KEY = pytest.StashKey[dict]()  # (h36m root, path, sha256) -> protocol-2 MPJPE in mm


def pytest_configure(config: pytest.Config) -> None:
    config.stash[BASELINE_RESULTS_KEY] = {}
    config.stash[_LOADED_KEY] = {}
    path = config.getoption("convnextpose_baseline")
    # Checked once, on the controller, and not for --help/--version (which must always work).
    if path and not hasattr(config, "workerinput") and not (config.option.help or config.option.version):
        loaded = _load_baseline(config, path)
        if isinstance(loaded, str):
            raise pytest.UsageError(loaded)
        config.stash[_LOADED_KEY][path] = loaded


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not config.getoption("convnextpose_baseline"):
        return []
    return [
        f"convnextpose: baseline {config.getoption('convnextpose_baseline')} "
        f"(max output drift {config.getoption('convnextpose_max_output_drift'):g} mm, "
        f"max MPJPE regression {config.getoption('convnextpose_max_mpjpe_regression'):g} mm)"
    ]


def _load_baseline(config: pytest.Config, path: str) -> Any:
    """The baseline `Checkpoint` (same --joints / --head-upsample as the checkpoints), or the error line."""
    from ..checkpoint.load import load_checkpoint
    from ..errors import CheckpointError
    from .state import state

    opts = state(config).options
    try:
        return load_checkpoint(path, joint_num=opts.joints, head_upsample=opts.head_upsample)
    except CheckpointError as exc:
        return f"--baseline: cannot be loaded: {exc}"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    """Put the baseline comparison into the checkpoint's description on the report."""
    outcome = yield
    report = outcome.get_result()
    results = item.config.stash.get(BASELINE_RESULTS_KEY, {})
    info = getattr(report, REPORT_ATTR, None)
    if isinstance(info, dict) and info.get("id") in results:
        info["baseline"] = results[info["id"]]


@pytest.fixture(scope="session")
def convnextpose_baseline_checkpoint(request: pytest.FixtureRequest) -> Any:
    """`--baseline` loaded like the checkpoints under test (same --joints / --head-upsample)."""
    path = request.config.getoption("convnextpose_baseline")
    if not path:
        pytest.skip("no --baseline given: these tests compare each checkpoint with a baseline checkpoint")
    loaded_by_path = request.config.stash[_LOADED_KEY]
    if path not in loaded_by_path:  # xdist worker: the controller checked it, this process loads it
        loaded_by_path[path] = _load_baseline(request.config, path)
    loaded = loaded_by_path[path]
    if isinstance(loaded, str):
        pytest.fail(loaded, pytrace=False)
    return loaded


@pytest.fixture(scope="session")
def convnextpose_baseline_coords(convnextpose_baseline_checkpoint: Any, convnextpose_sample_inputs: Any) -> Any:
    """The baseline's reference output on `convnextpose_sample_inputs`, `(B, J, 3)` numpy: computed once per
    run, not once per checkpoint compared with it (the baseline never changes within a run)."""
    from ..checkpoint.model import run_reference
    from .fixtures import build_reference_model

    model = build_reference_model(convnextpose_baseline_checkpoint, convnextpose_sample_inputs.device)
    return run_reference(model, convnextpose_sample_inputs.detach().cpu().numpy())


@pytest.fixture(scope="session")
def convnextpose_baseline_comparison(
    request: pytest.FixtureRequest,
    convnextpose_baseline_checkpoint: Any,
    convnextpose_ckpt: Any,
    convnextpose_ckpt_source: Any,
    convnextpose_sample_inputs: Any,
    convnextpose_ref_coords: Any,
) -> Any:
    """`baseline.BaselineComparison` of this checkpoint against --baseline, on `convnextpose_sample_inputs`."""
    from ..baseline.compare import compare_checkpoints
    from .fixtures import SAMPLE_SEED

    images = convnextpose_sample_inputs.detach().cpu().numpy()
    same_joints = convnextpose_ckpt.spec.joint_num == convnextpose_baseline_checkpoint.spec.joint_num
    # Requested only when the outputs are compared (compare_checkpoints skips other joint counts).
    base = request.getfixturevalue("convnextpose_baseline_coords") if same_joints else None
    result = compare_checkpoints(
        convnextpose_ckpt,
        convnextpose_baseline_checkpoint,
        images=images,
        candidate_coords=convnextpose_ref_coords.detach().cpu().numpy(),
        baseline_coords=base,
        inputs=f"sample_inputs ({images.shape[0]} seeded images {images.shape[2]}x{images.shape[3]}, "
        f"seed {SAMPLE_SEED})",
    )
    result.mpjpe = _mpjpe(request.config, convnextpose_ckpt, convnextpose_baseline_checkpoint)
    request.config.stash[BASELINE_RESULTS_KEY][convnextpose_ckpt_source.id] = result.to_dict()
    return result


def _mpjpe(config: pytest.Config, candidate: Any, baseline: Any) -> dict[str, Any]:
    """MPJPE of both checkpoints on Human3.6M, or the reason it was not computed. Each file is scored
    once per run (per worker): the baseline's figure serves every checkpoint compared with it."""
    from ..baseline.mpjpe import mpjpe_difference
    from ..h36m import evaluate as h36m_evaluate

    scores = config.stash.setdefault(_MPJPE_KEY, {})

    def score(root: Any, ckpt: Any) -> float:
        key = (str(root), str(ckpt.path), ckpt.sha256)
        if key not in scores:
            scores[key] = h36m_evaluate.evaluate_mpjpe(root, ckpt)
        return scores[key]

    return mpjpe_difference(config.getoption("convnextpose_h36m_root"), candidate, baseline, evaluate=score)
