"""`envcheck explain`: an error message, a log or a pasted issue, matched against the failure signatures of
profiles/failure_signatures.toml and judged against a Snapshot. Pure: no I/O, no printing."""

from __future__ import annotations

from envcheck.explain.engine import explain_text, report_of
from envcheck.explain.match import Match, find_signatures
from envcheck.explain.model import ExplainReport, Explanation, Verdict

__all__ = ["ExplainReport", "Explanation", "Match", "Verdict", "explain_text", "find_signatures", "report_of"]
