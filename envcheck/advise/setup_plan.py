"""The install plan: the newest torch and wheel variant that runs on a target, and why the others do not.

Rules (docs/setup.md): the driver must support the variant (``required_driver``), every GPU must be served
by the wheel's SASS or PTX (``arch_support``), the Python version must be in the release's range, and the
platform must have the wheel. The first release, newest first, with a fitting variant wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from packaging.version import Version

from envcheck.advise.target import Target
from envcheck.checks.wheels import Wheel, wheels
from envcheck.knowledge.model import DriverCeiling, Knowledge, TorchRelease
from envcheck.knowledge.rules import (
    arch_support,
    cuda_of_variant,
    driver_below_floor,
    driver_satisfies,
    required_driver,
)
from envcheck.loaders import InputError

INDEX_ROOT = "https://download.pytorch.org/whl"
# Intel Macs: PyTorch stopped building macOS x86_64 wheels after 2.2 (RFC pytorch/pytorch#114602,
# "macOS x86 builds / test deprecation"; pip on an Intel Mac lists nothing past 2.2.2: pytorch/pytorch#131766).
MACOS_X86_LAST = Version("2.2.99")
# Apple silicon: the MPS backend arrived in 1.12 (pytorch.org/blog/introducing-accelerated-pytorch-training-on-mac).
# Older releases are not offered there: which of them had arm64 wheels is not recorded in profiles/.
MPS_FIRST = Version("1.12.0")
# Local version tags (+cu124, +cpu) on download.pytorch.org: torch and torchvision since 1.2.0 / 0.4.0
# (reference torch_releases.csv: "first release with local version tags"); torchaudio's wheels carry them
# since 2.0 (pytorch.org/get-started/previous-versions pins torchaudio untagged up to 0.13). The index's Linux
# aarch64 CPU wheels are left untagged here: which releases tag them is not recorded in profiles/.
LOCAL_TAGS_FIRST = Version("1.2.0")
TORCHAUDIO_TAGS_FIRST = Version("2.0.0")

Accelerator = Literal["cuda", "mps", "cpu"]


@dataclass(frozen=True, slots=True)
class RuledOut:
    torch: str
    variant: str
    reason: str

    def __str__(self) -> str:
        return f"torch {self.torch} {self.variant}: {self.reason}"


@dataclass(frozen=True, slots=True)
class SetupPlan:
    """The chosen wheels, or ``fits=False`` with what to upgrade; reasons are sentences for people."""

    target: Target
    fits: bool
    torch: str | None  # "2.5.1"; None when nothing fits
    torchvision: str | None
    torchaudio: str | None  # None: no torchaudio release matches (torch 2.12+) or nothing fits
    variant: str | None  # "cu124" or "cpu"
    accelerator: Accelerator | None
    index_url: str | None  # None: PyPI (macOS) or nothing fits
    reasons: tuple[str, ...]
    ruled_out: tuple[RuledOut, ...]
    upgrades: tuple[str, ...]  # what to change on the target when nothing fits

    @property
    def cuda(self) -> str | None:
        return cuda_of_variant(self.variant) if self.variant else None

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        """(name, version) of every package the plan installs, torch first."""
        named = (("torch", self.torch), ("torchvision", self.torchvision), ("torchaudio", self.torchaudio))
        return tuple((name, version) for name, version in named if version is not None)

    def local_tag(self, name: str) -> str | None:
        """The local version tag the index's wheel of ``name`` carries (``cu124``, ``cpu``); None: untagged.

        Pinning it (``torch==2.5.1+cu124``) is what keeps pip from mixing a CPU torch with a CUDA torchvision
        that another index or a cached wheel offers under the same release number.
        """
        if self.variant is None or self.index_url is None or self.torch is None:
            return None  # nothing fits, or PyPI (macOS), whose wheels carry no tag
        torch = Version(self.torch)
        if torch < LOCAL_TAGS_FIRST or (name == "torchaudio" and torch < TORCHAUDIO_TAGS_FIRST):
            return None
        if self.variant == "cpu" and self.target.platform == "linux-aarch64":
            return None
        return self.variant

    @property
    def pins(self) -> tuple[tuple[str, str], ...]:
        """(name, exact version with its local tag where the wheel has one) of every package, torch first."""
        return tuple(
            (name, f"{version}+{tag}" if (tag := self.local_tag(name)) else version) for name, version in self.packages
        )


def _py(text: str) -> Version:
    return Version(text)


def _python_reason(release: TorchRelease, target: Target) -> str | None:
    if _py(release.python_min) <= _py(target.python) <= _py(release.python_max):
        return None
    return f"supports Python {release.python_min}-{release.python_max}, the target has {target.python}"


def _candidates(knowledge: Knowledge, pin: str | None) -> tuple[TorchRelease, ...]:
    releases = sorted(knowledge.torch_releases, key=lambda release: Version(release.version), reverse=True)
    if pin is None:
        return releases_on_pypi(releases)
    pinned = tuple(r for r in releases if r.version == pin or r.version.startswith(pin.rstrip(".") + "."))
    if not pinned:
        raise InputError(f"--torch {pin}: no such release in profiles/compat/torch_releases.toml")
    return pinned


def releases_on_pypi(releases: list[TorchRelease]) -> tuple[TorchRelease, ...]:
    # 1.8.2 LTS lives only on download.pytorch.org/whl/lts/1.8 and is superseded by 1.9 for every target
    return tuple(release for release in releases if release.pypi_default_cuda is not None)


def _variant_key(variant: str) -> Version:
    return Version(cuda_of_variant(variant) or "0")


def _driver_os(target: Target) -> Literal["linux", "windows"]:
    return "windows" if target.os == "windows" else "linux"


def _cuda_rule_out(knowledge: Knowledge, release: TorchRelease, variant: str, target: Target) -> str | None:
    """Why ``variant`` of ``release`` cannot run on the target, or None when it can."""
    wheel = knowledge.arch_list(release.version, variant, target.platform)
    if wheel is None:
        return f"no {target.platform} wheel recorded in profiles/compat/wheel_arch.toml"
    is_ptx_jit = False
    for gpu in target.gpus:
        if gpu.compute_capability is None:
            return f"compute capability of {gpu.name} unknown: cannot tell whether the wheel has kernels for it"
        support = arch_support(wheel, gpu.compute_capability)
        if support.kind == "none":
            major, minor = gpu.compute_capability
            built = ", ".join(wheel.sass + wheel.ptx)
            if wheel.newest_known is not None and major > wheel.newest_known[0]:
                return f"no kernels for {gpu.name} (sm_{major}{minor}): {support.detail}"
            return f"no kernels for {gpu.name} (sm_{major}{minor}); the wheel has {built}"
        is_ptx_jit = is_ptx_jit or support.kind == "ptx"
    requirement = required_driver(knowledge, variant, _driver_os(target), is_ptx_jit=is_ptx_jit)
    if requirement is None:
        return f"CUDA {cuda_of_variant(variant)} is not in profiles/compat/cuda_toolkits.toml"
    if not isinstance(requirement.minimum, str):
        return f"minimum driver unknown ({requirement.minimum.reason})"
    if target.driver is None:
        return f"needs driver >= {requirement.minimum}; the target's driver version is unknown"
    if driver_satisfies(target.driver, requirement.minimum) is not True:
        why = "" if requirement.is_minor_compat else f" ({requirement.reason})"
        ceiling = _ceiling(knowledge, target)
        if ceiling is not None and ceiling.allows(requirement.minimum, _driver_os(target)) is False:
            why += f"; {ceiling.summary}"
        return f"needs driver >= {requirement.minimum}, you have {target.driver}{why}"
    return None


def _below_floor(knowledge: Knowledge, target: Target) -> str | None:
    """Why no wheel can run: the driver is older than the GPUs' own first driver branch; None when it is not."""
    gpus = tuple((gpu.name, gpu.compute_capability) for gpu in target.gpus)
    below = driver_below_floor(knowledge, target.driver, gpus)
    if below is None:
        return None
    return f"{below.summary}, so no PyTorch wheel runs there whatever its CUDA version"


