"""Forward latency per checkpoint at batch 1 and 32 (pytest-benchmark; a measurement, not a gate).

On CUDA: warm-up rounds, then each timed call ends with `torch.cuda.synchronize()`, so the
wall-clock figure covers the GPU work; CUDA-event times of the same calls go to
`extra_info` (ms). Without CUDA these skip unless `--device cpu` asks for CPU figures.
Gate in CI with pytest-benchmark itself: `--benchmark-json`, `--benchmark-compare`,
`--benchmark-compare-fail=mean:10%`.
"""
from __future__ import annotations

import statistics

import pytest
import torch

from pytest_convnextpose.plugin.state import state

pytestmark = pytest.mark.benchmark

BATCHES = (1, 32)
INPUT_HW = (256, 256)
SEED = 1234


@pytest.fixture(scope="module")
def latency_device(request: pytest.FixtureRequest, convnextpose_torch_device: torch.device) -> torch.device:
    if convnextpose_torch_device.type == "cuda":
        return convnextpose_torch_device
    if state(request.config).options.device == "cpu":  # asked for explicitly (option or ini)
        return convnextpose_torch_device
    pytest.skip("latency benchmarks need CUDA; pass --device cpu to measure on the CPU")


def _event_ms(model, images: torch.Tensor, rounds: int) -> list[float]:
    """Per-call GPU time from CUDA events (ms)."""
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(images)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return times


@pytest.mark.parametrize("batch", BATCHES, ids=[f"batch{b}" for b in BATCHES])
def test_forward_latency(benchmark, convnextpose_ref_model, convnextpose_ckpt_spec, latency_device, batch):
    gen = torch.Generator().manual_seed(SEED)
    images = torch.randn(batch, 3, *INPUT_HW, generator=gen).to(latency_device)
    cuda = latency_device.type == "cuda"

    def forward():
        out = convnextpose_ref_model(images)
        if cuda:
            torch.cuda.synchronize(latency_device)
        return out

    benchmark.group = f"forward {convnextpose_ckpt_spec.summary()}"
    benchmark.extra_info.update({"batch": batch, "device": str(latency_device), "input": list(INPUT_HW)})
    rounds, warmup = (20, 5) if cuda else ((5, 1) if batch == 1 else (2, 1))
    cudnn_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = cuda  # best kernels for the fixed shape; restored below
    try:
        with torch.inference_mode():
            out = benchmark.pedantic(forward, rounds=rounds, warmup_rounds=warmup, iterations=1)
            if cuda:
                events = _event_ms(convnextpose_ref_model, images, rounds)
                benchmark.extra_info.update({"cuda_event_ms_median": statistics.median(events),
                                             "cuda_event_ms_min": min(events)})
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    assert tuple(out.shape) == (batch, convnextpose_ckpt_spec.joint_num, 3), f"output shape {tuple(out.shape)}"
