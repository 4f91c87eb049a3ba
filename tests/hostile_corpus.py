"""Generate legitimate and hostile checkpoint files in a temporary folder (no binary blobs committed).

Every code-running payload only touches a marker file (`marker`), so a test can prove that nothing
ran by checking the marker does not exist, and a positive control can prove that the payload is
live by running it through plain `pickle.loads` in a subprocess and seeing the marker appear.

`legit_files(tmp)` writes one legitimate file per container; `hostile_cases(tmp, marker)` yields
`Case(name, path, family)` where `family` is the `CheckpointError` subclass the reader must raise.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import torch
from audit_events import EXECUTION_EVENTS, is_module_import

from pytest_convnextpose.errors import (
    CheckpointError,
    CorruptFileError,
    ResourceLimitError,
    UnsafeContentError,
    UnsupportedFormatError,
)
from pytest_convnextpose.testing.writers import torch_tar_members, torch_zip_bytes, write_container

LEGACY_HEAD = (
    b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
    + b"\x80\x02M\xe9\x03."
    + b"\x80\x02}q\x00(X\r\x00\x00\x00little_endianq\x01\x88u."
)


# -- small legitimate objects -------------------------------------------------------------------
def small_state() -> dict:
    """A tiny training snapshot: wrapper, BatchNorm buffers, a view, AdamW state."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 2, 4, 4, generator=gen)).sum().backward()
    opt.step()
    return {"epoch": 83, "network": model.state_dict(), "optimizer": opt.state_dict()}


def flat_state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "a.weight": torch.randn(3, 2, generator=gen),
        "a.bias": torch.zeros(3),
        "n.num_batches_tracked": torch.tensor(7),
        "h": torch.ones(4, dtype=torch.float16),
    }


#: every container the writer produces; `torch-tar` is the pre-1.0 tar format (its reader ignores root names)
LEGIT_CONTAINERS = ("torch-zip", "torch-legacy", "tar-directory", "directory", "pickle", "safetensors", "torch-tar")


def legit_files(tmp: Path, location: str = "cpu") -> dict[str, tuple[Path, object]]:
    """container -> (path, object written) for every container we read."""
    out = {}
    for container in LEGIT_CONTAINERS:
        obj = flat_state() if container == "safetensors" else small_state()
        path = tmp / f"legit-{container}-{location.replace(':', '')}"
        write_container(obj, path, container, root_name="snapshot_83.pth", location=location)
        out[container] = (path, obj)
    return out


#: TorchScript layouts read as container `torchscript`: a traced and a scripted module
TORCHSCRIPT_LAYOUTS = ("torchscript-trace", "torchscript-script")


def small_module() -> torch.nn.Module:
    """Conv + BatchNorm (buffers, num_batches_tracked) + a nested ModuleList, seeded, eval mode."""
    gen = torch.Generator().manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 1),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1)),
    )
    with torch.no_grad():
        for t in list(model.parameters()) + [model[1].running_mean, model[1].running_var]:
            t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
        model[1].num_batches_tracked.fill_(83)
    return model.eval()


