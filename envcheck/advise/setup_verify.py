"""Whether an install does what its plan says: torch and torchvision import, their local tags are the plan's
(and each other's), a matmul and torchvision.ops.nms run on the planned device. Pure: facts in, findings out.

A CPU torch beside a CUDA torchvision imports as two packages and then fails in torchvision's compiled
operators ("operator torchvision::nms does not exist"): an install is verified only when all of it passes.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from envcheck.advise.setup_formats import commands
from envcheck.advise.setup_plan import SetupPlan
from envcheck.facts.framework import InstallFacts, ModuleImport
from envcheck.finding import Finding, Severity

MISSING_OPERATOR = "does not exist"  # torch's "operator torchvision::nms does not exist"
_MISMATCH_HINT = (
    "torchvision's compiled operators do not load into this torch: the two come from different builds "
    "(a CPU torch with a CUDA torchvision, or the reverse, or another torch release)"
)


def plan_device(plan: SetupPlan) -> str:
    """The device the plan's wheels are for: cuda, mps or cpu."""
    return plan.accelerator or "cpu"


def _tag(version: str) -> str | None:
    return version.split("+", 1)[1].lower() if "+" in version else None


def _base(version: str) -> Version | None:
    try:
        return Version(Version(version).base_version)
    except InvalidVersion:
        return None


def _running(module: ModuleImport) -> str | None:
    """The version that runs: the imported module's, else the installed distribution's."""
    return module.version or module.distribution_version


def _reinstall(plan: SetupPlan) -> str | None:
    lines = commands(plan)
    # --no-deps: only the plan's packages are replaced, not numpy and the rest of the environment
    return lines[0].replace(" install ", " install --force-reinstall --no-deps ", 1) if lines else None


def _import_finding(name: str, module: ModuleImport, plan: SetupPlan) -> Finding | None:
    if module.import_error is None:
        return None
    hint = f"; {_MISMATCH_HINT}" if MISSING_OPERATOR in module.import_error else ""
    installed = f" {module.distribution_version}" if module.distribution_version else " (not installed)"
    return Finding(
        f"setup.{name}_import", Severity.FAIL, f"import {name} fails in the target interpreter{hint}",
        detail=f"{name}{installed}: {module.import_error}", fix=_reinstall(plan), evidence=(f"install.{name}",),
    )  # fmt: skip


def _tag_findings(plan: SetupPlan, facts: InstallFacts) -> list[Finding]:
    """Each package's release and local tag against the plan's pin, and torch's tag against torchvision's."""
    findings: list[Finding] = []
    pins = dict(plan.pins)
    running: dict[str, str] = {}
    for name, module in (("torch", facts.torch), ("torchvision", facts.torchvision)):
        version = _running(module)
        if version is None or name not in pins:
            continue
        running[name] = version
        planned = dict(plan.packages)[name]
        tag = _tag(version)
        # macOS wheels (PyPI) carry no tag: only the release is compared there
        other_tag = tag is not None and plan.index_url is not None and tag != plan.variant
        if _base(version) != _base(planned) or other_tag:
            what = f"a {tag} build" if other_tag else f"release {version}"
            findings.append(Finding(
                "setup.local_tag", Severity.FAIL, f"{name} {version} is {what}; the plan installs {pins[name]}",
                fix=_reinstall(plan), evidence=(f"install.{name}.version",),
            ))  # fmt: skip
    tags = {name: _tag(version) for name, version in running.items()}
    if tags.get("torch") and tags.get("torchvision") and tags["torch"] != tags["torchvision"]:
        findings.append(Finding(
            "setup.local_tag", Severity.FAIL,
            f"torch {running['torch']} and torchvision {running['torchvision']} are different builds "
            f"({tags['torch']} and {tags['torchvision']})",
            detail=_MISMATCH_HINT, fix=_reinstall(plan), evidence=("install.torch", "install.torchvision"),
        ))  # fmt: skip
    if not findings and len(running) == 2:
        findings.append(Finding(
            "setup.local_tag", Severity.OK,
            f"torch {running['torch']} and torchvision {running['torchvision']} are the plan's builds",
        ))  # fmt: skip
    return findings


def _run_findings(plan: SetupPlan, facts: InstallFacts) -> list[Finding]:
    findings: list[Finding] = []
    if facts.matmul is not None:
        if facts.matmul.passed:
            findings.append(Finding("setup.matmul", Severity.OK, f"a float32 matmul on {facts.device} is correct"))
        else:
            findings.append(Finding(
                "setup.matmul", Severity.FAIL, f"a float32 matmul on {facts.device} fails",
                detail=facts.matmul.error or "", fix=_reinstall(plan), evidence=("install.matmul",),
            ))  # fmt: skip
    if facts.nms is not None:
        if facts.nms.passed:
            findings.append(
                Finding("setup.torchvision_ops", Severity.OK, f"torchvision.ops.nms runs on {facts.device}")
            )
        else:
            error = facts.nms.error or ""
            hint = f"; {_MISMATCH_HINT}" if MISSING_OPERATOR in error else ""
            findings.append(Finding(
                "setup.torchvision_ops", Severity.FAIL, f"torchvision.ops.nms fails on {facts.device}{hint}",
                detail=error, fix=_reinstall(plan), evidence=("install.nms",),
            ))  # fmt: skip
    return findings


def verify_plan(plan: SetupPlan, facts: InstallFacts) -> tuple[Finding, ...]:
    """Findings on an install against its plan; it is verified only when none of them fails."""
    findings = [
        f
        for f in (_import_finding(n, m, plan) for n, m in (("torch", facts.torch), ("torchvision", facts.torchvision)))
        if f
    ]
    findings += _tag_findings(plan, facts)
    findings += _run_findings(plan, facts)
    return tuple(findings)


def is_verified(findings: tuple[Finding, ...]) -> bool:
    return bool(findings) and all(finding.severity is not Severity.FAIL for finding in findings)
