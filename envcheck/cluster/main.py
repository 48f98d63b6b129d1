"""One rank's run, phase by phase: probe, join, barrier, check, measure, gather; rank 0 then reports.

Every phase is bounded by --timeout: a phase that does not complete becomes a finding naming the ranks that did not
arrive, and rank 0 exits 1. Other ranks write nothing to stdout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

from envcheck.cluster import group
from envcheck.cluster.bandwidth import CPU_MAX_SIZE_BYTES, GPU_MAX_SIZE_BYTES, MIB
from envcheck.cluster.facts import Place, RankFacts, Sweep, rank_facts_from_json, rank_facts_to_json
from envcheck.cluster.options import ClusterOptions, parse_options
from envcheck.cluster.ranks import LaunchError, describe_rank, missing_ranks, place_from_environment
from envcheck.cluster.report import build_report
from envcheck.cluster.timing import rank_missing
from envcheck.finding import Finding
from envcheck.input_files import InputError
from envcheck.snapshot import Snapshot

EXIT_USAGE = 2
NO_EXPECTATION_GLOO = "no expected bandwidth for gloo on CPU: the figures are reported, not judged"
NO_EXPECTATION_NCCL = "no expected bandwidth yet for NCCL (NVLink / PCIe / NIC expectations are not built yet)"


def main(argv: list[str], environ: Mapping[str, str] = os.environ) -> int:
    options = parse_options(argv)
    try:
        place = place_from_environment(environ)
        from envcheck.cluster.probe import probe_rank

        snapshot, source = probe_rank(place, environ)
    except (LaunchError, InputError) as error:
        sys.stderr.write(f"envcheck: error: {error}\n")
        return EXIT_USAGE
    backend = group.resolve_backend(options.backend)
    try:
        ranks, sweep = _run_phases(options, place, backend, snapshot, source, environ)
        extra: tuple[Finding, ...] = ()
    except group.PhaseFailed as failure:
        if place.rank != 0:
            sys.stderr.write(f"envcheck cluster: rank {place.rank}: the {failure.phase} failed: {failure}\n")
            return 1
        missing = missing_ranks(failure.error_text, place.world_size)
        described = [describe_rank(rank, place) for rank in missing]
        ranks, sweep = [], None
        extra = (rank_missing(described, failure.phase, options.timeout_s, failure.error_text),)
    finally:
        group.end_group()
    if place.rank != 0:
        return 0
    report = build_report(place.world_size, backend, options.timeout_s, ranks, sweep, extra)
    from envcheck.render.cluster import render_cluster_json, render_cluster_terminal

    if options.as_json:
        sys.stdout.write(render_cluster_json(report) + "\n")
    else:
        render_cluster_terminal(report, sys.stdout)
    sys.stdout.flush()
    return report.exit_code


def _run_phases(
    options: ClusterOptions, place: Place, backend: str, snapshot: Snapshot, source: str, environ: Mapping[str, str]
) -> tuple[list[RankFacts], Sweep | None]:
    import torch.distributed as dist

    from envcheck.cluster.collectives import SLOW_RANK_VARIABLE, check_all_reduce, run_sweep, time_matmul

    device, gloo = group.start_group(backend, place.local_rank, options.timeout_s)
    if environ.get(group.ABSENT_RANK_VARIABLE) == str(place.rank):
        time.sleep(options.timeout_s * 3 + 30)  # the test seam: never arrive; the launcher ends this rank
    group.monitored_barrier(gloo, options.timeout_s)
    group.run_phase("clock barrier", lambda: dist.barrier(group=gloo))
    clock_s = time.time()
    all_reduce = group.run_phase("all-reduce check", lambda: check_all_reduce(place.rank, place.world_size, device))
    group.run_phase("GEMM barrier", dist.barrier)
    is_slowed = environ.get(SLOW_RANK_VARIABLE) == str(place.rank)
    matmul = time_matmul(device, is_slowed)
    facts = RankFacts(place, snapshot, source, clock_s, all_reduce, matmul)
    texts = group.gather_to_rank_zero(rank_facts_to_json(facts), place.rank, place.world_size, gloo)
    max_size = options.max_size_mib * MIB if options.max_size_mib else None
    if max_size is None:
        max_size = GPU_MAX_SIZE_BYTES if device.type == "cuda" else CPU_MAX_SIZE_BYTES
    expectation = NO_EXPECTATION_GLOO if backend == "gloo" else NO_EXPECTATION_NCCL
    sweep = group.run_phase(
        "bandwidth sweep",
        lambda: run_sweep(backend, place.world_size, device, max_size, options.iterations, expectation),
    )
    try:
        ranks = [rank_facts_from_json(text) for text in texts]
    except ValueError as error:
        raise group.PhaseFailed("gather of the facts", str(error)) from None
    return ranks, sweep
