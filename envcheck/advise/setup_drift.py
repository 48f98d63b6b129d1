"""Drift: what the target interpreter has installed against what the plan says, package by package."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envcheck.advise.setup_plan import SetupPlan
from envcheck.facts.python import InstalledPackage
from envcheck.knowledge.model import Knowledge, TorchRelease


@dataclass(frozen=True, slots=True)
class Drift:
    name: str
    installed: str | None  # None: not installed
    planned: str  # "2.5.1+cu124"
    message: str


def _variant_of(name: str, version: str, plan: SetupPlan, knowledge: Knowledge) -> str | None:
    """The wheel variant of an installed version: its local tag, or what an untagged wheel means here."""
    if "+" in version:
        return version.split("+", 1)[1].lower()
    if plan.target.os == "macos":
        return "cpu"
    release = _release_of(name, version, knowledge)
    if release is None or release.pypi_default_cuda is None or plan.target.platform != "linux-x86_64":
        return None  # other platforms: the untagged wheel's variant is not recorded
    # an untagged Linux x86_64 torch is PyPI's, built with pypi_default_cuda (e.g. 2.5.1 -> cu124), and so are
    # the torchvision and torchaudio PyPI ships for it: a CUDA torchvision beside a +cpu torch is drift
    major, minor = release.pypi_default_cuda.split(".")[:2]
    return f"cu{major}{minor}"


def _release_of(name: str, version: str, knowledge: Knowledge) -> TorchRelease | None:
    """The torch release an installed torch, torchvision or torchaudio version belongs to."""
    if name == "torch":
        return knowledge.torch_release(version)
    base = version.split("+", 1)[0]
    for release in knowledge.torch_releases:
        if base == (release.torchvision if name == "torchvision" else release.torchaudio):
            return release
    return None


def _same_release(installed: str, planned: str) -> bool:
    try:
        return Version(Version(installed).base_version) == Version(planned)
    except InvalidVersion:
        return False


def check_drift(plan: SetupPlan, installed: tuple[InstalledPackage, ...], knowledge: Knowledge) -> tuple[Drift, ...]:
    """Every planned package that is missing, at another release, or of another variant; () means no drift."""
    by_name = {package.name.lower().replace("_", "-"): package for package in installed}
    drifts: list[Drift] = []
    pins = dict(plan.pins)
    for name, version in plan.packages:
        planned = pins[name]
        package = by_name.get(name)
        if package is None:
            drifts.append(Drift(name, None, planned, f"{name} is not installed; plan says {planned}"))
            continue
        variant = _variant_of(name, package.version, plan, knowledge)
        is_other_variant = variant is not None and variant != plan.variant
        if not _same_release(package.version, version) or is_other_variant:
            message = f"{name} {package.version} installed; plan says {planned}"
            if variant is not None and "+" not in package.version and plan.target.os != "macos":
                message += f" (an untagged {name} {package.version} is PyPI's {variant} build)"
            drifts.append(Drift(name, package.version, planned, message))
    return tuple(drifts)
