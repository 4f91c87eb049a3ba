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

from pytest_convnextpose.checkpoint.model import reference_model_for
from pytest_convnextpose.implementations.adapter import ImplementationError, build_implementation, load_factory, wrap
from pytest_convnextpose.implementations.checks import flip_diagnosis
from pytest_convnextpose.implementations.compare import compare_coords
from pytest_convnextpose.implementations.diagnose import diagnose_network

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


@pytest.fixture(scope="module")
def tiny_ref(tiny, golden):
    """The reference model and its output on the golden input (compared with the golden coords first)."""
    ref = reference_model_for(tiny.spec, tiny.state_dict)
    with torch.no_grad():
        expected = ref(golden["input"]).numpy()
    assert compare_coords(expected, golden["coords"].numpy(), atol=1e-4, rtol=0).ok
    return ref, expected


@pytest.mark.parametrize("name", sorted(wrong_impls.WRONG))
def test_each_porting_mistake_is_named_as_the_cause(name, tiny, golden, tiny_ref):
    x = golden["input"].numpy()
    impl = wrap(getattr(wrong_impls, name)(tiny), name)
    actual = impl(x)
    ref, expected = tiny_ref
    stats = compare_coords(actual, expected)
    assert not stats.ok, f"{name}: expected a parity failure, got max error {stats.max_abs:.3g}"
    diag = diagnose_network(ref, tiny.spec, x, actual, expected, 1e-3, impl=impl, state_dict=tiny.state_dict)
    assert diag.exact, f"{name}: {diag.text()}"
    assert wrong_impls.WRONG[name] in diag.text(), f"{name}: {diag.text()}"


@pytest.mark.parametrize("name", ["torch_port_head_not_loaded", "torch_port_float16"])
def test_what_a_wrong_module_holds_is_named(name, tiny, golden, tiny_ref):
    """strict=False with the fork's head names leaves the head's 24 tensors (3 layers x 8) unloaded;
    a .half() module holds float16 weights: both are read from the module itself."""
    x = golden["input"].numpy()
    impl = wrap(getattr(wrong_impls, name)(tiny), name)
    ref, expected = tiny_ref
    actual = impl(x)
    assert not compare_coords(actual, expected).ok
    text = diagnose_network(ref, tiny.spec, x, actual, expected, 1e-3, impl=impl, state_dict=tiny.state_dict).text()
    want = ("head weights never loaded: 24 of" if name.endswith("not_loaded") else
            "float16 inference cast back to float32: your module's weights are float16")
    assert want in text, text


@pytest.mark.parametrize("name", sorted(wrong_impls.WRONG_FLIP))
def test_each_flip_test_mistake_is_named(name, tiny, golden, tiny_ref):
    x = golden["input"].numpy()
    impl = wrap(getattr(wrong_impls, name)(tiny), name)
    ref, _ = tiny_ref
    actual = impl.flip_test(x)
    assert compare_coords(actual, golden["coords_flip_test"].numpy()).num_bad > 0
    text = flip_diagnosis(impl, tiny.spec, x, actual, 1e-3)
    assert text.startswith("likely cause:") and wrong_impls.WRONG_FLIP[name] in text, text


def test_load_errors_are_explained_in_the_checkpoints_terms(tiny):
    """PyTorch's own load_state_dict errors, from modules built with the wrong depth_dim or table."""
    with pytest.raises(ImplementationError) as info:
        build_implementation(wrong_impls.torch_port_depth_dim_load_error, "port:depth", tiny)
    text = str(info.value)
    first, cause = text.splitlines()[:2]
    assert "RuntimeError: Error(s) in loading state_dict" in first and "wrong_impls.py:" in first
    # 144 output channels = 18 joints x 8 depth bins in the checkpoint; the module was built with 8 // 2 = 4
    assert "144 output channels = 18 joints × 8 depth bins" in cause and "72 = 18 × 4" in cause, text
    assert "depth_dim = 8" in cause
    with pytest.raises(ImplementationError) as info:
        build_implementation(wrong_impls.torch_port_config_table, "port:table", tiny)
    text = str(info.value)
    assert f"your model has dims={wrong_impls.WRONG_TABLE['dims']}, the checkpoint dims=(8, 16, 32, 64)" in text
    assert f"your model has depths={wrong_impls.WRONG_TABLE['depths']}, the checkpoint depths=(1, 1, 2, 1)" in text


def test_a_factory_that_raises_is_one_line_at_the_users_frame(tiny):
    with pytest.raises(ImplementationError) as info:
        build_implementation(wrong_impls.raising_factory, "port:raise", tiny)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith("--impl 'port:raise': the factory raised ValueError: no weights for this variant (")
    assert line.endswith(f"wrong_impls.py:{wrong_impls.raising_factory.__code__.co_firstlineno + 1})")


def test_input_size_is_read_from_modules_too(tiny):
    impl = wrap(wrong_impls.torch_port(tiny), "port")
    assert impl.kind == "module" and impl.input_size == wrong_impls.TINY_SIZE


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