def save_torchscript(model: torch.nn.Module, path: Path, mode: str, example: torch.Tensor) -> Path:
    """`torch.jit.save` of `model` traced (`trace`) or scripted (`script`); torch writes the file."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and torch.jit deprecation notices
        if mode == "trace":
            scripted = torch.jit.trace(model, example, check_trace=False)
        else:
            scripted = torch.jit.script(model)
        torch.jit.save(scripted, str(path))
    return path


def torchscript_files(tmp: Path) -> dict[str, tuple[Path, dict]]:
    """layout -> (path, the module's own state_dict()) for each TorchScript layout."""
    model = small_module()
    expected = model.state_dict()
    out = {}
    for layout in TORCHSCRIPT_LAYOUTS:
        path = tmp / f"legit-{layout}.pt"
        save_torchscript(model, path, layout.split("-")[1], torch.zeros(1, 2, 4, 4))
        out[layout] = (path, expected)
    return out


def torchscript_records(tmp: Path) -> list[tuple[str, bytes]]:
    """The records of a small scripted archive (data.pkl, data/, code/, constants.pkl, ...)."""
    path = save_torchscript(small_module(), tmp / "template-script.pt", "script", torch.zeros(1, 2, 4, 4))
    with zipfile.ZipFile(path) as zf:  # our own freshly written archive
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


# -- payload pickles ----------------------------------------------------------------------------
def _u(text: str) -> bytes:
    return text.encode("raw-unicode-escape")


def payloads(marker: Path) -> dict[str, bytes]:
    """Raw pickles, each of which creates `marker` when given to `pickle.loads`."""
    m = str(marker)
    cmd = _u(f"touch {m}")
    code = _u(f"open({m!r}, 'w').close()")
    return {
        "os.system": b"cos\nsystem\n(V" + cmd + b"\ntR.",
        "posix.system": b"cposix\nsystem\n(V" + cmd + b"\ntR.",
        "eval": b"cbuiltins\neval\n(V" + code + b"\ntR.",
        "exec-proto4": _stack_global_call("builtins", "exec", code.decode()),
        "subprocess": b"csubprocess\ncall\n((Vtouch\nV" + _u(m) + b"\nltR.",
        "getattr-import": (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V" + cmd + b"\ntR."),
        "torch-pickle.loads-global": _torch_load_payload(marker),
        "inst-opcode": b"(Vtouch " + _u(m) + b"\nios\nsystem\n.",
        "obj-opcode": b"(cos\nsystem\nV" + cmd + b"\no.",
        "nested-load_from_bytes": _load_from_bytes_call(
            legacy_stream(b"\x80\x02" + b"cos\nsystem\n(V" + cmd + b"\ntR.")
        ),
        "double-nested-load_from_bytes": _load_from_bytes_call(
            legacy_stream(
                b"\x80\x02" + _load_from_bytes_call(legacy_stream(b"\x80\x02cos\nsystem\n(V" + cmd + b"\ntR."))[2:]
            )
        ),
    }


def _stack_global_call(module: str, name: str, arg: str) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw

    return b"\x80\x04" + s(module) + s(name) + b"\x93" + s(arg) + b"\x85R."


def _torch_load_payload(marker: Path) -> bytes:
    """`pickle.loads` reached as the dotted name `torch.serialization` / `pickle.loads`: a global
    inside torch that a blocklist knowing only os/subprocess lets through."""
    inner = b"\x80\x02cos\nsystem\n(V" + _u(f"touch {marker}") + b"\ntR."

    def s(text: str) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text.encode()

    return (
        b"\x80\x04"
        + s("torch.serialization")
        + s("pickle.loads")
        + b"\x93"
        + b"C"
        + bytes([len(inner)])
        + inner
        + b"\x85R."
    )


def _load_from_bytes_call(blob: bytes) -> bytes:
    return b"\x80\x02ctorch.storage\n_load_from_bytes\n(B" + struct.pack("<I", len(blob)) + blob + b"tR."


def legacy_stream(obj_pickle: bytes, keys: Optional[list[str]] = None, tail: bytes = b"") -> bytes:
    """A legacy torch stream around an arbitrary object pickle."""
    keys_pickle = (
        b"\x80\x02]q\x00(" + b"".join(b"X" + struct.pack("<I", len(k)) + k.encode() for k in keys or []) + b"e."
    )
    return LEGACY_HEAD + obj_pickle + keys_pickle + tail


# -- containers around a pickle -----------------------------------------------------------------
def zip_bytes(records: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some cases
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, data in records:
                zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def archive_records(obj: object, root: str = "archive") -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(torch_zip_bytes(obj, root))) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def with_data_pkl(records: list[tuple[str, bytes]], data_pkl: bytes) -> list[tuple[str, bytes]]:
    return [(n, data_pkl if n.endswith("/data.pkl") else d) for n, d in records]


def in_every_container(tmp: Path, name: str, pickle_bytes: bytes) -> Iterator[tuple[str, Path]]:
    """`pickle_bytes` as the object pickle of each pickle-bearing container."""
    base = archive_records({"x": torch.zeros(2)})
    recs = with_data_pkl(base, pickle_bytes)
    zpath = tmp / f"{name}.zip.tar"
    zpath.write_bytes(zip_bytes(recs))
    yield "torch-zip", zpath
    tpath = tmp / f"{name}.tar"
    tpath.write_bytes(tar_bytes(recs))
    yield "tar-directory", tpath
    dpath = tmp / f"{name}.dir"
    for rec_name, data in recs:
        target = dpath / rec_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    yield "directory", dpath
    lpath = tmp / f"{name}.legacy"
    lpath.write_bytes(legacy_stream(pickle_bytes))
    yield "torch-legacy", lpath
    ppath = tmp / f"{name}.pkl"
    ppath.write_bytes(pickle_bytes if pickle_bytes.startswith(b"\x80") else b"\x80\x02" + pickle_bytes)
    yield "pickle", ppath
    npath = tmp / f"{name}.inner.pkl"
    npath.write_bytes(_load_from_bytes_call(legacy_stream(b"\x80\x02" + pickle_bytes.removeprefix(b"\x80\x02"))))
    yield "pickle(_load_from_bytes)", npath
    spath = tmp / f"{name}.script.pt"
    spath.write_bytes(zip_bytes(with_data_pkl(_ts_template(tmp), pickle_bytes)))
    yield "torchscript", spath
    ttpath = tmp / f"{name}.torch.tar"
    ttpath.write_bytes(tar_bytes(torch_tar_with(pickle=pickle_bytes)))
    yield "torch-tar", ttpath


def _ts_template(tmp: Path) -> list[tuple[str, bytes]]:
    cache = tmp / "template-script.pt"
    if not cache.exists():
        torchscript_records(tmp)
    with zipfile.ZipFile(cache) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


@dataclass
class Case:
    name: str
    path: Path
    family: type[CheckpointError]


def hostile_cases(tmp: Path, marker: Path) -> Iterator[Case]:
    """Every hostile or malformed file of the corpus, with the error family it must meet."""
    tmp.mkdir(parents=True, exist_ok=True)
    for pname, payload in payloads(marker).items():
        for container, path in in_every_container(tmp, pname.replace(".", "_"), payload):
            yield Case(f"{pname}@{container}", path, UnsafeContentError)
    yield from _mutation_cases(tmp)
    yield from _zip_cases(tmp, marker)
    yield from _geometry_cases(tmp)
    yield from _tar_cases(tmp, marker)
    yield from _folder_cases(tmp, marker)
    yield from _safetensors_cases(tmp)
    yield from _graph_cases(tmp)
    yield from _torchscript_cases(tmp, marker)
    yield from torch_tar_cases(tmp, marker)


# -- pickles that mutate or misuse objects without a forbidden global ----------------------------
_TENSOR = (
    b"ctorch._utils\n_rebuild_tensor_v2\n((Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nK\x02tQ"
    b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rtp0\nR"
)


def _mutation_cases(tmp: Path) -> Iterator[Case]:
    bodies = {
        "setitem-on-tensor": b"\x80\x02}(Vx\n" + _TENSOR + b"K\x00G@X\xc0\x00\x00\x00\x00\x00su.",
        "setitems-on-tensor": b"\x80\x02}(Vx\n" + _TENSOR + b"(K\x00K\x09uu.",
        "build-on-tensor": b"\x80\x02}(Vx\n" + _TENSOR + b"}(Vdata\nK\x01ubu.",
        "append-on-tensor": b"\x80\x02}(Vx\n" + _TENSOR + b"K\x01au.",
        "reduce-tensor-from-int": b"\x80\x02}(Vx\nctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00)"
        b")\x89ccollections\nOrderedDict\n)RtRu.",
        "backward-hooks": b"\x80\x02}(Vx\nctorch._utils\n_rebuild_tensor_v2\n((Vstorage\nctorch\nFloatStorage\n"
        b"V0\nVcpu\nK\x02tQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)R"
        b"(K\x00cos\nsystem\nutRu.",
        "storage-type-os": b"\x80\x02}(Vx\nctorch._utils\n_rebuild_tensor_v2\n((Vstorage\ncos\nsystem\n"
        b"V0\nVcpu\nK\x02tQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRu.",
        "setitem-on-global": b"\x80\x02ccollections\nOrderedDict\nVx\nK\x01s.",
        "call-storage-class": b"\x80\x02ctorch\nFloatStorage\n(K\x02tR.",
    }
    recs = archive_records({"x": torch.zeros(2)})
    for name, body in bodies.items():
        path = tmp / f"{name}.zip"
        path.write_bytes(zip_bytes(with_data_pkl(recs, body)))
        yield Case(f"{name}@torch-zip", path, UnsafeContentError)
        lpath = tmp / f"{name}.legacy"
        # legacy storage ids have 6 fields; mutation checks must fire regardless
        lpath.write_bytes(
            legacy_stream(body.replace(b"K\x02tQ", b"K\x02NtQ"), keys=["0"], tail=struct.pack("<q", 2) + bytes(8))
        )
        yield Case(f"{name}@torch-legacy", lpath, UnsafeContentError)


# -- zip structure ------------------------------------------------------------------------------
def _zip_cases(tmp: Path, marker: Path) -> Iterator[Case]:
    recs = archive_records({"x": torch.zeros(2)})
    evil = payloads(marker)["os.system"]
    pkl_name = next(n for n, _ in recs if n.endswith("data.pkl"))
    for order, extra in (("payload-first", [(pkl_name, evil)] + recs), ("payload-last", recs + [(pkl_name, evil)])):
        path = tmp / f"dup-{order}.zip"
        path.write_bytes(zip_bytes(extra))
        yield Case(f"duplicate-data.pkl-{order}@torch-zip", path, UnsafeContentError)
    # DEFLATE bomb: 256 MiB of zeros in ~260 KB, as a storage record
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    body = b"".join(comp.compress(chunk) for _ in range(256)) + comp.flush()
    bomb = _raw_zip([(pkl_name, legit_pkl_for(recs), 0, None), ("archive/data/0", body, 8, (256 << 20, 0))])
    path = tmp / "deflate-bomb.zip"
    path.write_bytes(bomb)
    yield Case("deflate-bomb@torch-zip", path, ResourceLimitError)
    # A deflated entry that inflates to more than it declares
    small = zlib.compressobj(9, zlib.DEFLATED, -15)
    lie = small.compress(bytes(4096)) + small.flush()
    path = tmp / "deflate-lie.zip"
    path.write_bytes(
        _raw_zip([(pkl_name, legit_pkl_for(recs), 0, None), ("archive/data/0", lie, 8, (8, zlib.crc32(bytes(8))))])
    )
    yield Case("deflate-declares-less@torch-zip", path, CorruptFileError)
    # entry size beyond the file
    good = zip_bytes(recs)
    path = tmp / "zip-size-beyond-file.zip"
    path.write_bytes(_patch_central_size(good, "archive/data/0", 1 << 30))
    yield Case("zip-entry-beyond-file@torch-zip", path, CheckpointError)
    # An unpacked TorchScript archive in a tar: TorchScript is only read as torch.jit.save's zip
    path = tmp / "scripted-unpacked.tar"
    path.write_bytes(tar_bytes(_ts_template(tmp)))
    yield Case("torchscript-unpacked@tar-directory", path, UnsupportedFormatError)
    # zip whose data.pkl names storages that are not there
    path = tmp / "missing-record.zip"
    path.write_bytes(zip_bytes([r for r in recs if not r[0].endswith("data/0")]))
    yield Case("missing-storage-record@torch-zip", path, CorruptFileError)


def legit_pkl_for(recs: list[tuple[str, bytes]]) -> bytes:
    return next(d for n, d in recs if n.endswith("data.pkl"))


def _raw_zip(entries: list[tuple[str, bytes, int, Optional[tuple[int, int]]]]) -> bytes:
    """A zip written by hand so declared sizes/CRCs can lie. entry: (name, stored bytes, method,
    (declared uncompressed size, crc) or None for the truth)."""
    out, central = bytearray(), bytearray()
    for name, data, method, declared in entries:
        usize, crc = declared if declared else (len(data), zlib.crc32(data))
        raw = name.encode()
        off = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), usize, len(raw), 0)
        out += raw + data
        central += (
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0,
                crc,
                len(data),
                usize,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                off,
            )
            + raw
        )
    cd_off = len(out)
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), cd_off, 0)
    return bytes(out)


