"""Rank 0's judgement: the cross-rank checks run over the gathered facts, in the order the report shows them."""

from __future__ import annotations

from collections.abc import Sequence

from envcheck.cluster.consistency import check_environment, check_gpus, check_versions
from envcheck.cluster.facts import ClusterReport, RankFacts, Sweep
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
    ]
    if sweep is not None:
        findings.append(check_sweep(sweep))
    return tuple(findings)


def build_report(
    world_size: int,
    backend: str,
    timeout_s: float,
    ranks: Sequence[RankFacts],
    sweep: Sweep | None,
    extra: Sequence[Finding] = (),
) -> ClusterReport:
    """The report; EXTRA holds the findings of a phase that failed (a rank missing), shown first."""
    findings = (*extra, *cluster_findings(ranks, sweep))
    return ClusterReport(world_size, backend, timeout_s, tuple(ranks), sweep, findings, exit_code(findings))
