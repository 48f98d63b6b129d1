"""How often `envcheck doctor --from` names the cause on real reports: the corpus of issue 11.

Runs the doctor in-process (the same loader and checks as `envcheck doctor --from FILE`) on every case in
tests/fixtures/reports/index.toml and prints the hit rate, the false alarms and a table of the misses. Usage:

    PYTHONPATH=. python benchmarks/report_corpus.py

A hit: one of the case's expected findings is a failure (or a warning, where the paste cannot show a GPU).
A healthy case is a hit when nothing fails; a failure on it is a false alarm. A file the loader refuses
(`nvidia-smi -q` text, until item 4) is a miss, never an error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.input_files import load_toml_file

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reports"


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    source: str
    year: int
    project: str
    format: str
    established_cause: str
    is_healthy: bool
    expected: tuple[str, ...]
    shows_gpu: bool
    known_miss: str | None
    notes: str


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    is_hit: bool
    is_false_alarm: bool
    said: str  # what the doctor reported: its failures and warnings, or why the file was not read


def read_index(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """The rows of index.toml as written."""
    rows: list[dict[str, Any]] = load_toml_file(corpus / "index.toml")["case"]
    return rows


def load_cases(corpus: Path = CORPUS) -> tuple[Case, ...]:
    return tuple(
        Case(
            file=row["file"],
            source=row["source"],
            year=row["year"],
            project=row["project"],
            format=row["format"],
            established_cause=row["established_cause"],
            is_healthy=row["is_healthy"],
            expected=tuple(row["expected"]),
            shows_gpu=row["shows_gpu"],
            known_miss=row.get("known_miss"),
            notes=row.get("notes", ""),
        )
        for row in read_index(corpus)
    )


def doctor_findings(path: Path) -> tuple[dict[str, str], str]:
    """{finding id: severity} of `envcheck doctor --from path`, and a one-line summary of what it said."""
    from envcheck.checks.registry import CheckInput, run_checks
    from envcheck.knowledge import load_knowledge
    from envcheck.loaders import InputError, load_snapshot_file

    try:
        snapshot = load_snapshot_file(path)
    except InputError as error:
        return {}, f"not read: {str(error).removeprefix(f'{path}: ')}"
    findings = run_checks(CheckInput(snapshot, knowledge=load_knowledge(), workload=None), (), ())
    severities = {finding.id: finding.severity.value for finding in findings}
    loud = [f"{f.severity.value} {f.id}" for f in findings if f.severity.value in ("fail", "warn")]
    return severities, "; ".join(loud) or "no failure, no warning"


def evaluate(case: Case, corpus: Path = CORPUS) -> Outcome:
    severities, said = doctor_findings(corpus / case.file)
    failures = {finding_id for finding_id, severity in severities.items() if severity == "fail"}
    if case.is_healthy:
        # A healthy file the doctor cannot read is a miss too: it said nothing about the machine.
        is_read = bool(severities)
        return Outcome(case, is_hit=is_read and not failures, is_false_alarm=bool(failures), said=said)
    naming = {"fail"} if case.shows_gpu else {"fail", "warn"}
    is_hit = any(severities.get(finding_id) in naming for finding_id in case.expected)
    return Outcome(case, is_hit=is_hit, is_false_alarm=False, said=said)


def report(outcomes: Sequence[Outcome]) -> str:
    unhealthy = [outcome for outcome in outcomes if not outcome.case.is_healthy]
    healthy = [outcome for outcome in outcomes if outcome.case.is_healthy]
    false_alarms = [outcome for outcome in healthy if outcome.is_false_alarm]
    formats = sorted({outcome.case.format for outcome in outcomes})
    years = sorted({outcome.case.year for outcome in outcomes})
    named = sum(outcome.is_hit for outcome in unhealthy)
    lines = [
        f"cases: {len(outcomes)} ({len(unhealthy)} with an environment cause, {len(healthy)} healthy;"
        f" formats: {', '.join(formats)}; years {years[0]}-{years[-1]})"
        if outcomes
        else "cases: 0",
        f"hit rate (established cause named): {named}/{len(unhealthy)} = {100 * named / max(len(unhealthy), 1):.0f}%",
        f"false alarms (a failure on a healthy environment): {len(false_alarms)}/{len(healthy)}",
        f"healthy environments read and left alone: {sum(o.is_hit for o in healthy)}/{len(healthy)}",
    ]
    misses = [outcome for outcome in outcomes if not outcome.is_hit]
    if misses:
        lines += ["", "misses:", f"{'case':<56} {'expected':<34} doctor said"]
        for outcome in misses:
            expected = ", ".join(outcome.case.expected) or "no failure"
            lines.append(f"{outcome.case.file:<56} {expected:<34} {outcome.said}")
    return "\n".join(lines)


def main() -> int:
    outcomes = [evaluate(case) for case in load_cases()]
    print(report(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
