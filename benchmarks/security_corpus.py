"""Run the issue-11 red-team corpus (tests/differential_corpus.py) and print the per-class figures.

For every case, in its own forked process (tests/case_runner.py): `read_file` and `convnextpose
inspect --json` under the memory/time watchdog, and the reference readers (torch.load
weights_only=True, zipfile, torch's zip reader, tarfile, GNU tar, safetensors, a restricted
pickle.Unpickler). Figures per class: cases, executed, crashes, hangs, memory blowups, hostile
accepted, legitimate refused, disagreements (we accept, a reference reader sees other content);
plus refusals by layer and the worst memory and time of one case.

    OMP_NUM_THREADS=1 python benchmarks/security_corpus.py [--json out.json] [--tree /path/to/other/checkout]
    [--small] [--only NAME-SUBSTRING]

`--tree` measures another checkout's reader (e.g. the commit before the fixes) with the same corpus.
No assertions: tests/test_security_differential.py asserts on the same verdicts (differential_judge.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from case_runner import CaseRunner  # noqa: E402
from differential_corpus import CLASSES, cases  # noqa: E402
from differential_judge import Verdict, judge  # noqa: E402

FIGURES = ("cases", "executed", "crash", "hang", "memory", "hostile accepted", "legitimate refused", "disagreement",
           "message")


def table(results: list[Verdict]) -> str:
    """Cases per class, and how many cases show each kind of mistake (a case counts once per kind)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for v in results:
        for klass in (v.case.klass, "all"):
            per[klass]["cases"] += 1
            per[klass].update(v.kinds)
    lines = ["| class | " + " | ".join(FIGURES) + " |", "|---" * (len(FIGURES) + 1) + "|"]
    for klass in list(CLASSES) + ["all"]:
        lines.append(f"| {klass} | " + " | ".join(str(per[klass][f]) for f in FIGURES) + " |")
    return "\n".join(lines)


def layers(results: list[Verdict]) -> Counter:
    return Counter(v.read.get("layer", "?") for v in results if v.read["status"] == "refused")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--tree", help="another checkout whose reader to measure (PYTHONPATH)")
    ap.add_argument("--small", action="store_true", help="leave out the cases that write tens of MB")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-oracles", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "MARKER_payload_ran"
        corpus = [c for c in cases(Path(tmp) / "corpus", marker, big=not args.small) if args.only in c.name]
        warm = TESTS / "data" / "tiny_snapshot_83.pth.tar"
        runner = CaseRunner(warmup=warm, pythonpath=args.tree)
        results = []
        try:
            for case in corpus:
                v = judge(case, runner, oracles=not args.no_oracles)
                results.append(v)
                print(f"{case.klass:>13} {case.name:<42} read={v.read['status']:<8} exit={v.inspect.get('exit')} "
                      f"{v.seconds:6.2f}s {v.peak_mb:7.1f}MiB {'; '.join(f'{k}: {d}' for k, d in v.mistakes)[:160]}",
                      flush=True)
        finally:
            runner.close()
        if marker.exists():
            print("MARKER FILE EXISTS: a payload ran")
    print()
    print(table(results))
    print()
    print("refusals by layer:", dict(layers(results)))
    worst_mem = max(results, key=lambda v: v.peak_mb)
    worst_ratio = max(results, key=lambda v: v.peak_mb / v.budget_mb)
    worst_time = max(results, key=lambda v: v.seconds)
    print(f"worst memory: {worst_mem.case.name} {worst_mem.peak_mb:.1f} MiB over the baseline "
          f"(budget {worst_mem.budget_mb:.0f} MiB for {worst_mem.size} bytes)")
    print(f"closest to its memory budget: {worst_ratio.case.name} {worst_ratio.peak_mb:.1f} of "
          f"{worst_ratio.budget_mb:.0f} MiB")
    print(f"worst time: {worst_time.case.name} {worst_time.seconds:.2f} s (read_file or inspect, in-process)")
    if args.json:
        args.json.write_text(json.dumps([{"name": v.case.name, "class": v.case.klass, "expect": v.case.expect,
                                          "size": v.size, "budget_mb": v.budget_mb, "read": v.read,
                                          "inspect": v.inspect, "mistakes": v.mistakes} for v in results],
                                        indent=1, default=str))


if __name__ == "__main__":
    main()
