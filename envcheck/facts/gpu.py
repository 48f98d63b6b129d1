"""Facts about the machine's NVIDIA GPUs, filled alike by NVML, by `nvidia-smi -q -x` and by an XML file.

The comment on each field gives the `nvidia-smi -q -x` path it comes from, so anyone can check it by hand.

"No GPU" is a fact, not a failure: a `GpuFacts` with `gpus == ()` and `no_gpu_reason` saying why (no
driver library, no devices, `CUDA_VISIBLE_DEVICES` empty, an XML file that lists none). The whole
section is `Unavailable` only when a probe could not find out (it hung, crashed, or the file is unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable
from envcheck.facts.gpu_health import EccFacts, GpuLink, NvLink, RemappedRows, RetiredPages

# Clock event ("throttle") reason names, in NVML's bit order (nvmlClocksEventReason*). The XML spells
# them clocks_event_reason_<name> (driver 530+) or clocks_throttle_reason_<name> (older drivers).
CLOCK_EVENT_REASONS = (
    "gpu_idle",
    "applications_clocks_setting",
    "sw_power_cap",
    "hw_slowdown",
    "sync_boost",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "display_clock_setting",
)

COMPUTE_MODES = ("Default", "Exclusive_Thread", "Prohibited", "Exclusive_Process")

# What every field of a GPU that fell off the bus says once NVML answered GPU_IS_LOST (the live probe), and what a
# pasted GPU the driver could not open carries: one value, so checks know a lost GPU by it whatever its source.
LOST_GPU = Unavailable(
    "the GPU is lost: it fell off the bus",
    fix="check `dmesg | grep -i xid` (Xid 79), then reset it (`sudo nvidia-smi -r -i INDEX`) or reboot",
)
# How facts recorded before Gpu.temperature_max_operating_c existed, and sources that lack it, say so.
NO_MAX_OPERATING_TEMP = Unavailable("the GPU's maximum operating temperature was not read from this source")


@dataclass(frozen=True, slots=True)
class MigDevice:
    """One MIG device: a compute instance inside a GPU instance (mig_devices/mig_device)."""

    index: int  # index
    gpu_instance_id: int | Unavailable  # gpu_instance_id
    compute_instance_id: int | Unavailable  # compute_instance_id
    memory_total_bytes: int | Unavailable  # fb_memory_usage/total
    memory_used_bytes: int | Unavailable  # fb_memory_usage/used
    multiprocessor_count: int | Unavailable  # device_attributes/shared/multiprocessor_count
    slice_count: int | Unavailable  # GPU instance slices (NVML profile info; `nvidia-smi mig -lgi`)


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding memory on a GPU (processes/process_info; nvmlDeviceGetComputeRunningProcesses)."""

    pid: int  # pid: in the driver's PID namespace, which may not be this container's
    name: str | Unavailable  # process_name
    used_memory_bytes: int | Unavailable  # used_memory: N/A under some containers and on Windows WDDM
    type: str  # type: C (compute), G (graphics) or C+G
    gpu_instance_id: int | None  # gpu_instance_id: the MIG instance, None outside MIG


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int  # position in nvidia-smi's order (PCI bus order), as `nvidia-smi -i` counts
    name: str | Unavailable  # product_name
    uuid: str | Unavailable  # uuid
    serial: str | Unavailable  # serial: N/A on consumer cards
    pci_bus_id: str | Unavailable  # pci/pci_bus_id (the gpu element's id attribute as a fallback)
    minor_number: int | Unavailable  # minor_number: N in /dev/nvidiaN
    brand: str | Unavailable  # product_brand: Tesla, GeForce, NVIDIA RTX, ...
    board_part_number: str | Unavailable  # board_part_number
    vbios_version: str | Unavailable  # vbios_version
    architecture: str | Unavailable  # product_architecture (driver 470+)
    compute_capability: str | Unavailable  # compute_cap, "major.minor" (only in recent drivers' XML)

    memory_total_bytes: int | Unavailable  # fb_memory_usage/total
    memory_used_bytes: int | Unavailable  # fb_memory_usage/used
    memory_free_bytes: int | Unavailable  # fb_memory_usage/free
    bar1_total_bytes: int | Unavailable  # bar1_memory_usage/total
    bar1_used_bytes: int | Unavailable  # bar1_memory_usage/used

    power_draw_watts: float | Unavailable  # gpu_power_readings/instant_power_draw or power_draw
    power_limit_watts: float | Unavailable  # current_power_limit (530+) or enforced_power_limit
    power_default_limit_watts: float | Unavailable  # default_power_limit
    power_max_limit_watts: float | Unavailable  # max_power_limit

    temperature_c: int | Unavailable  # temperature/gpu_temp
    temperature_slowdown_c: int | Unavailable  # temperature/gpu_temp_slow_threshold
    temperature_shutdown_c: int | Unavailable  # temperature/gpu_temp_max_threshold

    sm_clock_mhz: int | Unavailable  # clocks/sm_clock
    sm_clock_max_mhz: int | Unavailable  # max_clocks/sm_clock
    memory_clock_mhz: int | Unavailable  # clocks/mem_clock
    memory_clock_max_mhz: int | Unavailable  # max_clocks/mem_clock
    clock_event_reasons: tuple[str, ...] | Unavailable  # the Active ones of CLOCK_EVENT_REASONS

    pcie_generation: int | Unavailable  # pci/pci_gpu_link_info/pcie_gen/current_link_gen
    pcie_generation_max: int | Unavailable  # pci/pci_gpu_link_info/pcie_gen/max_link_gen
    pcie_width: int | Unavailable  # pci/pci_gpu_link_info/link_widths/current_link_width
    pcie_width_max: int | Unavailable  # pci/pci_gpu_link_info/link_widths/max_link_width
    pcie_replay_count: int | Unavailable  # pci/replay_counter

    is_persistence_mode: bool | Unavailable  # persistence_mode
    compute_mode: str | Unavailable  # compute_mode: one of COMPUTE_MODES
    is_mig_enabled: bool | Unavailable  # mig_mode/current_mig
    is_mig_enabled_pending: bool | Unavailable  # mig_mode/pending_mig
    mig_devices: tuple[MigDevice, ...] | Unavailable  # mig_devices

    ecc: EccFacts  # ecc_mode, ecc_errors
    retired_pages: RetiredPages | Unavailable  # retired_pages: "not supported" on Ampere and later
    remapped_rows: RemappedRows | Unavailable  # remapped_rows: "not supported" before Ampere
    nvlinks: tuple[NvLink, ...] | Unavailable  # not in `nvidia-smi -q`; `nvidia-smi nvlink --status`

    fan_speed_percent: int | Unavailable  # fan_speed: N/A on passively cooled datacenter cards
    utilization_gpu_percent: int | Unavailable  # utilization/gpu_util
    utilization_memory_percent: int | Unavailable  # utilization/memory_util
    processes: tuple[GpuProcess, ...] | Unavailable  # processes/process_info
    # temperature/gpu_temp_max_gpu_threshold ("GPU Max Operating Temp", driver 450+): the highest temperature the
    # GPU is specified to run at, below the slowdown one on data-centre boards (last, with a default, so snapshots
    # saved before it still load)
    temperature_max_operating_c: int | Unavailable = NO_MAX_OPERATING_TEMP

    @property
    def is_lost(self) -> bool:
        """The GPU fell off the bus while it was read (NVML answered GPU_IS_LOST), or could not be opened at all."""
        return any(getattr(self, name) == LOST_GPU for name in ("name", "uuid", "pci_bus_id", "processes"))


