"""What the installed torch wheel is (release, CUDA variant, arch list) and which official wheels a machine can run.

Shared by the install and CUDA checks (with their common input helpers); pure lookups in the knowledge base, no I/O.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envcheck.checks.registry import CheckInput
from envcheck.facts.common import Unavailable, known
from envcheck.facts.framework import TorchFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.python import PythonFacts
from envcheck.facts.system import SystemFacts
from envcheck.knowledge.capability import gpu_capability
from envcheck.knowledge.model import (
    DriverCeiling,
    Knowledge,
    Provenance,
    TorchRelease,
    WheelArch,
    newest_arch_known,
    release_key,
)
from envcheck.knowledge.rules import arch_support, cuda_of_variant, driver_satisfies, required_driver

INDEX_URL = "https://download.pytorch.org/whl/"
_ARCH_ENTRY = re.compile(r"^(sm|compute)_\d+[af]?$")
_CC = re.compile(r"^(\d+)\.(\d+)$")


def variant_of(torch: TorchFacts) -> str | None:
    """The CUDA wheel variant (``cu121``) of a torch build: its local tag, else its ``torch.version.cuda``."""
    local = torch.version.split("+", 1)[1].lower() if "+" in torch.version else ""
    if cuda_of_variant(local):
        return local
    if torch.cuda_version is None:
        return None
    major, _, minor = torch.cuda_version.partition(".")
    return f"cu{major}{minor.split('.')[0]}" if major.isdigit() and minor[:1].isdigit() else None


def release_tuple(version: str) -> tuple[int, int] | None:
    """``3.11.9`` -> (3, 11); None when unparseable."""
    try:
        parsed = Version(version.strip())
    except InvalidVersion:
        return None
    return parsed.major, parsed.minor


def python_fits(release: TorchRelease, python_version: str | Unavailable | None) -> bool:
    """Whether official wheels of ``release`` exist for this Python (unknown Python: assume yes)."""
    wanted = release_tuple(python_version) if isinstance(python_version, str) else None
    low, high = release_tuple(release.python_min), release_tuple(release.python_max)
    return wanted is None or low is None or high is None or low <= wanted <= high


def platform_of(system: SystemFacts | Unavailable) -> str:
    """The wheel platform tag of the arch tables; Linux x86_64 when the system facts (or the machine) are missing."""
    facts = known(system)
    if facts is None:
        return "linux-x86_64"
    if facts.os_name == "Windows":
        return "windows-x86_64"
    return "linux-aarch64" if known(facts.architecture) in ("aarch64", "arm64") else "linux-x86_64"


def driver_os(system: SystemFacts | Unavailable) -> str:
    """Whose driver numbering applies: WSL runs the Windows driver (nvidia-smi there reports its version).

    Linux when the system facts are missing, or when a Linux report does not say whether it is WSL."""
    facts = known(system)
    return "windows" if facts is not None and (facts.os_name == "Windows" or facts.is_wsl is True) else "linux"


def parse_cc(text: str) -> tuple[int, int] | None:
    match = _CC.match(text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One GPU as the CUDA checks see it: a display name and its compute capability (None when unknown)."""

    index: int
    name: str
    compute_capability: tuple[int, int] | None
    inferred: str = ""  # "compute capability 12.0, inferred from the GeForce RTX 50 family"; empty: read or listed

    @property
    def label(self) -> str:
        """``NVIDIA GeForce RTX 4090 (sm_89)``, saying so when the capability was inferred from the name's family."""
        if self.compute_capability is None:
            return self.name
        sm = f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"
        return f"{self.name} ({sm}; {self.inferred})" if self.inferred else f"{self.name} ({sm})"