def _patch_central_size(data: bytes, name: str, size: int) -> bytes:
    buf = bytearray(data)
    pos = buf.find(b"PK\x01\x02" + b"", buf.find(b"PK\x01\x02"))
    while pos >= 0:
        n = struct.unpack_from("<H", buf, pos + 28)[0]
        if bytes(buf[pos + 46 : pos + 46 + n]).decode() == name:
            struct.pack_into("<II", buf, pos + 20, size, size)
            return bytes(buf)
        pos = buf.find(b"PK\x01\x02", pos + 4)
    raise KeyError(name)


# -- declared sizes vs bytes present -------------------------------------------------------------
def _geometry_cases(tmp: Path) -> Iterator[Case]:
    def tensor_pkl(numel: int, offset: int, size: tuple[int, ...], stride: tuple[int, ...], legacy: bool) -> bytes:
        def ints(vals: tuple[int, ...]) -> bytes:
            return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in vals) + b"t"

        pid = (
            b"((Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nJ"
            + struct.pack("<i", numel)
            + (b"N" if legacy else b"")
            + b"tQ"
        )
        return (
            b"\x80\x02}(Vx\nctorch._utils\n_rebuild_tensor_v2\n"
            + pid
            + b"J"
            + struct.pack("<i", offset)
            + ints(size)
            + ints(stride)
            + b"\x89ccollections\nOrderedDict\n)RtRu."
        )

    recs = archive_records({"x": torch.zeros(2)})  # data/0 holds 8 bytes
    specs = {
        "numel-beyond-record": (1000, 0, (1000,), (1,)),
        "view-beyond-storage": (2, 0, (3,), (1,)),
        "stride-beyond-storage": (2, 0, (2, 2), (1, 5)),
        "offset-beyond-storage": (2, 5, (1,), (1,)),
        "negative-size": (2, 0, (-1,), (1,)),
    }
    for name, spec in specs.items():
        path = tmp / f"{name}.zip"
        path.write_bytes(zip_bytes(with_data_pkl(recs, tensor_pkl(*spec, legacy=False))))
        yield Case(f"{name}@torch-zip", path, CorruptFileError)
        lpath = tmp / f"{name}.legacy"
        numel = spec[0]
        lpath.write_bytes(
            legacy_stream(tensor_pkl(*spec, legacy=True), keys=["0"], tail=struct.pack("<q", numel) + bytes(8))
        )
        yield Case(f"{name}@torch-legacy", lpath, CorruptFileError)
    huge = tmp / "legacy-huge-numel.legacy"
    huge.write_bytes(
        legacy_stream(
            tensor_pkl(2**31 - 1, 0, (1,), (1,), legacy=True), keys=["0"], tail=struct.pack("<q", 2**31 - 1) + bytes(8)
        )
    )
    yield Case("declared-numel-beyond-file@torch-legacy", huge, CorruptFileError)
    inner = tmp / "inner-huge-numel.pkl"
    inner.write_bytes(
        _load_from_bytes_call(
            legacy_stream(
                b"\x80\x02(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nJ\xff\xff\xff\x7fNtQ.",
                keys=["0"],
                tail=struct.pack("<q", 2**31 - 1) + bytes(8),
            )
        )
    )
    yield Case("declared-numel-beyond-file@pickle", inner, CorruptFileError)


