"""Read (possibly hostile) files in throwaway processes under a memory and time watchdog, with our
reader, with the CLI, and with the reference readers every other user of the file would use.

Why a fork server: each case must run alone (a blown budget or a crash must not take the test run
with it, and peak memory must belong to that one read), yet paying a torch import per case would
make the suite slow. The server (`python case_runner.py`, started by `CaseRunner`) imports torch
and the reader once, then forks one child per job. The child sets `RLIMIT_AS`, arms an alarm,
runs the job and reports JSON; the server adds the child's peak RSS growth (`wait4`) and how it
ended (a SIGALRM death is a hang).

Jobs (`kind`):
  read     `read_file`: outcome, error family/layer/one-line message, a Merkle digest of the object,
           our view of the archive members, peak memory right after the read, seconds;
  inspect  `convnextpose inspect --json PATH` in-process: exit code, stderr, traceback or not;
  torch    the reference reader of the file's container: `torch.load(weights_only=True)` (zip,
           legacy), `torch.load` with a restricted pickle module (pre-1.0 tar), a restricted
           `pickle.Unpickler` (plain pickle), `torch.jit.load` (TorchScript), the safetensors
           library, and for a tar or folder `torch.load` of a zip made from what `tarfile`/the
           file system hands out;
  zipfile / torchzip / tarfile / gnutar   member listings and contents as those readers see them.
Nothing in a reference job is trusted: an audit hook in the child aborts process spawns, code
execution and writes, and the child is discarded after the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from audit_events import EXECUTION_EVENTS, SPAWN_EVENTS, is_module_import

MIB = 2**20
#: SECURITY.md's budget for one read: interpreter baseline + 4 x file size + 64 MiB, 30 s
BUDGET_RATIO, BUDGET_FLOOR_MB, BUDGET_SECONDS = 4, 64, 30.0


def memory_budget_mb(size: int) -> float:
    return BUDGET_RATIO * size / MIB + BUDGET_FLOOR_MB


# -- digests ----------------------------------------------------------------------------------------
def digest(obj: Any, *, unordered: bool = False) -> str:
    """A Merkle digest of a loaded object: types, dict key order (unless `unordered`), and every
    tensor's class, dtype, shape, strides (of dimensions larger than 1), requires_grad and bytes.
    Shared references are hashed once."""
    import torch

    memo: dict[int, str] = {}
    keep: list[Any] = []

    def h(*parts: Any) -> str:
        return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def walk(x: Any) -> str:
        key = id(x)
        if key in memo:
            return memo[key]
        keep.append(x)
        if isinstance(x, torch.Tensor):
            t = x.detach()
            # strides of dimensions of size 0 or 1 address nothing: not compared
            strides = tuple(st if sz > 1 else None for sz, st in zip(t.shape, t.stride()))
            out = h(type(x).__name__, str(t.dtype), tuple(t.shape), strides, x.requires_grad, _tensor_sha(t))
        elif isinstance(x, dict):
            items = [(walk(k), walk(v)) for k, v in x.items()]
            if unordered:
                items.sort()
            out = h(type(x).__name__, items, walk(getattr(x, "_metadata", None)))
        elif isinstance(x, (list, tuple)):
            out = h(type(x).__name__, [walk(v) for v in x])
        elif isinstance(x, (set, frozenset)):
            out = h(type(x).__name__, sorted(walk(v) for v in x))
        elif isinstance(x, float):
            out = h("float", struct.pack("<d", x).hex())
        elif isinstance(x, (bytes, bytearray)):
            out = h(type(x).__name__, hashlib.sha256(x).hexdigest())
        elif isinstance(x, (str, int, bool, complex, type(None))):
            out = h(type(x).__name__, x)
        elif isinstance(x, (torch.dtype, torch.device)):
            out = h(type(x).__name__, str(x))
        else:
            out = h("other", type(x).__name__)
        memo[key] = out
        return out

    return walk(obj)


def _tensor_sha(t: Any) -> str:
    """SHA-256 of a tensor's values in row-major order, hashed in slices (a view may be far larger
    than its storage); views of more than 1 GiB are not hashed (their shape and strides still are)."""
    import torch

    if t.numel() * t.element_size() > 2**30:
        return "unhashed: larger than 1 GiB"
    flat = t.reshape(-1)
    h = hashlib.sha256()
    step = 1 << 20
    for i in range(0, flat.numel(), step):
        h.update(flat[i : i + step].clone(memory_format=torch.contiguous_format).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def norm_name(name: str) -> str:
    """A member name as a path: no `./` parts, no empty parts, no trailing slash."""
    return "/".join(p for p in name.split("/") if p not in ("", "."))


# -- jobs (run in the forked child) -------------------------------------------------------------------
def job_read(job: dict) -> dict:
    from pytest_convnextpose.errors import CheckpointError
    from pytest_convnextpose.reading import layer_of, read_file

    path = job["path"]
    start = time.perf_counter()
    try:
        raw = read_file(path)
    except CheckpointError as err:
        seconds = time.perf_counter() - start
        return {
            "status": "refused",
            "seconds": seconds,
            "read_hwm_kb": proc_status("VmHWM"),
            "family": family_of(err),
            "layer": layer_of(err),
            "message": str(err)[:500],
            "one_line": "\n" not in str(err) and str(Path(path)) in str(err),
            "memory_error": _memory_error_in_chain(err),
        }
    seconds = time.perf_counter() - start
    hwm = proc_status("VmHWM")
    unordered = raw.container in ("torchscript", "safetensors")
    out = {
        "status": "loaded",
        "seconds": seconds,
        "read_hwm_kb": hwm,
        "container": raw.container,
        "root": raw.root,
        "sha256": raw.sha256,
        "member": getattr(raw, "member", ""),
    }
    try:
        out["digest"] = digest(raw.obj, unordered=unordered)
    except BaseException as exc:  # noqa: BLE001 - the digest is ours, not the reader's: report, do not fail
        out["digest"] = f"digest failed: {type(exc).__name__}"
    if raw.container == "safetensors":  # the file's __metadata__ (without what the reader adds for a wrapper)
        out["metadata"] = {k: v for k, v in raw.metadata.items() if k != "archive"}
    return out


def job_members(job: dict) -> dict:
    """Our reader's view of an archive's members (validated container layer only)."""
    from pytest_convnextpose.errors import CheckpointError

    try:
        members = _our_members(job["path"])
    except CheckpointError as err:
        return {"status": "refused", "message": str(err)[:300]}
    content = hashlib.sha256()
    for data in members.values():
        content.update(data)
    return {
        "status": "loaded",
        "members": [[n, _sha(bytes(d))] for n, d in members.items()],
        "content": content.hexdigest(),
    }


def _our_members(path: str) -> Any:
    """`reading.archive_members`, or for an older tree (`--tree`) its container parsers directly."""
    try:
        from pytest_convnextpose.reading import archive_members
    except ImportError:  # the reader before issue 11: read_zip/read_tar(buffer, limits)
        from pytest_convnextpose.reading import DEFAULT_LIMITS
        from pytest_convnextpose.reading.tar_format import read_tar
        from pytest_convnextpose.reading.zip_format import read_zip

        buf = memoryview(bytearray(Path(path).read_bytes()))
        parse = read_zip if bytes(buf[:4]) == b"PK\x03\x04" else read_tar
        return parse(buf, DEFAULT_LIMITS).records
    return archive_members(path)


def job_inspect(job: dict) -> dict:
    from pytest_convnextpose.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    traceback_text = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["inspect", "--json", job["path"]])
        except BaseException as exc:  # noqa: BLE001 - a traceback is what we look for
            import traceback

            code, traceback_text = None, "".join(traceback.format_exception(exc))[-2000:]
    seconds = time.perf_counter() - start
    stderr = err.getvalue()
    return {
        "status": "ran",
        "exit": code,
        "seconds": seconds,
        "inspect_hwm_kb": proc_status("VmHWM"),
        "stderr": stderr[-1000:],
        "stderr_lines": len(stderr.splitlines()),
        "traceback": traceback_text,
        "json_ok": _json_ok(out.getvalue()),
    }


def _json_ok(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def job_torch(job: dict) -> dict:
    """The reference reader of the container, in this throwaway child."""
    import torch

    path, container = job["path"], job["container"]
    if container.startswith("wrapped|"):
        return _torch_wrapped(path, container)
    _arm_strict_audit()
    try:
        if container in ("torch-zip", "torch-legacy"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
        elif container == "torch-tar":
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle_module())
        elif container == "pickle":
            obj = _RestrictedUnpickler(open(path, "rb"), encoding="utf-8").load()
        elif container == "torchscript":
            return {
                "status": "loaded",
                "digest": digest(dict(torch.jit.load(path, map_location="cpu").state_dict()), unordered=True),
            }
        elif container == "safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(path, "pt") as fh:
                meta = fh.metadata() or {}
            return {"status": "loaded", "digest": digest(load_file(path), unordered=True), "metadata": meta}
        elif container in ("tar-directory", "directory"):
            records = _tar_records(path) if container == "tar-directory" else _folder_records(path)
            with tempfile.TemporaryDirectory() as tmp:
                zpath = Path(tmp) / "rebuilt.pt"
                _rezip(records, zpath)
                obj = torch.load(zpath, map_location="cpu", weights_only=True)
        else:
            return {"status": "none"}
    except BaseException as exc:  # noqa: BLE001 - the reference reader refusing is an answer
        return {"status": "refused", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {"status": "loaded", "digest": digest(obj)}


def _torch_wrapped(path: str, container: str) -> dict:
    """A checkpoint inside a wrapper: its member taken out by zipfile, tarfile or gzip (the readers users
    extract with) into a temporary file or folder this child made, then read by the inner container's
    reference reader. Reports the member's sha256 as extracted (a folder's: `digest.records_sha256`)."""
    import gzip
    import zipfile

    _, inner, member = container.split("|", 2)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                records = [(i.filename, zf.read(i)) for i in zf.infolist() if not i.is_dir()]
        elif Path(path).name.endswith(".gz") and not Path(path).name.endswith(".tar.gz"):
            records = [(member, gzip.decompress(Path(path).read_bytes()))]
        else:
            records = [(n, d) for n, k, d in _tarfile_members(path) if k == "file"]
    except BaseException as exc:  # noqa: BLE001 - the reference reader refusing is an answer
        return {"status": "refused", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}
    with tempfile.TemporaryDirectory() as tmp:
        if inner == "directory":
            from pytest_convnextpose.reading.digest import records_sha256

            folder = [(n[len(member) + 1 :], d) for n, d in records if n.startswith(member + "/")]
            sha = records_sha256(dict(folder))
            target = Path(tmp) / "extracted"
            for name, data in folder:
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(data)
        else:
            data = dict(records)[member]
            sha = _sha(data)
            target = Path(tmp) / "extracted"
            target.write_bytes(data)
        result = job_torch({"path": str(target), "container": inner})
    return {**result, "sha256": sha}


def job_zipfile(job: dict) -> dict:
    import zipfile

    try:
        with zipfile.ZipFile(job["path"]) as zf:
            return {"status": "loaded", "members": [[i.filename, _sha(zf.read(i))] for i in zf.infolist()]}
    except BaseException as exc:  # noqa: BLE001
        return {"status": "refused", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}


def job_torchzip(job: dict) -> dict:
    import torch

    try:
        reader = torch._C.PyTorchFileReader(job["path"])
        names = list(reader.get_all_records())
        return {"status": "loaded", "members": [[n, _sha(bytes(reader.get_record(n)))] for n in names]}
    except BaseException as exc:  # noqa: BLE001
        return {"status": "refused", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}


def job_tarfile(job: dict) -> dict:
    try:
        regular, other = [], []
        for name, kind, data in _tarfile_members(job["path"]):
            if kind == "file":
                regular.append([norm_name(name), _sha(data)])
            elif kind != "dir":
                other.append([name, kind])
        return {"status": "loaded", "members": regular, "other": other}
    except BaseException as exc:  # noqa: BLE001
        return {"status": "refused", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}


def job_gnutar(job: dict) -> dict:
    env = dict(os.environ, LC_ALL="C")
    listing = subprocess.run(
        ["tar", "--numeric-owner", "--quoting-style=literal", "-tvf", job["path"]],
        capture_output=True,
        env=env,
        timeout=60,
    )
    content = subprocess.run(["tar", "-xOf", job["path"]], capture_output=True, env=env, timeout=60)
    if listing.returncode or content.returncode:
        return {"status": "refused", "message": (listing.stderr + content.stderr).decode(errors="replace")[:300]}
    regular, other = [], []
    for line in listing.stdout.decode("utf-8", "surrogateescape").splitlines():
        kind, name = line[:1], _gnu_name(line)
        if kind in ("-", "C"):  # C: a contiguous file (type 7), read as a regular one
            regular.append(norm_name(name))
        elif kind != "d":
            other.append([name, kind])
    warnings = (listing.stderr + content.stderr).decode(errors="replace")
    return {
        "status": "loaded",
        "names": regular,
        "other": other,
        "content": _sha(content.stdout),
        "warnings": warnings[:300],
    }


def _gnu_name(line: str) -> str:
    # "-rw-r--r-- 0/0   1234 2024-01-01 00:00 name": the name follows the time field
    parts = line.split(None, 5)
    name = parts[5] if len(parts) == 6 else ""
    return name.split(" -> ")[0].split(" link to ")[0]


JOBS = {
    "read": job_read,
    "members": job_members,
    "inspect": job_inspect,
    "torch": job_torch,
    "zipfile": job_zipfile,
    "torchzip": job_torchzip,
    "tarfile": job_tarfile,
    "gnutar": job_gnutar,
}


# -- reference-reader helpers ---------------------------------------------------------------------------
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch.storage", "_load_from_bytes"),
    ("_codecs", "encode"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("torch", "Size"),
    ("torch", "device"),
}


def _allowed_global(module: str, name: str) -> Any:
    import torch

    if (module, name) == ("torch.storage", "_load_from_bytes"):
        # torch itself runs torch.load here (weights_only=False; the storages land where the file says:
        # the reference loads them to the CPU, as our reader does by default)
        return lambda b: torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")
    if (module, name) in _ALLOWED or (
        module in ("torch", "torch.cuda")
        and (name.endswith("Storage") or name.endswith("Tensor") or isinstance(getattr(torch, name, None), torch.dtype))
    ):
        import importlib

        return getattr(importlib.import_module(module), name)
    raise RuntimeError(f"global {module}.{name} refused by the reference unpickler")


import pickle  # noqa: E402 - after the helpers it serves


class _RestrictedUnpickler(pickle.Unpickler):
    """Python's own unpickler (the semantics a plain pickle has) with globals limited to ours."""

    def find_class(self, module: str, name: str) -> Any:
        return _allowed_global(module, name)


