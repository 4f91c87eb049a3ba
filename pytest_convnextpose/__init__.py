"""pytest-convnextpose: read, verify and test ConvNeXtPose checkpoints.

Public names (SPEC §5): `load_checkpoint`, `Checkpoint`, `CheckpointError` and its subclasses.
"""
from .errors import (ArchitectureError, CheckpointError, CorruptFileError, ForeignCheckpointError,
                     ResourceLimitError, UnknownFormatError, UnreadableFileError, UnsafeContentError,
                     UnsupportedFormatError)

__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing the plugin must not import torch-heavy modules early
    if name in ("load_checkpoint", "Checkpoint", "Problem"):
        from . import checkpoint
        return getattr(checkpoint, name)
    raise AttributeError(name)


__all__ = [
    "load_checkpoint", "Checkpoint", "Problem", "CheckpointError", "UnreadableFileError",
    "UnsupportedFormatError", "UnknownFormatError", "CorruptFileError", "UnsafeContentError",
    "ResourceLimitError", "ForeignCheckpointError", "ArchitectureError", "__version__",
]
