"""The four published ConvNeXtPose variants and their published figures (docs/spec.md §2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .spec import ArchSpec


@dataclass(frozen=True)
class Variant:
    """A published variant: its exact spec and the figures the paper and files give."""

    name: str
    spec: ArchSpec
    num_parameters: int  # learnable parameters, exact
    num_state_values: int  # all state-dict values incl. BatchNorm buffers, exact
    gmac_256: float  # conv-only GMAC at 256x256, from docs/spec.md §2
    heatmap_256: tuple[int, int, int]  # (depth, height, width) at 256x256
    mpjpe_protocol2_mm: float
    pa_mpjpe_protocol1_mm: Optional[float]
    paper_gflops: Optional[float]
    paper_params_m: Optional[float]


def _spec(depths, dims, head, ups, depth_dim) -> ArchSpec:
    return ArchSpec(depths=depths, dims=dims, head_channels=head, head_kernels=(3,) * len(head),
                    head_upsample=ups, depth_dim=depth_dim, joint_num=18)


_SMALL = ((3, 3, 9, 3), (48, 96, 192, 384))

VARIANTS: dict[str, Variant] = {
    "XS": Variant("XS", _spec((2, 2, 6, 2), (40, 80, 160, 320), (128,) * 3, (True, True, False), 32),
                  3_528_008, 3_534_140, 0.815, (32, 32, 32), 56.61, None, None, 3.53),
    "S": Variant("S", _spec(*_SMALL, (256,) * 3, (True, True, False), 32),
                 7_438_976, 7_448_954, 1.738, (32, 32, 32), 51.80, None, None, None),
    "M": Variant("M", _spec(*_SMALL, (256,) * 3, (True, True, True), 64),
                 7_587_008, 7_596_986, 2.795, (64, 64, 64), 51.05, 34.5, 2.82, 7.59),
    "L": Variant("L", _spec(*_SMALL, (512,) * 3, (True, True, True), 64),
                 8_380_352, 8_391_354, 4.264, (64, 64, 64), 49.75, 32.8, 4.30, 8.38),
}
