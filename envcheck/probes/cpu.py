"""The CPU probe: model, cores, the CPUs this process may really use, frequency, ML ISA flags, NUMA.

/proc and /sys are read through the context's roots by pure parsers; the few live, process-level
answers (machine, counts, affinity) come from an injectable `CpuRuntime`.
"""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.facts.cpu import CpuFacts
from envcheck.probes import cgroup
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.errors import ProbeError

# x86 `flags` that decide which kernels oneDNN, FBGEMM and PyTorch's CPU dispatch can use.
# Names as arch/x86/include/asm/cpufeatures.h prints them in /proc/cpuinfo.
X86_ML_FLAGS = (
    "avx", "avx2", "fma", "f16c",
    "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8", "avx_vnni",
)  # fmt: skip
# arm64 `Features` (arch/arm64/kernel/cpuinfo.c hwcap_str): asimd is NEON, asimddp the dot product.
ARM_ML_FEATURES = ("asimd", "asimddp", "sve", "sve2", "bf16", "i8mm")

# MIDR implementer and part numbers, named as util-linux lscpu names them (sys-utils/lscpu-arm.c).
# Cloud parts are licensed Arm cores: AWS Graviton2 = Neoverse-N1, Graviton3 = Neoverse-V1,
# Graviton4 and NVIDIA Grace = Neoverse-V2, Ampere Altra = Neoverse-N1 (AmpereOne has its own parts).
ARM_IMPLEMENTERS = {
    0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon",
    0x4E: "NVIDIA", 0x50: "APM", 0x51: "Qualcomm", 0x61: "Apple", 0xC0: "Ampere",
}  # fmt: skip
ARM_PARTS = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD05): "Cortex-A55", (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD41): "Cortex-A78", (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD84): "Neoverse-V3", (0x41, 0xD8E): "Neoverse-N3",
    (0x4E, 0x003): "Denver 2", (0x4E, 0x004): "Carmel",
    (0x48, 0xD01): "Kunpeng-920",
    (0xC0, 0xAC3): "Ampere-1", (0xC0, 0xAC4): "Ampere-1a",
    (0x50, 0x000): "X-Gene",
}  # fmt: skip

_CPUFREQ = ("devices", "system", "cpu", "cpu0", "cpufreq")
_NODE_NAME = re.compile(r"node\d+")
_NO_CPUFREQ = "no cpufreq under /sys/devices/system/cpu/cpu0 (usual in VMs: the hypervisor hides it)"


def _psutil_physical_cores() -> int | None:
    # Imported here: `envcheck --help` must not load hardware libraries (tests/test_layers.py).
    import psutil

    count = psutil.cpu_count(logical=False)
    return count if isinstance(count, int) else None


def _sched_affinity() -> frozenset[int] | None:
    if not hasattr(os, "sched_getaffinity"):  # macOS and Windows have no affinity syscall in os
        return None
    return frozenset(os.sched_getaffinity(0))


@dataclass(frozen=True, slots=True)
class CpuRuntime:
    """The live answers no file under the roots gives; tests pass their own."""

    machine: Callable[[], str] = platform.machine
    logical_cores: Callable[[], int | None] = os.cpu_count
    physical_cores: Callable[[], int | None] = _psutil_physical_cores
    affinity: Callable[[], frozenset[int] | None] = _sched_affinity


@dataclass(frozen=True, slots=True)
class Cpuinfo:
    """What /proc/cpuinfo says, already judged for completeness."""

    vendor: str | Unavailable
    model: str | Unavailable
    isa_flags: tuple[str, ...] | Unavailable
    processor_count: int  # 0 when no "processor" entries were found
    physical_cores: int | None  # unique (physical id, core id) pairs; None when the file has none
    frequency_mhz: float | None  # "cpu MHz" of the first CPU (x86 only)


def parse_cpuinfo(text: str) -> Cpuinfo:
    """Parse /proc/cpuinfo as x86 or arm64 kernels print it; never raises, gaps become Unavailable."""
    blocks = tuple(block for block in (_parse_block(chunk) for chunk in re.split(r"\n\s*\n", text)) if block)
    merged: dict[str, str] = {}
    for block in blocks:
        for key, value in block.items():
            merged.setdefault(key, value)
    vendor, model = _identify(merged)
    return Cpuinfo(
        vendor=vendor,
        model=model,
        isa_flags=_isa_flags(blocks),
        processor_count=sum(1 for block in blocks if "processor" in block),
        physical_cores=_count_core_pairs(blocks),
        frequency_mhz=_float_or_none(merged.get("cpu MHz")),
    )


def probe_cpu(context: ProbeContext, runtime: CpuRuntime | None = None) -> CpuFacts:
    """Collect CpuFacts. Command line equivalents: `lscpu`, `nproc`, `cat /sys/fs/cgroup/cpu.max`."""
    live = runtime or CpuRuntime()
    roots = context.roots
    try:
        info = parse_cpuinfo((roots.proc / "cpuinfo").read_text(errors="replace"))
    except OSError as error:
        reason = Unavailable(f"cannot read {roots.proc / 'cpuinfo'}: {error}")
        info = Cpuinfo(reason, reason, reason, 0, None, None)
    affinity = live.affinity()
    logical = live.logical_cores() or info.processor_count or len(affinity or ())
    if logical <= 0:
        raise ProbeError("cannot count the CPUs: os.cpu_count() and /proc/cpuinfo give nothing")
    affinity_cpus: int | Unavailable = (
        len(affinity) if affinity is not None else Unavailable("os.sched_getaffinity is not available on this platform")
    )
    quota = cgroup.read_cpu_quota_cpus(roots)
    limits = [float(logical)]
    limits += [float(value) for value in (affinity_cpus, quota) if isinstance(value, int | float)]
    current_mhz, max_mhz = _frequencies(roots, info)
    return CpuFacts(
        vendor=info.vendor,
        model=info.model,
        architecture=live.machine(),
        physical_cores=_physical_cores(roots, info, live),
        logical_cores=logical,
        affinity_cpus=affinity_cpus,
        cgroup_quota_cpus=quota,
        usable_cpus=min(limits),
        frequency_current_mhz=current_mhz,
        frequency_max_mhz=max_mhz,
        isa_flags=info.isa_flags,
        numa_nodes=count_numa_nodes(roots),
    )


