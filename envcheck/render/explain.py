"""Terminal, Markdown and JSON views of `envcheck explain`: per signature found, the line it matched, the cause
(or the candidates in order), the facts that decided, and the fix."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.text import Text

from envcheck.explain.model import ExplainReport, Explanation
from envcheck.knowledge.signatures import FailureSignature, SignatureTable
from envcheck.render.values import code_span, visible

EXPLAIN_SCHEMA = "envcheck.explain/1"
NOT_RECOGNISED = "Not recognised: no known failure signature in this text (envcheck explain does not guess)."


def _headline(report: ExplainReport) -> str:
    if not report.is_recognised:
        return NOT_RECOGNISED
    environment = sum(e.blames_environment for e in report.explanations)
    code = len(report.explanations) - environment
    parts = []
    if environment:
        parts.append(f"{environment} environment failure(s)")
    if code:
        parts.append(f"{code} bug(s) in the program, not the environment")
    return "Recognised " + " and ".join(parts)


def _cause_line(explanation: Explanation) -> str:
    if explanation.cause is not None:
        return explanation.cause.title
    return "not decided by the facts at hand; the candidates, most likely first:"


def render_explain(report: ExplainReport, console: Console, verbose: bool = False) -> None:
    header = f"{report.input_name}: {report.input_lines} line(s); facts from {report.snapshot_source}"
    console.print(Text(header, style="dim"), soft_wrap=True)  # paths stay whole, to copy
    style = "bold red" if report.exit_code else ("bold yellow" if report.is_recognised else "bold")
    console.print(Text(_headline(report), style=style))
    for explanation in report.explanations:
        console.print()
        mark = "✗" if explanation.blames_environment else "•"
        console.print(Text(f"{mark} {explanation.title}  [{explanation.signature}]", style="bold"))
        seen = f" (and {explanation.occurrences - 1} more time(s))" if explanation.occurrences > 1 else ""
        console.print(Text(f"  line {explanation.line_number}{seen}: {explanation.quoted_line}", style="dim"))
        for line in explanation.decoded:
            console.print(Text(f"  decoded: {line}"))
        console.print(Text(f"  cause: {_cause_line(explanation)}"))
        if explanation.cause is None:
            for number, cause in enumerate(explanation.candidates, 1):
                console.print(Text(f"    {number}. {cause.title}"))
                console.print(Text(f"       fix: {cause.fix}"), soft_wrap=True)
        for line in explanation.because:
            console.print(Text(f"  because: {line}"))
        if explanation.cause is not None or explanation.is_fix_specific:
            console.print(Text(f"  fix: {explanation.fix}"), soft_wrap=True)  # a wrapped command breaks copy-paste
        if verbose:
            for link in explanation.links:
                console.print(Text(f"  see: {link}", style="dim"))


def render_explain_markdown(report: ExplainReport) -> str:
    lines = [f"**{_headline(report)}**", "", f"_{report.input_name}, {report.input_lines} line(s); facts from "
             f"{report.snapshot_source}_", ""]  # fmt: skip
    for explanation in report.explanations:
        lines.append(f"### {explanation.title} ({code_span(explanation.signature)})")
        lines.append("")
        lines.append(f"- line {explanation.line_number}: {code_span(explanation.quoted_line)}")
        lines += [f"- decoded: {line}" for line in explanation.decoded]
        lines.append(f"- cause: {_cause_line(explanation)}")
        if explanation.cause is None:
            for number, cause in enumerate(explanation.candidates, 1):
                lines.append(f"  {number}. {cause.title}. Fix: {cause.fix}")
        lines += [f"- because: {line}" for line in explanation.because]
        if explanation.cause is not None or explanation.is_fix_specific:
            lines.append(f"- fix: {explanation.fix}")
        lines.append(f"- see: {', '.join(explanation.links)}")
        lines.append("")
    return visible("\n".join(lines).rstrip("\n") + "\n")


def explain_to_dict(report: ExplainReport) -> dict[str, Any]:
    return {
        "schema": EXPLAIN_SCHEMA,
        "exit_code": report.exit_code,
        "recognised": report.is_recognised,
        "input": {"name": report.input_name, "bytes": report.input_bytes, "lines": report.input_lines},
        "snapshot_source": report.snapshot_source,
        "findings": [_explanation(explanation) for explanation in report.explanations],
    }


def _explanation(explanation: Explanation) -> dict[str, Any]:
    return {
        "signature": explanation.signature,
        "kind": explanation.kind,
        "blames_environment": explanation.blames_environment,
        "title": explanation.title,
        "line": explanation.line_number,
        "quoted_line": explanation.quoted_line,
        "occurrences": explanation.occurrences,
        "cause": explanation.cause.id if explanation.cause else None,
        "cause_title": explanation.cause.title if explanation.cause else None,
        "because": list(explanation.because),
        "fix": explanation.fix,
        "is_fix_specific": explanation.is_fix_specific,
        "candidates": [{"id": cause.id, "title": cause.title, "fix": cause.fix} for cause in explanation.candidates],
        "decoded": list(explanation.decoded),
        "evidence": list(explanation.evidence),
        "links": list(explanation.links),
    }


def render_explain_json(report: ExplainReport) -> str:
    return json.dumps(explain_to_dict(report), indent=2, allow_nan=False)


def render_signature_catalog(table: SignatureTable) -> str:
    """docs/explain.md's list of every signature, from the profile itself (a test keeps the page equal to it)."""
    lines: list[str] = []
    for kind, heading in (("environment", "Environment failures (exit 1)"), ("code", "Bugs in the program (exit 0)")):
        lines += [f"### {heading}", ""]
        for signature in sorted((s for s in table.signatures if s.kind == kind), key=lambda s: s.rank):
            lines.append(f"#### {signature.title} ({code_span(signature.id)})")
            lines.append("")
            patterns = ", ".join(code_span(pattern) for pattern in _pattern_texts(signature))
            lines.append(f"- matches: {patterns}")
            if signature.absent:
                absent = ", ".join(code_span(pattern) for pattern in _pattern_texts(signature, absent=True))
                lines.append(f"- not when the text also has: {absent}")
            lines.append(f"- facts read: {', '.join(code_span(fact) for fact in signature.facts) or 'the text alone'}")
            lines.append("- causes, most likely first:")
            for number, cause in enumerate(signature.causes, 1):
                checks = f" Confirmed by {', '.join(code_span(c) for c in cause.checks)}." if cause.checks else ""
                blame = " (a bug in the program)" if cause.blames == "code" else ""
                lines.append(f"  {number}. {code_span(cause.id)}{blame}: {cause.title}. Fix: {cause.fix}{checks}")
            lines.append(f"- sources: {', '.join(signature.links)}")
            lines.append("")
    codes = [f"| {c.code} | {code_span(c.name)} | {c.meaning} |" for c in table.error_codes]
    lines += ["### CUDA error codes decoded", "", "| code | name | meaning |", "|---|---|---|", *codes, ""]
    return "\n".join(lines)


def _pattern_texts(signature: FailureSignature, *, absent: bool = False) -> list[str]:
    # the profile's own spelling: the loader turned each space into \s+
    return [p.pattern.replace(r"\s+", " ") for p in (signature.absent if absent else signature.patterns)]
