"""The flip-test path is flip-equivariant: a property of `reference_model.flip_test` itself.

flip_test(flip(x)), mapped back with flip_back, equals flip_test(x): the x -> W-1-x map and the
left/right swaps are consistent with the model's own prediction of the mirrored image. It
holds for any weights, so it is a self-check of the tool (once in the conformance suite, where
no user's checkpoint could make it fail); it runs here on the golden checkpoints.
"""

from __future__ import annotations

import pytest
import torch

from pytest_convnextpose import load_checkpoint
from pytest_convnextpose.checkpoint.model import reference_model_for
from reference_model import H36M_FLIP_PAIRS, flip_back, flip_test

FLIP_TOL = 1e-4  # the two paths sum the same terms in a different order


@pytest.mark.parametrize("name", ["tiny", pytest.param("xs", marks=pytest.mark.slow)])
def test_flip_test_is_flip_equivariant(golden_case, name):
    case = golden_case(name)
    ckpt = load_checkpoint(case.checkpoint)
    model = reference_model_for(ckpt.spec, ckpt.state_dict)
    x = torch.randn((2, 3, *case.manifest["input_shape"]), generator=torch.Generator().manual_seed(0))
    _, w = ckpt.spec.heatmap_size(tuple(x.shape[2:]))
    with torch.no_grad():
        direct = flip_test(model, x, w, H36M_FLIP_PAIRS)
        mirrored = flip_back(flip_test(model, torch.flip(x, dims=(3,)), w, H36M_FLIP_PAIRS), w, H36M_FLIP_PAIRS)
    worst = float((mirrored - direct).abs().max())
    assert worst <= FLIP_TOL, (
        f"flip test of the mirrored image, mapped back: expected max abs <= {FLIP_TOL}, got {worst:.3g}"
    )