def _restricted_pickle_module() -> Any:
    import types

    mod = types.ModuleType("restricted_pickle")
    mod.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    mod.__name__ = "restricted_pickle"
    return mod


def _tarfile_members(path: str) -> list[tuple[str, str, bytes]]:
    import tarfile

    out = []
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            kind = (
                "file"
                if m.isreg()
                else "dir"
                if m.isdir()
                else {tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}.get(m.type, repr(m.type))
            )
            out.append((m.name, kind, tf.extractfile(m).read() if m.isreg() else b""))
    return out


def _tar_records(path: str) -> list[tuple[str, bytes]]:
    members = _tarfile_members(path)
    others = [(n, k) for n, k, _ in members if k not in ("file", "dir")]
    if others:
        raise RuntimeError(f"tar holds {others[0][1]} member {others[0][0]!r}")
    return [(norm_name(n), d) for n, k, d in members if k == "file"]


def _folder_records(path: str) -> list[tuple[str, bytes]]:
    root = Path(path)
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def _rezip(records: list[tuple[str, bytes]], out: Path) -> None:
    """The records of an unpacked checkpoint as the zip torch would read (root folder added if none)."""
    import zipfile

    pkl = [n for n, _ in records if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pkl) != 1:
        raise RuntimeError(f"{len(pkl)} data.pkl records")
    root = pkl[0][: -len("data.pkl")]
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in records:
            if name.startswith(root):
                zf.writestr(("archive/" if not root else "") + name, data)


