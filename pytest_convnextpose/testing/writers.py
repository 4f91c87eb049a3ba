"""Write a Python object (nested dicts of tensors, ints, strings) in every container we read.

Used by tests (and engineers) to produce checkpoints in each layout of docs/spec.md §3 without the
original training code. Writers use torch's own serializer (or `pickle`, `tarfile`, `safetensors`)
so that what the reader reads was produced independently of it.

Containers: `torch-zip` (any root name), `torch-legacy`, `torch-tar` (torch's pre-1.0 tar format,
which torch no longer writes: laid out here as torch's reader `legacy_load` expects it),
`tar-directory` (a tar of the unzipped checkpoint folder), `directory` (that folder itself),
`pickle` (`pickle.dumps`, storages through `torch.storage._load_from_bytes`), `safetensors` (flat
tensor dicts only).
"""
from __future__ import annotations

import contextlib
import io
import itertools
import pickle
import struct
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import torch

CONTAINERS = ("torch-zip", "torch-legacy", "torch-tar", "tar-directory", "directory", "pickle", "safetensors")


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
    elif container == "torch-tar":
        path.write_bytes(torch_tar_bytes(obj, location))
    elif container == "pickle":
        with _location_tag(location):
            path.write_bytes(pickle.dumps(obj))
    elif container == "torch-zip":
        path.write_bytes(torch_zip_bytes(obj, root_name or "archive", location))
    elif container == "tar-directory":
        _write_tar(torch_zip_bytes(obj, root_name or "archive", location), path)
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


# -- the pre-1.0 torch tar format ----------------------------------------------------------------
#: dtype -> the type-name stem old torch used (`torch.FloatStorage`, `torch.FloatTensor`)
_LEGACY_TYPE_STEMS = {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half",
                      torch.bfloat16: "BFloat16", torch.int64: "Long", torch.int32: "Int", torch.int16: "Short",
                      torch.int8: "Char", torch.uint8: "Byte", torch.bool: "Bool"}


def torch_tar_bytes(obj: Any, location: str = "cpu", *, storage_views: bool = False) -> bytes:
    """`obj` in torch's pre-1.0 tar format: a PAX tar of `torch_tar_members(obj, ...)`, in torch's order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:  # writing our own bytes
        _add_files(tar, torch_tar_members(obj, location, storage_views=storage_views))
    return out.getvalue()


def torch_tar_members(obj: Any, location: str = "cpu", *, storage_views: bool = False) -> list[tuple[str, bytes]]:
    """The members `sys_info`, `pickle`, `tensors`, `storages` of `obj` in torch's pre-1.0 tar format.

    Torch no longer writes this format, so the layout follows its reader (`legacy_load` inside
    `torch.serialization._legacy_load`), which `torch.load` still runs: tests load our output with
    it. Keys are small ints (old torch used `_cdata` pointers); tensors are pickled as persistent
    ids `str(key)`; protocol 2 as old torch used.

    storage_views: put each tensor on a storage *view* of its root storage (the `storages` member's
    trailing view list), starting at the tensor's offset, to exercise that part of the format.
    """
    if sys.byteorder != "little":
        raise RuntimeError("the torch-tar writer lays out little-endian bytes only")
    layout = _TarLayout(location, storage_views)
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = layout.tensor_id  # type: ignore[method-assign]
    pickler.dump(obj)
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}
    return [("sys_info", pickle.dumps(sys_info, protocol=2)), ("pickle", buf.getvalue()),
            ("tensors", layout.tensors_member()), ("storages", layout.storages_member())]


class _TarLayout:
    """Tensors and storages met while pickling, and the `tensors`/`storages` members built from them."""

    def __init__(self, location: str, storage_views: bool) -> None:
        self.location = location
        self.storage_views = storage_views
        self.keys = itertools.count(1)
        self.tensors: dict[int, tuple[int, int, torch.Tensor, int]] = {}  # id -> key, storage key, tensor, offset
        self.roots: dict[int, tuple[int, torch.Tensor]] = {}  # data_ptr -> key, flat storage
        self.views: list[tuple[int, int, int, int]] = []

    def _type(self, dtype: torch.dtype, kind: str) -> type:
        module = torch.cuda if self.location.startswith("cuda") else torch
        return getattr(module, _LEGACY_TYPE_STEMS[dtype] + kind)

    def tensor_id(self, obj: Any) -> Optional[str]:
        if not isinstance(obj, torch.Tensor):
            return None
        t = obj.detach()
        if id(obj) not in self.tensors:
            flat = torch.empty(0, dtype=t.dtype).set_(t.untyped_storage())
            root = self.roots.setdefault(t.untyped_storage().data_ptr(), (next(self.keys), flat))
            if root[1].dtype != t.dtype:
                raise ValueError("tensors of two dtypes share one storage")
            storage_key, offset = root[0], t.storage_offset()
            if self.storage_views:
                span = 1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride())) if t.numel() else 0
                storage_key = next(self.keys)
                self.views.append((storage_key, root[0], offset, span))
                offset = 0
            self.tensors[id(obj)] = (next(self.keys), storage_key, t, offset)
        return str(self.tensors[id(obj)][0])

    def tensors_member(self) -> bytes:
        out = [pickle.dumps(len(self.tensors), protocol=2)]
        for key, storage_key, t, offset in self.tensors.values():
            out.append(pickle.dumps((key, storage_key, self._type(t.dtype, "Tensor")), protocol=2))
            # ndim as torch reads it: an int32 and 4 bytes it skips
            out.append(struct.pack("<i", t.dim()) + bytes(4))
            out.append(struct.pack(f"<{2 * t.dim() + 1}q", *t.shape, *t.stride(), offset))
        return b"".join(out)

    def storages_member(self) -> bytes:
        out = [pickle.dumps(len(self.roots), protocol=2)]
        for key, flat in self.roots.values():
            out.append(pickle.dumps((key, self.location, self._type(flat.dtype, "Storage")), protocol=2))
            out.append(struct.pack("<q", flat.numel()) + flat.view(torch.uint8).numpy().tobytes())
        out.append(pickle.dumps(self.views, protocol=2))
        return b"".join(out)


def _members(zip_bytes: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:  # our own freshly written archive
        for info in zf.infolist():
            yield info.filename, zf.read(info)


def _write_tar(zip_bytes: bytes, path: Path) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_files(tar, _members(zip_bytes))


def _add_files(tar: tarfile.TarFile, members: Iterable[tuple[str, bytes]]) -> None:
    """Each (name, bytes) as a regular member, mode 0644, in the order given."""
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
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
