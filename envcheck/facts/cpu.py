"""Facts about the CPU and how much of it this process may really use."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class CpuFacts:
    vendor: str | Unavailable  # GenuineIntel, AuthenticAMD, ARM implementer name
    model: str | Unavailable
    architecture: str
    physical_cores: int | Unavailable
    logical_cores: int
    affinity_cpus: int | Unavailable  # CPUs in this process's affinity mask (taskset, cpusets)
    cgroup_quota_cpus: float | Unavailable | None  # cgroup CPU quota in CPUs; None = no quota
    usable_cpus: float  # the least of logical cores, affinity and quota: what a job can really use
    frequency_current_mhz: float | Unavailable
    frequency_max_mhz: float | Unavailable
    # only the ML-relevant ones present (avx2, avx512f, avx512_bf16, amx_tile, ...; arm64: asimd, sve, bf16);
    # Unavailable when /proc/cpuinfo could not be read, so "no AVX2" is never confused with "did not look"
    isa_flags: tuple[str, ...] | Unavailable
    numa_nodes: int | Unavailable