def _arm_strict_audit() -> None:
    """Abort anything a reference reader should never do on a hostile file."""
    blocked = SPAWN_EVENTS + (
        "socket.",
        "os.remove",
        "shutil.rmtree",
        "os.unlink",
        "ctypes.",
    )

    def hook(event: str, args: tuple) -> None:
        if (
            event in ("os.remove", "os.unlink", "shutil.rmtree", "os.rmdir")
            and args
            and (_in_tmp(args[0]) or (len(args) > 1 and args[1] is not None))
        ):
            return  # a reference reader cleaning up its own temporary folder (torch extracts old tars)
        if event.startswith(blocked) or (
            event == "open"
            and len(args) > 1
            and isinstance(args[1], str)
            and any(c in args[1] for c in "wax+")
            and not _in_tmp(args[0])
        ):
            raise RuntimeError(f"reference reader attempted {event}")

    sys.addaudithook(hook)


_TMP = tempfile.gettempdir()  # resolved once: the audit hook must not call into tempfile (its lock)


def _in_tmp(path: Any) -> bool:
    return str(path).startswith(_TMP)


# -- the child's bookkeeping ------------------------------------------------------------------------------
def proc_status(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM, VmSize)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> int:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux `clear_refs`); return the RSS in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    return proc_status("VmRSS")


