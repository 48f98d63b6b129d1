"""What the ranks do together over torch.distributed: the all-reduce check, the straggler GEMM and the bandwidth
sweep. torch is imported inside each function (envcheck --help never imports it)."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from envcheck.cluster.bandwidth import bandwidth_row, elements_for, sweep_sizes
from envcheck.cluster.facts import AllReduceCheck, MatmulTiming, Sweep

MATMUL_SIZE_CPU = 512  # ~10 ms on one core: long enough that scheduling noise stays under the 10% margin
MATMUL_SIZE_GPU = 4096
MATMUL_RUNS = 7
# Test seam (docs/cluster.md): the rank named here sleeps inside its timed GEMM four times as long as the GEMM took,
# so it shows up as a straggler five times as slow as its siblings, even on a loaded machine.
SLOW_RANK_VARIABLE = "ENVCHECK_CLUSTER_TEST_SLOW_RANK"
# The quick bench step besides the GEMM: a copy this large runs from memory, not cache, on CPUs and GPUs alike.
COPY_BYTES = 64 * 1024 * 1024


def check_all_reduce(rank: int, world_size: int, device: Any) -> AllReduceCheck:
    """Each rank contributes rank + 1; the sum must be n(n+1)/2 exactly, as int64 and as float32 (exact below 2**24)."""
    import torch
    import torch.distributed as dist

    expected = world_size * (world_size + 1) // 2
    integers = torch.full((1024,), rank + 1, dtype=torch.int64, device=device)
    floats = torch.full((1024,), float(rank + 1), dtype=torch.float32, device=device)
    dist.all_reduce(integers)
    dist.all_reduce(floats)
    int_values = integers.cpu()
    float_values = floats.cpu()
    is_correct = bool((int_values == expected).all()) and bool((float_values == float(expected)).all())
    # the first wrong element when there is one, else the common value
    int_result = int(int_values[(int_values != expected).nonzero()[0, 0]] if not is_correct else int_values[0])
    wrong_floats = (float_values != float(expected)).nonzero()
    float_result = float(float_values[wrong_floats[0, 0]] if len(wrong_floats) else float_values[0])
    return AllReduceCheck(expected, int_result, float_result, is_correct)


def time_matmul(device: Any, is_slowed: bool) -> MatmulTiming:
    """The median of MATMUL_RUNS float32 GEMMs after one warm-up, then the quick bench step: a device-memory copy
    (COPY_BYTES read and written), its median bandwidth; the caller starts all ranks at one barrier."""
    import torch

    size = MATMUL_SIZE_GPU if device.type == "cuda" else MATMUL_SIZE_CPU
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    gemm_s = _median_time(lambda: (a @ b).sum().item(), is_slowed)  # .item() waits for the device
    source = torch.ones(COPY_BYTES // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)

    def copy() -> None:
        target.copy_(source)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    copy_s = _median_time(copy, is_slowed)
    name, uuid = "cpu", None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        uuid = f"GPU-{torch.cuda.get_device_properties(device).uuid}"  # NVML's spelling of the same UUID
    return MatmulTiming(name, size, gemm_s, 2 * COPY_BYTES / copy_s / 1e9 if copy_s > 0 else 0.0, uuid)


def _median_time(work: Callable[[], object], is_slowed: bool) -> float:
    times: list[float] = []
    for run in range(MATMUL_RUNS + 1):
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
        if is_slowed:
            time.sleep(max(4 * elapsed, 0.02))
            elapsed = time.perf_counter() - started
        if run > 0:
            times.append(elapsed)
    return statistics.median(times)


def time_all_reduce(tensor: Any, iterations: int, group: Any = None) -> float:
    """The median time of ITERATIONS all-reduces of TENSOR (after one warm-up), on GROUP (the default group)."""
    import torch
    import torch.distributed as dist

    times = []
    for iteration in range(iterations + 1):
        if tensor.device.type == "cuda":
            torch.cuda.synchronize(tensor.device)
        started = time.perf_counter()
        dist.all_reduce(tensor, group=group)
        if tensor.device.type == "cuda":
            torch.cuda.synchronize(tensor.device)
        if iteration > 0:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_sweep(
    backend: str, world_size: int, device: Any, max_size_bytes: int, iterations: int, expectation: str
) -> Sweep:
    """All-reduce and all-gather at each size: one warm-up, then the median of ITERATIONS timed runs."""
    import torch
    import torch.distributed as dist

    def synchronise() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rows = []
    for size in sweep_sizes(max_size_bytes):
        count = elements_for(size, world_size)
        tensor = torch.ones(count, dtype=torch.float32, device=device)
        parts = [torch.empty(count // world_size, dtype=torch.float32, device=device) for _ in range(world_size)]
        piece = torch.ones(count // world_size, dtype=torch.float32, device=device)
        operations: dict[str, Callable[[], object]] = {
            "all_reduce": functools.partial(dist.all_reduce, tensor),
            "all_gather": functools.partial(dist.all_gather, parts, piece),
        }
        for name, operation in operations.items():
            times = []
            for iteration in range(iterations + 1):
                synchronise()
                started = time.perf_counter()
                operation()
                synchronise()
                if iteration > 0:
                    times.append(time.perf_counter() - started)
            rows.append(bandwidth_row(name, count * 4, times, world_size))
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return Sweep(backend, label, iterations, tuple(rows), expectation)
