"""The compatibility rules that read the tables: which driver a wheel needs, and whether a GPU can run it.

The reasoning, with NVIDIA's and PyTorch's sources, is in docs/compatibility.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from envcheck.facts.common import Unavailable
from envcheck.knowledge.model import CudaToolkit, DriverFloor, Knowledge, WheelArch

_VARIANT = re.compile(r"^cu(\d+)(\d)$")


def cuda_of_variant(variant: str) -> str | None:
    """``cu121`` -> ``12.1``, ``cu80`` -> ``8.0``, ``cu130`` -> ``13.0``; None for cpu/rocm tags."""
    match = _VARIANT.match(variant.strip().lower())
    return f"{int(match.group(1))}.{match.group(2)}" if match else None


@dataclass(frozen=True, slots=True)
class DriverRequirement:
    """The oldest driver that runs a CUDA wheel, and why that is the floor."""

    minimum: str | Unavailable
    toolkit: CudaToolkit
    is_minor_compat: bool  # True: the floor is the major's minor-version-compatibility minimum
    reason: str


def required_driver(
    knowledge: Knowledge,
    variant: str,
    os: Literal["linux", "windows"] = "linux",
    *,
    is_ptx_jit: bool = False,
) -> DriverRequirement | None:
    """The minimum driver for the official PyTorch wheel built with CUDA ``variant`` (``cu121``).

    CUDA 11+: PyTorch's wheels ship their own CUDA runtime (inside the wheel, or as nvidia-*-cu1x
    dependencies), and NVIDIA's minor-version compatibility lets a driver that supports X.0 run any X.y
    runtime, so the floor is the major's minor-compat minimum (525.60.13 for every cu12x wheel), not the
    toolkit's own Table 3 minimum. Before CUDA 11 there is no such guarantee: the toolkit's own minimum applies.
    ``is_ptx_jit``: the GPU runs the wheel only through PTX (see ``arch_support``); minor-version
    compatibility does not cover JIT-compiling PTX newer than the driver, so the toolkit's own minimum applies.
    """
    cuda = cuda_of_variant(variant)
    toolkit = knowledge.cuda_toolkit(cuda) if cuda else None
    if toolkit is None:
        return None
    compat = toolkit.minor_compat_linux_min if os == "linux" else toolkit.minor_compat_windows_min
    own = toolkit.linux_min_driver if os == "linux" else toolkit.windows_min_driver
    # a driver meeting the toolkit's own minimum always works, so the floor is the lower of the two
    # (CUDA 11.0 GA needed only 450.36.06, below the 11.x minor-compat minimum 450.80.02)
    own_is_lower = isinstance(own, str) and isinstance(compat, str) and driver_satisfies(own, compat) is False
    if isinstance(compat, str) and not own_is_lower and not is_ptx_jit:
        return DriverRequirement(
            compat,
            toolkit,
            is_minor_compat=True,
            reason=(
                f"CUDA {toolkit.major}.x minor-version compatibility: a {os} driver supporting CUDA "
                f"{toolkit.major}.0 runs the CUDA {cuda} runtime bundled with the wheel"
            ),
        )
    if is_ptx_jit:
        reason = f"the GPU needs the wheel's PTX JIT-compiled, which needs a driver supporting CUDA {cuda} itself"
    elif compat is None:
        reason = f"CUDA {cuda} predates minor-version compatibility (CUDA 11): the driver must support {cuda} itself"
    else:
        reason = f"the driver must support CUDA {cuda} (its own minimum is the lowest that works)"
    return DriverRequirement(own, toolkit, is_minor_compat=False, reason=reason)


def driver_satisfies(driver: str, minimum: str) -> bool | None:
    """Whether driver version ``driver`` (``535.86.05``) is at least ``minimum``; None if either is unparseable."""
    try:
        return Version(driver.strip()) >= Version(minimum.strip())
    except InvalidVersion:
        return None


@dataclass(frozen=True, slots=True)
class DriverBelowFloor:
    """A driver older than the first branch that drives some of the GPUs (profiles/compat/driver_floors.toml)."""

    driver: str
    floor: DriverFloor
    gpu_names: tuple[str, ...]  # the GPUs the floor covers, each model once

    @property
    def to_install(self) -> str:
        """The oldest driver that drives them, as `setup` and `doctor` both name it: ``570`` (any R570+)."""
        return str(self.floor.first_branch)

    @property
    def summary(self) -> str:
        """``driver 535.104.05 cannot drive NVIDIA GeForce RTX 5090: Blackwell ... need driver branch R570 ...``"""
        return f"driver {self.driver} cannot drive {', '.join(self.gpu_names)}: {self.floor.summary}"


def driver_below_floor(
    knowledge: Knowledge, driver: str | None, gpus: tuple[tuple[str, tuple[int, int] | None], ...]
) -> DriverBelowFloor | None:
    """Whether ``driver`` is older than the first branch any of ``gpus`` (name, compute capability) needs: an
    older driver does not load on them whatever CUDA a wheel asks for. The one judgement `setup` ("nothing
    fits") and `doctor` (gpu.driver_too_old) make; None when it is new enough, not a version, or no floor is known."""
    floor = knowledge.driver_floor(tuple(cc for _, cc in gpus if cc is not None))
    if floor is None or driver is None or floor.allows(driver) is not False:
        return None
    names = tuple(dict.fromkeys(name for name, cc in gpus if cc is not None and floor.covers(cc)))
    return DriverBelowFloor(driver.strip(), floor, names)


@dataclass(frozen=True, slots=True)
class ArchSupport:
    """How (or whether) a wheel can run kernels on a GPU of a given compute capability."""

    kind: Literal["sass", "ptx", "none"]
    arch: str | None  # the sm_XX or compute_XX entry that serves the GPU
    detail: str


def _arch_number(name: str) -> tuple[int, int]:
    # "sm_86" -> (8, 6), "compute_120" -> (12, 0): the last digit is the minor, as in nvcc's naming
    digits = name.split("_", 1)[1].rstrip("af")
    return int(digits[:-1]), int(digits[-1])


def arch_support(wheel: WheelArch, compute_capability: tuple[int, int]) -> ArchSupport:
    """Whether a GPU of ``compute_capability`` can run this wheel's kernels.

    SASS for sm_XY runs on X.Z with Z >= Y (same major only). PTX for compute_XY is JIT-compiled by
    the driver for any GPU of capability >= X.Y, at first launch (slow start, cached afterwards).
    Without either: "no kernel image is available for execution on the device". Neither helps a GPU of a
    newer major than the wheel's CUDA toolkit knows (``WheelArch.newest_known``, cuda_toolkits.toml).
    """
    major, minor = compute_capability
    if wheel.newest_known is not None and major > wheel.newest_known[0]:
        # PTX of an older arch does not rescue it: torch calls the pair incompatible and the toolkit's runtime,
        # cuBLAS and cuDNN predate the GPU (pytorch/pytorch#46794: RTX 3090 on cu102; hyena-dna#76: H100 on cu117)
        newest = f"{wheel.newest_known[0]}.{wheel.newest_known[1]}"
        return ArchSupport(
            "none",
            None,
            f"CUDA {wheel.cuda}, which the wheel was built with, predates compute capability {major}.{minor} "
            f"(it knows GPUs up to {newest}): PTX does not run it, its CUDA libraries have no code for it",
        )
    sass = [a for a in wheel.sass if _arch_number(a)[0] == major and _arch_number(a)[1] <= minor]
    if sass:
        best = max(sass, key=_arch_number)
        return ArchSupport("sass", best, f"machine code for {best} runs on compute capability {major}.{minor}")
    ptx = [a for a in wheel.ptx if _arch_number(a) <= (major, minor)]
    if ptx:
        best = max(ptx, key=_arch_number)
        return ArchSupport(
            "ptx", best, f"no sm_{major}{minor} machine code; the driver JIT-compiles {best} PTX at first launch"
        )
    return ArchSupport(
        "none",
        None,
        f"neither machine code for compute capability {major}.{minor} nor PTX for an older arch: "
        "'no kernel image is available for execution on the device'",
    )