def family_of(err: Exception) -> str:
    """The project error family (`pytest_convnextpose.errors`) an exception belongs to."""
    for klass in type(err).__mro__:
        if klass.__module__ == "pytest_convnextpose.errors":
            return klass.__name__
    return type(err).__name__


def _memory_error_in_chain(err: BaseException) -> bool:
    seen = 0
    cur: Optional[BaseException] = err
    while cur is not None and seen < 20:
        if isinstance(cur, MemoryError):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


class _Executions:
    """Audit events that mean code from a file ran (recorded, not raised: the reader must not cause them)."""

    EVENTS = EXECUTION_EVENTS

    def __init__(self) -> None:
        self.events: list[str] = []
        sys.addaudithook(self.hook)

    def hook(self, event: str, args: tuple) -> None:
        if event not in self.EVENTS:
            return
        if event == "exec":
            if is_module_import(args[0]):
                return  # a module import, not file content
            caller = sys._getframe(1).f_code.co_filename
            if caller.endswith(("dataclasses.py", "collections/__init__.py")):
                return  # a class being defined by a lazy import (generated __init__/__repr__)
        detail = ""
        if event == "exec":
            detail = f" {getattr(args[0], 'co_filename', '?')}:{getattr(args[0], 'co_name', '?')}"
        self.events.append(event + detail)


