"""Storages and tensor views built from bytes, after their geometry is checked against those bytes.

Why here and not in torch: the bytes come from an untrusted file, so every declared element
count, offset, size and stride is compared with the bytes actually present *before* a tensor is
built. A view may not hold more elements than its storage (only a self-overlapping view, stride 0
for instance, can: a state dict never needs one, and 64 bytes could otherwise claim 2**122
elements for every layer above to check), and an empty view's other sizes are bounded, so no
element count torch computes can overflow. Tensors are zero-copy views of the file buffer when its
alignment allows (fast, and peak memory stays near the file size); otherwise the bytes are copied
once, charged to the read's budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import ResourceLimitError
from .budget import Budget
from .errors import GeometryError, PickleLimitError
from .limits import Limits

#: pickled storage class name (`torch.<name>`) -> element dtype
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}

#: dtypes that may appear as plain values (`torch.float32` pickled as a global)
DTYPE_NAMES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "complex64",
        "complex128",
        "float",
        "double",
        "half",
        "long",
        "int",
        "short",
    )
}


def itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


@dataclass
class Storage:
    """A typed storage: a flat 1-D tensor of `numel` elements, and where it came from."""

    key: str
    dtype: torch.dtype
    numel: int
    flat: torch.Tensor


def flat_from_bytes(
    view: memoryview,
    dtype: torch.dtype,
    *,
    budget: Budget,
    byteswap: bool = False,
    where: str = "",
    error: type[ResourceLimitError] = PickleLimitError,
) -> torch.Tensor:
    """A 1-D tensor over `view` (zero-copy when aligned and writable), validated for its dtype.

    `len(view)` must already be a multiple of the element size (callers check the geometry).
    A copy (read-only bytes, misaligned bytes, byte swapping) is charged to `budget`.
    """
    size = itemsize(dtype)
    if len(view) % size:
        raise GeometryError(f"storage {where} has {len(view)} bytes, not a multiple of {size}")
    if len(view) == 0:
        flat = torch.empty(0, dtype=dtype)
    else:
        if view.readonly:
            budget.charge(len(view), error, f"storage {where}")
            raw = torch.frombuffer(bytearray(view), dtype=torch.uint8)
        else:
            raw = torch.frombuffer(view, dtype=torch.uint8)
        if raw.data_ptr() % size or (byteswap and size > 1):
            budget.charge(len(view), error, f"storage {where}")
        if raw.data_ptr() % size:
            raw = raw.clone()  # misaligned in the file: copy once to an aligned buffer
        if byteswap and size > 1:
            raw = raw.view(-1, size).flip(-1).reshape(-1)  # flip copies: a fresh, aligned buffer
        flat = raw.view(dtype)
    if dtype == torch.bool and flat.numel() and int(flat.view(torch.uint8).max()) > 1:  # a reduction: no copy
        raise GeometryError(f"bool storage {where} holds bytes other than 0 and 1")
    return flat


def check_view(
    storage: Storage, offset: object, size: object, stride: object, *, limits: Limits, where: str
) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Check that a view (offset, size, stride) of `storage` stays inside its elements and holds no
    more elements than it (see the module docstring)."""
    max_dims = limits.max_tensor_dims
    if type(offset) is not int or offset < 0:
        raise GeometryError(f"tensor {where}: storage offset {offset!r} is not a non-negative int")
    if not _is_int_tuple(size) or not _is_int_tuple(stride):
        raise GeometryError(f"tensor {where}: size/stride must be tuples of non-negative ints")
    if len(size) != len(stride):
        raise GeometryError(f"tensor {where}: {len(size)} sizes but {len(stride)} strides")
    if len(size) > max_dims:
        raise GeometryError(f"tensor {where}: {len(size)} dimensions (limit {max_dims})")
    if offset > storage.numel:
        raise GeometryError(f"tensor {where}: offset {offset} beyond storage of {storage.numel} elements")
    check_extent(size, limits, f"tensor {where}")
    numel = math.prod(size)
    if numel > storage.numel:
        raise GeometryError(
            f"tensor {where}: a view of {numel} elements on a storage of {storage.numel} (a "
            "self-overlapping view larger than its storage, e.g. stride 0)"
        )
    if numel:
        last = offset + sum((s - 1) * st for s, st in zip(size, stride))
        if last >= storage.numel:
            raise GeometryError(f"tensor {where}: view reaches element {last} of a storage of {storage.numel} elements")
    return offset, tuple(size), tuple(stride)


def check_extent(size: tuple[int, ...], limits: Limits, where: str) -> None:
    """An empty tensor's other sizes are bounded: torch multiplies them (and overflows), and the
    layers above read architecture sizes from shapes."""
    extent = math.prod(max(s, 1) for s in size)
    if 0 in size and extent > limits.max_empty_extent:
        raise GeometryError(
            f"{where}: an empty tensor of shape {list(size)[:8]} (its other sizes multiply to "
            f"{extent}, limit {limits.max_empty_extent})"
        )


def view_of(
    storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], where: Optional[str] = None
) -> torch.Tensor:
    """The tensor for a checked view; sharing the storage's memory like torch.load does.

    `offset` counts from the storage's first element; `as_strided` counts from the start of the
    underlying buffer, which differs for a storage that is itself a slice (a storage view).
    Strides of dimensions of size 0 or 1 are normalised (they address nothing).
    Torch's own refusal (never expected after `check_view`) still becomes a `GeometryError`.
    """
    # a dimension of size 0 or 1 never moves through memory: its stride is set to what a contiguous
    # tensor would have, so no consumer meets a stride-0 singleton it cannot `view` (values unchanged)
    stride = tuple(st if sz > 1 else math.prod(size[i + 1 :]) for i, (sz, st) in enumerate(zip(size, stride)))
    try:
        return storage.flat.as_strided(size, stride, storage.flat.storage_offset() + offset)
    except RuntimeError as exc:
        raise GeometryError(
            f"tensor {where or ''}: torch refuses the view ({' '.join(str(exc).split())[:120]})"
        ) from None


def _is_int_tuple(value: object) -> bool:
    return isinstance(value, tuple) and all(type(v) is int and 0 <= v < 2**62 for v in value)
