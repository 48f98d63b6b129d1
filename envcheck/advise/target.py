"""The machine a setup plan is for: OS, CPU architecture, Python, NVIDIA driver and GPUs.

Built from a snapshot (live or ``--from FILE``) or from a hypothetical description
(``--gpu "NVIDIA L4" --driver 535.104.05 --python 3.10 --os linux --arch x86_64``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from envcheck.facts.common import Unavailable
from envcheck.knowledge.model import Knowledge
from envcheck.loaders import InputError
from envcheck.snapshot import Snapshot

OsName = Literal["linux", "windows", "macos"]
OS_NAMES: tuple[OsName, ...] = ("linux", "windows", "macos")
# platform.system() spellings -> ours; platform.machine() spellings -> the wheel tags' names
_OS_ALIASES: dict[str, OsName] = {"linux": "linux", "windows": "windows", "darwin": "macos", "macos": "macos"}
_ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d+)?$")


@dataclass(frozen=True, slots=True)
class TargetGpu:
    name: str
    compute_capability: tuple[int, int] | None  # None: neither the snapshot nor the GPU table knows it


@dataclass(frozen=True, slots=True)
class Target:
    """What decides which wheel runs: everything else about the machine is irrelevant to the plan."""

    os: OsName
    arch: str  # x86_64 or aarch64 (Apple's arm64 is aarch64 here)
    python: str  # major.minor, e.g. "3.10"
    driver: str | None  # the NVIDIA driver version; None: no NVIDIA driver (CPU or Apple GPU)
    gpus: tuple[TargetGpu, ...]
    source: str  # "this machine", "FILE", or "hypothetical"

    @property
    def platform(self) -> str:
        """The wheel platform name used by profiles/compat/wheel_arch.toml, e.g. ``linux-x86_64``."""
        return f"{self.os}-{self.arch}"

    def describe(self) -> str:
        gpus = ", ".join(gpu.name for gpu in self.gpus) or "no NVIDIA GPU"
        driver = f", driver {self.driver}" if self.driver else ""
        return f"{self.os} {self.arch}, Python {self.python}, {gpus}{driver}"


def normalise_os(text: str) -> OsName:
    found = _OS_ALIASES.get(text.strip().lower())
    if found is None:
        raise InputError(f"--os {text}: unknown operating system (known: {', '.join(OS_NAMES)})")
    return found


def normalise_arch(text: str) -> str:
    found = _ARCH_ALIASES.get(text.strip().lower())
    if found is None:
        raise InputError(f"--arch {text}: unknown architecture (known: x86_64, aarch64, arm64)")
    return found


def python_minor(text: str, label: str = "--python") -> str:
    if not PYTHON_VERSION.match(text.strip()):
        raise InputError(f"{label} {text}: expected a Python version such as 3.11")
    version = Version(text.strip())
    return f"{version.major}.{version.minor}"


def _cc_of(text: str | Unavailable | None) -> tuple[int, int] | None:
    if text is None or isinstance(text, Unavailable):
        return None
    match = re.match(r"^(\d+)\.(\d+)$", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def target_gpu(knowledge: Knowledge, name: str, compute_capability: str | Unavailable | None = None) -> TargetGpu:
    """A GPU by name; its compute capability from the snapshot, else from the GPU table."""
    cc = _cc_of(compute_capability)
    if cc is None:
        spec = knowledge.gpu_by_name(name)
        cc = spec.compute_capability if spec else None
    return TargetGpu(name, cc)


def hypothetical_target(
    knowledge: Knowledge,
    *,
    gpus: tuple[str, ...],
    driver: str | None,
    python: str,
    os: str,
    arch: str,
) -> Target:
    """A machine described on the command line; a GPU must be one the GPU table knows."""
    resolved: list[TargetGpu] = []
    for name in gpus:
        gpu = target_gpu(knowledge, name)
        if gpu.compute_capability is None:
            raise InputError(f"--gpu {name}: not in profiles/gpus.toml (give the name nvidia-smi prints)")
        resolved.append(gpu)
    if driver is not None:
        try:
            Version(driver.strip())
        except InvalidVersion:
            raise InputError(f"--driver {driver}: expected a driver version such as 535.104.05") from None
    if resolved and driver is None:
        raise InputError("--gpu needs --driver: the driver decides which CUDA wheels run")
    return Target(
        os=normalise_os(os),
        arch=normalise_arch(arch),
        python=python_minor(python),
        driver=driver.strip() if resolved and driver else None,
        gpus=tuple(resolved),
        source="hypothetical",
    )


def target_from_snapshot(knowledge: Knowledge, snapshot: Snapshot, source: str) -> Target:
    """The target a snapshot describes; a section the plan cannot do without is an input error."""
    if isinstance(snapshot.system, Unavailable):
        raise InputError(f"{source}: the system section was not collected ({snapshot.system.reason})")
    if isinstance(snapshot.python, Unavailable):
        raise InputError(f"{source}: the python section was not collected ({snapshot.python.reason})")
    gpus: tuple[TargetGpu, ...] = ()
    driver: str | None = None
    facts = snapshot.gpu
    if not isinstance(facts, Unavailable) and facts.gpus:
        gpus = tuple(
            target_gpu(knowledge, gpu.name if isinstance(gpu.name, str) else f"GPU {gpu.index}", gpu.compute_capability)
            for gpu in facts.gpus
        )
        driver = facts.driver_version if isinstance(facts.driver_version, str) else None
    architecture = snapshot.system.architecture
    if isinstance(architecture, Unavailable):
        raise InputError(f"{source}: system.architecture was not collected ({architecture.reason})")
    os_name = _OS_ALIASES.get(snapshot.system.os_name.lower())
    if os_name is None:
        raise InputError(f"{source}: system.os_name {snapshot.system.os_name!r}: PyTorch has no wheels for it")
    return Target(
        os=os_name,
        arch=_ARCH_ALIASES.get(architecture.lower(), architecture.lower()),
        python=python_minor(snapshot.python.version, f"{source}: python.version"),
        driver=driver,
        gpus=gpus,
        source=source,
    )
