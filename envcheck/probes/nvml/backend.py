"""The narrow interface between envcheck and NVML: one method per NVML call, plain values in and out.

Live, recording and replaying backends implement `call`; every typed method below funnels into it,
so the three cannot drift apart and every answer has one key in a recording (see `call_key`).
"""

from __future__ import annotations

from typing import Protocol, cast

# NVML return codes (nvml.h, nvmlReturn_t) by the names recordings use.
ERROR_NAMES = {
    1: "UNINITIALIZED",
    2: "INVALID_ARGUMENT",
    3: "NOT_SUPPORTED",
    4: "NO_PERMISSION",
    5: "ALREADY_INITIALIZED",
    6: "NOT_FOUND",
    7: "INSUFFICIENT_SIZE",
    8: "INSUFFICIENT_POWER",
    9: "DRIVER_NOT_LOADED",
    10: "TIMEOUT",
    11: "IRQ_ISSUE",
    12: "LIBRARY_NOT_FOUND",
    13: "FUNCTION_NOT_FOUND",
    14: "CORRUPTED_INFOROM",
    15: "GPU_IS_LOST",
    16: "RESET_REQUIRED",
    17: "OPERATING_SYSTEM",
    18: "LIB_RM_VERSION_MISMATCH",
    19: "IN_USE",
    20: "MEMORY",
    21: "NO_DATA",
    26: "DEPRECATED",
    27: "NOT_READY",
    28: "GPU_NOT_FOUND",
    29: "INVALID_STATE",
    999: "UNKNOWN",
}
ERROR_CODES = {name: code for code, name in ERROR_NAMES.items()}

INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
LIB_RM_VERSION_MISMATCH = 18

# Calls about the whole system; every other call's first argument is a device index.
SYSTEM_CALLS = frozenset({"init", "driver_version", "cuda_driver_version", "nvml_version", "device_count"})

Argument = int | str
# A process as NVML lists it: pid, used memory bytes (None: the driver did not say), MIG GPU instance id.
Process = tuple[int, int | None, int | None]


