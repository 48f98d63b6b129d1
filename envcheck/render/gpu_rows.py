"""The compact one-row-per-GPU view (like gpustat), shared by the terminal and Markdown renderers.

Flags name what is abnormal in the facts; judging whether it matters is the doctor's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from envcheck.facts.common import Unavailable, known
from envcheck.facts.gpu import Gpu, GpuFacts
from envcheck.units import format_bytes

# Clock event reasons that mean the GPU is held below the clocks it was asked for.
_SLOWDOWNS = {
    "hw_slowdown": "hw-slowdown",
    "hw_thermal_slowdown": "thermal",
    "sw_thermal_slowdown": "thermal",
    "hw_power_brake_slowdown": "power-brake",
    "sw_power_cap": "power-cap",
}
GPU_COLUMNS = ("gpu", "name", "memory", "temp", "power", "util", "pcie", "flags")


@dataclass(frozen=True, slots=True)
class GpuRow:
    cells: tuple[str, ...]  # in GPU_COLUMNS order; "?" where a fact is unknown
    flags: tuple[str, ...]
    unknown: tuple[str, ...] = ()  # "temp: <reason>" for each "?" in cells (STYLE.md: every unknown with its reason)


def gpu_summary(facts: GpuFacts) -> str:
    """driver 550.54.15 · CUDA 12.4 · 8 GPUs (from nvml)."""
    if not facts.gpus:
        return f"no NVIDIA GPU: {facts.no_gpu_reason}"
    driver = known(facts.driver_version) or "unknown"
    cuda = known(facts.cuda_driver_version) or "unknown"
    listed = f"{len(facts.gpus)} of {facts.gpu_count}" if len(facts.gpus) != facts.gpu_count else str(facts.gpu_count)
    return f"driver {driver} (supports CUDA {cuda}) · {listed} GPU(s) · from {facts.source}"


def gpu_unknowns(rows: list[GpuRow]) -> str | None:
    """One line under the table that says why each "?" is unknown, each reason once; None when nothing is."""
    reasons = dict.fromkeys(reason for row in rows for reason in row.unknown)
    return f"? = unknown: {'; '.join(reasons)}" if reasons else None


def _unknown(gpu: Gpu) -> tuple[str, ...]:
    columns = (
        ("memory", (gpu.memory_used_bytes, gpu.memory_total_bytes)),
        ("temp", (gpu.temperature_c,)),
        ("power", (gpu.power_draw_watts, gpu.power_limit_watts)),
        ("util", (gpu.utilization_gpu_percent,)),
        ("pcie", (gpu.pcie_generation, gpu.pcie_width)),
    )
    return tuple(
        f"{column}: {value.reason}"
        for column, values in columns
        for value in dict.fromkeys(v for v in values if isinstance(v, Unavailable))
    )


def gpu_row(gpu: Gpu) -> GpuRow:
    flags = gpu_flags(gpu)
    return GpuRow(
        cells=(
            str(gpu.index),
            _text(gpu.name),
            _pair(gpu.memory_used_bytes, gpu.memory_total_bytes, format_bytes),
            _value(gpu.temperature_c, "{} °C"),
            _pair(gpu.power_draw_watts, gpu.power_limit_watts, lambda watts: f"{watts:.0f} W"),
            _value(gpu.utilization_gpu_percent, "{} %"),
            _link(gpu),
            " ".join(flags) or "—",
        ),
        flags=flags,
        unknown=_unknown(gpu),
    )


def gpu_flags(gpu: Gpu) -> tuple[str, ...]:
    flags: list[str] = []
    uncorrected = known(gpu.ecc.volatile.uncorrected)
    if uncorrected:
        flags.append(f"ecc-uncorrected:{uncorrected}")
    retired = known(gpu.retired_pages)
    if retired is not None:
        count = (known(retired.single_bit_count) or 0) + (known(retired.double_bit_count) or 0)
        if count:
            flags.append(f"retired-pages:{count}")
        if retired.is_pending is True:
            flags.append("retirement-pending")
    remapped = known(gpu.remapped_rows)
    if remapped is not None:
        if remapped.has_failure is True:
            flags.append("remap-failed")
        if remapped.is_pending is True:
            flags.append("remap-pending")
    reasons = known(gpu.clock_event_reasons) or ()
    flags.extend(dict.fromkeys(_SLOWDOWNS[reason] for reason in reasons if reason in _SLOWDOWNS))
    width, width_max = known(gpu.pcie_width), known(gpu.pcie_width_max)
    if width is not None and width_max is not None and width < width_max:
        flags.append("pcie-narrow")  # a lower generation at idle is power saving; a narrower link is not
    if gpu.is_mig_enabled is True:
        flags.append("mig")
    processes = known(gpu.processes)
    if processes:
        flags.append(f"processes:{len(processes)}")
    if gpu.compute_mode in ("Prohibited", "Exclusive_Process", "Exclusive_Thread"):
        flags.append(f"compute-mode:{gpu.compute_mode}")
    return tuple(flags)


def _text(value: str | Unavailable) -> str:
    return value if isinstance(value, str) else f"? ({value.reason})"


def _value(value: int | float | Unavailable, template: str) -> str:
    return "?" if isinstance(value, Unavailable) else template.format(value)


def _pair(used: float | Unavailable, total: float | Unavailable, show: Callable[[float], str]) -> str:
    left = "?" if isinstance(used, Unavailable) else show(used)
    right = "?" if isinstance(total, Unavailable) else show(total)
    return f"{left} / {right}"


def _link(gpu: Gpu) -> str:
    generation, width = known(gpu.pcie_generation), known(gpu.pcie_width)
    generation_max, width_max = known(gpu.pcie_generation_max), known(gpu.pcie_width_max)
    if generation is None or width is None:
        return "?"
    current = f"Gen{generation} x{width}"
    if (generation_max, width_max) != (generation, width) and generation_max and width_max:
        return f"{current} of Gen{generation_max} x{width_max}"
    return current
