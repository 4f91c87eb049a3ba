"""Helpers shared by the checkpoint tests: small specs, dialect layouts, and writers.

Writers use `pytest_convnextpose.testing.writers.write_container` (all containers; imported plainly,
so a broken writer fails these tests instead of shrinking their matrix). The released layout
(zip archive named `.tar`, zip root `snapshot_83.pth/`, storages tagged `cuda:0`) is written by
`save_released_layout` through the same writer, without a GPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import torch
from torch import nn

from pytest_convnextpose.checkpoint.dialects import Dialect
from pytest_convnextpose.testing.writers import write_container
from reference_model import ArchSpec
from reference_model.model import ConvNeXtBN

#: a tiny spec (77k parameters) like the golden `tiny` case; used for every matrix test
SMALL_SPEC = ArchSpec(depths=(1, 1, 2, 1), dims=(8, 16, 32, 64), head_channels=(16, 16, 16), head_kernels=(3, 3, 3),
                      head_upsample=(True, True, False), depth_dim=8, joint_num=18)

#: one dialect per docs/spec.md §3 rule, plus combinations; names are test ids
DIALECTS: dict[str, Dialect] = {
    "canonical": Dialect(),
    "module": Dialect(prefixes=("module.",)),
    "orig_mod": Dialect(prefixes=("_orig_mod.",)),
    "module+orig_mod": Dialect(prefixes=("module.", "_orig_mod.")),
    "orig_mod+module": Dialect(prefixes=("_orig_mod.", "module.")),
    "head_net": Dialect(head_prefix="head_net."),
    "sequential": Dialect(prefixes=("module.",), head_layout="sequential"),
    "modulelist": Dialect(head_layout="modulelist", head_sublayers="named"),
    "modulelist-indexed": Dialect(prefixes=("module.",), head_layout="modulelist", head_sublayers="indexed"),
    "head_net+sequential": Dialect(prefixes=("module.",), head_prefix="head_net.", head_layout="sequential"),
}


def assert_same_tensors(want: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor], what: str = "") -> None:
    """`got` holds exactly `want`'s keys, every tensor with the same dtype and bit-equal."""
    where = f"{what}: " if what else ""
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"{where}keys differ: missing {missing[:3]}, extra {extra[:3]}"
    for k in want:
        assert got[k].dtype == want[k].dtype, f"{where}{k} dtype {got[k].dtype}, expected {want[k].dtype}"
        assert torch.equal(got[k], want[k]), f"{where}tensor {k} not bit-equal to the expected one"


def save(obj: Any, path: Path, container: str, root_name: Optional[str] = None, location: str = "cpu") -> Path:
    """Write `obj` in `container` (storages tagged `location`); returns the path written.

    safetensors holds a flat tensor dict only, so a wrapper is dropped there (`wrapper` None)."""
    if container == "safetensors" and isinstance(obj, dict):
        obj = next((v for v in obj.values() if isinstance(v, dict)), obj)
    write_container(obj, path, container, root_name=root_name, location=location)
    return Path(path)


def save_released_layout(obj: Any, directory: Path, name: str = "ConvNeXtPose_X.tar") -> Path:
    """Write like the released files: a torch zip whose root is `snapshot_83.pth/` (the authors
    saved `snapshot_83.pth.tar`), storages tagged `cuda:0`, under a `.tar` name."""
    return write_container(obj, Path(directory) / name, "torch-zip", root_name="snapshot_83.pth", location="cuda:0")


# --------------------------------------------------------------------------- dialect layouts
class _SeqHead(nn.Module):
    """A head whose layers are `nn.Sequential(dwconv, norm, pwconv, ReLU, up)` (released M/L files)."""

    def __init__(self, spec: ArchSpec, head_list: bool, indexed: bool) -> None:
        super().__init__()
        in_ch, layers = spec.dims[-1], []
        for ch, k in zip(spec.head_channels, spec.head_kernels):
            parts = [nn.Conv2d(in_ch, in_ch, k, padding=k // 2, groups=in_ch), nn.BatchNorm2d(in_ch),
                     nn.Conv2d(in_ch, ch, 1)]
            layers.append(nn.Sequential(*parts) if indexed else _Named(*parts))
            in_ch = ch
        if head_list:
            self.deconv_layers = nn.ModuleList(layers)
        else:
            for i, layer in enumerate(layers, start=1):
                self.add_module(f"deconv_layers_{i}", layer)
        self.final_layer = nn.Conv2d(in_ch, spec.joint_num * spec.depth_dim, 1)


class _Named(nn.Module):
    def __init__(self, dw: nn.Module, norm: nn.Module, pw: nn.Module) -> None:
        super().__init__()
        self.dwconv, self.norm, self.pwconv = dw, norm, pw


def dialect_module(spec: ArchSpec, dialect: Dialect) -> nn.Module:
    """An nn.Module tree laid out as `dialect` says, built without the key mapper, so
    `load_state_dict(from_canonical(sd, dialect), strict=True)` is an independent check."""
    net = nn.Module()
    net.backbone = ConvNeXtBN(spec.depths, spec.dims)
    head_list = dialect.head_layout == "modulelist"
    indexed = dialect.head_layout == "sequential" or (head_list and dialect.head_sublayers == "indexed")
    net.add_module(dialect.head_prefix.rstrip("."), _SeqHead(spec, head_list, indexed))
    for prefix in reversed(dialect.prefixes):
        outer = nn.Module()
        outer.add_module(prefix.rstrip("."), net)
        net = outer
    return net


def all_tensors(obj: Any) -> Iterator[Any]:
    """Every tensor reachable in a nested dict/list (to show metadata holds none)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from all_tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from all_tensors(v)