class NvmlError(Exception):
    """An NVML call answered with an error code (nvmlReturn_t), or a local equivalent (no library)."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"NVML error {self.name}" + (f": {detail}" if detail else ""))

    @property
    def name(self) -> str:
        return ERROR_NAMES.get(self.code, str(self.code))

    @classmethod
    def from_name(cls, name: str) -> NvmlError:
        return cls(ERROR_CODES[name] if name in ERROR_CODES else int(name))


def call_key(method: str, args: tuple[Argument, ...]) -> str:
    """The recording key of a call: `driver_version`, `device[0].memory_info`, `device[1].clock(sm)`."""
    if method in SYSTEM_CALLS or method == "process_name":
        return method + (f"({','.join(map(str, args))})" if args else "")
    rest = args[1:]
    return f"device[{args[0]}].{method}" + (f"({','.join(map(str, rest))})" if rest else "")


class NvmlBackend(Protocol):
    """What envcheck asks NVML. Implementations define `call`; the methods name their nvidia-smi twin."""

    def call(self, method: str, *args: Argument) -> object:
        """Answer NVML call `method` (a method name of this class) or raise NvmlError."""
        ...

    def shutdown(self) -> None:
        """Release NVML (nvmlShutdown); never raises."""
        ...

    def init(self) -> None:
        """nvmlInit: load libnvidia-ml.so.1 and attach to the driver. `nvidia-smi` (any query)."""
        self.call("init")

    def driver_version(self) -> str:
        """`nvidia-smi --query-gpu=driver_version --format=csv`."""
        return cast(str, self.call("driver_version"))

    def cuda_driver_version(self) -> int:
        """Newest CUDA the driver supports, 1000*major + 10*minor. `nvidia-smi` header "CUDA Version"."""
        return cast(int, self.call("cuda_driver_version"))

    def nvml_version(self) -> str:
        """`nvidia-smi -q | grep "NVML Version"` (driver 525+)."""
        return cast(str, self.call("nvml_version"))

    def device_count(self) -> int:
        """`nvidia-smi --query-gpu=count --format=csv`."""
        return cast(int, self.call("device_count"))

    def process_name(self, pid: int) -> str:
        """/proc/PID/comm as this host sees it. `nvidia-smi --query-compute-apps=pid,name --format=csv`."""
        return cast(str, self.call("process_name", pid))

    def name(self, index: int) -> str:
        """`nvidia-smi --query-gpu=name --format=csv`."""
        return cast(str, self.call("name", index))

    def uuid(self, index: int) -> str:
        """`nvidia-smi --query-gpu=uuid --format=csv`."""
        return cast(str, self.call("uuid", index))

    def serial(self, index: int) -> str:
        """`nvidia-smi --query-gpu=serial --format=csv`."""
        return cast(str, self.call("serial", index))

    def pci_bus_id(self, index: int) -> str:
        """ "00000000:3B:00.0". `nvidia-smi --query-gpu=pci.bus_id --format=csv`."""
        return cast(str, self.call("pci_bus_id", index))

    def minor_number(self, index: int) -> int:
        """N of /dev/nvidiaN. `nvidia-smi -q | grep "Minor Number"`."""
        return cast(int, self.call("minor_number", index))

    def brand(self, index: int) -> int:
        """nvmlBrandType_t. `nvidia-smi -q | grep "Product Brand"`."""
        return cast(int, self.call("brand", index))

    def board_part_number(self, index: int) -> str:
        """`nvidia-smi -q | grep "Board Part Number"`."""
        return cast(str, self.call("board_part_number", index))

    def vbios_version(self, index: int) -> str:
        """`nvidia-smi --query-gpu=vbios_version --format=csv`."""
        return cast(str, self.call("vbios_version", index))

    def architecture(self, index: int) -> int:
        """nvmlDeviceArchitecture_t (driver 470+). `nvidia-smi -q | grep "Product Architecture"`."""
        return cast(int, self.call("architecture", index))

    def compute_capability(self, index: int) -> tuple[int, int]:
        """(major, minor). `nvidia-smi --query-gpu=compute_cap --format=csv`."""
        return cast(tuple[int, int], self.call("compute_capability", index))

    def memory_info(self, index: int) -> tuple[int, int, int]:
        """(total, used, free) bytes. `nvidia-smi --query-gpu=memory.total,memory.used,memory.free --format=csv`."""
        return cast(tuple[int, int, int], self.call("memory_info", index))

    def bar1_memory_info(self, index: int) -> tuple[int, int, int]:
        """(total, used, free) BAR1 bytes. `nvidia-smi -q -d MEMORY` ("BAR1 Memory Usage")."""
        return cast(tuple[int, int, int], self.call("bar1_memory_info", index))

    def power_usage(self, index: int) -> int:
        """Milliwatts. `nvidia-smi --query-gpu=power.draw --format=csv`."""
        return cast(int, self.call("power_usage", index))

    def power_limit(self, index: int) -> int:
        """Enforced limit, milliwatts. `nvidia-smi --query-gpu=enforced.power.limit --format=csv`."""
        return cast(int, self.call("power_limit", index))

    def power_default_limit(self, index: int) -> int:
        """Milliwatts. `nvidia-smi --query-gpu=power.default_limit --format=csv`."""
        return cast(int, self.call("power_default_limit", index))

    def power_limit_constraints(self, index: int) -> tuple[int, int]:
        """(min, max) milliwatts. `nvidia-smi --query-gpu=power.min_limit,power.max_limit --format=csv`."""
        return cast(tuple[int, int], self.call("power_limit_constraints", index))

    def temperature(self, index: int) -> int:
        """GPU core, Celsius. `nvidia-smi --query-gpu=temperature.gpu --format=csv`."""
        return cast(int, self.call("temperature", index))

    def temperature_threshold(self, index: int, threshold: str) -> int:
        """Celsius; threshold "slowdown" or "shutdown". `nvidia-smi -q -d TEMPERATURE`."""
        return cast(int, self.call("temperature_threshold", index, threshold))

    def clock(self, index: int, domain: str) -> int:
        """MHz; domain "sm" or "memory". `nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv`."""
        return cast(int, self.call("clock", index, domain))

    def max_clock(self, index: int, domain: str) -> int:
        """MHz; domain "sm" or "memory". `nvidia-smi --query-gpu=clocks.max.sm,clocks.max.mem --format=csv`."""
        return cast(int, self.call("max_clock", index, domain))

    def clocks_event_reasons(self, index: int) -> int:
        """Bitmask of nvmlClocksEventReason*. `nvidia-smi --query-gpu=clocks_event_reasons.active --format=csv`."""
        return cast(int, self.call("clocks_event_reasons", index))

    def pcie_link_generation(self, index: int) -> int:
        """`nvidia-smi --query-gpu=pcie.link.gen.current --format=csv`."""
        return cast(int, self.call("pcie_link_generation", index))

    def pcie_link_generation_max(self, index: int) -> int:
        """`nvidia-smi --query-gpu=pcie.link.gen.max --format=csv`."""
        return cast(int, self.call("pcie_link_generation_max", index))

    def pcie_link_width(self, index: int) -> int:
        """`nvidia-smi --query-gpu=pcie.link.width.current --format=csv`."""
        return cast(int, self.call("pcie_link_width", index))

    def pcie_link_width_max(self, index: int) -> int:
        """`nvidia-smi --query-gpu=pcie.link.width.max --format=csv`."""
        return cast(int, self.call("pcie_link_width_max", index))

    def pcie_replay_counter(self, index: int) -> int:
        """`nvidia-smi -q | grep "Replays Since Reset"`."""
        return cast(int, self.call("pcie_replay_counter", index))

    def persistence_mode(self, index: int) -> bool:
        """`nvidia-smi --query-gpu=persistence_mode --format=csv`."""
        return cast(bool, self.call("persistence_mode", index))

    def compute_mode(self, index: int) -> int:
        """nvmlComputeMode_t. `nvidia-smi --query-gpu=compute_mode --format=csv`."""
        return cast(int, self.call("compute_mode", index))

    def mig_mode(self, index: int) -> tuple[bool, bool]:
        """(current, pending). `nvidia-smi --query-gpu=mig.mode.current,mig.mode.pending --format=csv`."""
        return cast(tuple[bool, bool], self.call("mig_mode", index))

    def mig_device_slots(self, index: int) -> int:
        """How many MIG device handles to try (nvmlDeviceGetMaxMigDeviceCount). `nvidia-smi -L`."""
        return cast(int, self.call("mig_device_slots", index))

    def mig_device_ids(self, index: int, slot: int) -> tuple[int, int]:
        """(GPU instance id, compute instance id); NOT_FOUND for an empty slot. `nvidia-smi mig -lci`."""
        return cast(tuple[int, int], self.call("mig_device_ids", index, slot))

    def mig_device_memory_info(self, index: int, slot: int) -> tuple[int, int, int]:
        """(total, used, free) bytes of one MIG device. `nvidia-smi -q` ("MIG devices" / "FB Memory Usage")."""
        return cast(tuple[int, int, int], self.call("mig_device_memory_info", index, slot))

    def mig_device_attributes(self, index: int, slot: int) -> tuple[int, int]:
        """(multiprocessor count, GPU instance slice count). `nvidia-smi mig -lgi`."""
        return cast(tuple[int, int], self.call("mig_device_attributes", index, slot))

    def ecc_mode(self, index: int) -> tuple[bool, bool]:
        """(current, pending). `nvidia-smi --query-gpu=ecc.mode.current,ecc.mode.pending --format=csv`."""
        return cast(tuple[bool, bool], self.call("ecc_mode", index))

    def total_ecc_errors(self, index: int, error_type: str, counter: str) -> int:
        """error_type "corrected"/"uncorrected", counter "volatile"/"aggregate".

        `nvidia-smi --query-gpu=ecc.errors.uncorrected.volatile.total --format=csv` (and the other three).
        """
        return cast(int, self.call("total_ecc_errors", index, error_type, counter))

    def retired_pages(self, index: int, cause: str) -> int:
        """How many pages; cause "single_bit" (multiple single-bit errors) or "double_bit".

        `nvidia-smi --query-retired-pages=gpu_uuid,retired_pages.address,retired_pages.cause --format=csv`.
        """
        return cast(int, self.call("retired_pages", index, cause))

    def retired_pages_pending(self, index: int) -> bool:
        """`nvidia-smi --query-gpu=retired_pages.pending --format=csv`."""
        return cast(bool, self.call("retired_pages_pending", index))

    def remapped_rows(self, index: int) -> tuple[int, int, bool, bool]:
        """(correctable, uncorrectable, pending, failure).

        `nvidia-smi --query-remapped-rows=gpu_uuid,remapped_rows.correctable,remapped_rows.uncorrectable,`
        `remapped_rows.pending,remapped_rows.failure --format=csv`.
        """
        return cast(tuple[int, int, bool, bool], self.call("remapped_rows", index))

    def nvlink_state(self, index: int, link: int) -> bool:
        """Is the link active; INVALID_ARGUMENT past the last link. `nvidia-smi nvlink --status -i INDEX`."""
        return cast(bool, self.call("nvlink_state", index, link))

    def nvlink_version(self, index: int, link: int) -> int:
        """`nvidia-smi nvlink --capabilities -i INDEX` / `nvidia-smi nvlink --version`."""
        return cast(int, self.call("nvlink_version", index, link))

    def nvlink_remote_device_type(self, index: int, link: int) -> int:
        """0 GPU, 1 IBM NPU, 2 NVSwitch. `nvidia-smi nvlink --remotelinkinfo -i INDEX`."""
        return cast(int, self.call("nvlink_remote_device_type", index, link))

    def nvlink_remote_pci_bus_id(self, index: int, link: int) -> str:
        """Bus id at the far end of the link. `nvidia-smi nvlink --remotelinkinfo -i INDEX`."""
        return cast(str, self.call("nvlink_remote_pci_bus_id", index, link))

    def nvlink_speed_mbps(self, index: int) -> int:
        """Per-link data rate (NVML_FI_DEV_NVLINK_SPEED_MBPS_COMMON). `nvidia-smi nvlink --status -i INDEX`."""
        return cast(int, self.call("nvlink_speed_mbps", index))

    def fan_speed(self, index: int) -> int:
        """Percent. `nvidia-smi --query-gpu=fan.speed --format=csv`."""
        return cast(int, self.call("fan_speed", index))

    def utilization_rates(self, index: int) -> tuple[int, int]:
        """(gpu, memory) percent. `nvidia-smi --query-gpu=utilization.gpu,utilization.memory --format=csv`."""
        return cast(tuple[int, int], self.call("utilization_rates", index))

    def compute_processes(self, index: int) -> tuple[Process, ...]:
        """`nvidia-smi --query-compute-apps=pid,used_memory --format=csv -i INDEX`."""
        return cast(tuple[Process, ...], self.call("compute_processes", index))

    def graphics_processes(self, index: int) -> tuple[Process, ...]:
        """`nvidia-smi -q -d PIDS -i INDEX` (the "G" entries)."""
        return cast(tuple[Process, ...], self.call("graphics_processes", index))

    def topology_common_ancestor(self, index: int, other: int) -> int:
        """nvmlGpuTopologyLevel_t (0 internal ... 50 system). `nvidia-smi topo -m`."""
        return cast(int, self.call("topology_common_ancestor", index, other))
