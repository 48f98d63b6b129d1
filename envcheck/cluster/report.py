"""Rank 0's verdict: doctor's checks on each node's snapshot, the cross-node checks over the facts that arrived, in
the order the report shows them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.cluster.consistency import check_environment, check_gpus, check_transports, check_versions
from envcheck.cluster.fabric import node_snapshots
from envcheck.cluster.facts import ClusterReport, NodeChecks, RankFacts, Sweep
from envcheck.cluster.network import check_hca_ports, check_nccl_interfaces
from envcheck.cluster.timing import check_all_reduce, check_clock_skew, check_stragglers, check_sweep
from envcheck.finding import Finding, exit_code


def cluster_findings(ranks: Sequence[RankFacts], sweep: Sweep | None) -> tuple[Finding, ...]:
    if not ranks:
        return ()
    findings = [
        check_versions(ranks),
        check_gpus(ranks),
        check_environment(ranks),
        check_clock_skew(ranks),
        check_all_reduce(ranks),
        check_stragglers(ranks),
        check_transports(ranks),
    ]
    nodes = node_snapshots(ranks)
    if len(nodes) > 1:  # one node has nothing to compare its ports with
        findings.append(check_hca_ports(nodes))
    interfaces = check_nccl_interfaces(ranks, nodes)
    if interfaces is not None:
        findings.append(interfaces)
    if sweep is not None:
        findings.append(check_sweep(sweep))
    return tuple(findings)


def node_checks(ranks: Sequence[RankFacts], knowledge: Any) -> tuple[NodeChecks, ...]:
    """doctor's checks (the same registry, the same knowledge) on the snapshot of each node's host-probing rank."""
    return tuple(
        NodeChecks(node, facts.place.hostname, facts.place.rank, run_checks(CheckInput(facts.snapshot, knowledge)))
        for node, facts in node_snapshots(ranks).items()
    )


def build_report(
    world_size: int,
    backend: str,
    timeout_s: float,
    ranks: Sequence[RankFacts],
    sweep: Sweep | None,
    extra: Sequence[Finding] = (),
    knowledge: Any = None,
) -> ClusterReport:
    """The report; EXTRA holds the findings of a phase that failed (a rank missing), shown first. The exit code
    counts every node's doctor findings too, as doctor's would."""
    findings = (*extra, *cluster_findings(ranks, sweep))
    nodes = node_checks(ranks, knowledge)
    every = (*findings, *(finding for node in nodes for finding in node.findings))
    return ClusterReport(world_size, backend, timeout_s, tuple(ranks), sweep, findings, exit_code(every), nodes)
