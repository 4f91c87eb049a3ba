"""Fixtures of the plugin, for the conformance suite and for users' own tests.

All are session-scoped and (except `convnextpose_torch_device` and `convnextpose_sample_inputs`)
parametrized per checkpoint through `convnextpose_ckpt_source`, with ids
`<file name>-<first 8 hex of sha256>`. Every fixture of the plugin is named `convnextpose_*`, as
pytest plugins name theirs: a user's own `ckpt` or `ref_model` fixture (common names in pose
projects) then never replaces one the suite depends on, and the suite never resolves theirs.

A defect is reported by exactly one test — the one whose invariant it breaks (see
`OWNER_TESTS`). Fixtures that cannot be built because of a defect *skip* the tests that
depend on them, naming that test, so a checkpoint with a NaN weight fails
`test_all_values_are_finite` and nothing else. If the reporting test is not part of the
run (deselected, or a user's own test module), the fixture *fails* instead, so a defect
can never disappear behind a skip.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pytest

from .sources import CheckpointSource
from .state import load_cached, resolve_device, state

#: problem kind -> the conformance test that reports it (module::function)
OWNER_TESTS = {
    "load": "test_load.py::test_checkpoint_file_loads",
    "missing": "test_load.py::test_no_missing_keys",
    "unexpected": "test_load.py::test_no_unexpected_keys",
    "shape": "test_shapes.py::test_every_tensor_has_the_shape_its_spec_implies",
    "nonfinite": "test_load.py::test_all_values_are_finite",
    "bn_variance": "test_load.py::test_batchnorm_variances_are_positive",
    "name": "test_variant.py::test_file_name_agrees_with_the_tensors",
}
#: the kinds that stop the reference model from being built (a wrong name does not)
ALL_KINDS = tuple(k for k in OWNER_TESTS if k not in ("load", "name"))
KEY_KINDS = ("missing", "unexpected", "shape")

#: deterministic sample batch: 4 images of 256x256, standard normal (like normalised images)
SAMPLE_SHAPE = (4, 3, 256, 256)
SAMPLE_SEED = 20230


def selected_name(nodeid: str, ckpt_id: str) -> str:
    """`<module file>::<function>[<ckpt id>]` for a node id (used to know who reports what)."""
    path, _, rest = nodeid.partition("::")
    func = rest.split("[", 1)[0]
    return f"{Path(path).name}::{func}[{ckpt_id}]"


def defer_to_owner(request: pytest.FixtureRequest, source: CheckpointSource, kind: str, detail: str) -> None:
    """Skip when the test owning `kind` runs for this checkpoint; fail when it does not."""
    owner = OWNER_TESTS[kind]
    if f"{owner}[{source.id}]" in state(request.config).selected:
        pytest.skip(f"checkpoint {source.id}: {detail} (reported by {owner})")
    pytest.fail(f"checkpoint {source.id}: {detail} ({owner}, which reports this, is not part of this run)",
                pytrace=False)


def require_clean(request: pytest.FixtureRequest, source: CheckpointSource, ckpt: Any,
                  kinds: Iterable[str] = ALL_KINDS) -> None:
    """Defer to the owning test when `ckpt` has problems of one of `kinds`."""
    for kind in kinds:
        hits = [p for p in ckpt.problems if p.kind == kind]
        if hits:
            more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
            defer_to_owner(request, source, kind, f"{kind} problem at key {hits[0].key!r}{more}")


@pytest.fixture(scope="session")
def convnextpose_ckpt_source(request: pytest.FixtureRequest) -> CheckpointSource:
    """The checkpoint under test (parametrized by the plugin; see `get_checkpoints`)."""
    if not hasattr(request, "param"):
        pytest.fail("convnextpose_ckpt_source is parametrized by the convnextpose plugin; it was requested without a "
                    "parameter (is the plugin enabled?)", pytrace=False)
    return request.param


@pytest.fixture(scope="session")
def convnextpose_ckpt_path(convnextpose_ckpt_source: CheckpointSource) -> Path:
    """Path of the checkpoint file (or folder) under test."""
    return convnextpose_ckpt_source.path


@pytest.fixture(scope="session")
def convnextpose_ckpt_load_result(request: pytest.FixtureRequest, convnextpose_ckpt_source: CheckpointSource) -> Any:
    """The `Checkpoint`, or the `CheckpointError` that refused it (never raises)."""
    return load_cached(request.config, convnextpose_ckpt_source)


@pytest.fixture(scope="session")
def convnextpose_ckpt(request: pytest.FixtureRequest, convnextpose_ckpt_source: CheckpointSource,
                      convnextpose_ckpt_load_result: Any) -> Any:
    """`load_checkpoint(path, joint_num=--joints, head_upsample=--head-upsample)`.

    A file that cannot be loaded is reported by test_checkpoint_file_loads; dependants skip."""
    from ..errors import CheckpointError

    if isinstance(convnextpose_ckpt_load_result, CheckpointError):
        defer_to_owner(request, convnextpose_ckpt_source, "load",
                       f"could not be loaded: {convnextpose_ckpt_load_result}")
    return convnextpose_ckpt_load_result


@pytest.fixture(scope="session")
def convnextpose_ckpt_spec(convnextpose_ckpt: Any) -> Any:
    """The checkpoint's `reference_model.ArchSpec`."""
    return convnextpose_ckpt.spec


