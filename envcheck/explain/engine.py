"""From an error text and a Snapshot to an ExplainReport: find the signatures, let each one's judge pick a cause,
fall back on the checks named by the causes, and say the candidate causes in order when nothing decides."""

from __future__ import annotations

from envcheck.explain.context import Context
from envcheck.explain.judges import all_judges
from envcheck.explain.match import Match, find_signatures
from envcheck.explain.model import ExplainReport, Explanation, Verdict
from envcheck.knowledge.model import Knowledge
from envcheck.knowledge.signatures import SignatureTable
from envcheck.snapshot import Snapshot


def by_checks(context: Context) -> Verdict:
    """The first cause (in the profile's order) one of whose checks warns or fails on the Snapshot."""
    for cause in context.match.signature.causes:
        for check_id in cause.checks:
            problem = context.problem(check_id)
            if problem is not None:
                return Verdict(cause.id, (f"{check_id}: {problem.title}",), problem.fix, (), problem.evidence)
    return Verdict()


def judge_match(context: Context) -> Verdict:
    signature = context.match.signature
    judge = all_judges().get(signature.id)
    verdict = judge(context) if judge is not None else Verdict()
    if verdict.cause is None:
        fallback = by_checks(context)
        if fallback.cause is not None:
            verdict = Verdict(
                fallback.cause,
                (*verdict.because, *fallback.because),
                fallback.fix or verdict.fix,
                verdict.decoded,
                (*verdict.evidence, *fallback.evidence),
            )
    if verdict.cause is None and len(signature.causes) == 1:
        # one known cause: naming it is what the threads established, not a guess
        verdict = Verdict(signature.causes[0].id, verdict.because, verdict.fix, verdict.decoded, verdict.evidence)
    return verdict


def explain_match(context: Context) -> Explanation:
    signature = context.match.signature
    verdict = judge_match(context)
    cause = signature.cause(verdict.cause) if verdict.cause is not None else None
    ordered = (cause, *(c for c in signature.causes if c is not cause)) if cause else signature.causes
    fix = verdict.fix or (cause.fix if cause else " / ".join(f"({i}) {c.fix}" for i, c in enumerate(ordered, 1)))
    return Explanation(
        signature=signature.id,
        kind=signature.kind,
        title=signature.title,
        line_number=context.match.line_number,
        quoted_line=context.match.quoted_line,
        occurrences=context.match.occurrences,
        cause=cause,
        because=tuple(dict.fromkeys(line for line in verdict.because if line)),
        fix=fix,
        is_fix_specific=verdict.fix is not None,
        candidates=tuple(ordered),
        decoded=verdict.decoded,
        evidence=tuple(dict.fromkeys(verdict.evidence)),
        links=signature.links,
    )


def explain_text(
    text: str,
    snapshot: Snapshot,
    knowledge: Knowledge | None,
    table: SignatureTable,
    *,
    input_name: str = "standard input",
    snapshot_source: str | None = None,
) -> ExplainReport:
    """Every signature in `text`, each judged against `snapshot`."""
    matches = find_signatures(text, table)
    return report_of(matches, text, snapshot, knowledge, table, input_name, snapshot_source)


def report_of(
    matches: tuple[Match, ...],
    text: str,
    snapshot: Snapshot,
    knowledge: Knowledge | None,
    table: SignatureTable,
    input_name: str,
    snapshot_source: str | None,
) -> ExplainReport:
    explanations = tuple(explain_match(Context(match, snapshot, knowledge, table, matches)) for match in matches)
    return ExplainReport(
        explanations=explanations,
        input_name=input_name,
        input_bytes=len(text.encode("utf-8", "replace")),
        input_lines=text.count("\n") + (1 if text and not text.endswith("\n") else 0),
        snapshot_source=snapshot_source or snapshot.source,
    )


def no_snapshot(reason: str, created_at: str = "") -> Snapshot:
    """A Snapshot with no section collected (`--no-probe`, or text nothing matched): the judges then go by the text."""
    from envcheck import __version__
    from envcheck.facts.common import Unavailable

    missing = Unavailable(reason, "run without --no-probe on the machine that failed, or give --from FILE")
    return Snapshot(
        envcheck_version=__version__,
        created_at=created_at,
        source="none",
        is_redacted=True,
        probes=(),
        system=missing,
        cpu=missing,
        memory=missing,
        storage=missing,
        python=missing,
        environment=missing,
        framework=missing,
        gpu=missing,
    )