# -- tar ----------------------------------------------------------------------------------------
def _tar_cases(tmp: Path, marker: Path) -> Iterator[Case]:
    recs = archive_records({"x": torch.zeros(2)})

    def link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        return info

    variants: dict[str, list] = {
        "dotdot-member": recs + [("archive/../../evil", b"x")],
        "absolute-member": recs + [("/tmp/evil", b"x")],
        "symlink-member": recs + [link("archive/data/9", tarfile.SYMTYPE, "/etc/passwd")],
        "hardlink-member": recs + [link("archive/data/9", tarfile.LNKTYPE, "/etc/passwd")],
        "symlink-data.pkl": [r for r in recs if not r[0].endswith("data.pkl")]
        + [link("archive/data.pkl", tarfile.SYMTYPE, str(marker))],
        "duplicate-member": recs + [(recs[0][0], payloads(marker)["os.system"])],
        "fifo-member": recs + [link("archive/fifo", tarfile.FIFOTYPE, "")],
    }
    for name, members in variants.items():
        path = tmp / f"{name}.tar"
        path.write_bytes(tar_bytes(members))
        yield Case(f"{name}@tar-directory", path, UnsafeContentError)
    bad = bytearray(tar_bytes(recs))
    bad[148:156] = b"0000000\x00"
    path = tmp / "bad-checksum.tar"
    path.write_bytes(bytes(bad))
    yield Case("bad-header-checksum@tar-directory", path, CheckpointError)


def _folder_cases(tmp: Path, marker: Path) -> Iterator[Case]:
    recs = archive_records({"x": torch.zeros(2)})
    folder = tmp / "symlink-folder"
    for name, data in recs:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("data/0"):
            os.symlink("/etc/hostname", target)
        else:
            target.write_bytes(data)
    yield Case("symlink-member@directory", folder, UnsafeContentError)


