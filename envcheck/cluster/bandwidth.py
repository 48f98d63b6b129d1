"""algbw and busbw as nccl-tests defines them, and the size sweep: pure arithmetic, no torch.

nccl-tests (doc/PERFORMANCE.md): algbw = bytes / time; busbw = algbw x a factor per collective, so that busbw
is comparable with a link's speed whatever the rank count n: all-reduce 2(n-1)/n, all-gather (n-1)/n.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from envcheck.cluster.facts import BandwidthRow

KIB = 1024
MIB = 1024 * KIB

# gloo on CPUs: 1 KiB .. 64 MiB, x4. NCCL on GPUs goes on to 1 GiB, where the fabric's peak shows.
CPU_MAX_SIZE_BYTES = 64 * MIB
GPU_MAX_SIZE_BYTES = 1024 * MIB
MIN_SIZE_BYTES = 1 * KIB
SIZE_STEP = 4


def bus_factor(collective: str, world_size: int) -> float:
    """busbw / algbw for COLLECTIVE over WORLD_SIZE ranks (nccl-tests' factors)."""
    n = world_size
    if collective == "all_reduce":
        return 2 * (n - 1) / n
    if collective == "all_gather":
        return (n - 1) / n
    raise ValueError(f"no bus bandwidth factor for {collective!r}")


def bandwidth_row(collective: str, size_bytes: int, times_s: Sequence[float], world_size: int) -> BandwidthRow:
    """The row of one size from the timed iterations (warm-up excluded): the median, then algbw and busbw."""
    median_s = statistics.median(times_s)
    algbw = size_bytes / median_s / 1e9 if median_s > 0 else 0.0
    return BandwidthRow(collective, size_bytes, median_s, algbw, algbw * bus_factor(collective, world_size))


def sweep_sizes(max_size_bytes: int, min_size_bytes: int = MIN_SIZE_BYTES) -> tuple[int, ...]:
    """MIN, MINx4, ... up to MAX (MAX itself always included)."""
    sizes: list[int] = []
    size = min_size_bytes
    while size < max_size_bytes:
        sizes.append(size)
        size *= SIZE_STEP
    sizes.append(max_size_bytes)
    return tuple(sizes)


def elements_for(size_bytes: int, world_size: int, element_bytes: int = 4) -> int:
    """How many float32 elements make SIZE_BYTES, rounded down to a multiple of the rank count (all-gather splits
    the whole evenly), never fewer than one per rank."""
    per_rank = max(1, size_bytes // element_bytes // world_size)
    return per_rank * world_size


def format_size(size_bytes: int) -> str:
    """1 KiB, 256 KiB, 64 MiB, 1 GiB: the sizes of a sweep as nccl-tests' readers know them."""
    if size_bytes >= 1024 * MIB:
        return f"{size_bytes / (1024 * MIB):g} GiB"
    if size_bytes >= MIB:
        return f"{size_bytes / MIB:g} MiB"
    return f"{size_bytes / KIB:g} KiB" if size_bytes >= KIB else f"{size_bytes} B"
