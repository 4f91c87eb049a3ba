"""The reference model a checkpoint loads into: built, strictly loaded, in eval mode.

One definition for everything that runs a checkpoint (the plugin's fixtures, conversion
checks, ONNX export, baseline comparison, Human3.6M evaluation, implementation checks),
so all of them compute with the same network and the same strictness: a state dict that
does not fit raises torch's own `RuntimeError` naming the keys, never a silent partial load.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch

from reference_model import ArchSpec, build_model


def reference_model_for(spec: ArchSpec, state_dict: Mapping[str, torch.Tensor], device: Any = "cpu") -> torch.nn.Module:
    """`build_model(spec)` with `state_dict` loaded strictly, in eval mode, on `device`."""
    model = build_model(spec)
    model.load_state_dict(dict(state_dict), strict=True)
    return model.eval().to(device)


def resolve_device(option: str, index: Optional[int] = None) -> torch.device:
    """A `--device` option (`auto`, `cpu`, `cuda`) as a torch.device. `index`: this process's place
    among its siblings (xdist worker `gwK`, torchrun's LOCAL_RANK): it gets `cuda:(index mod GPU count)`,
    so the processes of one run spread over the GPUs instead of sharing the first."""
    cuda = option == "cuda" or (option == "auto" and torch.cuda.is_available())
    if not cuda:
        return torch.device("cpu")
    if index is None:
        return torch.device("cuda")
    return torch.device("cuda", index % max(torch.cuda.device_count(), 1))


def run_reference(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Coordinates `(B, J, 3)` of `model` for a float32 NumPy batch, computed on the model's device."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)).cpu().numpy()