# -- safetensors --------------------------------------------------------------------------------
def _safetensors(header: bytes | dict, data: bytes = b"", length: Optional[int] = None) -> bytes:
    import json

    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _safetensors_cases(tmp: Path) -> Iterator[Case]:
    def t(dtype="F32", shape=(2,), offs=(0, 8)) -> dict:
        return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}

    cases: dict[str, tuple[bytes, type[CheckpointError]]] = {
        "header-length-beyond-file": (_safetensors({"a": t()}, bytes(8), length=10_000), CheckpointError),
        "header-length-huge": (struct.pack("<Q", 2**62) + b"{}" + bytes(64), CheckpointError),
        "header-not-json": (_safetensors(b"{not json", bytes(8)), CorruptFileError),
        "header-not-utf8": (_safetensors(b'{"\xff": 1}', bytes(8)), CorruptFileError),
        "duplicate-name": (
            _safetensors(b'{"a": ' + json_t(t()) + b', "a": ' + json_t(t()) + b"}", bytes(8)),
            CorruptFileError,
        ),
        "overlapping-offsets": (_safetensors({"a": t(), "b": t(offs=(4, 12))}, bytes(12)), CorruptFileError),
        "gap-between-tensors": (_safetensors({"a": t(), "b": t(offs=(12, 20))}, bytes(20)), CorruptFileError),
        "buffer-not-covered": (_safetensors({"a": t()}, bytes(16)), CorruptFileError),
        "offsets-beyond-buffer": (_safetensors({"a": t(offs=(0, 8))}, bytes(4)), CorruptFileError),
        "size-disagrees-with-shape": (_safetensors({"a": t(shape=(3,))}, bytes(8)), CorruptFileError),
        "unknown-dtype": (_safetensors({"a": t(dtype="F128")}, bytes(8)), CorruptFileError),
        "negative-shape": (_safetensors({"a": t(shape=(-2,))}, bytes(8)), CorruptFileError),
        "non-string-metadata": (_safetensors({"__metadata__": {"a": 1}, "a": t()}, bytes(8)), CorruptFileError),
        "header-is-list": (_safetensors(b"[1, 2]", bytes(8)), CheckpointError),
    }
    for name, (data, family) in cases.items():
        path = tmp / f"{name}.safetensors"
        path.write_bytes(data)
        yield Case(f"{name}@safetensors", path, family)


def json_t(entry: dict) -> bytes:
    import json

    return json.dumps(entry).encode()


# -- object graphs ------------------------------------------------------------------------------
def _graph_cases(tmp: Path) -> Iterator[Case]:
    laughs = (
        b"\x80\x02]q\x00(K\x01K\x02e0"
        + b"".join(b"]q" + bytes([i + 1]) + b"(h" + bytes([i]) + b"h" + bytes([i]) + b"e0" for i in range(40))
        + b"h\x28."
    )
    cases = {
        "self-containing-dict": (b"\x80\x02}q\x00(Vme\nh\x00u.", CorruptFileError),
        "billion-laughs": (laughs, ResourceLimitError),
        "huge-long": (b"\x80\x02\x8b" + struct.pack("<i", 1 << 20) + bytes(1 << 20) + b".", ResourceLimitError),
    }
    recs = archive_records({"x": torch.zeros(2)})
    for name, (body, family) in cases.items():
        path = tmp / f"{name}.zip"
        path.write_bytes(zip_bytes(with_data_pkl(recs, body)))
        yield Case(f"{name}@torch-zip", path, family)
        ppath = tmp / f"{name}.pkl"
        ppath.write_bytes(body)
        yield Case(f"{name}@pickle", ppath, family)


# -- TorchScript stand-ins ------------------------------------------------------------------------
_NEW = b"c__torch__.m\nM\n)\x81"  # a fresh `__torch__.m.M` stand-in


def torchscript_bodies(marker: Path) -> dict[str, tuple[bytes, type[CheckpointError]]]:
    """data.pkl bodies for a TorchScript archive that misuse stand-ins, with the family to expect."""
    cmd = _u(f"touch {marker}")
    code = _u(f"open({str(marker)!r}, 'w').close()")
    nest = 150  # stand-in + attribute dict per level: 300 levels, over the 200 limit
    laughs = (
        b"\x80\x02"
        + _NEW
        + b"}bq\x000"
        + b"".join(
            _NEW + b"}(Va\nh" + bytes([i]) + b"Vb\nh" + bytes([i]) + b"ubq" + bytes([i + 1]) + b"0" for i in range(40)
        )
        + b"h\x28."
    )
    return {
        "os.system-attribute": (b"\x80\x02" + _NEW + b"}(Vx\ncos\nsystem\n(V" + cmd + b"\ntRub.", UnsafeContentError),
        "eval-attribute": (b"\x80\x02" + _NEW + b"}(Vx\ncbuiltins\neval\n(V" + code + b"\ntRub.", UnsafeContentError),
        "non-torch-class-newobj": (b"\x80\x02creference_model.model\nConvNeXtPose\n)\x81}b.", UnsafeContentError),
        "torch-nn-class-newobj": (b"\x80\x02ctorch.nn.modules.conv\nConv2d\n)\x81}b.", UnsafeContentError),
        "reduce-script-class": (b"\x80\x02c__torch__.m\nM\n)R.", UnsafeContentError),
        "reduce-script-class-with-command": (b"\x80\x02c__torch__.os\nsystem\n(V" + cmd + b"\ntR.", UnsafeContentError),
        "newobj-with-arguments": (b"\x80\x02c__torch__.m\nM\n(V" + cmd + b"\nt\x81}b.", UnsafeContentError),
        "build-list-state": (b"\x80\x02" + _NEW + b"](K\x01eb.", UnsafeContentError),
        "build-tuple-state": (b"\x80\x02" + _NEW + b"N}\x86b.", UnsafeContentError),
        "build-twice": (b"\x80\x02" + _NEW + b"}b}b.", UnsafeContentError),
        "build-int-attribute-name": (b"\x80\x02" + _NEW + b"}(K\x01K\x02ub.", UnsafeContentError),
        "setitem-on-standin": (b"\x80\x02" + _NEW + b"Va\nK\x01s.", UnsafeContentError),
        "append-on-standin": (b"\x80\x02" + _NEW + b"K\x01a.", UnsafeContentError),
        "standin-as-dict-key": (b"\x80\x02" + _NEW + b"}(" + _NEW + b"K\x01ub.", UnsafeContentError),
        "class-as-attribute": (b"\x80\x02" + _NEW + b"}(Vx\nc__torch__.m\nM\nub.", UnsafeContentError),
        "standin-as-storage": (
            b"\x80\x02"
            + _NEW
            + b"}(Vw\nctorch._utils\n_rebuild_tensor_v2\n("
            + _NEW
            + b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRub.",
            UnsafeContentError,
        ),
        "jit-helper-with-command": (
            b"\x80\x02" + _NEW + b"}(Vx\nctorch.jit._pickle\nbuild_intlist\n(V" + cmd + b"\nt\x85Rub.",
            CorruptFileError,
        ),
        "standins-nested-too-deep": (
            b"\x80\x02" + (_NEW + b"}(Vc\n") * nest + b"N" + b"ub" * nest + b".",
            ResourceLimitError,
        ),
        "standin-billion-laughs": (laughs, ResourceLimitError),
        "standin-contains-itself": (b"\x80\x02" + _NEW + b"q\x00}(Vself\nh\x00ub.", CorruptFileError),
        "standin-never-built": (b"\x80\x02" + _NEW + b".", CorruptFileError),
        "dotted-attribute-name": (b"\x80\x02" + _NEW + b"}(Va.b\nNub.", CorruptFileError),
        "top-level-not-a-module": (b"\x80\x02}(Vx\nNu.", CorruptFileError),
    }


