"""Checks of GPU hardware health: ECC errors, memory waiting for repair, PCIe link, throttling, power, heat.

Each finding names the GPU by index (as `nvidia-smi -i` counts) and model, with the numbers read.
"""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.gpu import Verdict, first_missing, label, per_gpu
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu
from envcheck.facts.gpu_health import RemappedRows, RetiredPages
from envcheck.finding import Finding, Severity

# Within this many degrees of the slowdown threshold the GPU throttles at the next load spike.
TEMPERATURE_MARGIN_C = 5
# Power limits are reported with a fraction of a watt of rounding; below default by more is a setting.
POWER_LIMIT_TOLERANCE_WATTS = 1.0

# Clock event reasons that mean the GPU runs slower than it should (nvmlClocksEventReasons docs).
# Not listed, on purpose: gpu_idle (nothing to do), sw_power_cap (the normal way a busy GPU holds its
# power limit, and reported on idle GPUs too), applications_clocks_setting, sync_boost, display_clock_setting.
SLOWDOWN_REASONS = {
    "hw_slowdown": "hardware slowdown (clocks cut by half or more: overheating, power brake or a failing PSU)",
    "hw_thermal_slowdown": "hardware thermal slowdown (the GPU or its memory is too hot)",
    "sw_thermal_slowdown": "software thermal slowdown (the driver lowers clocks to hold the temperature)",
    "hw_power_brake_slowdown": "power brake (an external signal from the power supply or chassis cut power)",
}


def _ecc(gpu: Gpu) -> Verdict:
    ecc = gpu.ecc
    if ecc.is_enabled is False:
        return None  # consumer cards without ECC, or ECC switched off: nothing is counted
    volatile, aggregate = ecc.volatile.uncorrected, ecc.aggregate.uncorrected
    if isinstance(volatile, Unavailable) and isinstance(aggregate, Unavailable):
        return volatile
    evidence = (f"gpu.gpus[{gpu.index}].ecc.volatile.uncorrected", f"gpu.gpus[{gpu.index}].ecc.aggregate.uncorrected")
    lifetime = f"{aggregate} over its lifetime" if isinstance(aggregate, int) else "lifetime count not reported"
    if isinstance(volatile, int) and volatile > 0:
        return Finding(
            "gpu.ecc_uncorrected",
            Severity.FAIL,
            f"{label(gpu)}: {volatile} uncorrected ECC error(s) since the driver loaded ({lifetime})",
            detail="An uncorrectable memory error kills the CUDA context that touched it (Xid 48/63/64/94/95) "
            "and may have corrupted data in flight; more are likely.",
            fix=f"Drain the GPU, then `sudo nvidia-smi -r -i {gpu.index}` (or reboot) and watch "
            f"`nvidia-smi -q -d ECC,PAGE_RETIREMENT,ROW_REMAPPER -i {gpu.index}`; recurring errors mean an RMA.",
            evidence=evidence,
        )
    if isinstance(aggregate, int) and aggregate > 0:
        return Finding(
            "gpu.ecc_uncorrected",
            Severity.WARN,
            f"{label(gpu)}: {aggregate} uncorrected ECC error(s) over its lifetime, none since the driver loaded",
            detail="Past errors whose memory has been retired or remapped; the GPU works, but a growing "
            "count is a failing card.",
            fix=f"Watch `nvidia-smi -q -d ECC -i {gpu.index}`; report the GPU to your provider if the count grows.",
            evidence=evidence,
        )
    return None


