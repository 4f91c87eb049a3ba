"""pytest-convnextpose: read, verify and test ConvNeXtPose checkpoints.

Public names (docs/spec.md, "The contract"): `load_checkpoint`, `Checkpoint`, `Problem`,
`CheckpointError` and its subclasses. The error classes are light and imported at once;
the loader (which imports torch) only when first used, because the pytest plugin imports
this package in every pytest run. docs/architecture.md maps the sub-packages.
"""
from ._lazy import lazy_exports
from .errors import (
                     ArchitectureError,
                     CheckpointError,
                     CorruptFileError,
                     ForeignCheckpointError,
                     ResourceLimitError,
                     UnknownFormatError,
                     UnreadableFileError,
                     UnsafeContentError,
                     UnsupportedFormatError,
)

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_checkpoint": "checkpoint", "Checkpoint": "checkpoint", "Problem": "checkpoint",
})

__all__ = [
    "load_checkpoint", "Checkpoint", "Problem", "CheckpointError", "UnreadableFileError",
    "UnsupportedFormatError", "UnknownFormatError", "CorruptFileError", "UnsafeContentError",
    "ResourceLimitError", "ForeignCheckpointError", "ArchitectureError", "__version__",
]