@dataclass(frozen=True, slots=True)
class LostGpu:
    """A GPU the driver lists but cannot open. nvidia-smi prints, instead of its block, "Unable to determine the
    device handle for GPU 0000:3B:00.0: Unknown Error" (newer drivers "... for GPU1: 0000:3B:00.0: ...", or
    "...: GPU is lost.  Reboot the system to recover this GPU"): nvmlDeviceGetHandleByIndex failed."""

    pci_bus_id: str  # "0000:3B:00.0", as printed
    index: int | None  # "GPU1: ..." on drivers that print it; None otherwise
    error: str  # NVML's words: "Unknown Error", "GPU is lost"
    source_line: str  # the line, as a finding quotes it


@dataclass(frozen=True, slots=True)
class GpuFacts:
    source: str  # "nvml", "nvidia-smi" (live fallback) or "nvidia-smi-xml:FILE"
    driver_version: str | Unavailable  # driver_version, verbatim ("550.54.15")
    cuda_driver_version: str | Unavailable  # cuda_version: the newest CUDA the driver supports ("12.4")
    nvml_version: str | Unavailable  # nvmlSystemGetNVMLVersion; not in the XML
    gpu_count: int  # attached_gpus: what the driver sees; `gpus` may list fewer (`nvidia-smi -i 0`)
    gpus: tuple[Gpu, ...]
    topology: tuple[GpuLink, ...] | Unavailable  # pairs of GPUs; not in `nvidia-smi -q`
    missing_fields: tuple[str, ...]  # XML paths (or NVML calls) the source did not have, e.g. "gpu/compute_cap"
    no_gpu_reason: str | None  # why there are no GPUs; None when there are
    lost_gpus: tuple[LostGpu, ...] = ()  # GPUs a pasted nvidia-smi output could not open ("Unable to determine ...")


def no_gpu_facts(source: str, reason: str, fix: str | None = None) -> GpuFacts:
    """The facts of a machine without a usable NVIDIA GPU, saying why (and what to do, when known)."""
    absent = Unavailable(reason, fix)
    return GpuFacts(
        source=source,
        driver_version=absent,
        cuda_driver_version=absent,
        nvml_version=absent,
        gpu_count=0,
        gpus=(),
        topology=(),
        missing_fields=(),
        no_gpu_reason=reason,
    )