def _ceiling(knowledge: Knowledge, target: Target) -> DriverCeiling | None:
    """The last driver branch the target's GPUs get (Kepler: R470), None when no ceiling is known."""
    return knowledge.driver_ceiling(tuple(gpu.compute_capability for gpu in target.gpus if gpu.compute_capability))


def _chosen(
    target: Target, release: TorchRelease, variant: str, accelerator: Accelerator, index_url: str | None
) -> tuple[str, ...]:
    reasons = [f"torch {release.version}: the newest release that fits {target.describe()}"]
    reasons.append(f"torchvision {release.torchvision} is the release built for torch {release.version}")
    if release.torchaudio:
        reasons.append(f"torchaudio {release.torchaudio} is the release built for torch {release.version}")
    else:
        reasons.append(f"no torchaudio release matches torch {release.version}: torchaudio is left out")
    where = f"the {variant} wheel index {index_url}" if index_url else "PyPI"
    reasons.append(f"{variant} wheels from {where}")
    if accelerator == "mps":
        reasons.append("Apple silicon: the PyPI wheel includes the MPS backend (torch.backends.mps), no CUDA")
    return tuple(reasons)


def plan_setup(knowledge: Knowledge, target: Target, pin: str | None = None) -> SetupPlan:
    """The plan for ``target``: CUDA wheels when it has NVIDIA GPUs, else CPU (MPS on Apple silicon)."""
    releases = _candidates(knowledge, pin)
    below_floor = _below_floor(knowledge, target)
    if below_floor is not None:
        return SetupPlan(
            target, False, None, None, None, None, None, None,
            reasons=(below_floor,), ruled_out=(), upgrades=_upgrades(knowledge, target, releases, pin),
        )  # fmt: skip
    ruled_out: list[RuledOut] = []
    for release in releases:
        python_reason = _python_reason(release, target)
        if python_reason is not None:
            ruled_out.append(RuledOut(release.version, "all variants", python_reason))
            continue
        if target.gpus:
            for variant in sorted(release.cuda_variants, key=_variant_key, reverse=True):
                reason = _cuda_rule_out(knowledge, release, variant, target)
                if reason is None:
                    plan = _plan(target, release, variant, "cuda", f"{INDEX_ROOT}/{variant}", ruled_out)
                    return replace(plan, reasons=plan.reasons + _arch_notes(knowledge, release, variant, target))
                ruled_out.append(RuledOut(release.version, variant, reason))
            continue
        platform_reason = _cpu_platform_reason(release, target)
        if platform_reason is not None:
            ruled_out.append(RuledOut(release.version, "cpu", platform_reason))
            continue
        if target.os == "macos":
            accelerator: Accelerator = "mps" if target.arch == "aarch64" else "cpu"
            return _plan(target, release, "cpu", accelerator, None, ruled_out)
        return _plan(target, release, "cpu", "cpu", f"{INDEX_ROOT}/cpu", ruled_out)
    return SetupPlan(
        target, False, None, None, None, None, None, None,
        reasons=(f"no official PyTorch wheel{' ' + pin if pin else ''} runs on {target.describe()}",),
        ruled_out=tuple(ruled_out),
        upgrades=_upgrades(knowledge, target, releases, pin),
    )  # fmt: skip


