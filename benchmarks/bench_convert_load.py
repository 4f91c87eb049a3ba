"""Load time of a converted L file vs `torch.load` of its source, side by side in one run.

    python benchmarks/bench_convert_load.py [--repeats 7] [--threads 1] [--source PATH ...] [--no-generated]

Sources: the golden L file (`../shared/golden/ConvNeXtPose_L.tar`, network only) when present,
and a generated L-sized file shaped like the released ones (`{'epoch', 'network', 'optimizer'}`
with AdamW state, `module.` keys, head as `deconv_layers_N.0/.1/.2`). Each source is converted
once with `convnextpose convert`'s code; then, interleaved in every repetition so machine load
hits all alike, we time:

  torch.load        torch.load(source, map_location="cpu", weights_only=True)  (what users do today)
  load_ckpt(src)    pytest_convnextpose.load_checkpoint(source)
  st.load_file      safetensors.torch.load_file(converted)                     (raw safetensors)
  load_ckpt(st)     pytest_convnextpose.load_checkpoint(converted)             (full: read, check, infer)

and print the median and best of each and the ratios torch.load / others (target: >= 5x for
the converted file). Files are read from the page cache after the first repetition, so these
are warm-cache figures for both sides. No assertions: the reader judges the numbers.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_convnextpose.checkpoint.dialects import Dialect, from_canonical  # noqa: E402
from pytest_convnextpose.checkpoint.load import load_checkpoint  # noqa: E402
from pytest_convnextpose.convert.to_safetensors import convert_file  # noqa: E402
from pytest_convnextpose.testing.synthetic import random_state_dict  # noqa: E402
from reference_model import VARIANTS  # noqa: E402

GOLDEN_L = REPO.parent / "shared" / "golden" / "ConvNeXtPose_L.tar"


def released_style_l(path: Path) -> Path:
    """An L file laid out like the released one: module. keys, sequential head, AdamW state."""
    sd = random_state_dict(VARIANTS["L"].spec, seed=0)
    network = from_canonical(sd, Dialect(prefixes=("module.",), head_layout="sequential"))
    params = [k for k, v in sd.items() if v.is_floating_point() and not k.endswith(("running_mean", "running_var"))]
    state = {i: {"step": torch.tensor(83.0), "exp_avg": torch.randn_like(sd[k]) * 1e-3,
                 "exp_avg_sq": torch.rand_like(sd[k]) * 1e-6} for i, k in enumerate(params)}
    optimizer = {"state": state, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                                   "weight_decay": 0.05, "amsgrad": False, "maximize": False,
                                                   "foreach": None, "capturable": False, "differentiable": False,
                                                   "fused": None, "params": list(range(len(params)))}]}
    torch.save({"epoch": 83, "network": network, "optimizer": optimizer}, path)
    return path


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(source: Path, converted: Path, repeats: int) -> dict[str, list[float]]:
    from safetensors.torch import load_file

    cases = {
        "torch.load": lambda: torch.load(source, map_location="cpu", weights_only=True),
        "load_ckpt(src)": lambda: load_checkpoint(source),
        "st.load_file": lambda: load_file(str(converted)),
        "load_ckpt(st)": lambda: load_checkpoint(converted),
    }
    for fn in cases.values():  # warm the page cache and lazy imports for everyone
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    return times


def report(label: str, source: Path, converted: Path, times: dict[str, list[float]]) -> None:
    base = statistics.median(times["torch.load"])
    print(f"\n{label}: {source.name} ({source.stat().st_size / 1e6:.1f} MB) -> "
          f"{converted.name} ({converted.stat().st_size / 1e6:.1f} MB), {len(times['torch.load'])} repetitions")
    print(f"  {'what':<16}{'median ms':>11}{'best ms':>10}{'torch.load / this':>20}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<16}{med * 1e3:>11.1f}{min(ts) * 1e3:>10.1f}{base / med:>19.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--source", type=Path, action="append", default=[], help="extra source checkpoint(s)")
    ap.add_argument("--no-generated", action="store_true", help="skip the generated released-style L file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        sources = [(p.name, p) for p in args.source]
        if GOLDEN_L.exists():
            sources.append(("golden L (network only)", GOLDEN_L))
        else:
            print(f"golden L absent ({GOLDEN_L}); using the generated file only")
        if not args.no_generated:
            sources.append(("generated L, released layout with AdamW state", released_style_l(Path(tmp) / "L_gen.tar")))
        for i, (label, src) in enumerate(sources):
            out = Path(tmp) / f"converted_{i}.safetensors"
            t = timed(lambda src=src, out=out: convert_file(src, out))
            print(f"converted {src.name} in {t:.2f} s")
            report(label, src, out, bench(src, out, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
