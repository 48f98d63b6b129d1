"""How often `envcheck explain` names the signature (and, where the text alone decides it, the cause) of real errors
posted in public issues whose thread established the cause: the corpus under tests/fixtures/explain/.

Runs explain in-process, judged from the text alone (as `envcheck explain FILE --no-probe`), on every case of
tests/fixtures/explain/index.toml and prints the hit rate, the cause agreement and the false alarms. Usage:

    PYTHONPATH=. python benchmarks/explain_corpus.py

A hit: the expected signature is among those found. Cause agreement: for cases whose index names a cause, explain
named that cause. A false alarm: an environment failure reported (exit 1) for a case whose established cause is a
bug in the program (`blames = "code"`, or a code signature expected), or an environment signature other than the
expected one. A false alarm the index explains (`known_false_alarm`) does not fail the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.input_files import load_toml_file

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "explain"


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    source: str
    established: str
    signature: str
    cause: str | None
    is_code_bug: bool  # the thread found a bug in the program: reporting an environment failure is a false alarm
    known_false_alarm: str | None  # why explain cannot avoid it today (the test expects it, strictly)


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    found: tuple[str, ...]  # signature ids, in order
    cause: str | None  # the cause named for the expected signature
    blames_environment: bool  # the report's exit code would be 1

    @property
    def is_hit(self) -> bool:
        return self.case.signature in self.found

    @property
    def is_cause_agreed(self) -> bool | None:
        return None if self.case.cause is None else self.cause == self.case.cause

    @property
    def is_false_alarm(self) -> bool:
        expected_code = self.case.is_code_bug or self.case.signature.startswith("code.")
        others = [s for s in self.found if s != self.case.signature and not s.startswith("code.")]
        return (expected_code and self.blames_environment) or bool(others)


def read_index() -> list[dict[str, Any]]:
    rows = load_toml_file(CORPUS / "index.toml")["case"]
    assert isinstance(rows, list)
    return rows


def load_cases() -> list[Case]:
    return [
        Case(
            row["file"],
            row["source"],
            row["established"],
            row["signature"],
            row.get("cause"),
            row.get("blames") == "code",
            row.get("known_false_alarm"),
        )
        for row in read_index()
    ]


def evaluate(case: Case) -> Outcome:
    from envcheck.explain import explain_text
    from envcheck.explain.engine import no_snapshot
    from envcheck.knowledge import load_knowledge
    from envcheck.knowledge.signatures import load_signatures

    text = (CORPUS / case.file).read_text(encoding="utf-8")
    report = explain_text(text, no_snapshot("--no-probe"), load_knowledge(), load_signatures())
    mine = next((e for e in report.explanations if e.signature == case.signature), None)
    return Outcome(
        case,
        tuple(e.signature for e in report.explanations),
        mine.cause.id if mine and mine.cause else None,
        report.exit_code == 1,
    )


def main() -> int:
    outcomes = [evaluate(case) for case in load_cases()]
    hits = sum(outcome.is_hit for outcome in outcomes)
    with_cause = [outcome for outcome in outcomes if outcome.case.cause is not None]
    agreed = sum(bool(outcome.is_cause_agreed) for outcome in with_cause)
    alarms = [outcome for outcome in outcomes if outcome.is_false_alarm]
    width = max(len(outcome.case.file) for outcome in outcomes)
    for outcome in outcomes:
        mark = "hit " if outcome.is_hit else "MISS"
        cause = f" cause {outcome.cause or '-'}" + ("" if outcome.is_cause_agreed is not False else " (expected)")
        print(f"{mark} {outcome.case.file:<{width}}  {', '.join(outcome.found) or 'not recognised'}{cause}")
    print()
    print(f"signature named: {hits}/{len(outcomes)} ({hits / len(outcomes):.0%})")
    print(f"cause named from the text alone, where the text decides it: {agreed}/{len(with_cause)}")
    print(f"false alarms: {len(alarms)}" + "".join(f"\n  {o.case.file}: {', '.join(o.found)}" for o in alarms))
    unexpected = [o for o in alarms if not o.case.known_false_alarm]
    return 0 if hits == len(outcomes) and not unexpected and agreed == len(with_cause) else 1


if __name__ == "__main__":
    raise SystemExit(main())