def _plan(
    target: Target,
    release: TorchRelease,
    variant: str,
    accelerator: Accelerator,
    index_url: str | None,
    ruled_out: list[RuledOut],
) -> SetupPlan:
    return SetupPlan(
        target=target,
        fits=True,
        torch=release.version,
        torchvision=release.torchvision,
        torchaudio=release.torchaudio,
        variant=variant,
        accelerator=accelerator,
        index_url=index_url,
        reasons=_chosen(target, release, variant, accelerator, index_url),
        ruled_out=tuple(ruled_out),
        upgrades=(),
    )


def _arch_notes(knowledge: Knowledge, release: TorchRelease, variant: str, target: Target) -> tuple[str, ...]:
    """How each GPU runs the chosen wheel: its own machine code, or PTX the driver compiles at first launch."""
    wheel = knowledge.arch_list(release.version, variant, target.platform)
    notes: list[str] = []
    for gpu in target.gpus:
        if wheel is None or gpu.compute_capability is None:
            continue
        support = arch_support(wheel, gpu.compute_capability)
        slow = " (minutes on the first run, cached afterwards)" if support.kind == "ptx" else ""
        notes.append(f"{gpu.name}: {support.detail}{slow}")
    return tuple(dict.fromkeys(notes))  # eight identical GPUs: one line


def _cpu_platform_reason(release: TorchRelease, target: Target) -> str | None:
    version = Version(release.version)
    if target.os == "macos" and target.arch == "x86_64" and version > MACOS_X86_LAST:
        return "no macOS x86_64 wheels after torch 2.2 (Intel Macs were dropped)"
    if target.os == "macos" and target.arch == "aarch64" and version < MPS_FIRST:
        return "no MPS backend before torch 1.12 (arm64 wheels of older releases are not recorded)"
    if target.os == "windows" and target.arch != "x86_64":
        return "no Windows wheels for this architecture in the knowledge base"
    return None