@pytest.fixture(scope="session")
def convnextpose_torch_device(pytestconfig: pytest.Config) -> Any:
    """`torch.device` from `--device` (auto: cuda when available, else cpu); xdist worker gwK
    uses `cuda:(K mod GPU count)`."""
    from .xdist_groups import worker_index

    return resolve_device(state(pytestconfig).options.device, worker_index(pytestconfig))


@pytest.fixture(scope="session")
def convnextpose_ref_model(request: pytest.FixtureRequest, convnextpose_ckpt_source: CheckpointSource,
                           convnextpose_ckpt: Any, convnextpose_torch_device: Any) -> Any:
    """Reference model for the checkpoint's spec, strictly loaded, in eval mode, on `convnextpose_torch_device`."""
    st = state(request.config)
    if convnextpose_ckpt_source.path not in st.models:
        require_clean(request, convnextpose_ckpt_source, convnextpose_ckpt)
        st.models.clear()  # one model at a time: pytest groups tests by checkpoint
        st.outputs.clear()
        st.models[convnextpose_ckpt_source.path] = build_reference_model(convnextpose_ckpt, convnextpose_torch_device)
    return st.models[convnextpose_ckpt_source.path]


def build_reference_model(ckpt: Any, device: Any) -> Any:
    from ..checkpoint.model import reference_model_for

    try:
        return reference_model_for(ckpt.spec, ckpt.state_dict, device)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        pytest.fail("strict load into the reference model failed although the loader reported no problems: "
                    + " ".join(line.strip() for line in first[:3]), pytrace=False)


@pytest.fixture(scope="session")
def convnextpose_sample_inputs(convnextpose_torch_device: Any) -> Any:
    """Deterministic float32 batch `SAMPLE_SHAPE` = (4, 3, 256, 256), standard normal, seed
    `SAMPLE_SEED` (own generator, independent of torch's global RNG), on `convnextpose_torch_device`."""
    import torch

    gen = torch.Generator().manual_seed(SAMPLE_SEED)
    return torch.randn(SAMPLE_SHAPE, generator=gen, dtype=torch.float32).to(convnextpose_torch_device)


@pytest.fixture(scope="session")
def convnextpose_ref_coords(request: pytest.FixtureRequest, convnextpose_ckpt_source: CheckpointSource,
                            convnextpose_ref_model: Any, convnextpose_sample_inputs: Any) -> Any:
    """`ref_model(sample_inputs)` computed once per checkpoint, shape (4, J, 3)."""
    import torch

    st = state(request.config)
    if convnextpose_ckpt_source.path not in st.outputs:
        with torch.no_grad():
            st.outputs[convnextpose_ckpt_source.path] = convnextpose_ref_model(convnextpose_sample_inputs)
    return st.outputs[convnextpose_ckpt_source.path]
