"""The cluster report: a row per rank with its node, host, GPU, versions and timings (cells that differ between
ranks marked), the cross-node findings, doctor's findings per node, and the bandwidth sweep with its re-runs; as
terminal text, Markdown, or JSON (schema envcheck.cluster/1, docs/json.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from rich.table import Table
from rich.text import Text

from envcheck.cluster.bandwidth import format_size
from envcheck.cluster.consistency import VERSION_FACTS
from envcheck.cluster.fabric import gpu_of, node_snapshots, share
from envcheck.cluster.facts import ClusterReport, NodeChecks, RankFacts
from envcheck.cluster.nccl_log import transport_kinds
from envcheck.codec import encode
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Finding, Severity
from envcheck.render.markdown import MARKDOWN_MARKS, markdown_table
from envcheck.render.summary import count_line
from envcheck.render.terminal import SEVERITY_MARKS
from envcheck.render.values import code_span, visible

SCHEMA = "envcheck.cluster/1"
_COLUMNS = ("Python", "torch", "torch CUDA", "cuDNN", "NCCL", "NVIDIA driver")
# the columns compared across ranks: a value not the same on every rank that has one is marked
_COMPARED = (*_COLUMNS, "GPUs", "NCCL network")


def _gpus(facts: RankFacts) -> str | None:
    gpu = facts.snapshot.gpu
    if not isinstance(gpu, GpuFacts):
        return None
    if not gpu.gpus:
        return "none"
    names = [str(device.name) for device in gpu.gpus]
    return ", ".join(f"{name} x{names.count(name)}" for name in sorted(set(names)))


def _rank_row(facts: RankFacts, node: RankFacts | None) -> dict[str, Any]:
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
    device = gpu_of(facts, node) if node else None
    row["gpu_index"] = device.index if device else None
    row["gpu_uuid"] = facts.matmul.gpu_uuid
    row["device"] = facts.matmul.device
    row["gemm_ms"] = round(facts.matmul.median_s * 1000, 3)
    row["copy_gb_s"] = round(facts.matmul.copy_gb_s, 3)
    row["gpu_telemetry"] = encode(facts.matmul.telemetry)
    row["all_reduce_correct"] = facts.all_reduce.is_correct
    transport = facts.transport
    row["NCCL network"] = transport.network if transport else None
    row["nccl_transport"] = None if transport is None else encode(transport) | {"kinds": transport_kinds(transport)}
    return row


def _rows(report: ClusterReport) -> list[dict[str, Any]]:
    nodes = node_snapshots(report.ranks)
    return [_rank_row(facts, nodes.get(facts.place.node_rank)) for facts in report.ranks]


# the Snapshot section each compared column is read from: a section the rank did not collect (local ranks other than
# 0 skip the host's sections; a probe that failed) shows NOT_PROBED, a fact its collected section lacks (no NVIDIA
# driver, a CPU-only torch, no cuDNN) shows ABSENT; the JSON keeps null for both
_SECTION_OF = {
    "Python": "python",
    "torch": "framework",
    "torch CUDA": "framework",
    "cuDNN": "framework",
    "NCCL": "framework",
    "NVIDIA driver": "gpu",
    "GPUs": "gpu",
}
NOT_PROBED = "not probed"
ABSENT = "none"


def _empty_cell(facts: RankFacts, column: str) -> str:
    """What a compared column with no value says: this rank did not collect it, or the fact does not exist."""
    section = _SECTION_OF.get(column)
    if section is not None and isinstance(getattr(facts.snapshot, section), Unavailable):
        return NOT_PROBED
    return ABSENT


def _differing(rows: Sequence[dict[str, Any]]) -> set[str]:
    return {column for column in _COMPARED if len({row[column] for row in rows if row[column] is not None}) > 1}


def _shown(report: ClusterReport, rows: Sequence[dict[str, Any]]) -> set[str]:
    """The compared columns the table shows: those that differ, and those some rank has a value for while another
    has none (a node without a driver is not "the same on every rank"); a rank that did not probe is left out."""
    absent = {
        column
        for column in _COMPARED
        for row, facts in zip(rows, report.ranks, strict=True)
        if row[column] is None and _empty_cell(facts, column) == ABSENT
    }
    present = {column for column in _COMPARED if any(row[column] is not None for row in rows)}
    return _differing(rows) | (absent & present)


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return dict(encode(finding)) | {"severity": finding.severity.value}


def cluster_to_dict(report: ClusterReport) -> dict[str, Any]:
    sweep = report.sweep
    return {
        "schema": SCHEMA,
        "exit_code": report.exit_code,
        "summary": count_line(_every_finding(report)),
        "world_size": report.world_size,
        "ranks_reported": len(report.ranks),
        "backend": report.backend,
        "timeout_s": report.timeout_s,
        "findings": [_finding_dict(finding) for finding in report.findings],
        "ranks": _rows(report),
        "differing": sorted(_differing(_rows(report))),
        "nodes": [
            {
                "node_rank": node.node_rank,
                "host": node.hostname,
                "rank": node.rank,
                "summary": count_line(node.findings),
                "findings": [_finding_dict(finding) for finding in node.findings],
            }
            for node in report.nodes
        ],
        "sweep": None if sweep is None else encode(sweep),
    }


def render_cluster_json(report: ClusterReport) -> str:
    return json.dumps(cluster_to_dict(report), indent=2, allow_nan=False)


def _headline(report: ClusterReport) -> str:
    nodes = len({facts.place.node_rank for facts in report.ranks})
    reported = f"{len(report.ranks)} of {report.world_size} ranks reported on {nodes} node(s)"
    return f"envcheck cluster: {reported}, {report.backend}"


def render_cluster_terminal(report: ClusterReport, file: TextIO) -> None:
    from envcheck.cli.output import console as make_console

    console = make_console(file)
    if not console.is_terminal:  # a log file or a pipe: the rank table's columns need more than 80
        console.width = 160
    console.print(Text(_headline(report), "bold"))
    if report.ranks:
        console.print(Text(_shared_line(_rows(report), _shown(report, _rows(report)))))
        console.print(_ranks_table(report))
    for finding in report.findings:
        _print_finding(console, finding, "")
    for node in report.nodes:
        _print_node(console, node)
    if report.sweep is not None:
        console.print(_sweep_table(report))
    console.print(Text(count_line(_every_finding(report)), style="bold"))


def _every_finding(report: ClusterReport) -> tuple[Finding, ...]:
    return (*report.findings, *(finding for node in report.nodes for finding in node.findings))


def _print_finding(console: Any, finding: Finding, indent: str) -> None:
    mark, style = SEVERITY_MARKS[finding.severity]
    console.print(Text.assemble(indent, (f"{mark} ", style), visible(finding.title)))
    if finding.detail and finding.severity is not Severity.OK:
        console.print(Text(indent + "    " + visible(finding.detail).replace("\n", "\n    " + indent), style="dim"))
    if finding.fix and finding.severity in (Severity.WARN, Severity.FAIL):
        console.print(Text.assemble(indent, ("    fix: ", "bold"), visible(finding.fix)))


def _print_node(console: Any, node: NodeChecks) -> None:
    """doctor on one node: its counts, then what is not ok (passed and skipped checks are in --json)."""
    console.print(
        Text(
            f"node {node.node_rank} ({visible(node.hostname)}), doctor on rank {node.rank}: {count_line(node.findings)}"
        )
    )
    for finding in node.findings:
        if finding.severity in (Severity.INFO, Severity.WARN, Severity.FAIL):
            _print_finding(console, finding, "  ")


def _gpu_cell(row: dict[str, Any]) -> str:
    """The GPU's index in its node's snapshot (its UUID is in the JSON and in a straggler's finding); "?" for a GPU
    its node's snapshot does not list, "none" for a rank that ran on no GPU."""
    if row["gpu_index"] is not None:
        return str(row["gpu_index"])
    return "?" if row["gpu_uuid"] else ABSENT


def _shared_line(rows: Sequence[dict[str, Any]], differing: set[str]) -> str:
    """The compared columns every rank agrees on, in one line above the table: the table keeps what differs."""
    agreed = []
    for column in _COMPARED:
        values = {row[column] for row in rows if row[column] is not None}
        if column not in differing and values:
            agreed.append(f"{column} {next(iter(values))}")
    return "the same on every rank: " + (", ".join(agreed) or "nothing compared")


def _table_columns(differing: set[str]) -> list[str]:
    return ["rank", "node.local", "host", "GPU", *(c for c in _COMPARED if c in differing), "GEMM ms", "copy GB/s"]


def _cells(row: dict[str, Any], facts: RankFacts, columns: Sequence[str], mark: Any) -> list[Any]:
    """A row's cells for COLUMNS; MARK(text) renders a compared value that differs between ranks."""
    fixed = {
        "rank": str(row["rank"]),
        "node.local": f"{row['node_rank']}.{row['local_rank']}",
        "host": visible(row["host"]),
        "GPU": _gpu_cell(row),
        "GEMM ms": f"{row['gemm_ms']:.2f}",
        "copy GB/s": f"{row['copy_gb_s']:.1f}",
    }
    return [
        fixed[column]
        if column in fixed
        else (_empty_cell(facts, column) if row[column] is None else mark(visible(str(row[column]))))
        for column in columns
    ]


def _ranks_table(report: ClusterReport) -> Table:
    """A row per rank, in node order; the compared columns that differ between ranks, their values marked ≠."""
    rows = _rows(report)
    columns = _table_columns(_shown(report, rows))
    table = Table(show_edge=False, pad_edge=False)
    for header in columns:
        table.add_column(header)
    for row, facts in zip(rows, report.ranks, strict=True):
        table.add_row(*_cells(row, facts, columns, lambda text: Text(f"{text} ≠", "bold red")))
    return table


def _sweep_table(report: ClusterReport) -> Table:
    sweep = report.sweep
    assert sweep is not None
    table = Table(title=f"collectives over {sweep.backend} on {sweep.device}", show_edge=False)
    for header in _sweep_header(report):
        table.add_column(header, justify="right")
    for cells in _sweep_cells(report):
        table.add_row(*cells[: len(table.columns)])
    return table


def _sweep_header(report: ClusterReport) -> list[str]:
    """The sweep's columns; "% expected" only where the fabric has an expectation."""
    header = ["collective", "size", "time ms", "algbw GB/s", "busbw GB/s"]
    return [*header, "% expected"] if report.sweep and report.sweep.expected else header


def _percent(value: float) -> str:
    return "<1%" if 0 < value < 0.005 else f"{value:.0%}"


def _sweep_cells(report: ClusterReport) -> list[list[str]]:
    sweep = report.sweep
    assert sweep is not None
    expected = sweep.expected
    cells = []
    for row in sweep.rows:
        percent = _percent(share(row.busbw_gb_s, expected)) if expected and row.collective == "all_reduce" else ""
        cells.append([
            row.collective, format_size(row.size_bytes), f"{row.median_s * 1000:.3f}", f"{row.algbw_gb_s:.3f}",
            f"{row.busbw_gb_s:.3f}", percent,
        ])  # fmt: skip
    largest = next((row for row in reversed(sweep.rows) if row.collective == "all_reduce"), None)
    for rerun in sweep.reruns:
        busbw = "failed" if rerun.busbw_gb_s is None else f"{rerun.busbw_gb_s:.3f}"
        percent = _percent(share(rerun.busbw_gb_s, expected)) if expected and rerun.busbw_gb_s is not None else ""
        size = format_size(largest.size_bytes) if largest else ""
        cells.append([f"all_reduce, {rerun.label}", size, "", "", busbw, percent])
    return cells


def render_cluster_markdown(report: ClusterReport) -> str:
    """The same report for an issue or a wiki: the rank table (differing cells in bold with ≠), the findings, each
    node's doctor findings, the sweep."""
    lines = [f"**{_headline(report)}**", ""]
    rows = _rows(report)
    differing = _shown(report, rows)
    if rows:
        columns = _table_columns(differing)
        lines += [_shared_line(rows, differing), ""]
        lines += [
            *markdown_table(
                columns,
                [
                    _cells(row, facts, columns, lambda text: f"**{text} ≠**")
                    for row, facts in zip(rows, report.ranks, strict=True)
                ],
            ),
            "",
        ]
    lines += [_markdown_finding(finding) for finding in report.findings]
    for node in report.nodes:
        lines += ["", f"**node {node.node_rank} ({visible(node.hostname)})**, doctor on rank {node.rank}: "
                  f"{count_line(node.findings)}"]  # fmt: skip
        lines += [
            "  " + _markdown_finding(finding)
            for finding in node.findings
            if finding.severity in (Severity.INFO, Severity.WARN, Severity.FAIL)
        ]
    if report.sweep is not None:
        sweep = report.sweep
        lines += ["", f"Collectives over {sweep.backend} on {visible(sweep.device)}: {visible(sweep.expectation)}", ""]
        header = _sweep_header(report)
        lines += markdown_table(header, [cells[: len(header)] for cells in _sweep_cells(report)])
    lines += ["", count_line(_every_finding(report))]
    return "\n".join(lines) + "\n"


def _markdown_finding(finding: Finding) -> str:
    line = f"- {MARKDOWN_MARKS[finding.severity]} {code_span(finding.id)} {visible(finding.title)}"
    if finding.detail and finding.severity in (Severity.WARN, Severity.FAIL, Severity.INFO):
        line += "<br>" + "<br>".join(visible(part) for part in finding.detail.splitlines())
    if finding.fix and finding.severity in (Severity.WARN, Severity.FAIL):
        line += f"<br>fix: {code_span(visible(finding.fix))}"
    return line