def _torchscript_cases(tmp: Path, marker: Path) -> Iterator[Case]:
    template = _ts_template(tmp)
    for name, (body, family) in torchscript_bodies(marker).items():
        path = tmp / f"ts-{name}.pt"
        path.write_bytes(zip_bytes(with_data_pkl(template, body)))
        yield Case(f"{name}@torchscript", path, family)
    # The same stand-in pickle in an ordinary checkpoint zip (no TorchScript records): not allowed
    path = tmp / "standin-in-plain-zip.pt"
    path.write_bytes(zip_bytes(with_data_pkl(archive_records({"x": torch.zeros(2)}), b"\x80\x02" + _NEW + b"}b.")))
    yield Case("torch-class-outside-torchscript@torch-zip", path, UnsafeContentError)
    # NEWOBJ stays refused outside TorchScript, even of an allowlisted class
    path = tmp / "newobj-in-plain-zip.pt"
    path.write_bytes(
        zip_bytes(with_data_pkl(archive_records({"x": torch.zeros(2)}), b"\x80\x02ccollections\nOrderedDict\n)\x81."))
    )
    yield Case("newobj-outside-torchscript@torch-zip", path, UnsafeContentError)


# -- the pre-1.0 torch tar format -----------------------------------------------------------------
#: `{"x": torch.zeros(2)}` as the writer lays it out: storage key 1 (2 floats), tensor key 2
_TT_BASE = dict(torch_tar_members({"x": torch.zeros(2)}))
_ONE = b"\x80\x02K\x01."  # pickle of the record count 1
_FLOAT_STORAGE = b"ctorch\nFloatStorage\n"
_FLOAT_TENSOR = b"ctorch\nFloatTensor\n"


def torch_tar_with(**members: bytes) -> list[tuple[str, bytes]]:
    """The members of the small pre-1.0 tar, in torch's order, with some replaced."""
    return [(name, members.get(name, data)) for name, data in _TT_BASE.items()]


def tt_storages(
    key: int = 1,
    numel: int = 2,
    data: bytes = bytes(8),
    stype: bytes = _FLOAT_STORAGE,
    views: bytes = b"\x80\x02].",
    record: Optional[bytes] = None,
) -> bytes:
    """A `storages` member with one storage record (or `record` as its pickle) and a view list."""
    record = record or b"\x80\x02J" + struct.pack("<i", key) + b"Vcpu\n" + stype + b"\x87."
    return _ONE + record + struct.pack("<q", numel) + data + views


def tt_tensors(
    size: tuple[int, ...] = (2,),
    stride: tuple[int, ...] = (1,),
    offset: int = 0,
    storage: int = 1,
    ttype: bytes = _FLOAT_TENSOR,
    ndim: Optional[int] = None,
    record: Optional[bytes] = None,
    count: bytes = _ONE,
) -> bytes:
    """A `tensors` member with one tensor record (key 2) of the given geometry."""
    record = record or b"\x80\x02K\x02J" + struct.pack("<i", storage) + ttype + b"\x87."
    n = len(size) if ndim is None else ndim
    return count + record + struct.pack("<ii", n, 0) + struct.pack(f"<{2 * len(size) + 1}q", *size, *stride, offset)


def _sys_info(little: bytes = b"\x88", long_size: int = 8) -> bytes:
    return (
        b"\x80\x02}(Vprotocol_version\nM\xe9\x03Vlittle_endian\n" + little + b"Vtype_sizes\n}(Vshort\nK\x02"
        b"Vint\nK\x04Vlong\nK" + bytes([long_size]) + b"uu."
    )


