"""Resource limits of the reader. One frozen dataclass so tests can tighten them explicitly.

Why relative limits: a checkpoint's honest content is bounded by its own size (stored records,
safetensors buffers); only compression can make the in-memory form larger than the file, so the
inflation budget scales with the file and has a floor for small files that compress well.
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
    inflate_floor_bytes: int = 16 * 2**20     # DEFLATE budget for small files
    inflate_ratio: int = 8                    # ... and for larger ones: ratio x file size
    inflate_cap_bytes: int = 8 * 2**30        # never inflate more than this in total
    max_pickle_ops: int = 20_000_000          # opcodes executed over all pickles of one file
    max_long_bytes: int = 1024                # LONG1/LONG4 argument length
    max_load_from_bytes_depth: int = 1        # `_load_from_bytes` inside `_load_from_bytes`: no
    max_graph_nodes: int = 5_000_000          # objects visited with shared references expanded
    max_graph_depth: int = 200                # container nesting of the result
    max_tensor_dims: int = 64                 # torch's own limit on dimensions
    max_members: int = 200_000                # zip entries / tar members / directory files
    max_tar_records: int = 200_000            # storages, views or tensors listed by a pre-1.0 torch tar
    max_name_bytes: int = 4096                # one member name
    max_safetensors_header: int = 100 * 2**20  # the safetensors library's own limit


DEFAULT_LIMITS = Limits()


def inflate_budget(limits: Limits, file_size: int) -> int:
    """Total bytes that DEFLATE records of a file of `file_size` bytes may inflate to."""
    return min(limits.inflate_cap_bytes, max(limits.inflate_floor_bytes, limits.inflate_ratio * file_size))
