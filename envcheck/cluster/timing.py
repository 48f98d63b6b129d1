"""Checks on what the ranks measured: the all-reduce's value, clock skew, stragglers, the bandwidth sweep, and the
ranks that never arrived. Pure: facts in, findings out."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from envcheck.cluster.bandwidth import format_size
from envcheck.cluster.consistency import rank_label
from envcheck.cluster.facts import RankFacts, Sweep
from envcheck.finding import Finding, Severity

# Clocks further apart than this make logs and checkpoints of one step carry times that disagree; the barrier the
# clocks are read at lets ranks out within milliseconds, so a second is far above the measurement's own spread.
CLOCK_SKEW_LIMIT_S = 1.0
# A GPU this much slower than its identical siblings slows every synchronous step of the job by as much.
STRAGGLER_MARGIN = 0.10
# From this many identical devices the median is the reference; below it (two ranks), the fastest is.
MEDIAN_FROM = 3


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
    """A rank whose GEMM took more than 10% longer than the reference of its identical devices: their median from
    three devices on, the fastest with two (a median of two is their mean, which halves the gap)."""
    by_device: dict[str, list[RankFacts]] = {}
    for facts in ranks:
        by_device.setdefault(facts.matmul.device, []).append(facts)
    slow: list[str] = []
    compared = 0
    for device, group in by_device.items():
        if len(group) < 2:
            continue
        compared += len(group)
        times = [facts.matmul.median_s for facts in group]
        reference = statistics.median(times) if len(group) >= MEDIAN_FROM else min(times)
        name = "median" if len(group) >= MEDIAN_FROM else "fastest"
        for facts in group:
            if reference > 0 and facts.matmul.median_s > reference * (1 + STRAGGLER_MARGIN):
                slowdown = facts.matmul.median_s / reference - 1
                slow.append(
                    f"{rank_label(facts)} on {device}: {facts.matmul.median_s * 1000:.1f} ms,"
                    f" {slowdown:.0%} slower than the {name} {reference * 1000:.1f} ms"
                )
    if slow:
        return Finding(
            "cluster.straggler",
            Severity.WARN,
            f"{len(slow)} rank(s) more than {STRAGGLER_MARGIN:.0%} slower than identical devices",
            detail="\n".join(slow),
            fix="look at the slow GPU's clocks, throttle reasons and temperature: nvidia-smi -q -d CLOCK,PERFORMANCE",
            evidence=("matmul",),
        )
    if compared == 0:
        return Finding("cluster.straggler", Severity.SKIP, "no two ranks have identical devices to compare")
    return Finding(
        "cluster.straggler", Severity.OK, f"no straggler among {compared} ranks (GEMM within {STRAGGLER_MARGIN:.0%})"
    )


def check_sweep(sweep: Sweep) -> Finding:
    """The largest size's busbw; judged only where an expected figure exists (not for gloo on CPU)."""
    if not sweep.rows:
        return Finding("cluster.bandwidth", Severity.SKIP, "no collective was measured")
    largest = {row.collective: row for row in sweep.rows}
    figures = ", ".join(
        f"{name} busbw {row.busbw_gb_s:.2f} GB/s at {format_size(row.size_bytes)}" for name, row in largest.items()
    )
    return Finding("cluster.bandwidth", Severity.INFO, figures, detail=sweep.expectation)


def rank_missing(described: Sequence[str], phase: str, timeout_s: float, error_text: str) -> Finding:
    """The ranks that did not arrive at PHASE within the timeout, each described with its node and host."""
    return Finding(
        "cluster.rank_missing",
        Severity.FAIL,
        f"{len(described)} rank(s) did not arrive at the {phase} within {timeout_s:g} s: " + "; ".join(described),
        detail=error_text.strip().splitlines()[0] if error_text.strip() else "",
        fix="look at the missing rank's own log; check that its node can reach MASTER_ADDR:MASTER_PORT",
        evidence=("place",),
    )
