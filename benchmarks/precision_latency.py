"""Forward latency of the reference model in float32, TF32 and autocast, reported apart.

    python benchmarks/precision_latency.py [--device cuda|cpu] [--variants XS,S,M,L] [--batches 1,32]

Why apart: TF32 (CUDA matmuls and convolutions with 10-bit mantissas) and autocast (float16 on
CUDA, bfloat16 on the CPU) are faster but are not the float32 network the parity bounds hold for;
each row also prints its largest coordinate difference from float32 so the trade is visible.
Seeded synthetic weights (`testing.synthetic.random_state_dict`), 256x256 inputs, warm-up first;
on CUDA every timed call ends with a synchronize. Modes run interleaved, min and median printed.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import VARIANTS, build_model


def modes(device: torch.device) -> dict[str, tuple[bool, object]]:
    """mode -> (TF32 on?, autocast dtype or None)."""
    if device.type == "cuda":
        return {"fp32": (False, None), "tf32": (True, None), "amp-fp16": (False, torch.float16)}
    return {"fp32": (False, None), "amp-bf16": (False, torch.bfloat16)}


def run(model, images, tf32: bool, amp):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    ctx = torch.autocast(images.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        out = model(images)
    if images.device.type == "cuda":
        torch.cuda.synchronize(images.device)
    return out.float()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", default="XS,S,M,L")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}; ms per forward (min / median), max |coords - fp32|")
    for name in args.variants.split(","):
        spec = VARIANTS[name].spec
        model = build_model(spec)
        model.load_state_dict(random_state_dict(spec, seed=0))
        model = model.eval().to(device)
        for batch in (int(b) for b in args.batches.split(",")):
            images = torch.randn(batch, 3, 256, 256, generator=torch.Generator().manual_seed(1)).to(device)
            ref = run(model, images, False, None)
            times: dict[str, list[float]] = {m: [] for m in modes(device)}
            diffs = {m: float((run(model, images, *cfg) - ref).abs().max()) for m, cfg in modes(device).items()}
            for _ in range(args.repeats):
                for m, cfg in modes(device).items():
                    t = time.perf_counter()
                    run(model, images, *cfg)
                    times[m].append((time.perf_counter() - t) * 1e3)
            for m, ts in times.items():
                print(f"{name:3} b{batch:<3} {m:9} {min(ts):9.2f} {statistics.median(ts):9.2f}   {diffs[m]:.3g}")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
