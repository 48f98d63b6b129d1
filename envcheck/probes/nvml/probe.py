"""The GPU probe: NVML through a backend, else `nvidia-smi -q -x`, else a plain reason why there is no GPU.

Nothing here starts a thread or registers an exit hook, so a call hung on a lost GPU never blocks exit;
the collector's deadline gives up on it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu, GpuFacts, no_gpu_facts
from envcheck.facts.gpu_health import (
    LINK_ACROSS_SOCKETS,
    LINK_HOST_BRIDGE,
    LINK_NVLINK,
    LINK_PCIE_SWITCH,
    LINK_SAME_SOCKET,
    GpuLink,
    NvLink,
)
from envcheck.probes.bounded import started_pids
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.nvidia_smi import probe_nvidia_smi
from envcheck.probes.nvml.absence import explain_no_gpu
from envcheck.probes.nvml.backend import (
    DRIVER_NOT_LOADED,
    LIB_RM_VERSION_MISMATCH,
    LIBRARY_NOT_FOUND,
    NO_PERMISSION,
    NvmlBackend,
    NvmlError,
)
from envcheck.probes.nvml.device import DeviceReader, unavailable

T = TypeVar("T")

SOURCE = "nvml"
NVIDIA_SMI_TIMEOUT_S = 10.0
_NVSWITCH = 2  # NVML_NVLINK_DEVICE_TYPE_SWITCH
_GPU = 0  # NVML_NVLINK_DEVICE_TYPE_GPU
# nvmlGpuTopologyLevel_t -> envcheck link name (`nvidia-smi topo -m` legend: PIX/PXB, PHB, NODE, SYS)
_TOPOLOGY = {0: LINK_PCIE_SWITCH, 10: LINK_PCIE_SWITCH, 20: LINK_PCIE_SWITCH, 30: LINK_HOST_BRIDGE,
             40: LINK_SAME_SOCKET, 50: LINK_ACROSS_SOCKETS}  # fmt: skip


def probe_gpu(context: ProbeContext, backend: NvmlBackend | None = None) -> GpuFacts:
    """GPU facts from NVML (`backend`, live by default); never raises for a missing driver or GPU.

    Live only: NVML is asked in a child process (isolated.py), and a crash or hang there raises ProbeError
    (ProbeTimeout) with the reason and a fix. When the NVML library cannot be loaded, falls back to
    `nvidia-smi -q -x`, and when that is missing too, returns no-GPU facts whose reason says why (no
    driver, no device nodes, ...).
    """
    if backend is None:
        from envcheck.probes.nvml.isolated import ask_nvml

        return without_own_processes(facts_from_answer(context, ask_nvml(context).result))
    try:
        return without_own_processes(probe_nvml(backend))
    except NvmlError as error:
        return init_failed(context, error)


def without_own_processes(facts: GpuFacts) -> GpuFacts:
    """The facts without envcheck's own processes: the torch probe's smoke test runs on the GPUs while this
    probe lists who holds GPU memory, and must not be reported as another job. (In a container with its own
    PID namespace NVML reports host PIDs, which cannot be matched; those stay listed.)"""
    own = {os.getpid(), *started_pids()}
    return dataclasses.replace(
        facts,
        gpus=tuple(
            gpu
            if isinstance(gpu.processes, Unavailable)
            else dataclasses.replace(gpu, processes=tuple(p for p in gpu.processes if p.pid not in own))
            for gpu in facts.gpus
        ),
    )


def facts_from_answer(context: ProbeContext, result: GpuFacts | NvmlError) -> GpuFacts:
    """The live NVML's facts; for a failed init, nvidia-smi's when the library is missing, else the reason."""
    if isinstance(result, GpuFacts):
        return result
    if result.code != LIBRARY_NOT_FOUND:
        return init_failed(context, result)
    try:
        return probe_nvidia_smi(context, timeout_s=NVIDIA_SMI_TIMEOUT_S)
    except ProbeError as smi_error:
        smi_problem = str(smi_error)
    reason, fix = explain_no_gpu(context)
    if "not found" not in smi_problem:  # nvidia-smi exists but failed: that is worth showing
        reason += f"; {smi_problem}"
    return no_gpu_facts(SOURCE, reason, fix)


def init_failed(context: ProbeContext, error: NvmlError) -> GpuFacts:
    """No-GPU facts for an nvmlInit (or device count) that failed, saying what the code means."""
    if error.code == LIB_RM_VERSION_MISMATCH:
        return no_gpu_facts(
            SOURCE,
            "the NVIDIA library and the loaded kernel driver are different versions (driver upgraded, not reloaded)",
            "reboot, or reload the kernel module (`sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia`)",
        )
    if error.code == NO_PERMISSION:
        return no_gpu_facts(
            SOURCE, "no permission to open the NVIDIA device nodes", "add the user to the group owning /dev/nvidia*"
        )
    if error.code in (LIBRARY_NOT_FOUND, DRIVER_NOT_LOADED):
        reason, fix = explain_no_gpu(context, f"NVML: {error.name}")
        return no_gpu_facts(SOURCE, reason, fix)
    return no_gpu_facts(SOURCE, f"NVML could not start: {error}")


def probe_nvml(backend: NvmlBackend) -> GpuFacts:
    """GPU facts from an NVML backend. Raises NvmlError only when nvmlInit or the device count fails."""
    backend.init()
    try:
        count = backend.device_count()
        missing: dict[str, None] = {}
        readers = [DeviceReader(backend, index, missing) for index in range(count)]
        gpus = tuple(reader.gpu() for reader in readers)
        facts = GpuFacts(
            source=SOURCE,
            driver_version=_system(backend.driver_version),
            cuda_driver_version=_cuda_version(_system(backend.cuda_driver_version)),
            nvml_version=_system(backend.nvml_version),
            gpu_count=count,
            gpus=gpus,
            topology=_topology(backend, readers, gpus) if count > 1 else (),
            missing_fields=tuple(missing),
            no_gpu_reason=None if count else "the NVIDIA driver is loaded but sees no GPU",
        )
    finally:
        backend.shutdown()
    return facts


def _system(ask: Callable[[], T]) -> T | Unavailable:
    try:
        return ask()
    except NvmlError as error:
        return unavailable(error)


def _cuda_version(version: int | Unavailable) -> str | Unavailable:
    """12040 -> "12.4", as nvidia-smi prints "CUDA Version"."""
    if isinstance(version, Unavailable):
        return version
    return f"{version // 1000}.{version % 1000 // 10}"


def _topology(
    backend: NvmlBackend, readers: list[DeviceReader], gpus: tuple[Gpu, ...]
) -> tuple[GpuLink, ...] | Unavailable:
    """How each pair of GPUs reaches the other: NVLinks first, else the closest common PCIe ancestor.

    Pairs with a lost GPU are left out; NVLinks to an NVSwitch connect every GPU on the switch fabric.
    """
    peers = {a.index: _nvlink_peers(readers[a.index], a.nvlinks) for a in gpus}
    links = []
    failure: Unavailable | None = None
    for a, b in itertools.combinations(gpus, 2):
        if readers[a.index].lost or readers[b.index].lost:
            continue
        direct_a, switch_a = peers[a.index]
        _, switch_b = peers[b.index]
        count = sum(1 for bus_id in direct_a if bus_id == b.pci_bus_id) + min(switch_a, switch_b)
        # asked for every pair, NVLink or not, so each recording holds the PCIe path too
        level = readers[a.index].read(
            "topology_common_ancestor", partial(backend.topology_common_ancestor, a.index, b.index)
        )
        if count:
            links.append(GpuLink(gpu_a=a.index, gpu_b=b.index, link=LINK_NVLINK, nvlink_count=count))
        elif isinstance(level, int):
            links.append(GpuLink(a.index, b.index, _TOPOLOGY.get(level, LINK_ACROSS_SOCKETS), None))
        elif failure is None:
            failure = level
    if failure is not None and not links:
        return failure  # the driver would tell nothing about any pair
    return tuple(links)


def _nvlink_peers(reader: DeviceReader, nvlinks: tuple[NvLink, ...] | Unavailable) -> tuple[list[str], int]:
    """(bus ids at the far end of active GPU-to-GPU links, number of active links to an NVSwitch)."""
    if isinstance(nvlinks, Unavailable):
        return [], 0
    direct: list[str] = []
    switched = 0
    backend, index = reader.backend, reader.index
    for link in nvlinks:
        if link.is_active is not True:
            continue
        kind = reader.read("nvlink_remote_device_type", partial(backend.nvlink_remote_device_type, index, link.index))
        if kind == _NVSWITCH:
            switched += 1
        elif kind == _GPU:
            remote = reader.read(
                "nvlink_remote_pci_bus_id", partial(backend.nvlink_remote_pci_bus_id, index, link.index)
            )
            if isinstance(remote, str):
                direct.append(remote)
    return direct, switched
