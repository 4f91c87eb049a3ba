"""Resource limits of the reader. One frozen dataclass so tests can tighten them explicitly.

Why relative limits: a checkpoint's honest content is bounded by its own size (stored records,
safetensors buffers, the pickle that names them), so the work and memory a read may take scale
with the file, with a floor for small files. `budget.Budget` turns these numbers into one running
account per read; SECURITY.md states the promise they keep (peak memory at most the interpreter's
baseline + 4 x the file size + 64 MiB, at most 30 s for files up to 100 MB on 2 cores).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Every bound the reader enforces (tests tighten them explicitly).

    max_load_from_bytes_depth: how many `torch.storage._load_from_bytes` calls may be nested. Only
    1 is supported: the payload of a `_load_from_bytes` is read with no `_load_from_bytes` handler,
    so a nested call is refused whatever this says; a value below 1 refuses every call.
    """

    max_file_bytes: int = 64 * 2**30          # refuse absurd inputs before reading them
    # One memory account per read: inflated records, storages allocated or copied, objects and
    # tensors created, memo entries. The file's own bytes are held once besides (the read buffer).
    memory_ratio: int = 2                     # bytes charged per byte of file ...
    memory_floor_bytes: int = 48 * 2**20      # ... plus this
    # Pickle operations over all pickles of one file: about 1 us each in our opcode machine.
    pickle_ops_floor: int = 1_000_000         # any file may run this many ...
    pickle_bytes_per_op: int = 8              # ... plus one per this many bytes of file ...
    max_pickle_ops: int = 10_000_000          # ... and never more than this (~10 s)
    # Tensor values handed to the layers above, shared references expanded (each is checked there).
    view_ratio: int = 4                       # bytes of tensor views per byte of file ...
    view_floor_bytes: int = 64 * 2**20        # ... plus this
    max_empty_extent: int = 2**24             # product of the non-zero sizes of an empty tensor
    max_long_bytes: int = 1024                # LONG1/LONG4 argument length
    max_load_from_bytes_depth: int = 1        # `_load_from_bytes` inside `_load_from_bytes`: no
    max_graph_nodes: int = 5_000_000          # objects visited with shared references expanded
    max_graph_depth: int = 200                # container nesting of the result
    max_tensor_dims: int = 64                 # torch's own limit on dimensions
    max_members: int = 200_000                # zip entries / tar members / directory files
    max_tar_records: int = 200_000            # storages, views or tensors listed by a pre-1.0 torch tar
    max_name_bytes: int = 4096                # one member name
    max_pax_bytes: int = 2**20                # one pax extended header
    max_safetensors_header: int = 100 * 2**20  # the safetensors library's own limit (also charged)


DEFAULT_LIMITS = Limits()
