"""Cross-rank consistency: the facts every rank (or every node) must share, compared. Pure: facts in, findings out.

A fact a rank did not collect (Unavailable: another local rank probed the host, or the probe failed) is left out of
the comparison, never counted as a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
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


def compare(
    finding_id: str,
    ranks: Sequence[RankFacts],
    readers: dict[str, Reader],
    severity: Severity,
    title: str,
    fix: str,
    evidence: tuple[str, ...],
) -> Finding | None:
    """Each fact (label -> reader) compared over the ranks that collected it: a finding naming the facts that
    differ, with each value and its ranks ("torch: 2.3.1 on rank 0 (a); 2.4.0 on rank 1 (b)"), or None."""  # fmt: skip
    differing = [
        f"{label}: {_spread(groups)}" for label, read in readers.items() if len(groups := differences(ranks, read)) > 1
    ]
    if not differing:
        return None
    names = ", ".join(line.split(":", 1)[0] for line in differing)
    return Finding(finding_id, severity, f"{title}: {names}", "\n".join(differing), fix, evidence)


def check_versions(ranks: Sequence[RankFacts]) -> Finding:
    """Driver, CUDA, torch, cuDNN, NCCL, Python and every ML package's version, the same on every rank."""
    readers = dict(VERSION_FACTS)
    for name in sorted({package.name for facts in ranks for package in _packages(facts)}):
        readers[f"package {name}"] = _package_version(name)
    mismatch = compare(
        "cluster.version_mismatch", ranks, readers, Severity.FAIL, "versions differ between ranks",
        "install the same driver, CUDA, torch and packages on every node (one container image or lock file)",
        ("gpu.driver_version", "framework.torch", "python.packages"),
    )  # fmt: skip
    if mismatch:
        return mismatch
    agreed = [
        f"{label} {next(iter(groups))}" for label, read in VERSION_FACTS.items() if (groups := differences(ranks, read))
    ]
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
    readers = {f"GPU {field}": _gpu_summary(field) for field in ("count", *_GPU_FIELDS)}
    mismatch = compare(
        "cluster.gpu_mismatch", ranks, readers, Severity.FAIL, "the GPUs differ between nodes",
        "run the job on identical nodes (one instance type; the same ECC, MIG, power: nvidia-smi -e/-mig/-pl)",
        ("gpu.gpus",),
    )  # fmt: skip
    if mismatch:
        return mismatch
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


def _variable(name: str) -> Reader:
    def read(facts: RankFacts) -> str | None:
        environment = _environment(facts)
        return None if environment is None else environment.get(name, "(not set)")

    return read


def check_environment(ranks: Sequence[RankFacts]) -> Finding:
    """NCCL_* and CUDA_* variables set on some ranks and not others, or with other values (shown redacted)."""
    environments = [env for facts in ranks if (env := _environment(facts)) is not None]
    names = sorted({name for env in environments for name in env})
    mismatch = compare(
        "cluster.env_mismatch", ranks, {name: _variable(name) for name in names}, Severity.WARN,
        "NCCL/CUDA variables differ between ranks",
        "set NCCL_* and CUDA_* the same way for every rank (in the job script, not in a node's profile)",
        ("environment.variables",),
    )  # fmt: skip
    if mismatch:
        return mismatch
    return Finding(
        "cluster.env_mismatch",
        Severity.OK,
        f"NCCL_*/CUDA_* variables agree on all {len(environments)} ranks",
        detail=", ".join(names) or "none set",
    )


def _network(facts: RankFacts) -> str | None:
    transport = facts.transport
    if transport is None:
        return None
    if transport.network:
        return transport.network
    return "none (NET/IB: no device found)" if transport.is_ib_missing else None


def check_transports(ranks: Sequence[RankFacts]) -> Finding:
    """The network each rank's NCCL chose (IB, sockets, a plugin), the same on every rank; each rank's transports
    as NCCL_DEBUG=INFO named them."""
    from envcheck.cluster.nccl_log import describe_transport

    logged = [facts for facts in ranks if facts.transport is not None]
    if not logged:
        return Finding(
            "cluster.nccl_transport",
            Severity.SKIP,
            "no NCCL transport lines",
            detail="gloo, or NCCL_DEBUG / NCCL_DEBUG_FILE set by the user (the lines went where they said)",
        )
    mismatch = compare(
        "cluster.nccl_transport", logged, {"NCCL network": _network}, Severity.WARN,
        "NCCL chose another network on some ranks",
        "set NCCL_SOCKET_IFNAME / NCCL_IB_HCA the same on every node; check the IB devices (ibstat) where it fell"
        " back to sockets",
        ("transport",),
    )  # fmt: skip
    detail = "\n".join(f"{rank_label(facts)}: {describe_transport(facts.transport)}" for facts in logged)
    if mismatch:
        return replace(mismatch, detail=f"{mismatch.detail}\n{detail}")
    return Finding(
        "cluster.nccl_transport",
        Severity.INFO,
        f"NCCL transport on {len(logged)} ranks: {describe_transport(logged[0].transport)}",
        detail=detail,
    )
