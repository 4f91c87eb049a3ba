"""Library level: the NumPy port, the adapter, parity statistics and the mistake diagnosis.

Expected values come from the golden files (the authors' original code) or from
arithmetic shown in the test, never from the code under test.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_convnextpose.implementations.compare import compare_coords
from pytest_convnextpose.implementations.diagnose import diagnose_network
from pytest_convnextpose.checkpoint.model import reference_model_for
from pytest_convnextpose.implementations.adapter import ImplementationError, load_factory, wrap

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import wrong_impls  # noqa: E402

TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
TINY_EXPECTED = TESTS / "data" / "tiny_expected.pt"


@pytest.fixture(scope="module")
def tiny():
    from pytest_convnextpose import load_checkpoint

    return load_checkpoint(TINY)


@pytest.fixture(scope="module")
def golden():
    return torch.load(TINY_EXPECTED, weights_only=True)


def test_numpy_port_reproduces_the_original_code(tiny, golden):
    got = wrong_impls.faithful(tiny)(golden["input"].numpy())
    stats = compare_coords(got, golden["coords"].numpy(), atol=1e-4, rtol=0)
    assert stats.ok, stats.summary()


def test_numpy_port_flip_test_reproduces_the_original_code(tiny, golden):
    got = wrong_impls.faithful(tiny).flip_test(golden["input"].numpy())
    stats = compare_coords(got, golden["coords_flip_test"].numpy(), atol=1e-4, rtol=0)
    assert stats.ok, stats.summary()


@pytest.mark.parametrize("name", sorted(wrong_impls.WRONG))
def test_each_porting_mistake_is_named_as_the_cause(name, tiny, golden):
    x = golden["input"].numpy()
    actual = getattr(wrong_impls, name)(tiny)(x)
    ref = reference_model_for(tiny.spec, tiny.state_dict)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    stats = compare_coords(actual, expected)
    assert not stats.ok, f"{name}: expected a parity failure, got max error {stats.max_abs:.3g}"
    diag = diagnose_network(ref, tiny.spec, x, actual, expected, 1e-3)
    assert diag.exact, f"{name}: {diag.text()}"
    assert wrong_impls.WRONG[name] in diag.text(), f"{name}: {diag.text()}"


def test_parity_stats_name_the_worst_joint_and_coordinate():
    expected = np.zeros((2, 18, 3))
    actual = expected.copy()
    actual[1, 3, 0] = 0.5  # joint 3 is R_Ankle; coordinate 0 is x
    actual[0, 0, 2] = 0.1
    stats = compare_coords(actual, expected, atol=1e-3, rtol=0)
    assert (stats.worst_sample, stats.worst_joint, stats.worst_joint_name, stats.worst_coord_name) == \
        (1, 3, "R_Ankle", "x")
    assert stats.max_abs == 0.5
    assert stats.mean_abs == pytest.approx(0.6 / 108)
    assert stats.num_bad == 2
    assert "R_Ankle" in stats.summary() and "max error 0.5" in stats.summary()


def test_parity_stats_treat_nan_as_a_failure():
    actual = np.zeros((1, 18, 3))
    actual[0, 5, 1] = np.nan
    stats = compare_coords(actual, np.zeros((1, 18, 3)))
    assert not stats.ok and (stats.worst_joint, stats.worst_coord) == (5, 1)


def test_adapter_gives_modules_tensors_and_callables_arrays():
    seen = {}

    class Mod(torch.nn.Module):
        def forward(self, x):
            seen["module"] = type(x)
            return torch.zeros(x.shape[0], 18, 3)

    def fn(x):
        seen["callable"] = type(x)
        return np.zeros((x.shape[0], 18, 3), np.float32)

    def fn_torch(x):
        seen["torch"] = type(x)
        return torch.zeros(x.shape[0], 18, 3)
    fn_torch.accepts = "torch"

    x = np.zeros((2, 3, 64, 64), np.float32)
    for obj, name in ((Mod(), "module"), (fn, "callable"), (fn_torch, "torch")):
        out = wrap(obj, name)(x)
        assert isinstance(out, np.ndarray) and out.shape == (2, 18, 3)
    assert seen == {"module": torch.Tensor, "callable": np.ndarray, "torch": torch.Tensor}


@pytest.mark.parametrize("target, message", [
    ("no_colon", "expected MODULE:FACTORY"),
    ("surely_not_a_module_xyz:f", "not found"),
    ("wrong_impls:not_there", "has no attribute"),
    ("wrong_impls:FLIP_PAIRS", "not callable"),
])
def test_bad_impl_targets_are_one_line_errors(target, message):
    with pytest.raises(ImplementationError, match=message):
        load_factory(target)


def test_factory_may_be_named_by_file_path(tiny):
    factory = load_factory(f"{TESTS / 'wrong_impls.py'}:faithful")
    assert factory(types.SimpleNamespace(state_dict=tiny.state_dict, spec=tiny.spec)).spec == tiny.spec
