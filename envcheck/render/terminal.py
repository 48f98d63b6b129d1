"""Terminal views of a snapshot (`envcheck info`) and of a diagnosis (`envcheck doctor`), with rich."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from envcheck.facts.common import Unavailable
from envcheck.finding import AREA_TITLES, Finding, Severity
from envcheck.render.gpu_rows import GPU_COLUMNS, gpu_row, gpu_summary, gpu_unknowns
from envcheck.render.summary import SECTION_TITLES, count_line, findings_by_area, headline
from envcheck.render.values import format_value, label, record_fields, scalar_fields, visible

# The mark and colour of each severity in every terminal report (doctor, info, cluster).
SEVERITY_MARKS = {
    Severity.OK: ("✓", "green"),
    Severity.INFO: ("i", "cyan"),
    Severity.WARN: ("!", "yellow"),
    Severity.FAIL: ("✗", "bold red"),
    Severity.SKIP: ("-", "dim"),
}
# Columns of nested records shown without -v: the rest is in -v and --json.
_COMPACT_COLUMNS = {
    "locations": ("role", "path", "filesystem", "media", "free_bytes", "total_bytes", "mount_point"),
    "packages": ("name", "version"),
    "variables": ("name", "value"),
    "devices": ("index", "name", "compute_capability", "memory_total_bytes", "smoke_test"),
    "extensions": ("name", "version", "import_error", "import_duration_s"),
    "interfaces": ("name", "kind", "is_up", "speed_mbit_s", "mtu", "driver"),
    "hca_ports": ("hca", "port", "state", "link_layer", "rate", "netdevs"),
    "nccl": ("variable", "value", "selected"),
}
# Paths are what people scan a storage table for: never squeeze them into a sliver.
_MAX_TABLE_COLUMNS = 6
_MIN_WIDTHS = {"path": 24, "name": 12, "value": 24}


def render_info(snapshot: Any, console: Console, verbose: bool = False) -> None:
    console.print(Text(headline(snapshot), style="bold"))
    is_imported = snapshot.source != "live"
    absent = [title for section, title in SECTION_TITLES.items() if isinstance(getattr(snapshot, section), Unavailable)]
    if is_imported and absent:  # an imported file holds only some sections: one line for the rest
        console.print(Text(f"not in {visible(snapshot.source)}: {', '.join(absent)}", style="dim"))
    for section, title in SECTION_TITLES.items():
        facts = getattr(snapshot, section)
        if is_imported and isinstance(facts, Unavailable):
            continue
        body = _gpu_body(facts, verbose) if section == "gpu" else _section_body(facts, verbose)
        console.print(Panel(body, title=title, title_align="left", expand=True))
    if not is_imported:
        console.print(_probe_table(snapshot, verbose))


def _section_body(facts: Any, verbose: bool) -> Any:
    if isinstance(facts, Unavailable):
        return Text(
            visible(f"unavailable: {facts.reason}" + (f"\nfix: {facts.fix}" if facts.fix else "")), style="yellow"
        )
    parts: list[Any] = [_field_grid(scalar_fields(facts))]
    for name, value in record_fields(facts):
        if not isinstance(value, tuple):  # one nested record (torch, ecc): its fields, indented
            parts += [Text(label(name), style="bold"), Padding(_section_body(value, verbose), (0, 0, 0, 2))]
        elif name in _COMPACT_COLUMNS or len(scalar_fields(value[0])) <= _MAX_TABLE_COLUMNS:
            parts += [Text(label(name), style="bold"), _record_table(name, value, verbose)]
        else:  # records too wide for a table (a GPU has ~50 fields): one indented block each
            for index, record in enumerate(value):
                parts += [
                    Text(f"{label(name)} [{index}]", style="bold"),
                    Padding(_section_body(record, verbose), (0, 0, 0, 2)),
                ]
    return Group(*parts)


def _gpu_body(facts: Any, verbose: bool) -> Any:
    """One compact row per GPU, like gpustat; -v adds every field of every GPU."""
    if isinstance(facts, Unavailable) or not facts.gpus:
        return _section_body(facts, verbose) if isinstance(facts, Unavailable) else Text(gpu_summary(facts))
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold dim")
    for column in GPU_COLUMNS:
        table.add_column(column, overflow="fold")
    rows = [gpu_row(gpu) for gpu in facts.gpus]
    for row in rows:
        table.add_row(*row.cells[:-1], Text(row.cells[-1], style="yellow" if row.flags else "green"))
    parts: list[Any] = [Text(gpu_summary(facts)), table]
    unknowns = gpu_unknowns(rows)
    if unknowns:
        parts.append(Text(visible(unknowns), style="yellow"))
    if facts.missing_fields:
        parts.append(Text(f"not in the source: {', '.join(facts.missing_fields)}", style="dim"))
    if verbose:
        parts.append(_section_body(facts, verbose))
    return Group(*parts)


def _field_grid(fields: Sequence[tuple[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in fields:
        grid.add_row(label(name), _styled(name, value))
    return grid


def _record_table(name: str, records: Sequence[Any], verbose: bool) -> Any:
    if not records:
        return Text("none")
    columns = [field for field, _ in scalar_fields(records[0])]
    nested = [field for field, _ in record_fields(records[0])]
    if not verbose and name in _COMPACT_COLUMNS:
        columns = [column for column in _COMPACT_COLUMNS[name] if column in columns + nested]
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold dim")
    for column in columns:
        table.add_column(label(column), overflow="fold", min_width=_MIN_WIDTHS.get(column))
    for record in records:
        table.add_row(*(_cell(column, getattr(record, column)) for column in columns))
    return table


def _cell(name: str, value: Any) -> Text:
    if hasattr(value, "passed"):  # a smoke test
        return Text(
            "passed" if value.passed else visible(f"FAILED: {value.error}"), style="green" if value.passed else "red"
        )
    return _styled(name, value)


def _styled(name: str, value: Any) -> Text:
    return Text(format_value(name, value), style="yellow" if isinstance(value, Unavailable) else "")


def _probe_table(snapshot: Any, verbose: bool) -> Table:
    table = Table(title="probes", title_justify="left", show_edge=False, box=None, header_style="bold dim")
    for column in ("probe", "status", "took", "error"):
        table.add_column(column, overflow="fold")
    for run in snapshot.probes:
        if run.status == "ok" and not verbose:
            continue
        style = {"ok": "green", "skipped": "dim"}.get(run.status, "red")
        table.add_row(
            run.name,
            Text(run.status, style=style),
            format_value("duration_s", run.duration_s),
            visible(run.error or ""),
        )
    if not table.rows:
        table.add_row(
            "all",
            Text("ok", style="green"),
            format_value("duration_s", max((run.duration_s for run in snapshot.probes), default=0.0)),
            "",
        )
    return table


def render_doctor(snapshot: Any, findings: Sequence[Finding], console: Console, verbose: bool = False) -> None:
    """One line per area with its worst mark, the findings that matter under it, fixes beneath."""
    console.print(Text(headline(snapshot), style="bold"))
    for area, area_findings in findings_by_area(findings).items():
        mark, style = SEVERITY_MARKS[max((f.severity for f in area_findings), key=lambda s: s.rank)]
        console.print(Text.assemble((f"[{mark}] ", style), (AREA_TITLES.get(area, area), "bold")))
        for finding in area_findings:
            if finding.severity in (Severity.OK, Severity.SKIP) and not verbose:
                continue
            finding_mark, finding_style = SEVERITY_MARKS[finding.severity]
            line = Text.assemble((f"{finding_mark} ", finding_style), visible(finding.title))
            console.print(Padding(line, (0, 0, 0, 4), expand=False))
            if finding.detail and (verbose or finding.severity is not Severity.OK):
                console.print(Padding(Text(visible(finding.detail), style="dim"), (0, 0, 0, 8), expand=False))
            if finding.fix and finding.severity in (Severity.WARN, Severity.FAIL, Severity.INFO):
                console.print(
                    Padding(Text.assemble(("fix: ", "bold"), visible(finding.fix)), (0, 0, 0, 8), expand=False)
                )
    console.print()
    console.print(Text(count_line(findings), style="bold"))
