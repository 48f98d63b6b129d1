"""Facts about the environment ML code runs in: the variables that change its behaviour, the CUDA toolkit they point
at, and the NVSwitch fabric manager service that multi-GPU boards need before CUDA can start."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    name: str
    value: str  # "<redacted>" (whole or in part) when it held a secret and redaction is on
    is_redacted: bool


@dataclass(frozen=True, slots=True)
class CudaToolkit:
    """The CUDA toolkit CUDA_HOME (else CUDA_PATH) names: the one torch.utils.cpp_extension builds extensions with."""

    variable: str  # CUDA_HOME or CUDA_PATH
    path: str  # the variable's value
    is_directory: bool  # False: the variable names nothing (a removed toolkit), so extension builds find no nvcc
    # the toolkit's own record, verbatim: version.json's cuda.version ("12.4.1", "11.8.20220929") from CUDA 11.1 on,
    # version.txt's "CUDA Version 10.2.89" before; Unavailable when the folder or the file is missing or unreadable
    version: str | Unavailable


@dataclass(frozen=True, slots=True)
class NvSwitchFabric:
    """NVSwitch chips on the PCI bus and the fabric manager that must configure them before CUDA can start."""

    # NVIDIA PCI functions of class 0x068000 ("bridge, other": NVSwitch) in /sys/bus/pci/devices; `lspci -d 10de::0680`
    nvswitch_count: int | Unavailable
    # an nv-fabricmanager process among /proc/*/comm; Unavailable inside a container (the host's processes are
    # invisible there) or where /proc hides other users' processes
    is_fabric_manager_running: bool | Unavailable


# What snapshots from before these fields decode to.
NOT_RECORDED = Unavailable("this snapshot does not record it (envcheck's live environment probe does)")


@dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    variables: tuple[EnvironmentVariable, ...]
    # None: neither CUDA_HOME nor CUDA_PATH is set. Last, with defaults, so older snapshots still decode.
    cuda_toolkit: CudaToolkit | Unavailable | None = NOT_RECORDED
    fabric: NvSwitchFabric | Unavailable = NOT_RECORDED
