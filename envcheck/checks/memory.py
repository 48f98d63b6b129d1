"""Checks of RAM, swap and the container memory limit."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import GIB, format_bytes, skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.finding import Finding, Severity

# Below this, loading a checkpoint or a dataset into RAM without swap ends in the OOM killer.
LOW_RAM_BYTES = 4 * GIB
# Host RAM wanted per byte of GPU memory: checkpoints are loaded through RAM and pinned buffers cannot
# be swapped, so less RAM than GPU memory cannot fill the GPUs (see check_ram_for_gpus).
RAM_PER_GPU_MEMORY = 1.0


@check("memory.low_ram_no_swap", "Enough RAM is available, or swap exists to absorb peaks (4 GiB).")
def check_low_ram_no_swap(given: CheckInput) -> Iterator[Finding]:
    memory = given.snapshot.memory
    check_id = "memory.low_ram_no_swap"
    if isinstance(memory, Unavailable):
        yield skipped(check_id, "RAM and swap", memory)
        return
    available = memory.available_bytes
    limit, usage = memory.cgroup_limit_bytes, memory.cgroup_usage_bytes
    if isinstance(limit, int):  # inside a container what is left is the limit less what the cgroup uses
        available = min(available, limit - usage if isinstance(usage, int) else limit)
    if available < LOW_RAM_BYTES and memory.swap_total_bytes == 0:
        yield Finding(
            check_id,
            Severity.WARN,
            f"only {format_bytes(available)} of RAM available and no swap",
            detail="Loading a checkpoint or a dataset beyond this is killed by the OOM killer without warning.",
            fix="Free memory, add swap (fallocate -l 16G /swapfile && mkswap /swapfile && swapon /swapfile), "
            "or raise the container's memory limit.",
            evidence=("memory.available_bytes", "memory.swap_total_bytes", "memory.cgroup_limit_bytes"),
        )
    else:
        swap = f", swap {format_bytes(memory.swap_total_bytes)}" if memory.swap_total_bytes else ", no swap"
        yield Finding(check_id, Severity.OK, f"{format_bytes(available)} of RAM available{swap}")


@check("memory.cgroup_limit", "Reports a container memory limit well below the machine's RAM.")
def check_cgroup_limit(given: CheckInput) -> Iterator[Finding]:
    memory = given.snapshot.memory
    check_id = "memory.cgroup_limit"
    if isinstance(memory, Unavailable):
        yield skipped(check_id, "memory limit", memory)
        return
    limit = memory.cgroup_limit_bytes
    if isinstance(limit, Unavailable):
        yield skipped(check_id, "memory limit", limit)
    elif limit is not None and limit < memory.total_bytes / 2:
        yield Finding(
            check_id,
            Severity.INFO,
            f"this container may use {format_bytes(limit)} of the machine's {format_bytes(memory.total_bytes)}",
            detail="Tools that size themselves from total RAM (free, psutil, DataLoader prefetching) see more "
            "than the job may use; past the limit the kernel kills the job.",
            evidence=("memory.cgroup_limit_bytes", "memory.total_bytes"),
        )
    else:
        yield Finding(check_id, Severity.OK, "no container memory limit below the machine's RAM")


@check("memory.ram_for_gpus", "RAM (or the container's memory limit) is at least the GPUs' total memory.")
def check_ram_for_gpus(given: CheckInput) -> Iterator[Finding]:
    memory, gpu = given.snapshot.memory, given.snapshot.gpu
    check_id = "memory.ram_for_gpus"
    if isinstance(memory, Unavailable):
        yield skipped(check_id, "RAM against GPU memory", memory)
        return
    if isinstance(gpu, Unavailable):
        yield skipped(check_id, "RAM against GPU memory", gpu)
        return
    sizes = [device.memory_total_bytes for device in gpu.gpus]
    reported = [size for size in sizes if isinstance(size, int)]
    if not gpu.gpus:  # nothing to fill from RAM: the rule does not apply
        yield Finding(check_id, Severity.OK, "no NVIDIA GPU whose memory RAM must match")
        return
    if not reported:
        yield Finding(
            check_id, Severity.SKIP, "RAM against GPU memory not checked", detail="no GPU reported its memory size"
        )
        return
    gpu_total = sum(reported)
    limit = memory.cgroup_limit_bytes
    ram, what = memory.total_bytes, "RAM"
    if isinstance(limit, int) and limit < ram:
        ram, what = limit, "the container's memory limit"
    if ram < gpu_total * RAM_PER_GPU_MEMORY:
        yield Finding(
            check_id,
            Severity.WARN,
            f"{what} is {format_bytes(ram)}, less than the {format_bytes(gpu_total)} of memory on "
            f"{len(reported)} GPU(s)",
            detail="Filling the GPUs passes through host memory: torch.load() materialises a checkpoint in RAM "
            "before it moves to the GPU (unless mmap=True), every DDP rank loads its own copy, pinned-memory "
            "DataLoader buffers cannot be swapped, and optimizer offload (DeepSpeed, FSDP) keeps state in RAM.",
            fix="Use a machine or container limit with RAM >= total GPU memory (docker run --memory=..., "
            "Kubernetes resources.limits.memory), or load checkpoints with torch.load(..., mmap=True) "
            "and shard them (safetensors).",
            evidence=("memory.total_bytes", "memory.cgroup_limit_bytes", "gpu.gpus[*].memory_total_bytes"),
        )
    else:
        yield Finding(check_id, Severity.OK, f"{what} {format_bytes(ram)} covers the GPUs' {format_bytes(gpu_total)}")
