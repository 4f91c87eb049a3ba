"""Human3.6M evaluation throughput against the machine's JPEG-decode limit.

    python benchmarks/h36m_throughput.py [--frames 256] [--size 1000] [--workers N] [--batch-size 32]
                                         [--repeats 3] [--data DIR] [--device cpu|cuda] [--threads 1]

Writes a generated Human3.6M folder in the authors' layout (tests/h36m_helpers.py: JPEGs of
`--size` pixels square, textured; or reuses `--data DIR`), then, interleaved `--repeats`
times so machine load hits all alike:

* decode: `cv2.imread` of every test image by `cores` processes at once (a fork pool
  started beforehand, each decoding an interleaved share) -> the decode limit in frames/s,
  every core doing nothing but decoding; also `cores x` the rate of one process alone
  (the same when the cores are free; on a shared machine the parallel figure is the one
  the evaluation can actually reach);
* evaluation with `--workers` DataLoader workers and a negligible model (a per-channel
  mean: the cost is reading, cropping and scoring), the whole `evaluate_model` call
  (annotations, crops, flip test, scoring) -> frames/s;
* the same with `--workers 0` (everything in this process, the pre-DataLoader design).

Prints the best of each and the ratios to the decode limit, and the CPU seconds per frame
of decoding alone and of the evaluation (all processes): on a machine shared with other
work, wall-clock rates swing with the load, while decode CPU / evaluation CPU says what
fraction of the decode limit the evaluation reaches when it has the cores to itself. No timed assertions: this
prints figures, the reader judges. Goal (issue 14): workers >= 0.7 of the limit on CPU.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from h36m_helpers import write_dataset  # noqa: E402  (the tests' generator of the authors' layout)

from pytest_convnextpose import h36m  # noqa: E402
from pytest_convnextpose.h36m.loader import available_cpus, default_workers  # noqa: E402

HM = (64, 64, 64)


class ChannelMean(torch.nn.Module):
    """A negligible model: (B, 3, H, W) -> (B, 18, 3), each joint the per-channel mean."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))[:, None, :].expand(-1, 18, -1).contiguous()


def _decode(paths: list[str]) -> float:
    """Decode `paths`; returns the CPU seconds it took (this process)."""
    import cv2

    cpu = time.process_time()
    for p in paths:
        if cv2.imread(p, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) is None:
            raise SystemExit(f"cannot decode {p}")
    return time.process_time() - cpu


def decode_fps(pool, paths: list[str], processes: int) -> tuple[float, float]:
    """(frames/s, CPU seconds per frame) decoding `paths` over `processes` pool processes (1: here)."""
    start = time.perf_counter()
    if processes == 1:
        cpu = _decode(paths)
    else:
        cpu = sum(pool.map(_decode, [paths[i::processes] for i in range(processes)]))
    return len(paths) / (time.perf_counter() - start), cpu / len(paths)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the DataLoader workers, once joined)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def evaluate_fps(root: Path, workers: int, batch: int, device: str) -> tuple[float, float]:
    """(frames/s, CPU seconds per frame, all processes) of a whole `evaluate_model` call."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    res = h36m.evaluate_model(ChannelMean().to(device), HM, root, protocol=2, workers=workers, batch_size=batch,
                              device=device, progress=False)
    return res.num_samples / (time.perf_counter() - start), (_cpu_seconds() - cpu) / res.num_samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=256, help="test frames (4 sequences x frames/4)")
    ap.add_argument("--size", type=int, default=1000, help="image side in pixels (Human3.6M: 1000)")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the main process (default 1: the negligible model needs none, and "
                         "intra-op threads spinning between its tiny ops take the cores the decoders need)")
    ap.add_argument("--data", type=Path, default=None, help="reuse (or create) the generated folder here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    tmp = None
    root = args.data
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="h36m-bench-")
        root = Path(tmp.name) / "Human36M"
    if not (root / "annotations").is_dir():
        per_sequence = max(1, args.frames // 4)
        t = time.perf_counter()
        write_dataset(root, image_format="jpg", frames=tuple(64 * k for k in range(per_sequence)),
                      size=(args.size, args.size), textured=True)
        print(f"wrote {4 * per_sequence} test frames ({args.size}x{args.size} JPEG) in {time.perf_counter() - t:.1f} s")
    paths = [str(s.image_path) for s in h36m.load_samples(root, 2)]
    cores = available_cpus()
    print(f"{len(paths)} frames, {cores} cores, workers {args.workers}, batch {args.batch_size}, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    pool = multiprocessing.get_context("fork").Pool(cores)
    pool.map(_decode, [paths[:1]] * cores)  # started and warm before timing
    best = {"parallel": 0.0, "single": 0.0, "workers": 0.0, "serial": 0.0}
    cpu = {"decode": float("inf"), "workers": float("inf"), "serial": float("inf")}
    for r in range(args.repeats):
        runs = {"parallel": decode_fps(pool, paths, cores), "single": decode_fps(pool, paths, 1),
                "workers": evaluate_fps(root, args.workers, args.batch_size, args.device),
                "serial": evaluate_fps(root, 0, args.batch_size, args.device)}
        for name, (fps, cpu_per_frame) in runs.items():
            best[name] = max(best[name], fps)
            key = "decode" if name in ("parallel", "single") else name
            cpu[key] = min(cpu[key], cpu_per_frame)
        print(f"  round {r + 1} (best so far, frames/s): decode on {cores} processes {best['parallel']:.1f}, "
              f"on one {best['single']:.1f}; evaluation {best['workers']:.1f} with {args.workers} workers, "
              f"{best['serial']:.1f} in-process")
    pool.close()
    limit = best["parallel"]
    print(f"decode limit ({cores} processes decoding): {limit:.1f} frames/s "
          f"({cores} x one process alone: {cores * best['single']:.1f})")
    for name, label in (("workers", f"{args.workers} workers"), ("serial", "in-process (workers 0)")):
        print(f"evaluation, {label}: {best[name]:.1f} frames/s = {best[name] / limit:.2f} of the decode limit "
              f"({best[name] / (cores * best['single']):.2f} of {cores} x one process)")
    print(f"CPU per frame: decode {cpu['decode'] * 1e3:.2f} ms; evaluation {cpu['workers'] * 1e3:.2f} ms with "
          f"workers, {cpu['serial'] * 1e3:.2f} ms in-process -> with every core busy the evaluation reaches "
          f"{cpu['decode'] / cpu['workers']:.2f} of the decode limit (decode CPU / evaluation CPU)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
