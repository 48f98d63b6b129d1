"""Checks on what the ranks measured: the all-reduce's value, clock skew, stragglers, the bandwidth sweep, and the
ranks that never arrived. Pure: facts in, findings out."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from envcheck.cluster.bandwidth import format_size
from envcheck.cluster.consistency import rank_label
from envcheck.cluster.fabric import ALARM_SHARE, PASS_SHARE, gpu_of, is_short, node_snapshots, share
from envcheck.cluster.facts import Expectation, GpuTelemetry, RankFacts, Rerun, Sweep
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu
from envcheck.finding import Finding, Severity

# Clocks further apart than this make logs and checkpoints of one step carry times that disagree; the barrier the
# clocks are read at lets ranks out within milliseconds, so a second is far above the measurement's own spread.
CLOCK_SKEW_LIMIT_S = 1.0
# A GPU this much slower than its identical siblings slows every synchronous step of the job by as much.
STRAGGLER_MARGIN = 0.10
# From this many identical devices the median is the reference; below it (two ranks), the fastest is.
MEDIAN_FROM = 3
# A re-run with a transport switched off that beats the best rate so far by this much names that transport.
TRANSPORT_GAIN = 1.25


def check_all_reduce(ranks: Sequence[RankFacts]) -> Finding:
    wrong = [facts for facts in ranks if not facts.all_reduce.is_correct]
    if wrong:
        lines = [
            f"{rank_label(facts)}: int64 {facts.all_reduce.int_result}, float32 {facts.all_reduce.float_result:g},"
            f" expected {facts.all_reduce.expected}"
            for facts in wrong
        ]
        return Finding(
            "cluster.allreduce_wrong",
            Severity.FAIL,
            f"all-reduce gave a wrong sum on {len(wrong)} of {len(ranks)} ranks",
            detail="\n".join(lines),
            fix="rerun with NCCL_DEBUG=INFO to see the wrong ranks' transport; check their GPUs' ECC errors",
            evidence=("all_reduce",),
        )
    expected = ranks[0].all_reduce.expected if ranks else 0
    return Finding(
        "cluster.allreduce_wrong",
        Severity.OK,
        f"all-reduce correct on all {len(ranks)} ranks (sum {expected}, int64 and float32)",
    )


def check_clock_skew(ranks: Sequence[RankFacts]) -> Finding:
    """The spread of the ranks' wall clocks, read as they left one barrier together."""
    clocks = sorted(ranks, key=lambda facts: facts.clock_s)
    spread = clocks[-1].clock_s - clocks[0].clock_s if clocks else 0.0
    detail = f"earliest {rank_label(clocks[0])}, latest {rank_label(clocks[-1])}" if clocks else ""
    if spread > CLOCK_SKEW_LIMIT_S:
        return Finding(
            "cluster.clock_skew",
            Severity.WARN,
            f"the nodes' clocks differ by {spread:.2f} s (more than {CLOCK_SKEW_LIMIT_S:g} s)",
            detail=detail,
            fix="run chrony or systemd-timesyncd on every node: chronyc tracking",
            evidence=("clock_s",),
        )
    return Finding("cluster.clock_skew", Severity.OK, f"clocks agree within {spread * 1000:.0f} ms", detail=detail)


def check_stragglers(ranks: Sequence[RankFacts]) -> Finding:
    """A rank whose GEMM took, or whose memory copy ran, more than 10% slower than the reference of its identical
    devices: their median from three devices on, the fastest with two (a median of two is their mean, which halves
    the gap). A GPU is named with its host, index and UUID and what NVML said of it right after the GEMM (else when
    the node was probed)."""
    by_device: dict[str, list[RankFacts]] = {}
    for facts in ranks:
        by_device.setdefault(facts.matmul.device, []).append(facts)
    nodes = node_snapshots(ranks)
    slow: list[str] = []
    compared = 0
    for device, group in by_device.items():
        if len(group) < 2:
            continue
        compared += len(group)
        for facts in group:
            lines = [
                line
                for measure in _MEASURES
                if (line := _slower(facts, [_seconds(other, measure) for other in group], measure))
            ]
            if lines:
                node = nodes.get(facts.place.node_rank)
                slow.append(f"{_gpu_label(facts, node, device)}: {'; '.join(lines)}{_telemetry(facts, node)}")
    if slow:
        return Finding(
            "cluster.straggler",
            Severity.WARN,
            f"{len(slow)} rank(s) more than {STRAGGLER_MARGIN:.0%} slower than identical devices",
            detail="\n".join(slow),
            fix="look at the slow GPU's clocks, throttle reasons and temperature: nvidia-smi -q -d CLOCK,PERFORMANCE"
            " -i <index>"
            if any(facts.matmul.gpu_uuid for facts in ranks)
            else "on a CPU the ranks share cores and memory: rerun on an idle machine (uptime) before suspecting one",
            evidence=("matmul",),
        )
    if compared == 0:
        return Finding("cluster.straggler", Severity.SKIP, "no two ranks have identical devices to compare")
    return Finding(
        "cluster.straggler",
        Severity.OK,
        f"no straggler among {compared} ranks (GEMM and memory copy within {STRAGGLER_MARGIN:.0%})",
    )


