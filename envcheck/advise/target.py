"""The machine a setup plan is for: OS, CPU architecture, Python, NVIDIA driver and GPUs.

Built from a snapshot (live or ``--from FILE``) or from a hypothetical description
(``--gpu "NVIDIA L4" --driver 535.104.05 --python 3.10 --os linux --arch x86_64``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeVar

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
T = TypeVar("T", bound=str)


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
    # the interpreter's path when the target is a real one on this machine: printed commands run its pip
    interpreter: str | None = None

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


@dataclass(frozen=True, slots=True)
class Gaps:
    """``--os/--arch/--python VERSION`` given with ``--from``: what the file lacks (an nvidia-smi XML names no OS,
    CPU or Python). A value the file has wins; a flag that contradicts it is an input error."""

    os: str | None = None
    arch: str | None = None
    python: str | None = None


def target_from_snapshot(knowledge: Knowledge, snapshot: Snapshot, source: str, gaps: Gaps | None = None) -> Target:
    """The target a snapshot describes, its gaps filled from ``gaps``; a fact the plan needs that neither gives is
    an input error naming the flag that supplies it."""
    gaps = gaps or Gaps()
    gpus: tuple[TargetGpu, ...] = ()
    driver: str | None = None
    facts = snapshot.gpu
    if not isinstance(facts, Unavailable) and facts.gpus:
        gpus = tuple(
            target_gpu(knowledge, gpu.name if isinstance(gpu.name, str) else f"GPU {gpu.index}", gpu.compute_capability)
            for gpu in facts.gpus
        )
        driver = facts.driver_version if isinstance(facts.driver_version, str) else None
    system, python = snapshot.system, snapshot.python
    os_fact: OsName | None = None
    arch_fact: str | None = None
    if not isinstance(system, Unavailable):
        os_fact = _OS_ALIASES.get(system.os_name.lower())
        if os_fact is None:
            raise InputError(f"{source}: system.os_name {system.os_name!r}: PyTorch has no wheels for it")
        if not isinstance(system.architecture, Unavailable):
            arch_fact = _ARCH_ALIASES.get(system.architecture.lower(), system.architecture.lower())
    why = (system if isinstance(system, Unavailable) else system.architecture, python)
    os_name: OsName | None = _reconcile(
        source, "--os", "system.os_name", os_fact, None if gaps.os is None else normalise_os(gaps.os)
    )
    arch = _reconcile(
        source, "--arch", "system.architecture", arch_fact, None if gaps.arch is None else normalise_arch(gaps.arch)
    )
    python_version = _reconcile(
        source,
        "--python",
        "python.version",
        None if isinstance(python, Unavailable) else python_minor(python.version, f"{source}: python.version"),
        None if gaps.python is None else python_minor(gaps.python),
    )
    missing = [
        (what, example)
        for value, what, example in (
            (os_name, "OS", "--os linux"),
            (arch, "CPU architecture", "--arch x86_64"),
            (python_version, "Python version", "--python 3.11"),
        )
        if value is None
    ]
    if os_name is None or arch is None or python_version is None:
        reason = next((part.reason for part in why if isinstance(part, Unavailable)), "not collected")
        names = ", ".join(what for what, _ in missing)
        flags = " ".join(example for _, example in missing)
        raise InputError(f"{source} does not name the {names} ({reason}); give them, e.g. {flags}")
    return Target(os=os_name, arch=arch, python=python_version, driver=driver, gpus=gpus, source=source)


def _reconcile(source: str, flag: str, field: str, fact: T | None, given: T | None) -> T | None:
    """The file's fact, else the flag's value (None when neither has it); both but different is an input error."""
    if fact is not None and given is not None and fact != given:
        raise InputError(f"{flag} {given}: {source} says {field} is {fact}")
    return fact if fact is not None else given
