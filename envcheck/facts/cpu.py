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
    isa_flags: tuple[str, ...]  # only the ML-relevant ones present: avx2, avx512f, avx512_bf16, amx_tile, ...
    numa_nodes: int | Unavailable
