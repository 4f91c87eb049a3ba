"""The verdict on one red-team case: what went wrong, by kind (used by the test and the benchmark).

A case is judged from jobs run in throwaway processes (`case_runner.py`): our `read_file`,
`convnextpose inspect --json`, and, for a file we load, the reference readers. Kinds of mistakes:
  executed            anything from the file ran (audit hook in the child);
  crash               a reader job crashed, or inspect exited 3 / printed a traceback;
  hang                a job ran past the time budget (the child's watchdog);
  memory              peak memory grew past SECURITY.md's budget (baseline + 4 x size + 64 MiB);
  hostile accepted    a `refuse` case loaded (or inspect exited 0/1);
  legitimate refused  a `load` case was refused;
  disagreement        we load it and a reference reader sees other content, or refuses it
                      (tensor by tensor, bit for bit; member names and contents);
  message             a refusal that is not one line naming the file; no verdict where one is due.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from case_runner import BUDGET_SECONDS, CaseRunner, memory_budget_mb
from differential_corpus import DiffCase

KINDS = ("executed", "crash", "hang", "memory", "hostile accepted", "legitimate refused", "disagreement", "message")
#: container -> the listing jobs whose view of the members must equal ours (GNU tar where installed)
LISTINGS = {"torch-zip": ("zipfile", "torchzip"), "torchscript": ("zipfile", "torchzip"),
            "tar-directory": ("tarfile", "gnutar") if shutil.which("tar") else ("tarfile",)}


@dataclass
class Verdict:
    case: DiffCase
    size: int
    budget_mb: float
    read: dict
    inspect: dict
    mistakes: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)

    def add(self, kind: str, detail: str) -> None:
        self.mistakes.append((kind, detail))

    @property
    def kinds(self) -> set[str]:
        return {k for k, _ in self.mistakes}

    @property
    def peak_mb(self) -> float:
        return max(self.read.get("peak_growth_mb", 0), self.inspect.get("peak_growth_mb", 0))

    @property
    def seconds(self) -> float:
        return max(self.read.get("seconds", 0), self.inspect.get("seconds", 0))


def _wrapper_listings(case: DiffCase) -> tuple[str, ...]:
    """The archive readers that list a wrapper's members (a plain .gz has one member: no listing)."""
    if not case.container.startswith("wrapped|"):
        return ()
    head = case.path.read_bytes()[:4] if case.path.is_file() else b""
    if head.startswith(b"PK"):
        return ("zipfile",)
    return ("tarfile",) if not case.path.name.endswith(".pth.gz") else ()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def judge(case: DiffCase, runner: CaseRunner, *, oracles: bool = True) -> Verdict:
    size = size_of(case.path)
    budget = memory_budget_mb(size)
    limit = int(2 * budget + 1024)  # room to see a blowup happen before the address space runs out
    read = runner.run("read", case.path, container=case.container, timeout=BUDGET_SECONDS, as_limit_mb=limit)
    inspect = runner.run("inspect", case.path, container=case.container, timeout=BUDGET_SECONDS, as_limit_mb=limit)
    v = Verdict(case, size, budget, read, inspect)
    for what, job in (("read_file", read), ("inspect", inspect)):
        if job.get("executed"):
            v.add("executed", f"{what}: {job['executed'][:3]}")
        if job["status"] == "hang":
            v.add("hang", f"{what} still running after {BUDGET_SECONDS:g} s")
        elif job.get("peak_growth_mb", 0) > budget or job.get("memory_error"):
            v.add("memory", f"{what} peak memory grew {job.get('peak_growth_mb', 0):.0f} MiB (budget {budget:.0f})")
        elif job["status"] in ("crash", "killed"):
            v.add("crash", f"{what}: {job.get('message', job.get('signal'))}")
    if inspect.get("exit") == 3 or inspect.get("traceback"):
        v.add("crash", f"inspect exit {inspect.get('exit')}: {(inspect.get('traceback') or inspect['stderr'])[-300:]}")
    elif inspect.get("exit") == 2 and inspect.get("stderr_lines") != 1:
        v.add("message", f"inspect refusal is not one line: {inspect.get('stderr')!r}")
    if inspect.get("status") == "ran" and inspect.get("exit") is not None and not inspect.get("json_ok"):
        v.add("message", "inspect --json printed no JSON object")
    if case.expect == "refuse":
        if read["status"] == "loaded" or inspect.get("exit") in (0, 1):
            v.add("hostile accepted", f"read {read['status']}, inspect exit {inspect.get('exit')}")
        elif read["status"] == "refused" and not read.get("one_line"):
            v.add("message", f"refusal is not one line naming the file: {read.get('message')!r}")
    if case.expect == "load" and read["status"] != "loaded":
        v.add("legitimate refused", str(read.get("message", read["status"])))
    wanted = {"problem": (1, 2), "verdict": (0, 1, 2)}.get(case.expect)
    if wanted and inspect.get("exit") not in wanted and "crash" not in v.kinds:
        v.add("message", f"inspect exit {inspect.get('exit')}, expected {' or '.join(map(str, wanted))}")
    if oracles and read["status"] == "loaded" and size < 2**30:
        for detail in disagreements(case, read, runner):
            v.add("disagreement", detail)
    return v


def disagreements(case: DiffCase, read: dict, runner: CaseRunner) -> list[str]:
    """Where a reference reader sees other content than our loaded view (refusing is disagreeing)."""
    out = []
    ref = runner.run("torch", case.path, container=case.container, timeout=120, as_limit_mb=4096)
    if ref["status"] != "loaded":
        out.append(f"we load it, the reference reader does not: {ref.get('message', ref['status'])}")
    elif ref["digest"] != read["digest"]:
        out.append("the reference reader loads other tensors or values")
    elif "metadata" in ref and ref["metadata"] != read.get("metadata"):
        out.append("the reference reader sees other safetensors metadata")
    elif "sha256" in ref and ref["sha256"] != read.get("sha256"):
        out.append(f"the member as extracted has sha256 {ref['sha256'][:12]}, we read {str(read.get('sha256'))[:12]}")
    if case.container.startswith("wrapped|") and read.get("member") != case.container.split("|", 2)[2]:
        out.append(f"we read member {read.get('member')!r}, the case wraps {case.container.split('|', 2)[2]!r}")
    listings = LISTINGS.get(case.container, ()) or _wrapper_listings(case)
    if not listings:
        return out
    ours = runner.run("members", case.path, container=case.container)
    if ours["status"] != "loaded":
        return out + [f"our container layer refuses a file we load: {ours.get('message')}"]
    mine = [tuple(m) for m in ours["members"]]
    for kind in listings:
        got = runner.run(kind, case.path, container=case.container)
        if got["status"] != "loaded" or got.get("other"):
            out.append(f"{kind} reads the archive otherwise: {got.get('message') or got.get('other')}")
        elif kind == "zipfile" and [tuple(m) for m in got["members"]] != mine:
            out.append("zipfile lists other members")
        elif kind == "torchzip":
            root = read.get("root", "")
            rel = sorted((n[len(root) + 1:], s) for n, s in mine if n.startswith(root + "/") and not n.endswith("/"))
            if sorted(tuple(m) for m in got["members"]) != rel:
                out.append("torch's zip reader lists other members")
        elif kind == "tarfile" and [tuple(m) for m in got["members"]] != mine:
            out.append("tarfile lists other members")
        elif kind == "gnutar" and (got["names"] != [n for n, _ in mine] or got["content"] != ours["content"]):
            out.append(f"GNU tar reads other members: {got['names'][:4]}")
    return out
