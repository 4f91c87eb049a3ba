"""Time the reference forward against the authors' code and onnxruntime, in one process.

    python benchmarks/forward.py [--variants XS,S,M,L] [--batches 1,8] [--threads 2] [--repeats 15]
        [--authors-repo DIR] [--baseline DIR] [--device cpu|cuda] [--memory-batch 32 | --no-memory]
        [--profile] [--compile] [--jit-freeze]

For each variant and batch size every runtime gets the same seeded weights
(`synthetic.random_state_dict`) and the same input:

- `ours`: `reference_model.build_model(spec)`, eval mode, under `torch.inference_mode()`;
- `authors`: the authors' own code run from a checkout given with `--authors-repo`
  (see benchmarks/authors_repo.py for the inference stubs it needs); without it,
  benchmarks/authors_port.py, a straight port kept for this purpose. The output says which;
- `onnxruntime`: our own ONNX export of the same network (`convert.onnx_export.onnx_bytes`),
  CPU provider, or with `--device cuda` the CUDA provider (inputs and outputs bound on the GPU);
- `baseline` (with `--baseline DIR`): the `reference_model` package of another checkout
  (e.g. `git worktree add /tmp/base ba831d2`), imported under another name, to compare
  with an earlier version in the same run;
- `compile` / `jit-freeze` (opt-in): `torch.compile(ours)` / `torch.jit.freeze` of a trace
  of ours with `optimize_for_inference` (oneDNN fusion), each checked against ours first.

The outputs are compared first (max |coords - ours|, printed). Then the runtimes are
timed interleaved (ours, authors, onnxruntime, ours, ...) so drift in machine load hits
all alike, and the minimum and the median of `--repeats` runs are printed with the
ratios to onnxruntime. Threads: `torch.set_num_threads(N)` and onnxruntime's
`intra_op_num_threads=N` (inter-op 1), N = `--threads`.

Threads that wait, in one process. Each runtime's idle threads spin for a while before they
sleep, and a spinning neighbour steals the cores the next runtime needs: onnxruntime's pool,
spinning (its default), kept ours at L b1 from 41 to 81 ms. So in the interleaved runs
onnxruntime has `allow_spinning=0` (about 3-5% slower alone: 31.5 vs 30.0 ms at L b1), PyTorch
keeps its default (libgomp spins briefly), and each timed call starts `--settle` ms (default
20) after the previous one, time for the last runtime's threads to go to sleep. Then, on CPU,
onnxruntime with its default spinning is timed alone (`ort alone`, a block of `--repeats` runs
after the interleaved ones, the same export), the best figure it gives; the table prints ours
against both. `--no-spin` also makes PyTorch's threads sleep at once (OMP_WAIT_POLICY=PASSIVE):
then the CPU-time column measures the work whatever the machine's load, but every one of the
~300 parallel regions of a forward waits for its threads to wake up, which costs ours about a
third more wall time at batch 1 (L: 41 -> 55 ms) - use its CPU column, not its wall ratios.

`--profile` adds where ours spends its time (backbone, head up to the last upsampling, last upsampling +
soft-argmax). Peak memory: each runtime in a fresh subprocess, one forward at
`--memory-batch` on L (first call), peak RSS growth from /proc (VmHWM reset through
clear_refs). No timed assertions: figures for a reader to judge.

Goal (issue 15): ours <= 1.3x onnxruntime at batch 8 and <= 1.5x at batch 1 on L, CPU,
2 threads; XS/S no slower than before; peak memory of L at batch 32 not higher.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import authors_port  # noqa: E402  (benchmark-only modules next to this script)
import authors_repo  # noqa: E402

from pytest_convnextpose.convert.onnx_export import onnx_bytes  # noqa: E402
from pytest_convnextpose.testing.synthetic import random_state_dict  # noqa: E402
from reference_model import VARIANTS, build_model  # noqa: E402
from reference_model.fast import compiled, frozen  # noqa: E402

INPUT_SIZE = (256, 256)
ALONE = "ort alone"  # onnxruntime with its default spinning, timed in a block of its own
Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Result:
    variant: str
    batch: int
    times: dict[str, list[float]] = field(default_factory=dict)  # wall seconds per call
    cpu: dict[str, list[float]] = field(default_factory=dict)  # process CPU seconds per call
    diffs: dict[str, float] = field(default_factory=dict)


# -- runtimes ---------------------------------------------------------------------------------


def _ours(spec, state, device: torch.device, package: Any = None) -> torch.nn.Module:
    model = (package.build_model if package else build_model)(spec)
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


def _baseline_package(checkout: Path) -> Any:
    """`reference_model` of another checkout, imported as `reference_model_baseline`."""
    init = checkout / "reference_model" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"--baseline {checkout}: no reference_model/__init__.py there")
    spec = importlib.util.spec_from_file_location(
        "reference_model_baseline", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_model_baseline"] = module
    spec.loader.exec_module(module)
    return module


def _authors(spec, state, device: torch.device, code: Optional[authors_repo.AuthorsCode]) -> Runner:
    if code is None:
        port = authors_port.get_pose_net(spec)
        port.load_state_dict(state, strict=True)
        return port.eval().to(device)
    run = code.build(spec, state, INPUT_SIZE)
    run.module.to(device)
    return run


def _export(spec, state, model: torch.nn.Module, device: torch.device) -> bytes:
    """Our ONNX export of `model` (exported on CPU, then moved back to `device`)."""
    data = onnx_bytes(spec, state, input_size=INPUT_SIZE, model=model.cpu())
    model.to(device)
    return data


def _onnxruntime(data: bytes, device: torch.device, threads: int, spin: bool = False) -> Optional[Runner]:
    """The ONNX model `data` in onnxruntime; None (with a note) when the CUDA provider is missing."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if device.type == "cpu":
        sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])

        def run_cpu(images: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(sess.run(None, {"images": images.numpy()})[0])

        return run_cpu
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print(f"onnxruntime: no CUDAExecutionProvider in this build ({ort.get_available_providers()}); skipped")
        return None
    index = device.index or 0
    sess = ort.InferenceSession(
        data, sess_options=opts, providers=[("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    )
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        print(f"onnxruntime: CUDA provider did not load (providers {sess.get_providers()}); skipped")
        return None
    in_name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    def run_cuda(images: torch.Tensor) -> torch.Tensor:
        images = images.contiguous()
        torch.cuda.synchronize(device)  # onnxruntime reads the input on its own stream
        binding = sess.io_binding()
        binding.bind_input(in_name, "cuda", index, np.float32, tuple(images.shape), images.data_ptr())
        binding.bind_output(out_name, "cuda", index)
        sess.run_with_iobinding(binding)
        return torch.from_numpy(binding.copy_outputs_to_cpu()[0])  # waits for the GPU

    return run_cuda


# -- timing -----------------------------------------------------------------------------------


def _call(fn: Runner, x: torch.Tensor) -> torch.Tensor:
    """fn(x), after the device has finished computing it."""
    out = fn(x)
    if out.is_cuda:
        torch.cuda.synchronize(out.device)
    return out


def _interleaved(
    runners: dict[str, Runner], x: torch.Tensor, repeats: int, warmup: int = 2, settle: float = 0.0
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU seconds per call of each runner, timed in turns so that machine
    load hits all alike; each timed call starts `settle` seconds after the previous one ended."""
    for _ in range(warmup):
        for fn in runners.values():
            _call(fn, x)
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            if settle:
                time.sleep(settle)
            start, start_cpu = time.perf_counter(), time.process_time()
            _call(fn, x)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def bench(
    name: str,
    batch: int,
    device: torch.device,
    args: argparse.Namespace,
    code: Optional[authors_repo.AuthorsCode],
    baseline: Any,
) -> Result:
    spec = VARIANTS[name].spec
    state = random_state_dict(spec, seed=0)
    ours = _ours(spec, state, device)
    runners: dict[str, Runner] = {"ours": ours}
    if baseline is not None:
        runners["baseline"] = _ours(spec, state, device, baseline)
    runners["authors"] = _authors(spec, state, device, code)
    exported = _export(spec, state, ours, device)
    ort_run = _onnxruntime(exported, device, args.threads, spin=args.ort_spin)
    if ort_run is not None:
        runners["onnxruntime"] = ort_run
    x = torch.randn(batch, 3, *INPUT_SIZE, generator=torch.Generator().manual_seed(batch)).to(device)
    if args.compile:
        runners["compile"] = compiled(ours)
    if args.jit_freeze:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python-level shape arithmetic
            runners["jit-freeze"] = frozen(ours, x)
    result = Result(name, batch)
    with torch.inference_mode():
        want = _call(ours, x).cpu()
        result.diffs = {k: float((_call(fn, x).cpu() - want).abs().max()) for k, fn in runners.items() if k != "ours"}
        result.times, result.cpu = _interleaved(runners, x, args.repeats, settle=args.settle / 1e3)
        if device.type == "cpu" and ort_run is not None and not args.ort_spin:
            alone = _onnxruntime(exported, device, args.threads, spin=True)
            result.diffs[ALONE] = float((_call(alone, x).cpu() - want).abs().max())
            times, cpu = _interleaved({ALONE: alone}, x, args.repeats, settle=args.settle / 1e3)
            result.times.update(times)
            result.cpu.update(cpu)
    return result


def profile_ours(name: str, batch: int, device: torch.device, repeats: int) -> dict[str, float]:
    """Minimum seconds of each part of ours, timed interleaved."""
    from reference_model.softargmax import soft_argmax

    spec = VARIANTS[name].spec
    model = _ours(spec, random_state_dict(spec, seed=0), device)
    x = torch.randn(batch, 3, *INPUT_SIZE).to(device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        feats = model.backbone(x)
        low = model.head.pre_upsample(feats)
        parts = {
            "backbone": lambda _: model.backbone(x),
            "head up to the last upsampling": lambda _: model.head.pre_upsample(feats),
            "last upsampling + soft-argmax": lambda _: soft_argmax(
                low, spec.joint_num, spec.depth_dim, upsample=model.head.last_upsample
            ),
        }
        times, _ = _interleaved(parts, x, repeats)
    return {k: min(v) for k, v in times.items()}


# -- peak memory ------------------------------------------------------------------------------

_PEAK_FLAG = "--_peak-memory-child"


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _peak_child(args: argparse.Namespace) -> None:
    """In a fresh process: build one runtime, then peak RSS growth over one forward (first call)."""
    name, batch, which = args._peak_memory_child
    batch = int(batch)
    torch.set_num_threads(args.threads)
    spec = VARIANTS[name].spec
    state = random_state_dict(spec, seed=0)
    cpu = torch.device("cpu")
    if which == "ours":
        fn: Runner = _ours(spec, state, cpu)
    elif which == "baseline":
        fn = _ours(spec, state, cpu, _baseline_package(Path(args.baseline)))
    elif which == "authors":
        fn = _authors(spec, state, cpu, authors_repo.load(args.authors_repo) if args.authors_repo else None)
    else:
        fn = _onnxruntime(_export(spec, state, _ours(spec, state, cpu), cpu), cpu, args.threads)
    x = torch.randn(batch, 3, *INPUT_SIZE)
    del state
    try:  # reset the high-water mark so it measures the forward, not the set-up
        Path("/proc/self/clear_refs").write_text("5")
        exact = True
    except OSError:
        exact = False
    base = _status_kb("VmRSS:")
    with torch.inference_mode():
        fn(x)
    peak = _status_kb("VmHWM:")
    print(json.dumps({"growth_mb": (peak - base) / 1024, "exact": exact}))


def peak_memory(name: str, batch: int, which: str, args: argparse.Namespace, runs: int = 3) -> str:
    """Peak RSS growth of one forward, min-max over `runs` fresh processes."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        _PEAK_FLAG,
        name,
        str(batch),
        which,
        "--threads",
        str(args.threads),
    ]
    if args.authors_repo:
        cmd += ["--authors-repo", args.authors_repo]
    if args.baseline:
        cmd += ["--baseline", args.baseline]
    growth, exact = [], True
    for _ in range(runs):
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            return f"failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:200]}"
        data = json.loads(out.stdout.strip().splitlines()[-1])
        growth.append(data["growth_mb"])
        exact = exact and data["exact"]
    return f"{min(growth):.0f}-{max(growth):.0f} MiB over {runs} processes" + (
        "" if exact else " (VmHWM not resettable: upper bound)"
    )


# -- output -----------------------------------------------------------------------------------


def _print_table(results: list[Result], device: torch.device) -> None:
    cpu = device.type == "cpu"
    print(
        f"\n{device.type}: ms per forward (wall), min / median of interleaved runs; ratio = runtime / onnxruntime "
        "(interleaved, not spinning)"
        + ("; cpu = process CPU ms, min (with --no-spin: the work done, whatever the machine's load)" if cpu else "")
    )
    print(
        f"{'variant':7} {'batch':>5}  {'runtime':12} {'min ms':>9} {'median ms':>10} {'ratio min':>10} "
        f"{'ratio med':>10}" + (f" {'cpu ms':>9} {'ratio cpu':>10}" if cpu else "") + f" {'max|diff| vs ours':>18}"
    )
    for r in results:
        ort, ort_cpu = r.times.get("onnxruntime"), r.cpu.get("onnxruntime")
        for k, t in r.times.items():
            lo, med = min(t), statistics.median(t)
            ratios = f"{lo / min(ort):>9.2f}x {med / statistics.median(ort):>9.2f}x" if ort else f"{'-':>10} {'-':>10}"
            if cpu:
                c = min(r.cpu[k])
                ratios += f" {c * 1e3:>9.1f} " + (f"{c / min(ort_cpu):>9.2f}x" if ort_cpu else f"{'-':>10}")
            diff = f"{r.diffs[k]:.2e}" if k in r.diffs else "-"
            print(f"{r.variant:7} {r.batch:>5}  {k:12} {lo * 1e3:>9.1f} {med * 1e3:>10.1f} {ratios} {diff:>18}")
        if ALONE in r.times:
            ours, alone = r.times["ours"], r.times[ALONE]
            print(f"{'':14}ours / {ALONE} (its default spinning, timed after): min {min(ours) / min(alone):.2f}x, "
                  f"median {statistics.median(ours) / statistics.median(alone):.2f}x, "
                  f"cpu {min(r.cpu['ours']) / min(r.cpu[ALONE]):.2f}x")


def _device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return torch.device(choice)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="XS,S,M,L")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads (default 2)")
    ap.add_argument("--authors-repo", help="checkout of medialab-ku/ConvNeXtPose to run the authors' own code")
    ap.add_argument("--baseline", help="another checkout whose reference_model is timed alongside ('baseline')")
    ap.add_argument("--memory-batch", type=int, default=32, help="batch for the L peak-memory probe (default 32)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    ap.add_argument("--profile", action="store_true", help="print where ours spends its time")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(ours)")
    ap.add_argument("--jit-freeze", action="store_true", help="also time torch.jit.freeze + optimize_for_inference")
    ap.add_argument(
        "--no-spin",
        action="store_true",
        help="PyTorch's idle threads sleep at once (OMP_WAIT_POLICY=PASSIVE, set by re-running this script), "
        "so CPU time measures work, not waiting; costs ours wall time (thread wake-ups)",
    )
    ap.add_argument("--ort-spin", action="store_true",
                    help="let onnxruntime's threads spin in the interleaved runs too (they then slow the others)")
    ap.add_argument("--settle", type=float, default=20.0,
                    help="ms between timed calls, for the last runtime's spinning threads to sleep (default 20)")
    ap.add_argument(_PEAK_FLAG, nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.no_spin and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE" and argv is None:
        # libgomp reads the policy when it starts: run again with it set
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    torch.set_num_threads(args.threads)
    if args._peak_memory_child:
        _peak_child(args)
        return 0
    device = _device(args.device)
    code = authors_repo.load(args.authors_repo) if args.authors_repo else None
    baseline = _baseline_package(Path(args.baseline)) if args.baseline else None
    variants = [v.strip().upper() for v in args.variants.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    import onnxruntime as ort

    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads (torch and onnxruntime), "
        f"PyTorch's idle threads {'sleeping at once (--no-spin)' if args.no_spin else 'as by default'}, "
        f"onnxruntime {'spinning' if args.ort_spin else 'not spinning'} in the interleaved runs, "
        f"{args.settle:g} ms between calls, "
        f"{args.repeats} interleaved runs, input {INPUT_SIZE[0]}x{INPUT_SIZE[1]}, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(
        "authors:",
        code.describe()
        if code
        else "benchmarks/authors_port.py (a port; pass --authors-repo DIR to run the authors' own code)",
    )
    if baseline is not None:
        print(f"baseline: reference_model from {args.baseline}")
    if device.type == "cuda":
        print(f"CUDA device: {torch.cuda.get_device_name(device)}")
    results = []
    for name in variants:
        for batch in batches:
            if args.profile:
                prof = profile_ours(name, batch, device, args.repeats)
                total = sum(prof.values())
                print(
                    f"profile ours {name} b{batch}: "
                    + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / total:.0%})" for k, v in prof.items()),
                    flush=True,
                )
            results.append(bench(name, batch, device, args, code, baseline))
            r = results[-1]
            print(
                f"  done {name} b{batch}: ours min {min(r.times['ours']) * 1e3:.1f} ms"
                + (f", onnxruntime min {min(r.times['onnxruntime']) * 1e3:.1f} ms" if "onnxruntime" in r.times else ""),
                flush=True,
            )
    _print_table(results, device)
    if not args.no_memory and device.type == "cpu":
        print(f"\npeak RSS growth over one forward of L at batch {args.memory_batch} (fresh process, first call):")
        for which in ["ours"] + (["baseline"] if args.baseline else []) + ["authors", "onnxruntime"]:
            print(f"  {which:12} {peak_memory('L', args.memory_batch, which, args)}", flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
