"""Time the reference forward against a straight port of the authors' forward.

    python benchmarks/forward.py [--variants XS,S,M,L] [--batches 1,8] [--device cpu|cuda|all]
                                 [--repeats 5] [--threads N] [--compile] [--profile]

In one process and one run, for each variant and batch size, both models get the same
seeded weights (`synthetic.random_state_dict`) and the same input; the script first
checks that they agree (max |difference| of the coordinates, printed), then times them
interleaved (port, reference, port, ...) so drift in machine load hits both alike, and
prints the best time of each and the ratio port/reference (> 1: the reference is
faster). `--profile` adds where the time goes in the port (backbone, head layers,
final 1x1 conv, soft-argmax). No timed assertions: this prints figures, the reader judges.

Goal set by the issue: >= 1.3x on CPU for M and L at batch 8, and no slower anywhere.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import authors_port  # noqa: E402  (benchmark-only module next to this script)

from pytest_convnextpose.testing.synthetic import random_state_dict  # noqa: E402
from reference_model import VARIANTS, build_model  # noqa: E402


@dataclass
class Row:
    device: str
    variant: str
    batch: int
    port_s: float
    ref_s: float
    max_diff: float

    @property
    def ratio(self) -> float:
        return self.port_s / self.ref_s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _interleaved(fns: list[Callable[[], object]], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Best (minimum) seconds of each fn, timed alternately so both see the same machine load.

    The minimum, not the median: on a shared machine the noise only ever adds time, so
    the fastest of N runs is the steadiest estimate of what the code itself costs.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            times[i].append(_time_once(fn, device))
    return [min(t) for t in times]


def _models(name: str, device: torch.device, compile_ref: bool):
    spec = VARIANTS[name].spec
    state = random_state_dict(spec, seed=0)
    port = authors_port.get_pose_net(spec)
    port.load_state_dict(state, strict=True)
    ref = build_model(spec)
    ref.load_state_dict(state, strict=True)
    port, ref = port.eval().to(device), ref.eval().to(device)
    if compile_ref:
        from reference_model.fast import compiled
        ref = compiled(ref)
    return port, ref


def bench(name: str, batch: int, device: torch.device, repeats: int, compile_ref: bool) -> Row:
    port, ref = _models(name, device, compile_ref)
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, 256, 256, generator=gen).to(device)
    with torch.inference_mode():
        diff = (port(x) - ref(x)).abs().max().item()
        port_s, ref_s = _interleaved([lambda: port(x), lambda: ref(x)], device, repeats, warmup=1)
    return Row(device.type, name, batch, port_s, ref_s, diff)


def profile_port(name: str, batch: int, device: torch.device, repeats: int) -> dict[str, float]:
    """Best-of-N seconds of each stage of the port's forward (where the time goes)."""
    port, _ = _models(name, device, False)
    spec = VARIANTS[name].spec
    x = torch.randn(batch, 3, 256, 256).to(device)
    head = port.head
    with torch.inference_mode():
        feats = port.backbone(x)
        h1 = head.deconv_layers_1(feats)
        h2 = head.deconv_layers_2(h1)
        h3 = head.deconv_layers_3(h2)
        hm = head.final_layer(h3)
        stages = {
            "backbone": lambda: port.backbone(x),
            "deconv_layers_1": lambda: head.deconv_layers_1(feats),
            "deconv_layers_2": lambda: head.deconv_layers_2(h1),
            "deconv_layers_3": lambda: head.deconv_layers_3(h2),
            "final_layer (1x1 conv)": lambda: head.final_layer(h3),
            "soft_argmax": lambda: authors_port.soft_argmax(hm, spec.joint_num, spec.depth_dim, hm.shape[2:]),
        }
        medians = _interleaved(list(stages.values()), device, repeats, warmup=1)
    return dict(zip(stages, medians))


def _devices(choice: str) -> list[torch.device]:
    if choice == "all":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return [torch.device(choice)]


def _print_table(rows: list[Row]) -> None:
    print(f"{'device':6} {'variant':7} {'batch':>5} {'port ms':>10} {'reference ms':>13} {'ratio':>7} "
          f"{'max|diff|':>10}")
    for r in rows:
        print(f"{r.device:6} {r.variant:7} {r.batch:>5} {r.port_s * 1e3:>10.1f} {r.ref_s * 1e3:>13.1f} "
              f"{r.ratio:>6.2f}x {r.max_diff:>10.2e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="XS,S,M,L")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the reference model")
    ap.add_argument("--profile", action="store_true", help="print where the port's time goes first")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v.strip().upper() for v in args.variants.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, best of {args.repeats} runs")
    rows: list[Row] = []
    for device in _devices(args.device):
        if device.type == "cuda":
            print(f"CUDA device: {torch.cuda.get_device_name(device)}")
        for name in variants:
            for batch in batches:
                if args.profile:
                    prof = profile_port(name, batch, device, args.repeats)
                    total = sum(prof.values())
                    parts = ", ".join(f"{k} {v * 1e3:.1f} ms ({v / total:.0%})" for k, v in prof.items())
                    print(f"profile {device.type} {name} b{batch}: {parts}")
                rows.append(bench(name, batch, device, args.repeats, args.compile))
                print(f"  done {device.type} {name} b{batch}: ratio {rows[-1].ratio:.2f}x", flush=True)
    _print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
