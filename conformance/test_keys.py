"""Keys: the canonical form maps back to the file's own dialect and forward again unchanged,
and it loads strictly into the authors' model layout (SPEC §3-4)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_convnextpose.plugin.fixtures import KEY_KINDS, require_clean
from pytest_convnextpose.checkpoint.dialects import dialect_key, from_canonical, to_canonical
from pytest_convnextpose.checkpoint.shapes import canonical_shapes
from reference_model import build_model

pytestmark = pytest.mark.conformance


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN == NaN here: a round trip must not change a single bit)."""
    if a is b:
        return True
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


def test_canonical_to_dialect_to_canonical_is_identity(ckpt):
    back = to_canonical(from_canonical(ckpt.state_dict, ckpt.dialect), ckpt.dialect)
    assert list(back) == list(ckpt.state_dict), (
        f"round trip through dialect {ckpt.dialect.to_dict()} changed the keys: "
        f"lost {sorted(set(ckpt.state_dict) - set(back))[:5]}, gained {sorted(set(back) - set(ckpt.state_dict))[:5]}")
    changed = [k for k in ckpt.state_dict if not _same_bits(ckpt.state_dict[k], back[k])]
    assert not changed, f"round trip changed the values of {changed[:5]}"


def test_writing_back_the_dialect_reproduces_the_file_keys(ckpt):
    """Each canonical key, spelled in the detected dialect, is the key the file used."""
    origin = ckpt.key_origin
    assert origin, (f"{ckpt.path}: the loader recorded no original key names (Checkpoint.key_origin is empty) "
                    f"for {len(ckpt.state_dict)} loaded keys; load_checkpoint always fills it")
    known = canonical_shapes(ckpt.spec)
    # only the BatchNorm counters the loader filled for a pre-0.4.1 file have no key in the file
    filled = ckpt.metadata.get("num_batches_tracked_filled", 0)
    unrecorded = [k for k in ckpt.state_dict if k not in origin
                  and not (filled and k.endswith(".num_batches_tracked"))]
    assert not unrecorded, f"no original key name recorded for {unrecorded[:5]} ({len(unrecorded)} keys)"
    wrong = [f"{k}: file has {origin[k]!r}, dialect gives {dialect_key(k, ckpt.dialect)!r}"
             for k in ckpt.state_dict if k in known and k in origin and dialect_key(k, ckpt.dialect) != origin[k]]
    assert not wrong, f"dialect {ckpt.dialect.to_dict()} does not reproduce the file's keys: " + "; ".join(wrong[:5])


class _DataParallelLayout(nn.Module):
    """The authors train under `nn.DataParallel`, whose state dict prefixes every key with `module.`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.module = model


def test_canonical_form_loads_strictly_into_authors_layout(request, ckpt_source, ckpt):
    """SPEC §4: the canonical state dict loads strictly once `module.` is put back."""
    require_clean(request, ckpt_source, ckpt, KEY_KINDS)
    with torch.device("meta"):
        wrapped = _DataParallelLayout(build_model(ckpt.spec))
    try:
        wrapped.load_state_dict({"module." + k: v for k, v in ckpt.state_dict.items()}, strict=True, assign=True)
    except RuntimeError as exc:
        pytest.fail(f"strict load with 'module.' keys failed: {' '.join(str(exc).split())[:600]}", pytrace=False)
