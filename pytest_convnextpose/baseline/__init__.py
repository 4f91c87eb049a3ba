"""`--baseline`: what changed between a candidate checkpoint and a baseline, and how much.

`compare` gives architecture, per-tensor and output drift; `mpjpe` adds the Human3.6M
MPJPE of both when the data is given.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "compare_checkpoints": "compare", "BaselineComparison": "compare", "mpjpe_difference": "mpjpe",
})