_MEASURES = ("GEMM", "memory copy")


def _seconds(facts: RankFacts, measure: str) -> float:
    """Time per unit of work: the GEMM's median, or the copy's seconds per GB (slower is larger for both)."""
    if measure == "GEMM":
        return facts.matmul.median_s
    return 1 / facts.matmul.copy_gb_s if facts.matmul.copy_gb_s > 0 else 0.0


def _slower(facts: RankFacts, times: list[float], measure: str) -> str | None:
    times = [time for time in times if time > 0]
    mine = _seconds(facts, measure)
    if len(times) < 2 or mine <= 0:
        return None
    reference = statistics.median(times) if len(times) >= MEDIAN_FROM else min(times)
    name = "median" if len(times) >= MEDIAN_FROM else "fastest"
    if mine <= reference * (1 + STRAGGLER_MARGIN):
        return None
    slowdown = mine / reference - 1
    if measure == "GEMM":
        return f"GEMM {mine * 1000:.1f} ms, {slowdown:.0%} slower than the {name} {reference * 1000:.1f} ms"
    return f"memory copy {1 / mine:.1f} GB/s, {slowdown:.0%} slower than the {name} {1 / reference:.1f} GB/s"


def _gpu_label(facts: RankFacts, node: RankFacts | None, device: str) -> str:
    gpu = gpu_of(facts, node) if node else None
    if gpu is not None:
        return f"{rank_label(facts)} GPU {gpu.index} {gpu.uuid} ({device})"
    if facts.matmul.gpu_uuid:
        return f"{rank_label(facts)} {facts.matmul.gpu_uuid} ({device})"
    return f"{rank_label(facts)} on {device}"


def _telemetry(facts: RankFacts, node: RankFacts | None) -> str:
    """What NVML said of the GPU right after its GEMM (SM clock, clock event reasons, temperature, power, PCIe link);
    where that sample failed, its reason and what NVML said when the node was probed."""
    sample = facts.matmul.telemetry
    if isinstance(sample, GpuTelemetry):
        described = _describe(sample)
        return f" [right after the GEMM: {described}]" if described else ""
    gpu = gpu_of(facts, node) if node else None
    probed = _describe(gpu) if gpu is not None else ""
    parts = [f"right after the GEMM: {sample.reason}"] if isinstance(sample, Unavailable) else []
    parts += [f"when probed: {probed}"] if probed else []
    return f" [{'; '.join(parts)}]" if parts else ""


def _describe(gpu: Gpu | GpuTelemetry) -> str:
    parts = []
    if isinstance(gpu.sm_clock_mhz, int):
        cap = f" of {gpu.sm_clock_max_mhz}" if isinstance(gpu.sm_clock_max_mhz, int) else ""
        parts.append(f"SM clock {gpu.sm_clock_mhz}{cap} MHz")
    if isinstance(gpu.clock_event_reasons, tuple):
        parts.append("throttle: " + (", ".join(gpu.clock_event_reasons) or "none"))
    if isinstance(gpu.temperature_c, int):
        parts.append(f"{gpu.temperature_c} °C")
    if isinstance(gpu, GpuTelemetry) and isinstance(gpu.power_draw_watts, float):
        parts.append(f"{gpu.power_draw_watts:.0f} W")
    if isinstance(gpu.pcie_generation, int) and isinstance(gpu.pcie_width, int):
        maximum = ""
        if isinstance(gpu.pcie_generation_max, int) and isinstance(gpu.pcie_width_max, int):
            maximum = f" (max gen {gpu.pcie_generation_max} x{gpu.pcie_width_max})"
        parts.append(f"PCIe gen {gpu.pcie_generation} x{gpu.pcie_width}{maximum}")
    return ", ".join(parts)