def torch_tar_bodies(marker: Path) -> dict[str, tuple[dict[str, bytes], type[CheckpointError]]]:
    """Hostile or malformed members of a pre-1.0 torch tar (replacing the small legit ones)."""
    evil = payloads(marker)
    two = (2,)
    return {
        "sys_info-os.system": ({"sys_info": evil["os.system"]}, UnsafeContentError),
        "sys_info-eval": ({"sys_info": evil["eval"]}, UnsafeContentError),
        "storages-os.system": ({"storages": tt_storages(record=evil["os.system"])}, UnsafeContentError),
        "storages-eval": ({"storages": tt_storages(record=evil["eval"])}, UnsafeContentError),
        "storages-count-os.system": ({"storages": evil["os.system"]}, UnsafeContentError),
        "tensors-os.system": ({"tensors": tt_tensors(record=evil["os.system"])}, UnsafeContentError),
        "tensors-eval": ({"tensors": tt_tensors(record=evil["eval"])}, UnsafeContentError),
        "storage-views-os.system": ({"storages": tt_storages(views=evil["os.system"])}, UnsafeContentError),
        "storage-type-os.system": ({"storages": tt_storages(stype=b"cos\nsystem\n")}, UnsafeContentError),
        "storage-type-is-tensor-type": ({"storages": tt_storages(stype=_FLOAT_TENSOR)}, UnsafeContentError),
        "tensor-type-os.system": ({"tensors": tt_tensors(ttype=b"cos\nsystem\n")}, UnsafeContentError),
        "call-storage-type": (
            {"storages": tt_storages(record=b"\x80\x02" + _FLOAT_STORAGE + b"(K\x02tR.")},
            UnsafeContentError,
        ),
        "call-tensor-type": (
            {"tensors": tt_tensors(record=b"\x80\x02" + _FLOAT_TENSOR + b"(K\x02tR.")},
            UnsafeContentError,
        ),
        "tensor-type-in-pickle": ({"pickle": b"\x80\x02}(Vx\n" + _FLOAT_TENSOR + b"u."}, UnsafeContentError),
        "cuda-storage-type-in-pickle": ({"pickle": b"\x80\x02(ctorch.cuda\nFloatStorage\nt."}, UnsafeContentError),
        "module-persistent-id": ({"pickle": b"\x80\x02(" + _FLOAT_STORAGE + b"Vf.py\nVsrc\ntQ."}, UnsafeContentError),
        "setitem-on-tensor": ({"pickle": b"\x80\x02}(Vx\nV2\nQK\x00K\x01su."}, UnsafeContentError),
        "persistent-id-names-storage": ({"pickle": b"\x80\x02V1\nQ."}, UnsafeContentError),
        "persistent-id-names-nothing": ({"pickle": b"\x80\x02V77\nQ."}, CorruptFileError),
        "persistent-id-not-a-number": ({"pickle": b"\x80\x02V-2\nQ."}, CorruptFileError),
        "storage-beyond-member": ({"storages": tt_storages(numel=1000)}, CorruptFileError),
        "storage-numel-huge": ({"storages": tt_storages(numel=2**62)}, CorruptFileError),
        "storage-numel-negative": ({"storages": tt_storages(numel=-1)}, CorruptFileError),
        "storage-view-beyond-storage": (
            {"storages": tt_storages(views=b"\x80\x02](K\x03K\x01K\x01K\x05ta.")},
            CorruptFileError,
        ),
        "storage-view-of-unknown-storage": (
            {"storages": tt_storages(views=b"\x80\x02](K\x03K\x09K\x00K\x01ta.")},
            CorruptFileError,
        ),
        "duplicate-storage-key": (
            {"storages": b"\x80\x02K\x02." + tt_storages()[len(_ONE) : -4] + tt_storages()[len(_ONE) :]},
            CorruptFileError,
        ),
        "view-beyond-storage": ({"tensors": tt_tensors(size=(3,))}, CorruptFileError),
        "offset-beyond-storage": ({"tensors": tt_tensors(size=(1,), offset=5)}, CorruptFileError),
        "stride-beyond-storage": ({"tensors": tt_tensors(size=(2, 2), stride=(1, 5))}, CorruptFileError),
        "negative-size": ({"tensors": tt_tensors(size=(-1,))}, CorruptFileError),
        "negative-stride": ({"tensors": tt_tensors(size=two, stride=(-1,), offset=1)}, CorruptFileError),
        "ndim-huge": ({"tensors": tt_tensors(ndim=1 << 20)}, CorruptFileError),
        "tensor-on-missing-storage": ({"tensors": tt_tensors(storage=9)}, CorruptFileError),
        "tensor-type-disagrees-with-storage": (
            {"tensors": tt_tensors(ttype=b"ctorch\nDoubleTensor\n")},
            CorruptFileError,
        ),
        "record-count-huge": ({"tensors": tt_tensors(count=b"\x80\x02J\x00\xca\x9a\x3b.")}, ResourceLimitError),
        "record-count-beyond-member": ({"tensors": tt_tensors(count=b"\x80\x02M\xe8\x03.")}, CorruptFileError),
        "trailing-bytes-after-pickle": ({"pickle": _TT_BASE["pickle"] + b"\x00"}, CorruptFileError),
        "big-endian-sys_info": ({"sys_info": _sys_info(little=b"\x89")}, UnsupportedFormatError),
        "long-4-sys_info": ({"sys_info": _sys_info(long_size=4)}, UnsupportedFormatError),
        "sys_info-not-a-dict": ({"sys_info": b"\x80\x02K\x01."}, CorruptFileError),
    }


