"""Layer 2, objects -> a `Checkpoint`: unwrap, canonical keys, spec inference, problems.

`load_checkpoint(path)` reads through `reading`, then `unwrap` finds the state dict,
`dialects` maps its keys to the canonical form (and back), `infer` reads the `ArchSpec`
from tensor shapes and lists `Problem`s, `shapes` gives the shapes a spec implies,
`metadata_keys` names what converted files record, and `model` builds the reference model
a checkpoint loads into.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_checkpoint": "load", "checkpoint_from_object": "load", "Checkpoint": "load",
    "Problem": "problems", "Dialect": "dialects", "canonical_shapes": "shapes",
    "reference_model_for": "model",
})