def _child(job: dict, wfd: int) -> None:
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    base_kb = reset_peak()  # the peak RSS inherited from the server is not this job's
    limit = int(job.get("as_limit_mb", 0))
    if limit:
        vsz = proc_status("VmSize") * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vsz + limit * MIB, resource.RLIM_INFINITY))
    signal.alarm(int(job.get("timeout", 120)))
    executions = _Executions() if job["kind"] in ("read", "inspect") else None
    try:
        out = JOBS[job["kind"]](job)
    except BaseException as exc:  # noqa: BLE001 - reported, never raised
        import traceback

        out = {
            "status": "crash",
            "message": f"{type(exc).__name__}: {exc}"[:500],
            "traceback": "".join(traceback.format_exception(exc))[-2000:],
            "memory_error": isinstance(exc, MemoryError),
        }
    signal.alarm(0)
    out["executed"] = executions.events if executions else []
    hwm_kb = out.get("read_hwm_kb") or out.get("inspect_hwm_kb") or proc_status("VmHWM")
    out["peak_growth_mb"] = max(0, hwm_kb - base_kb) / 1024
    out["job_peak_growth_mb"] = max(0, proc_status("VmHWM") - base_kb) / 1024
    data = json.dumps(out, default=str).encode()
    while data:
        n = os.write(wfd, data)
        data = data[n:]