def _upgrades(
    knowledge: Knowledge, target: Target, releases: tuple[TorchRelease, ...], pin: str | None = None
) -> tuple[str, ...]:
    """What would make something fit: a supported Python, a newer driver, a newer --torch pin, or other hardware."""
    upgrades: list[str] = []
    floors = _driver_floors(knowledge, target, releases) if target.gpus else []
    if floors:
        driver, version, variant = floors[0]
        advice = f"upgrade the NVIDIA driver to >= {driver} to run torch {version} {variant}"
        # the newest release may need a much newer driver than a release or two before it
        cheapest = min(floors, key=lambda floor: Version(floor[0]))  # min keeps the newest of equal drivers
        if Version(cheapest[0]) < Version(driver):
            advice += f"; >= {cheapest[0]} is enough for torch {cheapest[1]} {cheapest[2]}"
        upgrades.append(advice)
    for release in releases:
        with_python = replace(target, python=release.python_max)
        if _python_reason(release, target) is not None and _fits_ignoring_python(knowledge, release, with_python):
            upgrades.append(f"use Python {release.python_min}-{release.python_max} (torch {release.version} runs here)")
            break
    if target.gpus and not upgrades:
        ccs = ", ".join(
            f"{gpu.name} ({gpu.compute_capability[0]}.{gpu.compute_capability[1]})"
            for gpu in target.gpus
            if gpu.compute_capability
        )
        covering = _covering(knowledge, target) if pin is not None else ()
        if covering:
            # the pin is what rules the GPUs out: name the wheels that have them (a retired arch's end too)
            first, newest = covering[-1], covering[0]
            upgrades.append(
                f"torch {pin} has no official {target.platform} CUDA wheel with kernels for {ccs or 'these GPUs'}; "
                f"the first that has them is {first.label} (the newest {newest.label}): pin --torch "
                f"{first.release.version} to {newest.release.version}, or leave --torch out for the newest that fits"
            )
            return tuple(upgrades)
        upgrades.append(
            f"no official {target.platform} CUDA wheel in the knowledge base has kernels for "
            f"{ccs or 'these GPUs'}: use a supported GPU, build PyTorch from source, "
            "or install the CPU wheels (--gpu none)"
        )
    return tuple(upgrades)


def _covering(knowledge: Knowledge, target: Target) -> tuple[Wheel, ...]:
    """Official wheels of any release with kernels for every GPU, newest first; machine code first, as arch_fix."""
    ccs = tuple(gpu.compute_capability for gpu in target.gpus if gpu.compute_capability)
    if len(ccs) < len(target.gpus):
        return ()
    for is_native_only in (True, False):
        found = tuple(
            wheels(
                knowledge,
                os=_driver_os(target),
                platform=target.platform,
                compute_capabilities=ccs,
                is_native_only=is_native_only,
                ceiling=_ceiling(knowledge, target),
            )
        )
        if found:
            return found
    return ()


def _fits_ignoring_python(knowledge: Knowledge, release: TorchRelease, target: Target) -> bool:
    if not target.gpus:
        return _cpu_platform_reason(release, target) is None
    if _below_floor(knowledge, target) is not None:
        return False
    return any(_cuda_rule_out(knowledge, release, variant, target) is None for variant in release.cuda_variants)


def _driver_floors(
    knowledge: Knowledge, target: Target, releases: tuple[TorchRelease, ...]
) -> list[tuple[str, str, str]]:
    """(driver, torch, variant) fitting with only a newer driver: each release's lowest driver, newest first."""
    floors: list[tuple[str, str, str]] = []
    newer_driver = replace(target, driver="99999")
    ceiling = _ceiling(knowledge, target)
    gpus = tuple((gpu.name, gpu.compute_capability) for gpu in target.gpus)
    for release in releases:
        if _python_reason(release, target) is not None:
            continue
        options: list[tuple[str, str, str]] = []
        for variant in release.cuda_variants:
            if _cuda_rule_out(knowledge, release, variant, newer_driver) is not None:
                continue
            is_ptx = any(
                gpu.compute_capability is not None
                and (wheel := knowledge.arch_list(release.version, variant, target.platform)) is not None
                and arch_support(wheel, gpu.compute_capability).kind == "ptx"
                for gpu in target.gpus
            )
            requirement = required_driver(knowledge, variant, _driver_os(target), is_ptx_jit=is_ptx)
            if requirement is None or not isinstance(requirement.minimum, str):
                continue
            # a driver past the GPUs' last branch does not exist for them: never advise it
            if ceiling is None or ceiling.allows(requirement.minimum, _driver_os(target)) is True:
                # the GPUs' own first branch when it is above the wheel's CUDA minimum (an RTX 5090 and cu128)
                minimum = requirement.minimum
                below = driver_below_floor(knowledge, minimum, gpus)
                if below is not None:
                    minimum = below.to_install
                options.append((minimum, release.version, variant))
        if options:
            floors.append(min(options, key=lambda option: Version(option[0])))
    return floors
