"""The fields of a torch storage persistent id, checked once for every pickle path that meets them.

Why shared: a record archive's `data.pkl` (`('storage', type, key, location, numel)`) and a legacy
stream (the same plus a view field) name storages alike; one check keeps their refusals identical.
"""
from __future__ import annotations

import torch

from .errors import ForbiddenPickleError, PickleCorruptError
from .tensors import STORAGE_DTYPES
from .unpickler import Global


def storage_dtype(stype: object, key: object, location: object, numel: object, *, what: str,
                  offset: int) -> torch.dtype:
    """The element dtype of a storage id whose type is an allowed `torch.<T>Storage` and whose
    key and location are strings and element count a non-negative int; refuses anything else."""
    if not isinstance(stype, Global) or stype.module != "torch" or stype.name not in STORAGE_DTYPES:
        raise ForbiddenPickleError(f"{what}: storage type {stype!r} not allowed", offset=offset)
    if type(key) is not str or type(location) is not str or type(numel) is not int or numel < 0:
        raise PickleCorruptError(f"{what}: malformed storage id", offset=offset)
    return STORAGE_DTYPES[stype.name]