def check_sweep(sweep: Sweep) -> Finding:
    """The largest all-reduce's busbw as % of the fabric's expected rate (>= 80% passes, < 25% fails); where a
    shortfall was re-run, the repeat and each transport switched off say whether it was transient or which transport
    is at fault. Without an expectation (gloo on CPU, several nodes) the figures are reported, not judged."""
    if not sweep.rows:
        return Finding("cluster.bandwidth", Severity.SKIP, "no collective was measured")
    largest = {row.collective: row for row in sweep.rows}
    figures = ", ".join(
        f"{name} busbw {row.busbw_gb_s:.2f} GB/s at {format_size(row.size_bytes)}" for name, row in largest.items()
    )
    expected = sweep.expected
    if expected is None or "all_reduce" not in largest:
        return Finding("cluster.bandwidth", Severity.INFO, figures, detail=sweep.expectation)
    measured = largest["all_reduce"].busbw_gb_s
    title = (
        f"all_reduce busbw {measured:.2f} GB/s at {format_size(largest['all_reduce'].size_bytes)} is"
        f" {share(measured, expected):.0%} of {expected.busbw_gb_s:g} GB/s ({expected.link})"
    )
    if not is_short(measured, expected):
        return Finding("cluster.bandwidth", Severity.OK, title, detail=sweep.expectation)
    lines = [sweep.expectation, *(_rerun_line(rerun, expected) for rerun in sweep.reruns)]
    repeat = next((rerun for rerun in sweep.reruns if rerun.label == "repeat"), None)
    best = max(measured, (repeat.busbw_gb_s or 0.0) if repeat else 0.0)
    if repeat is not None and repeat.busbw_gb_s is not None and not is_short(repeat.busbw_gb_s, expected):
        verdict, severity = (
            "short once, then at full rate on the repeat: a transient (another job, a clock ramp)",
            (Severity.WARN),
        )
    else:
        verdict = _transport_verdict(sweep, best, expected)
        severity = Severity.FAIL if share(best, expected) < ALARM_SHARE else Severity.WARN
    return Finding(
        "cluster.bandwidth",
        severity,
        f"{title}: below {PASS_SHARE:.0%}",
        detail="\n".join([*lines, verdict]),
        fix="rerun with NCCL_DEBUG=INFO and compare the transports per rank; for P2P at fault check PCIe ACS and the"
        " IOMMU (sudo lspci -vvv | grep ACSCtl), for SHM /dev/shm and the container's IPC namespace",
        evidence=("sweep.rows", "sweep.reruns"),
    )


def _rerun_line(rerun: Rerun, expected: Expectation) -> str:
    if rerun.busbw_gb_s is None:
        return f"{rerun.label}: failed ({rerun.error})"
    return f"{rerun.label}: busbw {rerun.busbw_gb_s:.2f} GB/s, {share(rerun.busbw_gb_s, expected):.0%}"


def _transport_verdict(sweep: Sweep, best: float, expected: Expectation) -> str:
    """The transport whose switching off restored the rate (or raised it by a quarter) is at fault."""
    if sweep.backend != "nccl":
        return f"{sweep.backend} reads no NCCL_* variable: the re-runs name no transport on {sweep.backend}"
    helped = [
        rerun.label.split("=", 1)[0].removeprefix("NCCL_").removesuffix("_DISABLE")
        for rerun in sweep.reruns
        if rerun.label != "repeat"
        and rerun.busbw_gb_s is not None
        and (not is_short(rerun.busbw_gb_s, expected) or rerun.busbw_gb_s > best * TRANSPORT_GAIN)
    ]
    if helped:
        return f"switching off {' and '.join(helped)} raised the rate: the {'/'.join(helped)} transport is at fault"
    if not any(rerun.label != "repeat" for rerun in sweep.reruns):
        return "still short on the repeat (the transports were not re-run)"
    return "switching off P2P or SHM did not help: the link itself (or the network transport) is slow"


def rank_missing(
    described: Sequence[str], phase: str, timeout_s: float, error_text: str, trace_prefix: str | None = None
) -> Finding:
    """The ranks that did not arrive at PHASE within the timeout, each described with its node and host; on NCCL,
    where each rank's flight recorder dumped its last collectives."""
    detail = error_text.strip().splitlines()[0] if error_text.strip() else ""
    if trace_prefix:
        detail += (
            f"\nNCCL flight recorder: each rank dumps its last collectives to {trace_prefix}<rank> on its own node"
            f" (read them with torchfrtrace {trace_prefix.rsplit('/', 1)[0]})"
        )
    return Finding(
        "cluster.rank_missing",
        Severity.FAIL,
        f"{len(described)} rank(s) did not arrive at the {phase} within {timeout_s:g} s: " + "; ".join(described),
        detail=detail.strip(),
        fix="look at the missing rank's own log; check that its node can reach MASTER_ADDR:MASTER_PORT",
        evidence=("place",),
    )
