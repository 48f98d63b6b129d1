"""The knowledge base: compatibility tables, GPU specs and workload profiles from profiles/*.toml, typed.

Data, not code: every row names its ``source`` and ``as_of`` date. Loaded once (``load_knowledge()``).
"""

from __future__ import annotations

from envcheck.knowledge.errors import KnowledgeError
from envcheck.knowledge.loader import load_knowledge, load_workload, profiles_root, workload_names
from envcheck.knowledge.model import (
    CudaToolkit,
    CudaToolkitUpdate,
    DriverCeiling,
    DriverFloor,
    GpuSpec,
    Knowledge,
    Provenance,
    TorchRelease,
    WheelArch,
    WorkloadProfile,
    normalise_gpu_name,
)
from envcheck.knowledge.rules import (
    ArchSupport,
    DriverRequirement,
    arch_support,
    cuda_of_variant,
    driver_satisfies,
    required_driver,
)

__all__ = [
    "ArchSupport",
    "CudaToolkit",
    "CudaToolkitUpdate",
    "DriverCeiling",
    "DriverFloor",
    "DriverRequirement",
    "GpuSpec",
    "Knowledge",
    "KnowledgeError",
    "Provenance",
    "TorchRelease",
    "WheelArch",
    "WorkloadProfile",
    "arch_support",
    "cuda_of_variant",
    "driver_satisfies",
    "load_knowledge",
    "load_workload",
    "normalise_gpu_name",
    "profiles_root",
    "required_driver",
    "workload_names",
]
