"""The device's ceiling: dense matmul TFLOP/s per dtype and memory copy bandwidth, against its spec sheet.

A GPU that trains slowly is either slow at everything (clocks held down, a power cap, a bad board) or only
in the training pipeline (data loading, small kernels). These two numbers tell which: a healthy datacenter
GPU is commonly expected near 70-90% of its dense matmul peak and memory bandwidth (an expectation, not yet
measured by envcheck); far less points at the hardware. Spec figures come from profiles/gpus.toml; CPUs have
none there, so only the achieved numbers are shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from envcheck.facts.common import Unavailable

# Big enough to fill a GPU (an 8192^3 bf16 matmul is 1.1 TFLOP, ~1 ms on an H200), small enough for seconds.
_MATMUL_SIZE = {"cuda": 8192, "mps": 4096, "cpu": 1024}
_COPY_BYTES = {"cuda": 2 * 1024**3, "mps": 512 * 1024**2, "cpu": 64 * 1024**2}
_WARMUP = 2
_REPEATS = {"cuda": 20, "mps": 10, "cpu": 5}
# The dtypes whose dense rate the spec sheets give, and the compute capability their fast path needs.
_CUDA_DTYPES = (("fp32", (0, 0)), ("tf32", (8, 0)), ("bf16", (8, 0)), ("fp16", (7, 0)))


@dataclass(frozen=True, slots=True)
class CeilingMeasure:
    """One measured rate: a matmul in ``dtype`` (TFLOP/s) or a device-memory copy (GB/s, read + write)."""

    kind: str  # "matmul" or "copy"
    dtype: str  # fp32, tf32, bf16, fp16; the copy's element type
    achieved: float
    unit: str  # "TFLOP/s" or "GB/s"
    spec: float | None  # the spec sheet's dense peak; None when the device has no spec row or no such unit
    fraction: float | None  # achieved / spec


@dataclass(frozen=True, slots=True)
class Ceiling:
    device_name: str
    measures: tuple[CeilingMeasure, ...]
    spec_source: str | None  # the profiles/gpus.toml row compared with, or None
    unavailable: str | None = None  # why nothing was measured (the device ran out of memory, ...)


def measure_ceiling(device: Any, device_name: str, knowledge: Any) -> Ceiling:
    """Matmul rates for each dtype the device computes fast, and its copy bandwidth, with % of spec."""
    import torch

    kind = device.type if device.type in _MATMUL_SIZE else "cpu"
    spec = knowledge.gpu_by_name(device_name) if kind == "cuda" else None
    source = None if spec is None else f"profiles/gpus.toml: {spec.name} ({spec.variant})"
    try:
        measures = [
            _measure_matmul(torch, device, kind, dtype, _spec_value(spec, f"{dtype}_tflops"))
            for dtype in _dtypes(torch, device, kind)
        ]
        measures.append(_measure_copy(torch, device, kind, _spec_value(spec, "memory_bandwidth_gb_s")))
    except RuntimeError as error:  # out of memory on a small or busy GPU: the training result still stands
        reason = " ".join(str(error).split())[:200]
        return Ceiling(device_name, (), source, f"not measured: {reason}")
    finally:
        if kind == "cuda":
            torch.cuda.empty_cache()  # hand the test tensors' memory back before anything else runs
    return Ceiling(device_name, tuple(measures), source)


def _dtypes(torch: Any, device: Any, kind: str) -> tuple[str, ...]:
    if kind == "cpu":
        return ("fp32",)
    if kind == "mps":
        return ("fp32", "fp16")
    capability = tuple(torch.cuda.get_device_capability(device))
    return tuple(dtype for dtype, needed in _CUDA_DTYPES if capability >= needed)


def _spec_value(spec: Any, field: str) -> float | None:
    value = None if spec is None else getattr(spec, field)
    return float(value) if isinstance(value, int | float) and not isinstance(value, Unavailable) and value > 0 else None


def _measure_matmul(torch: Any, device: Any, kind: str, dtype: str, spec: float | None) -> CeilingMeasure:
    size = _MATMUL_SIZE[kind]
    element = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    a = torch.randn(size, size, device=device, dtype=element)
    b = torch.randn(size, size, device=device, dtype=element)
    previous = torch.get_float32_matmul_precision()
    # "highest" is true FP32; "high" lets cuBLAS use TF32 tensor cores for float32 inputs
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    try:
        seconds = _timed(torch, device, kind, lambda: torch.mm(a, b))
    finally:
        torch.set_float32_matmul_precision(previous)
    achieved = 2 * size**3 / seconds / 1e12
    return CeilingMeasure("matmul", dtype, achieved, "TFLOP/s", spec, None if spec is None else achieved / spec)


def _measure_copy(torch: Any, device: Any, kind: str, spec: float | None) -> CeilingMeasure:
    size = _COPY_BYTES[kind]
    if kind == "cuda":  # two buffers in at most half of what is free, on a small or shared GPU
        size = min(size, int(torch.cuda.mem_get_info(device)[0]) // 4)
    count = size // 4
    source = torch.empty(count, device=device, dtype=torch.float32).fill_(1.0)
    target = torch.empty_like(source)
    seconds = _timed(torch, device, kind, lambda: target.copy_(source))
    achieved = 2 * count * 4 / seconds / 1e9  # every byte is read once and written once
    return CeilingMeasure("copy", "fp32", achieved, "GB/s", spec, None if spec is None else achieved / spec)


def _timed(torch: Any, device: Any, kind: str, operation: Any) -> float:
    """Seconds per call of ``operation``, after warm-up, with the device drained before each clock read."""
    for _ in range(_WARMUP):
        operation()
    _synchronise(torch, device, kind)
    repeats = _REPEATS[kind]
    started = time.perf_counter()
    for _ in range(repeats):
        operation()
    _synchronise(torch, device, kind)
    return (time.perf_counter() - started) / repeats


def _synchronise(torch: Any, device: Any, kind: str) -> None:
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()
