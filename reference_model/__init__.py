"""Clean reference implementation of ConvNeXtPose (Nguyen et al., IEEE Access 2023).

Computes exactly what the authors' code computes, configured by an `ArchSpec` instead
of a global `cfg`. See docs/spec.md §1-2.
"""
from .counting import count_conv_macs, count_gmac, count_parameters, count_state_values
from .joints import H36M_EVAL_JOINTS, H36M_FLIP_PAIRS, H36M_JOINT_NAMES, H36M_ROOT_JOINT
from .model import ConvNeXtPose, build_model
from .softargmax import flip_back, flip_test, soft_argmax
from .spec import ArchSpec, format_head_upsample, parse_head_upsample
from .variants import VARIANTS, Variant

__all__ = [
    "ArchSpec", "VARIANTS", "Variant", "build_model", "ConvNeXtPose",
    "soft_argmax", "flip_back", "flip_test", "count_parameters", "count_state_values",
    "count_conv_macs", "count_gmac", "H36M_JOINT_NAMES", "H36M_FLIP_PAIRS", "H36M_ROOT_JOINT",
    "H36M_EVAL_JOINTS", "parse_head_upsample", "format_head_upsample",
]
