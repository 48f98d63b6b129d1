"""The registry of checks: each check is a pure function of the snapshot (and knowledge) to findings.

Checks never print, probe or import hardware libraries; that keeps every rule testable on recorded
snapshots of real machines. `docs/checks.md` is generated from this registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from envcheck.finding import Finding, Severity
from envcheck.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class CheckInput:
    snapshot: Snapshot
    knowledge: Any = None  # envcheck.knowledge.Knowledge once loaded; checks that need it skip without it
    workload: Any = None  # a workload profile given with --profile


CheckFunction = Callable[[CheckInput], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    area: str  # install, cuda, gpu, system, storage, memory, workload
    summary: str  # what it checks, for docs/checks.md
    run: CheckFunction


_REGISTRY: dict[str, Check] = {}


def check(check_id: str, summary: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under a stable id; its area is the id's first part."""

    def register(function: CheckFunction) -> CheckFunction:
        if check_id in _REGISTRY:
            raise ValueError(f"check id registered twice: {check_id}")
        _REGISTRY[check_id] = Check(check_id, check_id.split(".", 1)[0], summary, function)
        return function

    return register


def all_checks() -> tuple[Check, ...]:
    # Importing the area modules registers their checks.
    from envcheck.checks import (  # noqa: F401
        companions,
        cuda,
        cuda_access,
        cuda_setup,
        extensions,
        gpu,
        gpu_health,
        install,
        install_versions,
        memory,
        network,
        storage,
        system,
        toolchain,
        workload,
    )

    return tuple(_REGISTRY.values())


def run_checks(given: CheckInput, only_areas: Iterable[str] = (), skip_ids: Iterable[str] = ()) -> tuple[Finding, ...]:
    areas, skipped = set(only_areas), set(skip_ids)
    findings: list[Finding] = []
    for registered in all_checks():
        if (areas and registered.area not in areas) or registered.id in skipped:
            continue
        findings.extend(registered.run(given))
    return tuple(findings)


def worst(findings: Iterable[Finding]) -> Severity:
    return max((finding.severity for finding in findings), key=lambda severity: severity.rank, default=Severity.OK)
