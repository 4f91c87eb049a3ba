"""Layer 1: turn the bytes of a file into Python objects without executing anything from it.

Public entry point: `read_file(path, map_location="cpu") -> RawFile`. Everything above this layer
(key mapping, inference) works on `RawFile.obj`.

The layers a file passes, each with its own error classes (`reading.errors`):
  io        read the file (or folder) into memory once, regular files only (`file_io.py`);
  sniff     identify the format from the bytes (`sniff.py`), name what we do not load;
  wrapper   an archive wrapping a checkpoint (zip, tar, tar.gz, gzip download) is validated whole and
            its checkpoint member read through the layers below, on the same budget (`wrapped.py`,
            `gzip_format.py`);
  container validate zip (`zip_format.py`), tar (`tar_format.py`) or folder (`directory_format.py`) structure;
  pickle    run the allowlist pickle machine (`unpickler.py`, `pickles.py`, `legacy_format.py`; a
            TorchScript zip's `data.pkl` with inert `__torch__` stand-ins, `torchscript_format.py`; the
            members of a pre-1.0 torch tar, `torch_tar_format.py`);
  geometry  check every storage and view against the bytes present (`tensors.py`);
  safetensors  validate the header and tiling (`safetensors_format.py`);
  graph     check the result for cycles, size and types (`graph.py`).
Nothing here calls `pickle.load`, `torch.load`, or extracts an archive. Every stage of one read
charges one `budget.Budget` (memory and work proportional to the file's size). A refusal carries
the file's `sha256` once its bytes were read (`err.sha256`; None before that).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Mapping, Optional

import torch

from ..errors import CheckpointError, UnsupportedFormatError
from .archive import is_torchscript, split_root
from .budget import Budget
from .directory_format import read_directory
from .file_io import read_all
from .graph import check_graph
from .limits import DEFAULT_LIMITS, Limits
from .magic import is_torch_tar
from .pickles import load_legacy, load_plain_pickle, load_record_archive
from .safetensors_format import read_safetensors
from .sniff import HEAD_BYTES, identify
from .tar_format import read_tar
from .torch_tar_format import load_torch_tar
from .torchscript_format import load_torchscript
from .wrapped import SEPARATOR, Member, Opened, gzip_layers, gzip_member_name, open_container, split_member_path
from .zip_format import read_zip


@dataclass
class RawFile:
    """What a container held.

    container: one of `torch-zip`, `torch-legacy`, `torch-tar`, `tar-directory`, `directory`,
               `pickle`, `safetensors`, `torchscript` (docs/spec.md §5).
    obj:       the top-level object: a dict (wrapper or bare state dict) whose tensors are
               CPU/`map_location` torch tensors; nested dicts/lists/ints/floats/strings allowed.
    metadata:  container-level metadata (safetensors `__metadata__`, zip root name, ...).
    sha256:    hex digest of the file's bytes (for a directory: of its files, sorted by name,
               each hashed as name, NUL, 8-byte little-endian length, bytes).
    size:      bytes read.
    root:      the archive's root folder name (`archive`, `snapshot_83.pth`), "" where none.
    member:    for a checkpoint read from inside a wrapper (a zip, tar, tar.gz or gzip download), its
               name there; `metadata["archive"]` then says which archive (`path`, `format`, `sha256`,
               `size`) and `sha256`/`size` are the member's own bytes'. "" otherwise.
    """

    container: str
    obj: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0
    root: str = ""
    member: str = ""


def read_file(path: str | Path, map_location: Any = "cpu", *, limits: Limits = DEFAULT_LIMITS) -> RawFile:
    """Read a checkpoint file or folder. Raises a `CheckpointError` subclass naming `path` on refusal.

    map_location: a device (or its name) every tensor ends up on, or a dict mapping stored location
    tags to devices (torch.load style). Storages tagged `cuda:N` in the file never need CUDA: they
    are built on the CPU and moved only if asked.

    An archive that wraps one checkpoint (a zip, tar, tar.gz or gzip download) is read through; when
    `path` names nothing on disk, `ARCHIVE::MEMBER` names one member of such an archive (`wrapped.py`).
    """
    p = Path(path)
    device = _target_device(map_location)  # a bad map_location fails before the file is read
    digest: list[str] = []  # the sha256 of what was read (the archive, then its member), for refusals
    try:
        split = split_member_path(path)
        if split is not None:
            raw = _read(read_all(Path(split[0]), limits), limits, digest, source=split[0], member=split[1])
        elif p.is_dir():
            raw = _read_folder(p, limits, digest)
        else:
            raw = _read(read_all(p, limits), limits, digest, source=str(p))
        raw.obj = _to_device(raw.obj, device)
        return raw
    except CheckpointError as err:
        err.sha256 = digest[-1] if digest else None  # type: ignore[attr-defined]
        raise err.with_path(str(p)) from None


def read_bytes(data: bytearray, *, limits: Limits = DEFAULT_LIMITS) -> RawFile:
    """Read a checkpoint held in memory (tensors may share `data`'s memory: do not reuse it)."""
    return _read(data, limits, [])


def _read(data: bytearray, limits: Limits, digest: list[str], *, source: str = "",
          member: Optional[str] = None) -> RawFile:
    """One file's bytes: the checkpoint itself, or an archive wrapping it (then its member is read)."""
    buf = memoryview(data)
    sha = hashlib.sha256(buf).hexdigest()
    digest.append(sha)
    budget = Budget(limits, len(buf))
    opened = open_container(buf, budget, file_name=PurePath(source).name, source=source, member=member)
    if opened.member is not None:
        return _read_member(opened.member, budget, digest, source, sha, len(buf))
    raw = _read_opened(opened, buf, budget, sha)
    budget.finish()
    return raw


def _read_member(member: Member, budget: Budget, digest: list[str], source: str, archive_sha: str,
                 archive_size: int) -> RawFile:
    """The checkpoint inside a wrapper, on the wrapper's budget. Its sha256 is that of the member's
    bytes (what the file would be once extracted); a refusal names `ARCHIVE::MEMBER`."""
    sha = member.sha256()
    digest.append(sha)
    try:
        if member.records is not None:  # an unzipped checkpoint folder inside the archive: read as a folder is
            raw = _records_checkpoint("directory", member.records, member.offsets or {}, budget, sha,
                                      sum(len(v) for v in member.records.values()), kind="folder in the archive")
        else:
            raw = _read_opened(open_container(member.data, budget, nested=True), member.data, budget, sha)
        budget.finish()
    except CheckpointError as err:
        if source:
            err.with_path(f"{source}{SEPARATOR}{member.name}")
        raise
    raw.member = member.name
    raw.metadata["archive"] = {"path": source, "member": member.name, "format": member.format,
                               "sha256": archive_sha, "size": archive_size}
    return raw


def _read_opened(opened: Opened, buf: memoryview, budget: Budget, sha: str) -> RawFile:
    """A checkpoint's bytes, identified (and validated, for an archive) by `wrapped.open_container`."""
    kind = opened.kind
    if kind == "zip":
        assert opened.zip is not None
        records, offsets, root = split_root(opened.zip.records, opened.zip.offsets, kind="zip archive",
                                            allow_torchscript=True, require_root=True)
        if is_torchscript(records):
            state, meta = load_torchscript(records, offsets, budget=budget)
            return RawFile("torchscript", check_graph(state, budget), {"root": root, **meta}, sha, len(buf), root)
        obj = load_record_archive(records, offsets, budget=budget)
        return RawFile("torch-zip", check_graph(obj, budget), {"root": root}, sha, len(buf), root)
    if kind == "tar":
        archive = opened.tar
        assert archive is not None
        if is_torch_tar(archive.records):
            obj = load_torch_tar(archive.records, archive.offsets, budget=budget, names=archive.names)
            return RawFile("torch-tar", check_graph(obj, budget), {}, sha, len(buf))
        records, offsets, root = split_root(archive.records, archive.offsets, kind="tar archive")
        obj = load_record_archive(records, offsets, budget=budget)
        return RawFile("tar-directory", check_graph(obj, budget), {"root": root}, sha, len(buf), root)
    if kind == "torch-legacy":
        return RawFile(kind, check_graph(load_legacy(buf, budget=budget), budget), {}, sha, len(buf))
    if kind == "pickle":
        return RawFile(kind, check_graph(load_plain_pickle(buf, budget=budget), budget), {}, sha, len(buf))
    assert kind == "safetensors", kind
    tensors, meta = read_safetensors(buf, budget)
    return RawFile(kind, check_graph(tensors, budget), meta, sha, len(buf))


def archive_members(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, memoryview]:
    """The members of a zip, tar, tar.gz or gzip file as our container layer validates and hands them
    on (name -> bytes, in archive order; a gzip's one member is named after the file): what the
    differential tests compare with zipfile, tarfile, GNU tar and gzip."""
    p = Path(path)
    try:
        buf = memoryview(read_all(p, limits))
        budget = Budget(limits, len(buf))
        kind = identify(bytes(buf[:HEAD_BYTES]), len(buf))
        if kind == "gzip":
            inflated, tar = gzip_layers(buf, budget)
            return tar.records if tar is not None else {gzip_member_name(p.name): inflated}
        if kind not in ("zip", "tar"):
            raise UnsupportedFormatError(f"a {kind} file, not an archive")
        return (read_zip(buf, budget) if kind == "zip" else read_tar(buf, budget)).records
    except CheckpointError as err:
        raise err.with_path(str(p)) from None


def _read_folder(p: Path, limits: Limits, digest: list[str]) -> RawFile:
    folder = read_directory(p, limits)
    digest.append(folder.sha256)
    budget = Budget(limits, folder.size)
    raw = _records_checkpoint("directory", folder.records, folder.offsets, budget, folder.sha256, folder.size,
                              kind="folder")
    budget.finish()
    return raw


def _records_checkpoint(container: str, records: Mapping[str, memoryview], offsets: Mapping[str, int],
                        budget: Budget, sha: str, size: int, *, kind: str) -> RawFile:
    """An unzipped torch checkpoint's files (a folder on disk, or one inside a wrapper)."""
    records, offsets, root = split_root(records, offsets, kind=kind)
    obj = load_record_archive(records, offsets, budget=budget)
    return RawFile(container, check_graph(obj, budget), {"root": root} if root else {}, sha, size, root)


def _target_device(map_location: Any) -> Any:
    if map_location is None:
        return torch.device("cpu")
    if isinstance(map_location, dict):
        return {str(k): torch.device(v) for k, v in map_location.items()}
    if isinstance(map_location, (str, torch.device)):
        return torch.device(map_location)
    raise TypeError("map_location must be a device, a device name or a dict of location tags to devices")


def _to_device(obj: Any, device: Any) -> Any:
    """Move tensors off the CPU if asked (a dict map_location maps every tag here to its CPU entry)."""
    if isinstance(device, dict):
        device = device.get("cpu", torch.device("cpu"))
    if device.type == "cpu":
        return obj
    return _map_tensors(obj, lambda t: t.to(device))


def _map_tensors(obj: Any, fn: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        out = type(obj)((k, _map_tensors(v, fn)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list):
        return [_map_tensors(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_map_tensors(v, fn) for v in obj)
    return obj


