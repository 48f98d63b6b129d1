"""What every renderer says the same way: the one-line headline, section titles, the count line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from envcheck.facts.common import Unavailable
from envcheck.finding import AREA_TITLES, Finding, Severity
from envcheck.render.values import visible
from envcheck.units import format_bytes

SECTION_TITLES = {
    "system": "System",
    "cpu": "CPU",
    "memory": "Memory",
    "storage": "Storage",
    "python": "Python",
    "environment": "Environment",
    "network": "Network",
    "toolchain": "Build toolchain",
    "framework": "PyTorch",
    "gpu": "NVIDIA GPUs",
}


def headline(snapshot: Any) -> str:
    """host · OS · CPU · RAM · torch, from whatever was collected."""
    parts = [f"envcheck {snapshot.envcheck_version}"]
    system, cpu, memory, framework = snapshot.system, snapshot.cpu, snapshot.memory, snapshot.framework
    if not isinstance(system, Unavailable):
        distribution = system.distribution if isinstance(system.distribution, str) else system.os_name
        # an imported report names the OS but not always the host or the machine
        said = (system.hostname, distribution, system.architecture)
        parts.append(" · ".join(part for part in said if isinstance(part, str)))
    if not isinstance(cpu, Unavailable):
        parts.append(f"{cpu.usable_cpus:g}/{cpu.logical_cores} CPUs usable")
    if not isinstance(memory, Unavailable):
        parts.append(f"{format_bytes(memory.total_bytes)} RAM")
    if not isinstance(framework, Unavailable) and framework.torch is not None:
        parts.append(f"torch {framework.torch.version}")
    if snapshot.source != "live":
        parts.append(f"from {snapshot.source}")
    return visible(" · ".join(parts))


def findings_by_area(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.id.split(".", 1)[0], []).append(finding)
    order = list(AREA_TITLES)
    return dict(sorted(grouped.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def count_line(findings: Sequence[Finding]) -> str:
    """'2 failures, 3 warnings, 41 checks passed' (skipped and informational counted when present)."""
    counts = Counter(finding.severity for finding in findings)
    parts = []
    for severity, one, many in (
        (Severity.FAIL, "failure", "failures"),
        (Severity.WARN, "warning", "warnings"),
        (Severity.INFO, "note", "notes"),
        (Severity.OK, "check passed", "checks passed"),
        (Severity.SKIP, "check skipped", "checks skipped"),
    ):
        if counts[severity] or severity in (Severity.FAIL, Severity.WARN):
            parts.append(f"{counts[severity]} {one if counts[severity] == 1 else many}")
    return ", ".join(parts)
