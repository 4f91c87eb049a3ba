"""Time and peak memory of reading an L-sized checkpoint with AdamW state (~97 MB, like the release).

Writes the file itself (synthetic L weights + a real AdamW step, zip named `.tar`, storages tagged
`cuda:0`), then measures, each in a fresh subprocess so peak RSS belongs to that one operation:
  - `read_file` (the safe reader alone),
  - `torch.load(weights_only=True)` (for scale),
  - `convnextpose inspect --json` (whole CLI, if `load_checkpoint` is implemented).
Prints figures and ratios; targets: < 2 s and peak RSS growth < 2x the file size. No asserts.
With `--baseline-tree DIR` (another checkout, e.g. the commit before a change), `read_file` of that
tree is timed in the same run, interleaved with this tree's, and the ratio is printed.

    OMP_NUM_THREADS=1 python benchmarks/bench_inspect.py [--repeat 3] [--keep PATH] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import json, resource, sys, time
path, what = sys.argv[1], sys.argv[2]
import torch
from pytest_convnextpose.reading import read_file
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
try:  # reset the peak so it measures this operation, not the torch import
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
base = status("VmRSS:")
t = time.perf_counter()
if what == "read_file":
    obj = read_file(path).obj
else:
    obj = torch.load(path, map_location="cpu", weights_only=True)
elapsed = time.perf_counter() - t
peak = status("VmHWM:")
import pytest_convnextpose
print(json.dumps({"seconds": elapsed, "peak_growth_mb": (peak - base) / 1024, "peak_mb": peak / 1024,
                  "reader": pytest_convnextpose.__file__}))
"""


def write_checkpoint(path: Path) -> None:
    import torch

    from pytest_convnextpose.testing.synthetic import random_state_dict
    from pytest_convnextpose.testing.writers import write_container
    from reference_model import VARIANTS, build_model

    spec = VARIANTS["L"].spec
    state = random_state_dict(spec)
    model = build_model(spec)
    model.load_state_dict(state)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for p in model.parameters():  # one real AdamW step without a forward pass: fills exp_avg(_sq)
        p.grad = torch.randn_like(p) * 1e-3
    opt.step()
    network = {f"module.{k}": v for k, v in model.state_dict().items()}
    write_container(
        {"epoch": 83, "network": network, "optimizer": opt.state_dict()},
        path,
        "torch-zip",
        root_name="snapshot_83.pth",
        location="cuda:0",
    )


def probe(path: Path, what: str, tree: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", "")) if tree else None
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), what], capture_output=True, text=True, check=True, env=env, cwd=tree
    )  # `-c` puts the working folder first on sys.path
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe_cli(path: Path) -> dict | None:
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(['convnextpose', 'inspect', sys.argv[1], '--json'], capture_output=True); "
        "dt = time.perf_counter() - t; "
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
        "print(r.returncode, dt, peak, r.stderr.decode()[-200:].replace(chr(10), ' '))"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, str(path)], capture_output=True, text=True)
    parts = out.stdout.strip().split(" ", 3)
    if len(parts) < 3:
        return None
    return {
        "exit": int(parts[0]),
        "seconds": float(parts[1]),
        "peak_mb": float(parts[2]),
        "stderr": parts[3] if len(parts) > 3 else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    ap.add_argument("--baseline-tree", help="another checkout whose read_file to time in the same run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "ConvNeXtPose_L_synthetic.tar"
        t = time.perf_counter()
        write_checkpoint(path)
        size_mb = path.stat().st_size / 2**20
        print(f"wrote {path.name}: {size_mb:.1f} MiB in {time.perf_counter() - t:.1f} s")
        if args.baseline_tree:
            ours, theirs = [], []
            for _ in range(args.repeat):  # interleaved: the machine's noise hits both alike
                ours.append(probe(path, "read_file"))
                theirs.append(probe(path, "read_file", args.baseline_tree))
            if not theirs[0]["reader"].startswith(str(Path(args.baseline_tree).resolve())):
                raise SystemExit(
                    f"the baseline probe imported {theirs[0]['reader']}, not {args.baseline_tree}'s reader"
                )
            a, b = min(r["seconds"] for r in ours), min(r["seconds"] for r in theirs)
            ga, gb = max(r["peak_growth_mb"] for r in ours), max(r["peak_growth_mb"] for r in theirs)
            print(
                f"read_file here {a:.3f} s, baseline tree {b:.3f} s: ratio {a / b:.2f} (best of {args.repeat}); "
                f"peak RSS growth {ga:.0f} vs {gb:.0f} MiB"
            )
        for what in ("read_file", "torch.load"):
            runs = [probe(path, what) for _ in range(args.repeat)]
            best = min(r["seconds"] for r in runs)
            growth = max(r["peak_growth_mb"] for r in runs)
            print(
                f"{what:>10}: best {best:.3f} s of {args.repeat} (target < 2 s, ratio {best / 2:.2f}); "
                f"peak RSS growth {growth:.0f} MiB = {growth / size_mb:.2f}x file (target < 2x); "
                f"process peak {max(r['peak_mb'] for r in runs):.0f} MiB"
            )
        cli = [probe_cli(path) for _ in range(args.repeat)]
        if all(c and c["exit"] in (0, 1) for c in cli):
            best = min(c["seconds"] for c in cli)
            peak = max(c["peak_mb"] for c in cli)
            print(
                f"   inspect: best {best:.3f} s wall incl. interpreter start (target < 2 s, ratio {best / 2:.2f}); "
                f"process peak RSS {peak:.0f} MiB = {peak / size_mb:.2f}x file (includes torch import)"
            )
        else:
            print(f"   inspect: not measured (CLI not ready: {cli[0]})")


if __name__ == "__main__":
    main()
