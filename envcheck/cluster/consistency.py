"""Cross-rank consistency: the facts every rank (or every node) must share, compared. Pure: facts in, findings out.

A fact a rank did not collect (Unavailable: another local rank probed the host, or the probe failed) is left out of
the comparison, never counted as a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from envcheck.cluster.facts import RankFacts
from envcheck.facts.common import Unavailable
from envcheck.facts.environment import EnvironmentFacts
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.python import InstalledPackage, PythonFacts
from envcheck.finding import Finding, Severity
from envcheck.redaction import redact_value

# Variables that steer NCCL and CUDA: a node with other values runs another transport, or sees other GPUs.
ENV_PREFIXES = ("NCCL_", "CUDA_")

Reader = Callable[[RankFacts], str | None]  # a fact of one rank as text, None when that rank did not collect it


def _torch_field(name: str) -> Reader:
    def read(facts: RankFacts) -> str | None:
        framework = facts.snapshot.framework
        if not isinstance(framework, FrameworkFacts) or framework.torch is None:
            return None
        value = getattr(framework.torch, name)
        return None if value is None or isinstance(value, Unavailable) else str(value)

    return read


def _gpu_field(name: str) -> Reader:
    def read(facts: RankFacts) -> str | None:
        gpu = facts.snapshot.gpu
        if not isinstance(gpu, GpuFacts):
            return None
        value = getattr(gpu, name)
        return None if isinstance(value, Unavailable) else str(value)

    return read


def _python_version(facts: RankFacts) -> str | None:
    python = facts.snapshot.python
    return python.version if isinstance(python, PythonFacts) else None


# label -> reader; the labels are what the report names
VERSION_FACTS: dict[str, Reader] = {
    "NVIDIA driver": _gpu_field("driver_version"),
    "CUDA (driver)": _gpu_field("cuda_driver_version"),
    "torch": _torch_field("version"),
    "torch CUDA": _torch_field("cuda_version"),
    "cuDNN": _torch_field("cudnn_version"),
    "NCCL": _torch_field("nccl_version"),
    "Python": _python_version,
}


def rank_label(facts: RankFacts) -> str:
    return f"rank {facts.place.rank} ({facts.place.hostname})"


def differences(ranks: Sequence[RankFacts], read: Reader) -> dict[str, list[str]]:
    """value -> the ranks that have it, over the ranks that collected it; one key means they agree."""
    groups: dict[str, list[str]] = {}
    for facts in ranks:
        value = read(facts)
        if value is not None:
            groups.setdefault(value, []).append(rank_label(facts))
    return groups


def _spread(groups: dict[str, list[str]]) -> str:
    return "; ".join(f"{value} on {', '.join(labels)}" for value, labels in groups.items())


def check_versions(ranks: Sequence[RankFacts]) -> Finding:
    """Driver, CUDA, torch, cuDNN, NCCL, Python and every ML package's version, the same on every rank."""
    readers = dict(VERSION_FACTS)
    for name in sorted({package.name for facts in ranks for package in _packages(facts)}):
        readers[f"package {name}"] = _package_version(name)
    differing: list[str] = []
    agreed: list[str] = []
    for label, read in readers.items():
        groups = differences(ranks, read)
        if len(groups) > 1:
            differing.append(f"{label}: {_spread(groups)}")
        elif groups and not label.startswith("package "):
            agreed.append(f"{label} {next(iter(groups))}")
    if differing:
        names = ", ".join(line.split(":", 1)[0] for line in differing)
        return Finding(
            "cluster.version_mismatch",
            Severity.FAIL,
            f"versions differ between ranks: {names}",
            detail="\n".join(differing),
            fix="install the same driver, CUDA, torch and packages on every node (one container image or lock file)",
            evidence=("gpu.driver_version", "framework.torch", "python.packages"),
        )
    return Finding(
        "cluster.version_mismatch",
        Severity.OK,
        f"the same versions on all {len(ranks)} ranks",
        detail=", ".join(agreed) or "no version was collected on two ranks",
    )


def _packages(facts: RankFacts) -> tuple[InstalledPackage, ...]:
    python = facts.snapshot.python
    return python.packages if isinstance(python, PythonFacts) else ()