@check("gpu.ecc_uncorrected", "No uncorrected ECC errors (since driver load: fail; lifetime only: warn).")
def check_ecc_uncorrected(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.ecc_uncorrected", "ECC errors", _ecc, "no uncorrected ECC errors")


def _memory_repair(gpu: Gpu) -> Verdict:
    rows, pages = gpu.remapped_rows, gpu.retired_pages
    # Ampere and later remap rows and report page retirement "not supported"; older GPUs the reverse.
    if not isinstance(rows, RemappedRows) and not isinstance(pages, RetiredPages):
        return rows if isinstance(rows, Unavailable) else pages
    reset = f"sudo nvidia-smi -r -i {gpu.index} (with no process on the GPU) or reboot"
    if isinstance(rows, RemappedRows) and rows.has_failure is True:
        return Finding(
            "gpu.memory_repair",
            Severity.FAIL,
            f"{label(gpu)}: row remapping failed ({rows.uncorrectable} rows remapped for uncorrectable errors, "
            f"{rows.correctable} for correctable): no spare rows left",
            detail="The GPU can no longer repair its memory; NVIDIA's guidance is to take it out of service"
            + (" (a remap is also pending, applied at the next reset)." if rows.is_pending is True else "."),
            fix=f"Take GPU {gpu.index} out of use (CUDA_VISIBLE_DEVICES without it) and request an RMA "
            "from your vendor or cloud provider.",
            evidence=(f"gpu.gpus[{gpu.index}].remapped_rows",),
        )
    pending = []
    if isinstance(rows, RemappedRows) and rows.is_pending is True:
        pending.append(f"a row remap is pending ({rows.uncorrectable} uncorrectable, {rows.correctable} correctable)")
    if isinstance(pages, RetiredPages) and pages.is_pending is True:
        pending.append(
            f"pages are pending retirement ({pages.double_bit_count} double-bit, {pages.single_bit_count} single-bit "
            "retired)"
        )
    if not pending:
        return None
    return Finding(
        "gpu.memory_repair",
        Severity.FAIL,
        f"{label(gpu)}: {' and '.join(pending)}",
        detail="The faulty memory stays in use until the GPU is reset; jobs on it can hit the same "
        "uncorrectable error again.",
        fix=reset,
        evidence=(f"gpu.gpus[{gpu.index}].remapped_rows", f"gpu.gpus[{gpu.index}].retired_pages"),
    )


@check("gpu.memory_repair", "No memory waits for repair (pending page retirement / row remap) or failed it.")
def check_memory_repair(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.memory_repair", "memory repair", _memory_repair, "no memory repair pending")


def _pcie(gpu: Gpu) -> Verdict:
    generation, generation_max = gpu.pcie_generation, gpu.pcie_generation_max
    width, width_max = gpu.pcie_width, gpu.pcie_width_max
    if (
        isinstance(generation, Unavailable)
        or isinstance(generation_max, Unavailable)
        or isinstance(width, Unavailable)
        or isinstance(width_max, Unavailable)
    ):
        return first_missing(generation, generation_max, width, width_max)
    busy = gpu.utilization_gpu_percent
    # An idle GPU drops to PCIe gen 1 to save power (ASPM) and trains up under load: only width, or
    # the generation while the GPU is busy, says the link is really degraded.
    is_busy = isinstance(busy, int) and busy > 0
    if width >= width_max and (generation >= generation_max or not is_busy):
        return None
    return Finding(
        "gpu.pcie_link",
        Severity.WARN,
        f"{label(gpu)}: PCIe link runs at gen {generation} x{width}, the maximum is gen {generation_max} x{width_max}"
        + (f" (GPU {busy}% busy)" if is_busy else ""),
        detail="Host-to-GPU copies (data loading, offload, checkpoints) and cross-GPU traffic without NVLink "
        "run at a fraction of the bandwidth. Causes: a card in a narrower slot, a riser, a dirty or loose "
        "connector, or BIOS link settings.",
        fix=f"Confirm with `nvidia-smi -q -d PCIE -i {gpu.index}` while it is busy and `sudo lspci -vv` (LnkSta); "
        "reseat the card or move it to a full-width slot.",
        evidence=(f"gpu.gpus[{gpu.index}].pcie_generation", f"gpu.gpus[{gpu.index}].pcie_width"),
    )


@check("gpu.pcie_link", "PCIe link at full width (and, under load, full generation; idle GPUs downclock it).")
def check_pcie_link(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.pcie_link", "PCIe link", _pcie, "PCIe links at full width")


def _throttle(gpu: Gpu) -> Verdict:
    reasons = gpu.clock_event_reasons
    if isinstance(reasons, Unavailable):
        return reasons
    slowdowns = [reason for reason in reasons if reason in SLOWDOWN_REASONS]
    if not slowdowns:
        return None
    temperature = f", {gpu.temperature_c} °C" if isinstance(gpu.temperature_c, int) else ""
    power = (
        f", {gpu.power_draw_watts:.0f} of {gpu.power_limit_watts:.0f} W"
        if isinstance(gpu.power_draw_watts, float) and isinstance(gpu.power_limit_watts, float)
        else ""
    )
    clock = (
        f", SM clock {gpu.sm_clock_mhz} of {gpu.sm_clock_max_mhz} MHz"
        if isinstance(gpu.sm_clock_mhz, int) and isinstance(gpu.sm_clock_max_mhz, int)
        else ""
    )
    return Finding(
        "gpu.clock_throttle",
        Severity.WARN,
        f"{label(gpu)}: clocks throttled by {', '.join(slowdowns)}{temperature}{power}{clock}",
        detail="; ".join(SLOWDOWN_REASONS[reason] for reason in slowdowns) + ". The GPU computes slower "
        "than its rating, and in data-parallel training every GPU waits for it.",
        fix=f"Check cooling and airflow (`nvidia-smi -q -d TEMPERATURE,PERFORMANCE -i {gpu.index}`), fan "
        "failures and power cabling; persistent hardware slowdown on a cool GPU points to the PSU or the board.",
        evidence=(f"gpu.gpus[{gpu.index}].clock_event_reasons",),
    )


@check("gpu.clock_throttle", "Clocks are not slowed by heat or power faults (hw/sw thermal, hw slowdown, power brake).")
def check_clock_throttle(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.clock_throttle", "clock throttling", _throttle, "no thermal or power slowdown")


def _power_limit(gpu: Gpu) -> Verdict:
    limit, default = gpu.power_limit_watts, gpu.power_default_limit_watts
    if isinstance(limit, Unavailable) or isinstance(default, Unavailable):
        return first_missing(limit, default)
    if limit >= default - POWER_LIMIT_TOLERANCE_WATTS:
        return None
    return Finding(
        "gpu.power_limit",
        Severity.WARN,
        f"{label(gpu)}: power limit is {limit:.0f} W, below the default {default:.0f} W ({limit / default:.0%})",
        detail="A lowered limit caps clocks under load; training runs slower by up to the same fraction. "
        "It is sometimes set on purpose (shared power budget, quieter workstation).",
        fix=f"sudo nvidia-smi -i {gpu.index} -pl {default:.0f}",
        evidence=(f"gpu.gpus[{gpu.index}].power_limit_watts", f"gpu.gpus[{gpu.index}].power_default_limit_watts"),
    )


@check("gpu.power_limit", "No GPU's power limit is set below its default.")
def check_power_limit(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.power_limit", "power limit", _power_limit, "power limits at their default")


def _temperature(gpu: Gpu) -> Verdict:
    """Warns within TEMPERATURE_MARGIN_C of the slowdown threshold, and at or above the maximum operating temperature
    where the GPU reports one ("GPU Max Operating Temp", driver 450+). On data-centre boards that one is lower (an
    H100 SXM5 on driver 550 reports 87 °C under an 89 °C slowdown, a T4 on 515 85 °C under 93 °C) and the board runs
    out of its specified range past it, so it is a limit of its own, without the margin."""
    temperature, slowdown, operating = gpu.temperature_c, gpu.temperature_slowdown_c, gpu.temperature_max_operating_c
    if isinstance(temperature, Unavailable) or not (isinstance(slowdown, int) or isinstance(operating, int)):
        return first_missing(temperature, slowdown)
    if isinstance(slowdown, int) and temperature >= slowdown - TEMPERATURE_MARGIN_C:
        where = "at or above" if temperature >= slowdown else f"within {slowdown - temperature} °C of"
        title = f"{temperature} °C is {where} its slowdown threshold of {slowdown} °C"
        detail = "Past the threshold the GPU halves its clocks to cool down; training slows without any error."
        field = "temperature_slowdown_c"
    elif isinstance(operating, int) and temperature >= operating:
        title = f"{temperature} °C is at or above its maximum operating temperature of {operating} °C"
        detail = f"The driver reports {operating} °C as the highest temperature for normal operation: the GPU runs " + (
            f"outside its specified range, {slowdown - temperature} °C from halving its clocks at {slowdown} °C."
            if isinstance(slowdown, int)
            else "outside its specified range."
        )
        field = "temperature_max_operating_c"
    else:
        return None
    return Finding(
        "gpu.temperature",
        Severity.WARN,
        f"{label(gpu)}: {title}",
        detail=detail,
        fix="Improve cooling: clear the airflow path, check fans (`nvidia-smi -q -d TEMPERATURE,FAN`), "
        "space the cards out or lower the room temperature.",
        evidence=(f"gpu.gpus[{gpu.index}].temperature_c", f"gpu.gpus[{gpu.index}].{field}"),
    )


@check(
    "gpu.temperature",
    f"No GPU is within {TEMPERATURE_MARGIN_C} °C of its slowdown temperature or past its maximum operating one.",
)
def check_temperature(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.temperature", "GPU temperature", _temperature, "temperatures well below slowdown")
