"""One account of work and memory per read, charged by every stage that reads the file.

Why one account: an attacker who cannot exceed any single limit can still multiply small costs
(one shared `_load_from_bytes` payload called a thousand times, a million tensors rebuilt from one
memoised call, a DEFLATE'd pickle of millions of cheap opcodes). So every allocation and every
created object is charged here, from the container layer (inflated records) through the pickle
machine (objects, memo entries, storages, tensors) to the graph check (tensor values handed out,
shared references expanded), against limits proportional to the file's size (`limits.py`).

Charges are estimates of CPython/torch object sizes, rounded up: they bound memory, they do not
measure it. `deferred` holds a refusal found while reading that must not hide a more specific one
found later (a pickle torch.load would not read is reported after the structure checks).
"""
from __future__ import annotations

from typing import Optional

from ..errors import CheckpointError, ResourceLimitError
from .limits import Limits

#: charge per pickle operation (a stack slot and the interpreter's own allocations)
OP_BYTES = 16
#: charge per created container, string or number object, per memo entry, per dict item
OBJECT_BYTES = 128
ITEM_BYTES = 48
#: charge per tensor or storage object (torch's TensorImpl, storage and Python wrapper: ~600 bytes)
TENSOR_BYTES = 1024
MIB = 2**20


class Budget:
    """The running account of one read of a file of `file_size` bytes."""

    def __init__(self, limits: Limits, file_size: int) -> None:
        self.limits = limits
        self.file_size = file_size
        self.max_bytes = limits.memory_ratio * file_size + limits.memory_floor_bytes
        self.max_ops = min(limits.max_pickle_ops,
                           limits.pickle_ops_floor + file_size // limits.pickle_bytes_per_op)
        self.max_view_bytes = limits.view_ratio * file_size + limits.view_floor_bytes
        self.charged = 0
        self.ops = 0
        self.depth = 0  # nesting of `_load_from_bytes` payloads
        self.deferred: Optional[CheckpointError] = None

    def charge(self, nbytes: int, error: type[ResourceLimitError], what: str, offset: Optional[int] = None) -> None:
        """Add `nbytes` to the account; raise `error` (the caller's layer) once it is spent."""
        self.charged += nbytes
        if self.charged + self.ops * OP_BYTES > self.max_bytes:
            raise error(f"{what}: reading this {self.file_size}-byte file would take more than "
                        f"{self.max_bytes // MIB} MiB of memory ({self.limits.memory_ratio} x its size + "
                        f"{self.limits.memory_floor_bytes // MIB} MiB)", offset=offset)

    def remaining(self) -> int:
        """Bytes the memory account has left (negative once spent): the most a decompressor may produce next."""
        return self.max_bytes - self.charged - self.ops * OP_BYTES

    def over_ops(self) -> bool:
        """True once the pickle operations also spent the memory account (checked every 64k ops)."""
        return self.charged + self.ops * OP_BYTES > self.max_bytes

    def defer(self, err: CheckpointError) -> None:
        """Remember the first refusal to report if nothing more specific is found."""
        if self.deferred is None:
            self.deferred = err

    def finish(self) -> None:
        """Raise the deferred refusal, if any (called once the whole file has been checked)."""
        if self.deferred is not None:
            raise self.deferred
