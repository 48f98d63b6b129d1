"""The live NVML backend: the only module that imports `pynvml`, and only inside calls, never at import time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from envcheck.probes.nvml.backend import (
    FUNCTION_NOT_FOUND,
    LIBRARY_NOT_FOUND,
    NO_PERMISSION,
    NOT_FOUND,
    Argument,
    NvmlBackend,
    NvmlError,
    Process,
)

_CLOCKS = {"sm": 1, "memory": 2}  # NVML_CLOCK_SM, NVML_CLOCK_MEM
_THRESHOLDS = {"shutdown": 0, "slowdown": 1}  # NVML_TEMPERATURE_THRESHOLD_*
_ECC_TYPES = {"corrected": 0, "uncorrected": 1}  # NVML_MEMORY_ERROR_TYPE_*
_ECC_COUNTERS = {"volatile": 0, "aggregate": 1}  # NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC
_RETIREMENT_CAUSES = {"single_bit": 0, "double_bit": 1}  # NVML_PAGE_RETIREMENT_CAUSE_*
_NVLINK_SPEED_COMMON = 90  # NVML_FI_DEV_NVLINK_SPEED_MBPS_COMMON
_NOT_AVAILABLE_U64 = 2**64 - 1  # NVML_VALUE_NOT_AVAILABLE_ulonglong: WDDM, some containers
_NOT_AVAILABLE_U32 = 2**32 - 1


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _processes(entries: Any) -> tuple[Process, ...]:
    result = []
    for entry in entries:
        memory = entry.usedGpuMemory
        instance = getattr(entry, "gpuInstanceId", _NOT_AVAILABLE_U32)
        result.append(
            (
                int(entry.pid),
                None if memory is None or memory == _NOT_AVAILABLE_U64 else int(memory),
                None if instance == _NOT_AVAILABLE_U32 else int(instance),
            )
        )
    return tuple(result)


def _clocks_event_reasons(nvml: Any, handle: Any) -> int:
    try:
        return int(nvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
    except nvml.NVMLError as error:
        # The "event" name arrived with driver 535; older drivers only export the "throttle" spelling.
        if error.value != FUNCTION_NOT_FOUND:
            raise
        return int(nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))


def _nvlink_speed(nvml: Any, handle: Any) -> int:
    (value,) = nvml.nvmlDeviceGetFieldValues(handle, [_NVLINK_SPEED_COMMON])
    if value.nvmlReturn != 0:
        raise NvmlError(int(value.nvmlReturn))
    return int(value.value.uiVal)


def _memory(info: Any) -> tuple[int, int, int]:
    return (int(info.total), int(info.used), int(info.free))


def _bar1(info: Any) -> tuple[int, int, int]:
    return (int(info.bar1Total), int(info.bar1Used), int(info.bar1Free))


def _mig(nvml: Any, handle: Any, slot: int) -> Any:
    return nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)


def _mig_device_ids(nvml: Any, handle: Any, slot: int) -> tuple[int, int]:
    mig = _mig(nvml, handle, slot)
    return (int(nvml.nvmlDeviceGetGpuInstanceId(mig)), int(nvml.nvmlDeviceGetComputeInstanceId(mig)))


def _attributes(attributes: Any) -> tuple[int, int]:
    return (int(attributes.multiprocessorCount), int(attributes.gpuInstanceSliceCount))


def _remapped(rows: Any) -> tuple[int, int, bool, bool]:
    return (int(rows[0]), int(rows[1]), bool(rows[2]), bool(rows[3]))


def _utilization(rates: Any) -> tuple[int, int]:
    return (int(rates.gpu), int(rates.memory))


# method name -> how pynvml answers it, given the module, the device handle and the remaining arguments
_DEVICE_CALLS: dict[str, Callable[..., object]] = {
    "name": lambda n, h: _text(n.nvmlDeviceGetName(h)),
    "uuid": lambda n, h: _text(n.nvmlDeviceGetUUID(h)),
    "serial": lambda n, h: _text(n.nvmlDeviceGetSerial(h)),
    "pci_bus_id": lambda n, h: _text(n.nvmlDeviceGetPciInfo(h).busId),
    "minor_number": lambda n, h: int(n.nvmlDeviceGetMinorNumber(h)),
    "brand": lambda n, h: int(n.nvmlDeviceGetBrand(h)),
    "board_part_number": lambda n, h: _text(n.nvmlDeviceGetBoardPartNumber(h)),
    "vbios_version": lambda n, h: _text(n.nvmlDeviceGetVbiosVersion(h)),
    "architecture": lambda n, h: int(n.nvmlDeviceGetArchitecture(h)),
    "compute_capability": lambda n, h: tuple(int(part) for part in n.nvmlDeviceGetCudaComputeCapability(h)),
    "memory_info": lambda n, h: _memory(n.nvmlDeviceGetMemoryInfo(h)),
    "bar1_memory_info": lambda n, h: _bar1(n.nvmlDeviceGetBAR1MemoryInfo(h)),
    "power_usage": lambda n, h: int(n.nvmlDeviceGetPowerUsage(h)),
    "power_limit": lambda n, h: int(n.nvmlDeviceGetEnforcedPowerLimit(h)),
    "power_default_limit": lambda n, h: int(n.nvmlDeviceGetPowerManagementDefaultLimit(h)),
    "power_limit_constraints": lambda n, h: tuple(int(x) for x in n.nvmlDeviceGetPowerManagementLimitConstraints(h)),
    "temperature": lambda n, h: int(n.nvmlDeviceGetTemperature(h, 0)),  # NVML_TEMPERATURE_GPU
    "temperature_threshold": lambda n, h, t: int(n.nvmlDeviceGetTemperatureThreshold(h, _THRESHOLDS[t])),
    "clock": lambda n, h, d: int(n.nvmlDeviceGetClockInfo(h, _CLOCKS[d])),
    "max_clock": lambda n, h, d: int(n.nvmlDeviceGetMaxClockInfo(h, _CLOCKS[d])),
    "clocks_event_reasons": _clocks_event_reasons,
    "pcie_link_generation": lambda n, h: int(n.nvmlDeviceGetCurrPcieLinkGeneration(h)),
    "pcie_link_generation_max": lambda n, h: int(n.nvmlDeviceGetMaxPcieLinkGeneration(h)),
    "pcie_link_width": lambda n, h: int(n.nvmlDeviceGetCurrPcieLinkWidth(h)),
    "pcie_link_width_max": lambda n, h: int(n.nvmlDeviceGetMaxPcieLinkWidth(h)),
    "pcie_replay_counter": lambda n, h: int(n.nvmlDeviceGetPcieReplayCounter(h)),
    "persistence_mode": lambda n, h: bool(n.nvmlDeviceGetPersistenceMode(h)),
    "compute_mode": lambda n, h: int(n.nvmlDeviceGetComputeMode(h)),
    "mig_mode": lambda n, h: tuple(bool(x) for x in n.nvmlDeviceGetMigMode(h)),
    "mig_device_slots": lambda n, h: int(n.nvmlDeviceGetMaxMigDeviceCount(h)),
    "mig_device_ids": _mig_device_ids,
    "mig_device_memory_info": lambda n, h, s: _memory(n.nvmlDeviceGetMemoryInfo(_mig(n, h, s))),
    "mig_device_attributes": lambda n, h, s: _attributes(n.nvmlDeviceGetAttributes(_mig(n, h, s))),
    "ecc_mode": lambda n, h: tuple(bool(x) for x in n.nvmlDeviceGetEccMode(h)),
    "total_ecc_errors": lambda n, h, t, c: int(n.nvmlDeviceGetTotalEccErrors(h, _ECC_TYPES[t], _ECC_COUNTERS[c])),
    "retired_pages": lambda n, h, c: len(n.nvmlDeviceGetRetiredPages(h, _RETIREMENT_CAUSES[c])),
    "retired_pages_pending": lambda n, h: bool(n.nvmlDeviceGetRetiredPagesPendingStatus(h)),
    "remapped_rows": lambda n, h: _remapped(n.nvmlDeviceGetRemappedRows(h)),
    "nvlink_state": lambda n, h, link: bool(n.nvmlDeviceGetNvLinkState(h, link)),
    "nvlink_version": lambda n, h, link: int(n.nvmlDeviceGetNvLinkVersion(h, link)),
    "nvlink_remote_device_type": lambda n, h, link: int(n.nvmlDeviceGetNvLinkRemoteDeviceType(h, link)),
    "nvlink_remote_pci_bus_id": lambda n, h, link: _text(n.nvmlDeviceGetNvLinkRemotePciInfo(h, link).busId),
    "nvlink_speed_mbps": _nvlink_speed,
    "fan_speed": lambda n, h: int(n.nvmlDeviceGetFanSpeed(h)),
    "utilization_rates": lambda n, h: _utilization(n.nvmlDeviceGetUtilizationRates(h)),
    "compute_processes": lambda n, h: _processes(n.nvmlDeviceGetComputeRunningProcesses(h)),
    "graphics_processes": lambda n, h: _processes(n.nvmlDeviceGetGraphicsRunningProcesses(h)),
}

_SYSTEM_CALLS: dict[str, Callable[[Any], object]] = {
    "driver_version": lambda n: _text(n.nvmlSystemGetDriverVersion()),
    "cuda_driver_version": lambda n: int(n.nvmlSystemGetCudaDriverVersion_v2()),
    "nvml_version": lambda n: _text(n.nvmlSystemGetNVMLVersion()),
    "device_count": lambda n: int(n.nvmlDeviceGetCount()),
}


class LiveNvml(NvmlBackend):
    """Asks the real driver through pynvml. `proc` is where process names are read (ProbeContext.roots.proc)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._nvml: ModuleType | None = None
        self._handles: dict[int, object] = {}

    def call(self, method: str, *args: Argument) -> object:
        if method == "init":
            self._init()
            return None
        if method == "process_name":
            return self._process_name(int(args[0]))
        nvml = self._nvml
        if nvml is None:
            raise NvmlError(1, "nvmlInit was not called")  # NVML_ERROR_UNINITIALIZED
        try:
            if method in _SYSTEM_CALLS:
                return _SYSTEM_CALLS[method](nvml)
            if method == "topology_common_ancestor":
                return int(nvml.nvmlDeviceGetTopologyCommonAncestor(self._handle(args[0]), self._handle(args[1])))
            return _DEVICE_CALLS[method](nvml, self._handle(args[0]), *args[1:])
        except nvml.NVMLError as error:
            raise NvmlError(int(error.value)) from None

    def _handle(self, index: Argument) -> object:
        assert self._nvml is not None
        position = int(index)
        if position not in self._handles:
            self._handles[position] = self._nvml.nvmlDeviceGetHandleByIndex(position)
        return self._handles[position]

    def _init(self) -> None:
        try:
            import pynvml  # type: ignore[import-untyped]  # nvidia-ml-py ships no type information
        except ImportError as error:
            raise NvmlError(LIBRARY_NOT_FOUND, f"the nvidia-ml-py binding is not installed ({error})") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            raise NvmlError(int(error.value)) from None
        except OSError as error:  # a library that exists but cannot be loaded (wrong architecture, broken)
            raise NvmlError(LIBRARY_NOT_FOUND, str(error)) from None
        self._nvml = pynvml

    def shutdown(self) -> None:
        nvml, self._nvml = self._nvml, None
        self._handles.clear()
        if nvml is not None:
            # a lost GPU can make shutdown fail; there is nothing left to release then
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()

    def _process_name(self, pid: int) -> str:
        try:
            return (self._proc / str(pid) / "comm").read_text().strip()
        except FileNotFoundError:
            # NVML reports PIDs of the driver's namespace: a container sees other users' processes so
            raise NvmlError(NOT_FOUND, "not visible from this PID namespace") from None
        except PermissionError:
            raise NvmlError(NO_PERMISSION) from None
        except OSError as error:
            raise NvmlError(NOT_FOUND, str(error)) from None