def torch_tar_cases(tmp: Path, marker: Path) -> Iterator[Case]:
    """The pre-1.0 torch tar cases (also part of `hostile_cases`)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, (members, family) in torch_tar_bodies(marker).items():
        path = tmp / f"tt-{name}.tar"
        path.write_bytes(tar_bytes(torch_tar_with(**members)))
        yield Case(f"{name}@torch-tar", path, family)
    legit = torch_tar_with()
    evil = payloads(marker)["os.system"]

    def link(name: str, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, str(marker)
        return info

    without_pickle = [m for m in legit if m[0] != "pickle"]
    variants: dict[str, tuple[list, type[CheckpointError]]] = {
        "duplicate-member": (legit + [("pickle", evil)], UnsafeContentError),
        "duplicate-member-payload-first": ([("pickle", evil)] + legit, UnsafeContentError),
        "dotted-duplicate-member": (legit + [("./pickle", evil)], UnsafeContentError),
        "dotdot-member": (legit + [("../pickle", evil)], UnsafeContentError),
        "absolute-member": (without_pickle + [("/pickle", evil)], UnsafeContentError),
        "symlink-member": (without_pickle + [link("pickle", tarfile.SYMTYPE)], UnsafeContentError),
        "hardlink-member": (without_pickle + [link("pickle", tarfile.LNKTYPE)], UnsafeContentError),
        "extra-member": (legit + [("notes", evil)], UnsafeContentError),
        "missing-member": ([m for m in legit if m[0] != "tensors"], CorruptFileError),
        "data.pkl-beside-ancient-members": (
            archive_records({"x": torch.zeros(2)}, root="archive") + legit,
            UnsafeContentError,
        ),
    }
    for name, (members, family) in variants.items():
        path = tmp / f"tt-{name}.tar"
        path.write_bytes(tar_bytes(members))
        yield Case(f"{name}@torch-tar", path, family)
    # The same members zipped or in a folder are not this format
    path = tmp / "tt-members-zipped.zip"
    path.write_bytes(zip_bytes(legit))
    yield Case("ancient-members-zipped@torch-zip", path, UnsupportedFormatError)


def truncations(data: bytes) -> list[int]:
    """Cut points for a file: the edges and a spread through the middle."""
    n = len(data)
    points = {1, 2, 4, 8, 9, 16, 64, 100, 512, n // 4, n // 3, n // 2, (2 * n) // 3, n - 100, n - 22, n - 8, n - 1}
    return sorted(p for p in points if 0 < p < n)


def run_pickle_loads_in_subprocess(payload: bytes, cwd: Path) -> None:
    """Positive control only: proves a payload is live by running it through plain pickle.loads."""
    import subprocess
    import sys

    script = "import pickle, sys, torch; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", script], input=payload, cwd=cwd, capture_output=True, timeout=60)


def assert_same(expected: object, got: object, where: str = "obj") -> None:
    """Structural, bit-for-bit equality: same types, keys in order, dtype, shape, stride, bytes."""
    assert type(got) is type(expected), f"{where}: type {type(got).__name__}, expected {type(expected).__name__}"
    if isinstance(expected, torch.Tensor):
        assert (got.dtype, got.shape, got.stride(), got.requires_grad) == (
            expected.dtype,
            expected.shape,
            expected.stride(),
            expected.requires_grad,
        ), (
            f"{where}: {got.dtype}{tuple(got.shape)}/{got.stride()} vs "
            f"{expected.dtype}{tuple(expected.shape)}/{expected.stride()}"
        )
        assert torch.equal(_bytes_of(got), _bytes_of(expected)), f"{where}: tensor bytes differ"
    elif isinstance(expected, dict):
        assert list(got) == list(expected), f"{where}: keys {list(got)[:5]}... vs {list(expected)[:5]}..."
        for key in expected:
            assert_same(expected[key], got[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), f"{where}: length {len(got)} vs {len(expected)}"
        for i, (a, b) in enumerate(zip(expected, got)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == expected, f"{where}: {got!r} vs {expected!r}"


def _bytes_of(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


class ExecutionMonitor:
    """Counts audit events that mean code from a file ran (process spawn, exec, pickle lookups).

    An audit hook cannot be removed, so one is installed once and only records while `active`.
    Independent of the marker files: it also catches payloads that would not touch the marker.
    """

    EVENTS = EXECUTION_EVENTS
    _installed: ExecutionMonitor | None = None

    def __init__(self) -> None:
        self.active = False
        self.events: list[str] = []

    @classmethod
    def get(cls) -> ExecutionMonitor:
        if cls._installed is None:
            import sys

            monitor = cls()
            sys.addaudithook(monitor._hook)
            cls._installed = monitor
        return cls._installed

    def _hook(self, event: str, args: tuple) -> None:
        if not self.active or event not in self.EVENTS:
            return
        if event == "exec" and is_module_import(args[0]):
            return  # a lazy import inside torch/stdlib runs its module file, not file content
        self.events.append(event)

    def __enter__(self) -> ExecutionMonitor:
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False


def refusal_mistakes(cases: Iterable[tuple[str, Path, type]]) -> list[str]:
    """Read each (name, path, expected family) under the execution monitor; return what went wrong.

    A case is right when `read_file` raises its family with one line naming the path. Loading,
    another family, a multi-line message and any non-`CheckpointError` exception are mistakes.
    The caller also checks the marker file and `ExecutionMonitor.get().events`."""
    from pytest_convnextpose.reading import read_file

    monitor = ExecutionMonitor.get()
    wrong: list[str] = []
    for name, path, family in cases:
        try:
            with monitor:
                read_file(path)
        except CheckpointError as err:
            message = str(err)
            if not isinstance(err, family):
                wrong.append(f"{name}: expected {family.__name__}, got {type(err).__name__}: {message}")
            elif "\n" in message or str(path) not in message:
                wrong.append(f"{name}: message is not one line naming the path: {message!r}")
        except Exception as err:  # noqa: BLE001 - any other exception type is the failure we look for
            wrong.append(f"{name}: crashed with {type(err).__name__}: {err}")
        else:
            wrong.append(f"{name}: loaded, expected {family.__name__}")
    return wrong
