"""One rank's run, phase by phase: probe, join, barrier, check, measure, gather, re-run a short all-reduce; rank 0
then reports.

Every phase is bounded by --timeout: a phase that does not complete becomes a finding naming the ranks that did not
arrive, and rank 0 exits 1. Other ranks write nothing to stdout.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from envcheck.cluster import group
from envcheck.cluster.bandwidth import CPU_MAX_SIZE_BYTES, GPU_MAX_SIZE_BYTES, MIB
from envcheck.cluster.facts import Place, RankFacts, Rerun, Sweep, rank_facts_from_json, rank_facts_to_json
from envcheck.cluster.options import ClusterOptions, parse_options
from envcheck.cluster.ranks import LaunchError, describe_rank, missing_ranks, place_from_environment
from envcheck.cluster.report import build_report
from envcheck.cluster.timing import rank_missing
from envcheck.finding import Finding
from envcheck.input_files import InputError
from envcheck.snapshot import Snapshot

EXIT_USAGE = 2


def main(argv: list[str], environ: Mapping[str, str] = os.environ) -> int:
    options = parse_options(argv)
    try:
        place = place_from_environment(environ)
        from envcheck.cluster.probe import probe_rank

        backend = group.resolve_backend(options.backend)
        snapshot, source = probe_rank(place, environ)
    except (LaunchError, InputError) as error:
        sys.stderr.write(f"envcheck: error: {error}\n")
        return EXIT_USAGE
    nccl = group.prepare_nccl(os.environ, place.rank, tempfile.gettempdir()) if backend == "nccl" else None
    try:
        ranks, sweep = _run_phases(options, place, backend, snapshot, source, nccl)
        extra: tuple[Finding, ...] = ()
    except group.PhaseFailed as failure:
        if place.rank != 0:
            sys.stderr.write(f"envcheck cluster: rank {place.rank}: the {failure.phase} failed: {failure}\n")
            return 1
        missing = missing_ranks(failure.error_text, place.world_size)
        described = [describe_rank(rank, place) for rank in missing]
        ranks, sweep = [], None
        trace = nccl.trace_prefix if nccl else None
        extra = (rank_missing(described, failure.phase, options.timeout_s, failure.error_text, trace),)
    finally:
        group.end_group()
    if place.rank != 0:
        return 0
    report = build_report(place.world_size, backend, options.timeout_s, ranks, sweep, extra, _knowledge())
    from envcheck.render.cluster import render_cluster_json, render_cluster_markdown, render_cluster_terminal

    if options.as_json:
        sys.stdout.write(render_cluster_json(report) + "\n")
    elif options.as_markdown:
        sys.stdout.write(render_cluster_markdown(report))
    else:
        render_cluster_terminal(report, sys.stdout)
    sys.stdout.flush()
    return report.exit_code


def _knowledge() -> Any:
    from envcheck.knowledge import KnowledgeError, load_knowledge

    try:
        return load_knowledge()
    except KnowledgeError as error:  # a broken install: the checks that need it skip and say why
        sys.stderr.write(f"envcheck cluster: the knowledge base did not load: {error}\n")
        return None


def _run_phases(
    options: ClusterOptions, place: Place, backend: str, snapshot: Snapshot, source: str, nccl: group.NcclFiles | None
) -> tuple[list[RankFacts], Sweep | None]:
    import torch.distributed as dist

    from envcheck.cluster.collectives import SLOW_RANK_VARIABLE, check_all_reduce, run_sweep, time_matmul

    device, gloo = group.start_group(backend, place.local_rank, options.timeout_s)
    if os.environ.get(group.ABSENT_RANK_VARIABLE) == str(place.rank):
        time.sleep(options.timeout_s * 3 + 30)  # the test seam: never arrive; the launcher ends this rank
    group.monitored_barrier(gloo, options.timeout_s)
    group.run_phase("clock barrier", lambda: dist.barrier(group=gloo))
    clock_s = time.time()
    all_reduce = group.run_phase("all-reduce check", lambda: check_all_reduce(place.rank, place.world_size, device))
    group.run_phase("GEMM barrier", dist.barrier)
    is_slowed = os.environ.get(SLOW_RANK_VARIABLE) == str(place.rank)
    matmul = time_matmul(device, is_slowed)
    if matmul.gpu_uuid is not None:  # while the GPU is warm: a clock held down by heat or power shows
        from envcheck.cluster.probe import sample_gpu_telemetry

        matmul = replace(matmul, telemetry=sample_gpu_telemetry(matmul.gpu_uuid, os.environ))
    max_size = options.max_size_mib * MIB if options.max_size_mib else None
    if max_size is None:
        max_size = GPU_MAX_SIZE_BYTES if device.type == "cuda" else CPU_MAX_SIZE_BYTES
    sweep = group.run_phase(
        "bandwidth sweep", lambda: run_sweep(backend, place.world_size, device, max_size, options.iterations, "")
    )
    transport = group.read_nccl_transport(nccl) if nccl else None
    facts = RankFacts(place, snapshot, source, clock_s, all_reduce, matmul, transport)
    texts = group.gather_to_rank_zero(rank_facts_to_json(facts), place.rank, place.world_size, gloo)
    try:
        ranks = [rank_facts_from_json(text) for text in texts]
    except ValueError as error:
        raise group.PhaseFailed("gather of the facts", str(error)) from None
    return ranks, _judge_and_rerun(options, place, backend, device, gloo, ranks, sweep)


def _judge_and_rerun(
    options: ClusterOptions, place: Place, backend: str, device: Any, gloo: Any, ranks: list[RankFacts], sweep: Sweep
) -> Sweep:
    """Rank 0 compares the largest all-reduce with the fabric's expectation; a shortfall is repeated once in a fresh
    subgroup, and if still short, re-run in fresh processes with each NCCL transport switched off in turn."""
    from envcheck.cluster.fabric import expect_busbw, is_short
    from envcheck.cluster.rerun import TRANSPORT_VARIABLES, free_ports, repeat_in_subgroup, rerun_in_fresh_process

    largest = [row for row in sweep.rows if row.collective == "all_reduce"][-1]
    expected, sentence = expect_busbw(ranks, backend, _knowledge(), os.environ) if place.rank == 0 else (None, "")
    sweep = replace(sweep, expectation=sentence, expected=expected)
    is_shortfall = expected is not None and is_short(largest.busbw_gb_s, expected)
    if not group.broadcast_from_rank_zero(is_shortfall, gloo, "bandwidth verdict"):
        return sweep
    repeat = group.run_phase(
        "repeated all-reduce",
        lambda: repeat_in_subgroup(backend, place.world_size, device, largest.size_bytes, options.iterations),
    )
    reruns: list[Rerun] = [repeat]
    still_short = expected is not None and is_short(repeat.busbw_gb_s or 0.0, expected)
    ports = free_ports(len(TRANSPORT_VARIABLES)) if still_short else []
    ports = group.broadcast_from_rank_zero(ports, gloo, "re-run ports")
    for variable, port in zip(TRANSPORT_VARIABLES[: len(ports)], ports, strict=True):
        reruns.append(
            rerun_in_fresh_process(
                variable, port, place, backend, largest.size_bytes, options.iterations, options.timeout_s, os.environ
            )
        )
    return replace(sweep, reruns=tuple(reruns))
