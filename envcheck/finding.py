"""A finding: what one check concluded, with the measured values and a fix a person can paste.

Part of the model (stdlib only), so renderers can show findings without importing the checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

# The areas findings are grouped in, in the order reports show them; a check's id starts with its area.
AREA_TITLES = {
    "install": "PyTorch install",
    "cuda": "CUDA",
    "toolchain": "Build toolchain",
    "gpu": "GPU health",
    "system": "System",
    "memory": "Memory",
    "storage": "Storage",
    "workload": "Workload",
    "bench": "Training benchmark",
}


class Severity(str, Enum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # the check could not run: its inputs were not collected (the detail says why)

    @property
    def rank(self) -> int:
        """Worse is higher; used to pick an area's mark and the exit code."""
        return {"ok": 0, "skip": 1, "info": 2, "warn": 3, "fail": 4}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    id: str  # stable, dotted: cuda.driver_too_old; never renamed once released
    severity: Severity
    title: str  # one line, with the numbers seen
    detail: str = ""
    fix: str | None = None  # a command or setting to paste; None when there is nothing to do
    evidence: tuple[str, ...] = ()  # the fact paths it used, e.g. storage.shm_total_bytes


def exit_code(findings: Iterable[Finding], strict: bool = False) -> int:
    """0 healthy (warnings allowed), 1 at least one failure, or a warning under --strict (docs/exit-codes.md)."""
    failing = {Severity.FAIL, Severity.WARN} if strict else {Severity.FAIL}
    return 1 if any(finding.severity in failing for finding in findings) else 0
