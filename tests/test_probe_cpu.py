"""The CPU probe on recorded /proc and /sys trees of real CPUs, on broken input, and on this machine."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.cpu import CpuFacts
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.cpu import (
    ARM_ML_FEATURES,
    X86_ML_FLAGS,
    CpuRuntime,
    count_numa_nodes,
    parse_cpuinfo,
    probe_cpu,
)

FIXTURES = Path(__file__).parent / "fixtures"
CPUINFO = FIXTURES / "cpuinfo"


def context_of(tree: Path) -> ProbeContext:
    return ProbeContext(roots=HostRoots(proc=tree / "proc", sys=tree / "sys", etc=tree / "etc", root=tree))


def runtime(
    machine: str = "x86_64", logical: int | None = 224, physical: int | None = None, affinity: int | None = 224
) -> CpuRuntime:
    return CpuRuntime(
        machine=lambda: machine,
        logical_cores=lambda: logical,
        physical_cores=lambda: physical,
        affinity=lambda: None if affinity is None else frozenset(range(affinity)),
    )


def assert_well_formed(facts: CpuFacts) -> None:
    """Every Unavailable has a reason, and the facts survive the JSON codec unchanged."""
    for field in dataclasses.fields(facts):
        value = getattr(facts, field.name)
        if isinstance(value, Unavailable):
            assert value.reason.strip(), field.name
    assert decode(CpuFacts, encode(facts)) == facts


def test_sapphire_rapids_with_amx() -> None:
    facts = probe_cpu(context_of(CPUINFO / "xeon-platinum-8480-sapphire-rapids-2s"), runtime())
    assert facts.vendor == "GenuineIntel"
    assert facts.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert facts.isa_flags == X86_ML_FLAGS  # Sapphire Rapids has every one of them
    assert facts.physical_cores == 3  # the recording keeps 4 of 224 threads: (0,0) (0,1) (1,0) (0,0)
    assert facts.frequency_current_mhz == 2000.0
    assert facts.frequency_max_mhz == 3800.0
    assert facts.numa_nodes == 2
    assert_well_formed(facts)


def test_epyc_genoa_zen4_in_a_vm() -> None:
    facts = probe_cpu(context_of(CPUINFO / "epyc-9654-genoa-zen4-vm"), runtime(logical=384, affinity=384))
    assert facts.vendor == "AuthenticAMD"
    assert facts.model == "AMD EPYC 9654 96-Core Processor"
    # Zen 4: AVX-512 with BF16 and VNNI, but no AVX512-FP16, no AMX and no AVX-VNNI (Zen 5 adds it)
    assert facts.isa_flags == (
        "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    )  # fmt: skip
    assert facts.physical_cores == 2  # from sys topology: core_cpus_list "0,192" and "1,193"
    assert facts.frequency_current_mhz == 2400.0  # cpuinfo's "cpu MHz" when cpufreq is hidden
    assert isinstance(facts.frequency_max_mhz, Unavailable) and "cpufreq" in facts.frequency_max_mhz.reason
    assert facts.numa_nodes == 1
    assert_well_formed(facts)


def test_grace_neoverse_v2() -> None:
    facts = probe_cpu(context_of(CPUINFO / "nvidia-grace-neoverse-v2"), runtime("aarch64", logical=72, affinity=72))
    assert (facts.vendor, facts.model, facts.architecture) == ("ARM", "Neoverse-V2", "aarch64")
    assert facts.isa_flags == ARM_ML_FEATURES  # asimd asimddp sve sve2 bf16 i8mm
    assert isinstance(facts.physical_cores, Unavailable)  # no topology recorded and psutil said None
    assert isinstance(facts.frequency_current_mhz, Unavailable)
    assert isinstance(facts.numa_nodes, Unavailable) and "node" in facts.numa_nodes.reason
    assert_well_formed(facts)


def test_usable_cpus_is_the_least_of_cores_affinity_and_quota() -> None:
    tree = CPUINFO / "xeon-platinum-8480-sapphire-rapids-2s"
    assert probe_cpu(context_of(tree), runtime(affinity=8)).usable_cpus == 8.0
    # the kubepods recording has a 2-CPU quota and no cpuinfo at all
    facts = probe_cpu(context_of(FIXTURES / "cgroup" / "v2-kubepods-nested"), runtime(logical=64, affinity=64))
    assert facts.cgroup_quota_cpus == 2.0
    assert facts.usable_cpus == 2.0
    assert isinstance(facts.vendor, Unavailable) and "cpuinfo" in facts.vendor.reason
    assert isinstance(facts.isa_flags, Unavailable)
    assert_well_formed(facts)


def test_without_affinity_support() -> None:
    facts = probe_cpu(context_of(CPUINFO / "nvidia-grace-neoverse-v2"), runtime("aarch64", 72, affinity=None))
    assert isinstance(facts.affinity_cpus, Unavailable) and "sched_getaffinity" in facts.affinity_cpus.reason
    assert facts.usable_cpus == 72.0


@pytest.mark.parametrize(
    ("text", "vendor", "model"),
    [
        ("CPU implementer\t: 0x41\nCPU part\t: 0xd0c\n", "ARM", "Neoverse-N1"),  # Graviton2, Ampere Altra
        ("CPU implementer\t: 0x41\nCPU part\t: 0xd40\n", "ARM", "Neoverse-V1"),  # Graviton3
        ("CPU implementer\t: 0xc0\nCPU part\t: 0xac3\n", "Ampere", "Ampere-1"),
        ("CPU implementer\t: 0x41\nCPU part\t: 0xfff\n", "ARM", "unknown part 0xfff (not in envcheck's table)"),
        ("CPU implementer\t: 0x99\nmodel name\t: ARMv8 Processor rev 1 (v8l)\n", "implementer 0x99",
         "ARMv8 Processor rev 1 (v8l)"),
    ],
)  # fmt: skip
def test_arm_names(text: str, vendor: str, model: str) -> None:
    info = parse_cpuinfo(text)
    assert (info.vendor, info.model) == (vendor, model)


def test_flags_every_cpu_has() -> None:
    text = "processor : 0\nFeatures : fp asimd sve bf16\n\nprocessor : 1\nFeatures : fp asimd\n"
    assert parse_cpuinfo(text).isa_flags == ("asimd",)


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"\x00\xff\xfe\x01", b"flags\nvendor_id\n::::\n", b"\n\n\n"])
def test_malformed_cpuinfo_is_unavailable_never_an_exception(tmp_path: Path, content: bytes) -> None:
    tree = Path(shutil.copytree(CPUINFO / "xeon-platinum-8480-sapphire-rapids-2s", tmp_path / "tree"))
    (tree / "proc" / "cpuinfo").write_bytes(content)
    facts = probe_cpu(context_of(tree), runtime())
    assert isinstance(facts.vendor, Unavailable)
    assert isinstance(facts.model, Unavailable)
    assert isinstance(facts.isa_flags, Unavailable)
    assert_well_formed(facts)


def test_garbage_in_sys_is_unavailable(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(CPUINFO / "xeon-platinum-8480-sapphire-rapids-2s", tmp_path / "tree"))
    cpufreq = tree / "sys/devices/system/cpu/cpu0/cpufreq"
    (cpufreq / "cpuinfo_max_freq").write_text("<unknown>\n")
    (cpufreq / "scaling_cur_freq").write_text("")
    shutil.rmtree(tree / "sys/devices/system/node")
    facts = probe_cpu(context_of(tree), runtime())
    assert isinstance(facts.frequency_max_mhz, Unavailable) and "kHz" in facts.frequency_max_mhz.reason
    assert facts.frequency_current_mhz == 2000.0  # falls back to cpuinfo's cpu MHz
    assert isinstance(facts.numa_nodes, Unavailable)
    assert_well_formed(facts)


@given(st.text())
def test_parse_cpuinfo_never_raises(text: str) -> None:
    parse_cpuinfo(text)


# --- this machine -------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux /proc")
def test_live_machine() -> None:
    facts = probe_cpu(ProbeContext())
    assert facts.logical_cores == os.cpu_count()
    import psutil

    physical = psutil.cpu_count(logical=False)
    assert facts.physical_cores == physical or (physical is None and isinstance(facts.physical_cores, Unavailable))
    if hasattr(os, "sched_getaffinity"):
        assert facts.affinity_cpus == len(os.sched_getaffinity(0))
    first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    line = next((ln for ln in first.splitlines() if ln.startswith(("flags", "Features"))), None)
    if line is not None:
        present = set(line.partition(":")[2].split())
        wanted = X86_ML_FLAGS if line.startswith("flags") else ARM_ML_FEATURES
        assert facts.isa_flags == tuple(name for name in wanted if name in present)
    assert facts.usable_cpus <= facts.logical_cores
    assert facts.numa_nodes == count_numa_nodes(HostRoots())
    assert_well_formed(facts)