def gpu_models(gpu: GpuFacts, torch: TorchFacts | None, knowledge: Knowledge | None) -> tuple[GpuModel, ...]:
    """Each GPU with its compute capability from torch, else the driver, else the GPU tables by name."""
    from_torch = {device.index: known(device.compute_capability) for device in torch.devices} if torch else {}
    models = []
    for device in gpu.gpus:
        name = known(device.name) or f"GPU {device.index}"
        text = from_torch.get(device.index) or known(device.compute_capability)
        cc = parse_cc(text) if text else None
        inferred = ""
        if cc is None and knowledge is not None and isinstance(device.name, str):
            # a GPU without a spec row still has a family: capabilities inferred from it say so in findings
            found = gpu_capability(knowledge, device.name)
            cc, inferred = (found.compute_capability, found.inferred_note) if found else (None, "")
        models.append(GpuModel(device.index, name, cc, inferred))
    return tuple(models)


def wheel_arch_of(torch: TorchFacts, knowledge: Knowledge | None, platform: str) -> WheelArch | None:
    """What the installed wheel was compiled for: torch's own arch list when probed, else the knowledge tables."""
    entries = [entry for entry in known(torch.arch_list) or () if _ARCH_ENTRY.match(entry)]
    if entries:
        return WheelArch(
            torch=f"=={torch.version}",
            variants=(),
            platform=platform,
            sass=tuple(entry for entry in entries if entry.startswith("sm_")),
            ptx=tuple(entry for entry in entries if entry.startswith("compute_")),
            verbatim=(),
            provenance=Provenance("torch.cuda.get_arch_list() in the framework probe", datetime.date.min),
            cuda=torch.cuda_version,
            newest_known=newest_arch_known(knowledge.arch_toolkits, torch.cuda_version)
            if knowledge and torch.cuda_version
            else None,
        )
    variant = variant_of(torch)
    if is_pre_release(torch.version):
        # nightly and source builds are not the release's wheel: the arch tables describe only official releases
        # (a nightly cu128 had sm_120 before any release did; a source build has whatever TORCH_CUDA_ARCH_LIST said)
        return None
    return knowledge.arch_list(torch.version, variant, platform) if knowledge and variant else None


def is_pre_release(version: str) -> bool:
    """``2.6.0.dev20241001+cu124`` (a nightly), ``2.1.0a0+git32f93b1`` (a source build), ``2.4.0rc1``."""
    try:
        return Version(version.strip()).is_prerelease
    except InvalidVersion:
        return False


@dataclass(frozen=True, slots=True)
class Wheel:
    """An official torch wheel: a release and the CUDA variant it was built with."""

    release: TorchRelease
    variant: str

    @property
    def label(self) -> str:
        return f"torch {self.release.version}+{self.variant}"

    def install_command(self, python: str = "python", with_audio: bool = False) -> str:
        packages = [f"torch=={self.release.version}", f"torchvision=={self.release.torchvision}"]
        if with_audio and self.release.torchaudio:
            packages.append(f"torchaudio=={self.release.torchaudio}")
        return f"{python} -m pip install {' '.join(packages)} --index-url {INDEX_URL}{self.variant}"


def _newest_first(knowledge: Knowledge) -> list[TorchRelease]:
    return sorted(knowledge.torch_releases, key=lambda release: Version(release.version), reverse=True)


def _variants_newest_first(release: TorchRelease) -> list[str]:
    def cuda_key(variant: str) -> Version:
        return Version(cuda_of_variant(variant) or "0")

    return sorted((v for v in release.cuda_variants if cuda_of_variant(v)), key=cuda_key, reverse=True)