def _package_version(name: str) -> Reader:
    def read(facts: RankFacts) -> str | None:
        python = facts.snapshot.python
        if not isinstance(python, PythonFacts):
            return None
        versions = sorted({package.version for package in python.packages if package.name == name})
        return " + ".join(versions) if versions else "not installed"

    return read


# per-GPU facts compared node against node; a lowered power limit or clock cap makes one node the straggler
_GPU_FIELDS: dict[str, Callable[[Any], object]] = {
    "model": lambda device: device.name,
    "memory": lambda device: device.memory_total_bytes,
    "ECC": lambda device: device.ecc.is_enabled,
    "MIG": lambda device: device.is_mig_enabled,
    "power limit (W)": lambda device: device.power_limit_watts,
    "max SM clock (MHz)": lambda device: device.sm_clock_max_mhz,
}


def _gpu_summary(field: str) -> Reader:
    """A per-node GPU fact over all its GPUs, e.g. the models "NVIDIA H100 80GB HBM3 x8"."""

    def read(facts: RankFacts) -> str | None:
        gpu = facts.snapshot.gpu
        if not isinstance(gpu, GpuFacts):
            return None
        if field == "count":
            return str(gpu.gpu_count)
        values = [
            "unknown" if isinstance(value := _GPU_FIELDS[field](device), Unavailable) else str(value)
            for device in gpu.gpus
        ]
        return ", ".join(f"{value} x{values.count(value)}" for value in sorted(set(values))) or "none"

    return read


def check_gpus(ranks: Sequence[RankFacts]) -> Finding:
    """GPU model, count, memory, ECC, MIG, power limit and clock cap: the same on every node that probed its GPUs."""
    differing = [
        f"GPU {field}: {_spread(groups)}"
        for field in ("count", *_GPU_FIELDS)
        if len(groups := differences(ranks, _gpu_summary(field))) > 1
    ]
    if differing:
        return Finding(
            "cluster.gpu_mismatch",
            Severity.FAIL,
            "the GPUs differ between nodes: " + ", ".join(line.split(":", 1)[0] for line in differing),
            detail="\n".join(differing),
            fix="run the job on identical nodes (one instance type; the same ECC, MIG, power: nvidia-smi -e/-mig/-pl)",
            evidence=("gpu.gpus",),
        )
    models = differences(ranks, _gpu_summary("model"))
    return Finding(
        "cluster.gpu_mismatch",
        Severity.OK,
        "the same GPUs on every node",
        detail=f"GPU model: {next(iter(models))}" if models else "no node reported its GPUs",
    )


def _environment(facts: RankFacts) -> dict[str, str] | None:
    environment = facts.snapshot.environment
    if not isinstance(environment, EnvironmentFacts):
        return None
    return {
        variable.name: redact_value(variable.name, variable.value)[0]
        for variable in environment.variables
        if variable.name.startswith(ENV_PREFIXES)
    }


def check_environment(ranks: Sequence[RankFacts]) -> Finding:
    """NCCL_* and CUDA_* variables set on some ranks and not others, or with other values (shown redacted)."""
    environments = [(facts, env) for facts in ranks if (env := _environment(facts)) is not None]
    names = sorted({name for _, env in environments for name in env})
    differing: list[str] = []
    for name in names:
        groups: dict[str, list[str]] = {}
        for facts, env in environments:
            groups.setdefault(env.get(name, "(not set)"), []).append(rank_label(facts))
        if len(groups) > 1:
            differing.append(f"{name}: {_spread(groups)}")
    if differing:
        return Finding(
            "cluster.env_mismatch",
            Severity.WARN,
            "NCCL/CUDA variables differ between ranks: " + ", ".join(line.split(":", 1)[0] for line in differing),
            detail="\n".join(differing),
            fix="set NCCL_* and CUDA_* the same way for every rank (in the job script, not in a node's profile)",
            evidence=("environment.variables",),
        )
    return Finding(
        "cluster.env_mismatch",
        Severity.OK,
        f"NCCL_*/CUDA_* variables agree on all {len(environments)} ranks",
        detail=", ".join(names) or "none set",
    )
