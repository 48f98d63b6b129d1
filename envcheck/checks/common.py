"""Small helpers the check modules share: byte formatting and the skip finding for missing facts."""

from __future__ import annotations

from envcheck.facts.common import Unavailable
from envcheck.finding import Finding, Severity
from envcheck.units import GIB, MIB, format_bytes

__all__ = ["GIB", "MIB", "format_bytes", "skipped"]


def skipped(check_id: str, what: str, missing: Unavailable) -> Finding:
    """The finding of a check whose input was not collected: say what was not checked, and why."""
    return Finding(check_id, Severity.SKIP, f"{what} not checked", detail=missing.reason, fix=missing.fix)