def wheels(
    knowledge: Knowledge,
    *,
    driver: str | None = None,
    os: str = "linux",
    platform: str = "linux-x86_64",
    python_version: str | Unavailable | None = None,
    compute_capabilities: tuple[tuple[int, int], ...] = (),
    release: TorchRelease | None = None,
    is_native_only: bool = False,
    ceiling: DriverCeiling | None = None,
) -> Iterator[Wheel]:
    """Official CUDA wheels, newest release and CUDA first, that this driver, Python and these GPUs can run.

    A constraint left out is not applied; ``is_native_only`` keeps wheels with machine code for the GPUs.
    A GPU runs a wheel when its arch list (knowledge tables) has SASS or PTX for it; PTX-only GPUs raise
    the driver floor (``required_driver(is_ptx_jit=True)``). ``ceiling``: the GPUs' last driver branch,
    which every wheel's minimum driver must fit under (whatever driver is installed now).
    """
    for candidate in [release] if release else _newest_first(knowledge):
        if not python_fits(candidate, python_version):
            continue
        for variant in _variants_newest_first(candidate):
            is_ptx_jit = False
            if compute_capabilities:
                table = knowledge.arch_list(candidate.version, variant, platform)
                if table is None:
                    continue
                kinds = [arch_support(table, cc).kind for cc in compute_capabilities]
                if "none" in kinds or (is_native_only and "ptx" in kinds):
                    continue
                is_ptx_jit = "ptx" in kinds
            if driver is not None or ceiling is not None:
                requirement = required_driver(
                    knowledge, variant, "windows" if os == "windows" else "linux", is_ptx_jit=is_ptx_jit
                )
                minimum = known(requirement.minimum) if requirement else None
                if minimum is None:
                    continue
                if driver is not None and driver_satisfies(driver, minimum) is not True:
                    continue
                if ceiling is not None and ceiling.allows(minimum, os) is not True:
                    continue
            yield Wheel(candidate, variant)


def wheel_for_driver_cuda(knowledge: Knowledge, torch_version: str, driver_cuda: str) -> Wheel | None:
    """The newest CUDA wheel of the installed release that a driver serving CUDA ``driver_cuda`` runs.

    Up to the driver's own CUDA, and from CUDA 11 on any wheel of the driver's CUDA major: NVIDIA's minor-version
    compatibility (a CUDA 11.4 driver, e.g. 470, runs a cu118 wheel)."""
    release = knowledge.torch_release(torch_version)
    served = release_tuple(driver_cuda)
    if release is None or served is None:
        return None
    for variant in _variants_newest_first(release):
        built = release_tuple(cuda_of_variant(variant) or "")
        if built is not None and (built <= served or (served[0] >= 11 and built[0] == served[0])):
            return Wheel(release, variant)
    return None


def companion_release(knowledge: Knowledge, package: str, version: str) -> TorchRelease | None:
    """The torch release a torchvision/torchaudio version was published for (reverse lookup)."""
    wanted = release_key(version)
    for release in knowledge.torch_releases:
        if wanted is not None and any(release_key(made) == wanted for made in release.companions(package)):
            return release
    return None


def installed_version(python: PythonFacts, name: str) -> str | None:
    """The version of the first install of ``name`` on sys.path (the one Python imports)."""
    return next((package.version for package in python.packages if package.name == name), None)


def knowledge_of(given: CheckInput) -> Knowledge | None:
    return given.knowledge if isinstance(given.knowledge, Knowledge) else None


NOT_LISTED = "torch is not among the packages the snapshot lists"
UNLISTED_TORCH = (
    "torch imports but is not among the packages the snapshot lists (a paste cut short, or a torch without package "
    "metadata), so the list cannot be judged"
)


def is_package_list_missing(given: CheckInput) -> bool:
    """torch imported, yet the package list has no torch: the list was not collected (e.g. a paste cut short)."""
    framework, python = known(given.snapshot.framework), known(given.snapshot.python)
    if framework is None or framework.torch is None or python is None:
        return False
    return all(package.name != "torch" for package in python.packages)


NO_KNOWLEDGE = Unavailable("the knowledge base was not loaded", "run `envcheck doctor`, which loads it")


def missing_of(*sections: object) -> Unavailable:
    """The first uncollected section among a check's inputs (else: the knowledge base was not loaded)."""
    return next((section for section in sections if isinstance(section, Unavailable)), NO_KNOWLEDGE)