def count_numa_nodes(roots: HostRoots) -> int | Unavailable:
    """The node<N> directories under /sys/devices/system/node (Documentation/ABI/stable/sysfs-devices-node)."""
    directory = roots.sys / "devices" / "system" / "node"
    try:
        count = sum(1 for entry in directory.iterdir() if _NODE_NAME.fullmatch(entry.name))
    except OSError as error:
        return Unavailable(f"cannot list {directory} (kernel without NUMA, or /sys not mounted): {error}")
    return count or Unavailable(f"no node<N> entries in {directory}")


def count_sys_cores(roots: HostRoots) -> int | None:
    """Physical cores as psutil counts them: distinct core_cpus_list sets (thread_siblings_list before 5.7)."""
    cpu_dir = roots.sys / "devices" / "system" / "cpu"
    cores: set[str] = set()
    try:
        for entry in cpu_dir.glob("cpu[0-9]*"):
            for name in ("core_cpus_list", "thread_siblings_list"):
                try:
                    cores.add((entry / "topology" / name).read_text(errors="replace").strip())
                    break
                except FileNotFoundError:
                    continue
    except OSError:
        return None
    return len(cores) or None


def _physical_cores(roots: HostRoots, info: Cpuinfo, live: CpuRuntime) -> int | Unavailable:
    count = count_sys_cores(roots) or info.physical_cores or live.physical_cores()
    if count:
        return count
    return Unavailable(
        "no core topology in /sys/devices/system/cpu/cpu*/topology or /proc/cpuinfo, and psutil found none"
    )


def _frequencies(roots: HostRoots, info: Cpuinfo) -> tuple[float | Unavailable, float | Unavailable]:
    # cpufreq files are in kHz (Documentation/admin-guide/pm/cpufreq.rst); cpuinfo's "cpu MHz" is MHz.
    directory = roots.sys.joinpath(*_CPUFREQ)
    current = _read_khz_as_mhz(directory / "scaling_cur_freq")
    maximum = _read_khz_as_mhz(directory / "cpuinfo_max_freq")
    if isinstance(current, Unavailable) and info.frequency_mhz is not None:
        current = info.frequency_mhz
    return current, maximum


def _read_khz_as_mhz(path: Path) -> float | Unavailable:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return Unavailable(_NO_CPUFREQ)
    except OSError as error:
        return Unavailable(f"cannot read {path}: {error}")
    khz = _float_or_none(text)
    if khz is None:
        return Unavailable(f"{path} holds {text.strip()[:40]!r}, not a frequency in kHz")
    return khz / 1000.0


def _parse_block(chunk: str) -> dict[str, str]:
    block: dict[str, str] = {}
    for line in chunk.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip():
            block.setdefault(key.strip(), value.strip())
    return block


def _identify(merged: dict[str, str]) -> tuple[str | Unavailable, str | Unavailable]:
    if merged.get("vendor_id"):
        model = merged.get("model name") or Unavailable("/proc/cpuinfo has vendor_id but no model name")
        return merged["vendor_id"], model
    implementer = _hex_or_none(merged.get("CPU implementer"))
    if implementer is None:
        missing = Unavailable("/proc/cpuinfo has neither vendor_id (x86) nor CPU implementer (arm64)")
        return missing, merged.get("model name") or missing
    vendor = ARM_IMPLEMENTERS.get(implementer, f"implementer 0x{implementer:02x}")
    part = _hex_or_none(merged.get("CPU part"))
    if part is not None and (implementer, part) in ARM_PARTS:
        return vendor, ARM_PARTS[(implementer, part)]
    # Older arm64 kernels print "model name"; 32-bit ones print "Processor". Else name the raw part.
    fallback = merged.get("model name") or merged.get("Processor")
    if fallback:
        return vendor, fallback
    if part is not None:
        return vendor, f"unknown part 0x{part:03x} (not in envcheck's table)"
    return vendor, Unavailable("/proc/cpuinfo has a CPU implementer but no CPU part")


def _isa_flags(blocks: tuple[dict[str, str], ...]) -> tuple[str, ...] | Unavailable:
    # Keep only flags every CPU has: on heterogeneous arm64 (big.LITTLE) a thread may land on any core.
    for key, wanted in (("flags", X86_ML_FLAGS), ("Features", ARM_ML_FEATURES)):
        lines = [block[key] for block in blocks if key in block]
        if lines:
            common = set(lines[0].split()).intersection(*(line.split() for line in lines[1:]))
            return tuple(name for name in wanted if name in common)
    return Unavailable("/proc/cpuinfo has no flags (x86) or Features (arm64) line")


def _count_core_pairs(blocks: tuple[dict[str, str], ...]) -> int | None:
    pairs = {(block["physical id"], block["core id"]) for block in blocks if "core id" in block}
    return len(pairs) if pairs and all("physical id" in b for b in blocks if "core id" in b) else None


def _hex_or_none(text: str | None) -> int | None:
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


def _float_or_none(text: str | None) -> float | None:
    """A positive, finite number, else None (cpuinfo and sysfs print "0" or "<unknown>" when they do not know)."""
    try:
        value = float(text) if text else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None