def _run_forked(job: dict) -> dict:
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(rfd)
        try:
            _child(job, wfd)
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    start = time.perf_counter()
    while True:
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - start
    try:
        out = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        out = {}
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        out = {"status": "hang" if sig == signal.SIGALRM else "killed", "signal": sig, **out}
    elif not out:
        out = {"status": "crash", "message": f"child exited {os.WEXITSTATUS(status)} without a result"}
    out["wall"] = wall
    return out


def serve() -> None:
    """Read jobs (JSON lines) on stdin, answer each with one JSON line on the original stdout."""
    out_fd = os.dup(1)
    os.dup2(2, 1)  # anything children print goes to stderr, never into the answers
    import torch

    torch.set_num_threads(1)
    import pytest_convnextpose.cli  # noqa: F401 - imported once, inherited by every child

    tree = os.environ.get("CASE_RUNNER_TREE")
    if tree and not pytest_convnextpose.cli.__file__.startswith(str(Path(tree).resolve())):
        raise SystemExit(f"case runner: asked for the reader of {tree}, imported {pytest_convnextpose.cli.__file__}")
    import safetensors.torch  # noqa: F401

    import pytest_convnextpose.checkpoint  # noqa: F401
    import pytest_convnextpose.checkpoint.infer  # noqa: F401
    import pytest_convnextpose.reading  # noqa: F401

    warm = os.environ.get("CASE_RUNNER_WARMUP")
    if warm:  # first inspect builds caches (a reference model's shapes) that belong to the baseline
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from pytest_convnextpose.cli.main import main

            main(["inspect", "--json", warm])
    os.write(out_fd, b'{"ready": true}\n')
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        result = _run_forked(job)
        result["id"] = job.get("id")
        os.write(out_fd, (json.dumps(result, default=str) + "\n").encode())


class CaseRunner:
    """The test side: start the server once, send jobs, get results (one process per job)."""

    def __init__(self, *, warmup: Optional[Path] = None, pythonpath: Optional[str] = None) -> None:
        env = dict(
            os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED=os.environ.get("PYTHONHASHSEED", "0")
        )
        if warmup:
            env["CASE_RUNNER_WARMUP"] = str(warmup)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
            env["CASE_RUNNER_TREE"] = pythonpath
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )
        ready = self.proc.stdout.readline()
        if '"ready"' not in ready:
            raise RuntimeError(f"case runner did not start: {ready!r}")

    def run(
        self, kind: str, path: Path | str, *, container: str = "", timeout: float = 120, as_limit_mb: int = 0
    ) -> dict:
        job = {"kind": kind, "path": str(path), "container": container, "timeout": timeout, "as_limit_mb": as_limit_mb}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("case runner died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    serve()
