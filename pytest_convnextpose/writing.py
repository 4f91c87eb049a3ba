"""Write a Python object (nested dicts of tensors, ints, strings) in every container we read.

Used by tests (and engineers) to produce checkpoints in each layout of SPEC §3 without the
original training code. Writers use torch's own serializer (or `pickle`, `tarfile`, `safetensors`)
so that what the reader reads was produced independently of it.

Containers: `torch-zip` (any root name), `torch-legacy`, `tar-directory` (a tar of the unzipped
checkpoint folder), `directory` (that folder itself), `pickle` (`pickle.dumps`, storages through
`torch.storage._load_from_bytes`), `safetensors` (flat tensor dicts only).
"""
from __future__ import annotations

import contextlib
import io
import pickle
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

CONTAINERS = ("torch-zip", "torch-legacy", "tar-directory", "directory", "pickle", "safetensors")


def write_container(obj: Any, path: str | Path, container: str, *, root_name: Optional[str] = None,
                    location: str = "cpu", metadata: Optional[dict[str, str]] = None) -> Path:
    """Write `obj` to `path` as `container`; returns the path.

    root_name: folder name inside zip/tar/folder layouts (default `archive`, torch's own for buffers;
               the released files use e.g. `snapshot_83.pth`). For `directory`, `path` is the folder
               holding `data.pkl` unless root_name is given, then `path/root_name/` holds it.
    location:  storage location tag written into torch layouts, e.g. `cuda:0` to reproduce
               GPU-trained snapshots without a GPU.
    metadata:  safetensors `__metadata__` (strings only).
    """
    path = Path(path)
    if container not in CONTAINERS:
        raise ValueError(f"unknown container {container!r}; expected one of {', '.join(CONTAINERS)}")
    if container == "safetensors":
        _write_safetensors(obj, path, metadata)
    elif container == "torch-legacy":
        with _location_tag(location):
            torch.save(obj, path, _use_new_zipfile_serialization=False)
    elif container == "pickle":
        with _location_tag(location):
            path.write_bytes(pickle.dumps(obj))
    elif container == "torch-zip":
        path.write_bytes(torch_zip_bytes(obj, root_name or "archive", location))
    elif container == "tar-directory":
        _write_tar(torch_zip_bytes(obj, root_name or "archive", location), path, root_name or "archive")
    else:
        _write_folder(torch_zip_bytes(obj, root_name or "archive", location), path, root_name)
    return path


def torch_zip_bytes(obj: Any, root_name: str = "archive", location: str = "cpu") -> bytes:
    """`torch.save` zip bytes whose records live under `root_name/`.

    torch names the root after the file it writes (its name minus the last extension), so we save
    to a scratch file named to give the requested root.
    """
    if not root_name or "/" in root_name or root_name in (".", ".."):
        raise ValueError(f"bad root name {root_name!r}")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / f"{root_name}.tmp"
        with _location_tag(location):
            torch.save(obj, scratch)
        data = scratch.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
    if not all(n.startswith(root_name + "/") for n in names):
        raise RuntimeError(f"torch wrote roots {sorted({n.split('/')[0] for n in names})}, not {root_name!r}")
    return data


def _members(zip_bytes: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:  # our own freshly written archive
        for info in zf.infolist():
            yield info.filename, zf.read(info)


def _write_tar(zip_bytes: bytes, path: Path, root_name: str) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in _members(zip_bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def _write_folder(zip_bytes: bytes, path: Path, root_name: Optional[str]) -> None:
    for name, data in _members(zip_bytes):
        rel = name.split("/", 1)[1]
        target = path / root_name / rel if root_name else path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _write_safetensors(obj: Any, path: Path, metadata: Optional[dict[str, str]]) -> None:
    from safetensors.torch import save_file

    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in obj.items()):
        raise ValueError("safetensors holds a flat dict of str -> tensor only")
    save_file({k: v.detach().contiguous() for k, v in obj.items()}, str(path), metadata=metadata)


@contextlib.contextmanager
def _location_tag(location: str) -> Iterator[None]:
    """Make torch.save tag CPU storages with `location` (e.g. `cuda:0`) for the duration."""
    if location == "cpu":
        yield
        return
    registry = torch.serialization._package_registry
    entry = (-1, lambda storage: location if storage.device.type == "cpu" else None, lambda s, loc: None)
    registry.insert(0, entry)
    try:
        yield
    finally:
        registry.remove(entry)
