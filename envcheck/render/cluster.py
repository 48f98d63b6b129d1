"""The cluster report: a row per rank with its host, versions and GPUs (cells that differ between ranks marked),
the findings, and the bandwidth sweep; or the same as JSON (schema envcheck.cluster/1)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.table import Table
from rich.text import Text

from envcheck.cluster.bandwidth import format_size
from envcheck.cluster.consistency import VERSION_FACTS, differences
from envcheck.cluster.facts import ClusterReport, RankFacts
from envcheck.codec import encode
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Severity
from envcheck.render.summary import count_line
from envcheck.render.terminal import SEVERITY_MARKS
from envcheck.render.values import visible

SCHEMA = "envcheck.cluster/1"
_COLUMNS = ("Python", "torch", "torch CUDA", "cuDNN", "NCCL", "NVIDIA driver")


def _gpus(facts: RankFacts) -> str | None:
    gpu = facts.snapshot.gpu
    if not isinstance(gpu, GpuFacts):
        return None
    if not gpu.gpus:
        return "none"
    names = [str(device.name) for device in gpu.gpus]
    return ", ".join(f"{name} x{names.count(name)}" for name in sorted(set(names)))


def _rank_row(facts: RankFacts) -> dict[str, Any]:
    place = facts.place
    row: dict[str, Any] = {
        "rank": place.rank,
        "local_rank": place.local_rank,
        "node_rank": place.node_rank,
        "host": place.hostname,
        "snapshot_source": facts.snapshot_source,
    }
    row.update({column: VERSION_FACTS[column](facts) for column in _COLUMNS})
    row["GPUs"] = _gpus(facts)
    row["gemm_ms"] = round(facts.matmul.median_s * 1000, 3)
    row["all_reduce_correct"] = facts.all_reduce.is_correct
    return row


def cluster_to_dict(report: ClusterReport) -> dict[str, Any]:
    sweep = report.sweep
    return {
        "schema": SCHEMA,
        "exit_code": report.exit_code,
        "summary": count_line(report.findings),
        "world_size": report.world_size,
        "ranks_reported": len(report.ranks),
        "backend": report.backend,
        "timeout_s": report.timeout_s,
        "findings": [encode(finding) | {"severity": finding.severity.value} for finding in report.findings],
        "ranks": [_rank_row(facts) for facts in report.ranks],
        "sweep": None if sweep is None else encode(sweep),
    }


def render_cluster_json(report: ClusterReport) -> str:
    return json.dumps(cluster_to_dict(report), indent=2, allow_nan=False)


def render_cluster_terminal(report: ClusterReport, file: TextIO) -> None:
    from envcheck.cli.output import console as make_console

    console = make_console(file)
    if not console.is_terminal:  # a log file or a pipe: the rank table's columns need more than 80
        console.width = 140
    console.print(
        Text(f"envcheck cluster: {len(report.ranks)} of {report.world_size} ranks reported, {report.backend}", "bold")
    )
    if report.ranks:
        console.print(_ranks_table(report))
    for finding in report.findings:
        mark, style = SEVERITY_MARKS[finding.severity]
        console.print(Text.assemble((f"{mark} ", style), visible(finding.title)))
        if finding.detail and finding.severity is not Severity.OK:
            console.print(Text("    " + visible(finding.detail).replace("\n", "\n    "), style="dim"))
        if finding.fix and finding.severity in (Severity.WARN, Severity.FAIL):
            console.print(Text.assemble(("    fix: ", "bold"), visible(finding.fix)))
    if report.sweep is not None:
        console.print(_sweep_table(report))
    console.print(Text(count_line(report.findings), style="bold"))


def _ranks_table(report: ClusterReport) -> Table:
    """A row per rank; a cell whose value is not the same on every rank that has one is marked ≠ in red."""
    rows = [_rank_row(facts) for facts in report.ranks]
    differing = {column for column in _COLUMNS if len(differences(report.ranks, VERSION_FACTS[column])) > 1}
    gpu_values = {row["GPUs"] for row in rows if row["GPUs"] is not None}
    if len(gpu_values) > 1:
        differing.add("GPUs")
    table = Table(show_edge=False, pad_edge=False)
    headers = ("rank", "node.local", "host", *_COLUMNS, "GPUs", "GEMM ms")
    for header in headers:
        table.add_column(header)
    for row in rows:
        cells = [Text(str(row["rank"])), Text(f"{row['node_rank']}.{row['local_rank']}"), Text(visible(row["host"]))]
        for column in (*_COLUMNS, "GPUs"):
            value = row[column]
            text = "-" if value is None else visible(str(value))
            cells.append(Text(f"{text} ≠", "bold red") if column in differing and value is not None else Text(text))
        cells.append(Text(f"{row['gemm_ms']:.2f}"))
        table.add_row(*cells)
    return table


def _sweep_table(report: ClusterReport) -> Table:
    assert report.sweep is not None
    table = Table(title=f"collectives over {report.sweep.backend} on {report.sweep.device}", show_edge=False)
    for header in ("collective", "size", "time ms", "algbw GB/s", "busbw GB/s"):
        table.add_column(header, justify="right")
    for row in report.sweep.rows:
        table.add_row(
            row.collective,
            format_size(row.size_bytes),
            f"{row.median_s * 1000:.3f}",
            f"{row.algbw_gb_s:.3f}",
            f"{row.busbw_gb_s:.3f}",
        )
    return table
