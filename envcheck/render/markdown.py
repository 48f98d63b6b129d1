"""Markdown views of a snapshot and a diagnosis, for pasting into a bug report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envcheck.facts.common import Unavailable
from envcheck.finding import AREA_TITLES, Finding, Severity
from envcheck.render.gpu_rows import GPU_COLUMNS, gpu_row, gpu_summary, gpu_unknowns
from envcheck.render.summary import SECTION_TITLES, count_line, findings_by_area, headline
from envcheck.render.values import code_span, format_value, label, record_fields, scalar_fields, visible

_MARKS = {Severity.OK: "✅", Severity.INFO: "ℹ️", Severity.WARN: "⚠️", Severity.FAIL: "❌", Severity.SKIP: "⏭️"}


def _escape(text: str) -> str:
    return visible(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]
    return lines


def _cell(name: str, value: Any) -> str:
    if hasattr(value, "passed"):
        return "passed" if value.passed else f"FAILED: {value.error}"
    return format_value(name, value)


def render_info_markdown(snapshot: Any) -> str:
    lines = [f"**{headline(snapshot)}**", ""]
    for section, title in SECTION_TITLES.items():
        facts = getattr(snapshot, section)
        lines.append(f"### {title}")
        if isinstance(facts, Unavailable):
            lines += [f"_unavailable: {facts.reason}_", ""]
            continue
        if section == "gpu":
            lines += [gpu_summary(facts), ""]
            if facts.gpus:
                rows = [gpu_row(gpu) for gpu in facts.gpus]
                lines += _table(GPU_COLUMNS, [row.cells for row in rows])
                unknowns = gpu_unknowns(rows)
                if unknowns:
                    lines += ["", _escape(unknowns)]
            lines.append("")
            continue
        lines += _table(("", ""), [(label(n), format_value(n, v)) for n, v in scalar_fields(facts)])
        for name, value in record_fields(facts):
            records = value if isinstance(value, tuple) else (value,)
            columns = [field for field, _ in scalar_fields(records[0])]
            lines += ["", f"**{label(name)}**", ""]
            lines += _table([label(c) for c in columns], [[_cell(c, getattr(r, c)) for c in columns] for r in records])
        lines.append("")
    failed = [run for run in snapshot.probes if run.status != "ok"]
    if failed:
        lines += ["### Probes not collected", ""]
        lines += _table(("probe", "status", "error"), [(run.name, run.status, run.error or "") for run in failed])
    return "\n".join(lines) + "\n"


def render_doctor_markdown(snapshot: Any, findings: Sequence[Finding], verbose: bool = False) -> str:
    lines = [f"**{headline(snapshot)}**", ""]
    for area, area_findings in findings_by_area(findings).items():
        worst = max((finding.severity for finding in area_findings), key=lambda severity: severity.rank)
        lines.append(f"- {_MARKS[worst]} **{AREA_TITLES.get(area, area)}**")
        for finding in area_findings:
            if finding.severity in (Severity.OK, Severity.SKIP) and not verbose:
                continue
            lines.append(f"  - {_MARKS[finding.severity]} {code_span(finding.id)} {visible(finding.title)}")
            if finding.fix and finding.severity is not Severity.OK:
                lines.append(f"    - fix: {code_span(visible(finding.fix))}")
    lines += ["", count_line(findings)]
    return "\n".join(lines) + "\n"


# for the other Markdown reports (render/cluster.py): one set of marks, one table writer
MARKDOWN_MARKS = _MARKS
markdown_table = _table
