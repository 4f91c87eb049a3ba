"""Helpers for tests and benchmarks: seeded synthetic weights and writers for every container.

Shipped (like `numpy.testing`) so users' own tests and our benchmarks can build
checkpoints of any spec in any layout the reader accepts. Nothing in the loading path
imports this package.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "random_state_dict": "synthetic", "write_container": "writers",
})
