"""Reads one GPU's facts through an NvmlBackend: each call on its own, so one refusal costs one field.

Once a call says GPU_IS_LOST the GPU is asked nothing more (a GPU off the bus answers slowly or hangs)
and every remaining field says it is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import CLOCK_EVENT_REASONS, COMPUTE_MODES, LOST_GPU, Gpu, GpuProcess, MigDevice
from envcheck.facts.gpu_health import EccCounts, EccFacts, NvLink, RemappedRows, RetiredPages
from envcheck.probes.nvml.backend import (
    FUNCTION_NOT_FOUND,
    GPU_IS_LOST,
    INVALID_ARGUMENT,
    NO_PERMISSION,
    NOT_FOUND,
    NOT_SUPPORTED,
    NvmlBackend,
    NvmlError,
    Process,
)

T = TypeVar("T")

# nvmlBrandType_t as nvidia-smi prints "Product Brand" (nvml.h)
BRANDS = {0: "Unknown", 1: "Quadro", 2: "Tesla", 3: "NVS", 4: "Grid", 5: "GeForce", 6: "Titan",
          7: "NVIDIA Virtual Applications", 8: "NVIDIA Virtual PC", 9: "NVIDIA Virtual Compute Server",
          10: "NVIDIA RTX Virtual Workstation", 11: "NVIDIA Cloud Gaming", 12: "Quadro RTX", 13: "NVIDIA RTX",
          14: "NVIDIA", 15: "GeForce RTX", 16: "Titan RTX"}  # fmt: skip
# nvmlDeviceArchitecture_t as nvidia-smi prints "Product Architecture"
ARCHITECTURES = {2: "Kepler", 3: "Maxwell", 4: "Pascal", 5: "Volta", 6: "Turing", 7: "Ampere",
                 8: "Ada Lovelace", 9: "Hopper", 10: "Blackwell"}  # fmt: skip
_INACTIVE = Unavailable("the link is inactive")
MAX_NVLINKS = 36  # NVML_NVLINK_MAX_LINKS in nvml.h 12.8+; older drivers answer INVALID_ARGUMENT sooner

LOST = LOST_GPU  # one value for a lost GPU, whichever source saw it (facts/gpu.py)


def unavailable(error: NvmlError) -> Unavailable:
    """What an NVML error means for one field, said so the user can act on it."""
    if error.code == NOT_SUPPORTED:
        return Unavailable("not supported")
    if error.code == NO_PERMISSION:
        return Unavailable("no permission", fix="run envcheck as root (NVML restricts this query)")
    if error.code == GPU_IS_LOST:
        return LOST
    if error.code == FUNCTION_NOT_FOUND:
        return Unavailable("the driver is too old for this NVML call", fix="upgrade the NVIDIA driver")
    if error.code == 16:  # NVML_ERROR_RESET_REQUIRED
        return Unavailable("the GPU requires a reset", fix="sudo nvidia-smi -r -i INDEX")
    if error.code == 14:  # NVML_ERROR_CORRUPTED_INFOROM
        return Unavailable("the GPU's InfoROM is corrupted", fix="contact the vendor for an RMA")
    return Unavailable(f"NVML answered {error.name}" + (f" ({error.detail})" if error.detail else ""))


class DeviceReader:
    """Reads fields of GPU `index`, turning each NvmlError into that field's Unavailable."""

    def __init__(self, backend: NvmlBackend, index: int, missing: dict[str, None]) -> None:
        self.backend = backend
        self.index = index
        self.lost: Unavailable | None = None
        self._missing = missing  # shared, insertion-ordered set of calls the driver lacks

    def read(self, name: str, ask: Callable[[], T]) -> T | Unavailable:
        if self.lost is not None:
            return self.lost
        try:
            return ask()
        except NvmlError as error:
            return self.failed(name, error)

    def failed(self, name: str, error: NvmlError) -> Unavailable:
        if error.code == GPU_IS_LOST:
            self.lost = LOST
        if error.code == FUNCTION_NOT_FOUND:
            self._missing[f"nvml:{name}"] = None
        return unavailable(error)

    def gpu(self) -> Gpu:
        b, i, read = self.backend, self.index, self.read
        memory = read("memory_info", lambda: b.memory_info(i))
        bar1 = read("bar1_memory_info", lambda: b.bar1_memory_info(i))
        constraints = read("power_limit_constraints", lambda: b.power_limit_constraints(i))
        pcie_gen = read("pcie_link_generation", lambda: b.pcie_link_generation(i))
        utilization = read("utilization_rates", lambda: b.utilization_rates(i))
        mig_mode = read("mig_mode", lambda: b.mig_mode(i))
        return Gpu(
            index=i,
            name=read("name", lambda: b.name(i)),
            uuid=read("uuid", lambda: b.uuid(i)),
            serial=read("serial", lambda: b.serial(i)),
            pci_bus_id=read("pci_bus_id", lambda: b.pci_bus_id(i)),
            minor_number=read("minor_number", lambda: b.minor_number(i)),
            brand=_named(read("brand", lambda: b.brand(i)), BRANDS),
            board_part_number=read("board_part_number", lambda: b.board_part_number(i)),
            vbios_version=read("vbios_version", lambda: b.vbios_version(i)),
            architecture=_named(read("architecture", lambda: b.architecture(i)), ARCHITECTURES),
            compute_capability=_dotted(read("compute_capability", lambda: b.compute_capability(i))),
            memory_total_bytes=_item(memory, 0),
            memory_used_bytes=_item(memory, 1),
            memory_free_bytes=_item(memory, 2),
            bar1_total_bytes=_item(bar1, 0),
            bar1_used_bytes=_item(bar1, 1),
            power_draw_watts=_watts(read("power_usage", lambda: b.power_usage(i))),
            power_limit_watts=_watts(read("power_limit", lambda: b.power_limit(i))),
            power_default_limit_watts=_watts(read("power_default_limit", lambda: b.power_default_limit(i))),
            power_max_limit_watts=_watts(_item(constraints, 1)),
            temperature_c=read("temperature", lambda: b.temperature(i)),
            temperature_slowdown_c=read("temperature_threshold", lambda: b.temperature_threshold(i, "slowdown")),
            temperature_shutdown_c=read("temperature_threshold", lambda: b.temperature_threshold(i, "shutdown")),
            sm_clock_mhz=read("clock", lambda: b.clock(i, "sm")),
            sm_clock_max_mhz=read("max_clock", lambda: b.max_clock(i, "sm")),
            memory_clock_mhz=read("clock", lambda: b.clock(i, "memory")),
            memory_clock_max_mhz=read("max_clock", lambda: b.max_clock(i, "memory")),
            clock_event_reasons=_reasons(read("clocks_event_reasons", lambda: b.clocks_event_reasons(i))),
            pcie_generation=pcie_gen,
            pcie_generation_max=read("pcie_link_generation_max", lambda: b.pcie_link_generation_max(i)),
            pcie_width=read("pcie_link_width", lambda: b.pcie_link_width(i)),
            pcie_width_max=read("pcie_link_width_max", lambda: b.pcie_link_width_max(i)),
            pcie_replay_count=read("pcie_replay_counter", lambda: b.pcie_replay_counter(i)),
            is_persistence_mode=read("persistence_mode", lambda: b.persistence_mode(i)),
            compute_mode=_named(read("compute_mode", lambda: b.compute_mode(i)), dict(enumerate(COMPUTE_MODES))),
            is_mig_enabled=_item(mig_mode, 0),
            is_mig_enabled_pending=_item(mig_mode, 1),
            mig_devices=self._mig_devices(mig_mode),
            ecc=self._ecc(),
            retired_pages=self._retired_pages(),
            remapped_rows=self._remapped_rows(),
            nvlinks=self.nvlinks(),
            fan_speed_percent=read("fan_speed", lambda: b.fan_speed(i)),
            utilization_gpu_percent=_item(utilization, 0),
            utilization_memory_percent=_item(utilization, 1),
            processes=self._processes(),
        )

    def _mig_devices(self, mode: tuple[bool, bool] | Unavailable) -> tuple[MigDevice, ...] | Unavailable:
        if isinstance(mode, Unavailable) or not mode[0]:
            return mode if isinstance(mode, Unavailable) else ()
        b, i, read = self.backend, self.index, self.read
        slots = read("mig_device_slots", lambda: b.mig_device_slots(i))
        if isinstance(slots, Unavailable):
            return slots
        devices: list[MigDevice] = []
        for slot in range(slots):
            try:
                ids = b.mig_device_ids(i, slot)
            except NvmlError as error:
                if error.code == NOT_FOUND:  # an empty slot: MIG devices need not be contiguous
                    continue
                return self.failed("mig_device_ids", error)
            memory = read("mig_device_memory_info", partial(b.mig_device_memory_info, i, slot))
            attributes = read("mig_device_attributes", partial(b.mig_device_attributes, i, slot))
            devices.append(
                MigDevice(
                    index=len(devices),
                    gpu_instance_id=ids[0],
                    compute_instance_id=ids[1],
                    memory_total_bytes=_item(memory, 0),
                    memory_used_bytes=_item(memory, 1),
                    multiprocessor_count=_item(attributes, 0),
                    slice_count=_item(attributes, 1),
                )
            )
        return tuple(devices)

    def _ecc(self) -> EccFacts:
        b, i, read = self.backend, self.index, self.read
        mode = read("ecc_mode", lambda: b.ecc_mode(i))

        def counts(counter: str) -> EccCounts:
            return EccCounts(
                corrected=read("total_ecc_errors", lambda: b.total_ecc_errors(i, "corrected", counter)),
                uncorrected=read("total_ecc_errors", lambda: b.total_ecc_errors(i, "uncorrected", counter)),
            )

        return EccFacts(_item(mode, 0), _item(mode, 1), counts("volatile"), counts("aggregate"))

    def _retired_pages(self) -> RetiredPages | Unavailable:
        b, i, read = self.backend, self.index, self.read
        pending = read("retired_pages_pending", lambda: b.retired_pages_pending(i))
        if isinstance(pending, Unavailable) and pending.reason == "not supported":
            return pending  # Ampere and later remap rows instead; one reason for the whole section
        single = read("retired_pages", lambda: b.retired_pages(i, "single_bit"))
        double = read("retired_pages", lambda: b.retired_pages(i, "double_bit"))
        return RetiredPages(single_bit_count=single, double_bit_count=double, is_pending=pending)

    def _remapped_rows(self) -> RemappedRows | Unavailable:
        rows = self.read("remapped_rows", lambda: self.backend.remapped_rows(self.index))
        if isinstance(rows, Unavailable):
            return rows  # "not supported" before Ampere
        return RemappedRows(correctable=rows[0], uncorrectable=rows[1], is_pending=rows[2], has_failure=rows[3])

    def nvlinks(self) -> tuple[NvLink, ...] | Unavailable:
        b, i, read = self.backend, self.index, self.read
        links: list[NvLink] = []
        speed: int | Unavailable | None = None
        for link in range(MAX_NVLINKS):
            if self.lost is not None:
                return self.lost
            try:
                is_active = b.nvlink_state(i, link)
            except NvmlError as error:
                # Past the last link NVML says INVALID_ARGUMENT or NOT_SUPPORTED; at link 0 that means none.
                if links and error.code in (INVALID_ARGUMENT, NOT_SUPPORTED):
                    break
                return self.failed("nvlink_state", error)
            if speed is None:
                speed = read("nvlink_speed_mbps", lambda: b.nvlink_speed_mbps(i))
            version = read("nvlink_version", partial(b.nvlink_version, i, link)) if is_active else _INACTIVE
            links.append(NvLink(index=link, is_active=is_active, version=version, speed_mbps=speed))
        return tuple(links)

    def _processes(self) -> tuple[GpuProcess, ...] | Unavailable:
        b, i, read = self.backend, self.index, self.read
        compute = read("compute_processes", lambda: b.compute_processes(i))
        graphics = read("graphics_processes", lambda: b.graphics_processes(i))
        if isinstance(compute, Unavailable):
            return compute
        kinds: dict[int, tuple[Process, str]] = {entry[0]: (entry, "C") for entry in compute}
        for entry in () if isinstance(graphics, Unavailable) else graphics:
            kinds[entry[0]] = (kinds[entry[0]][0], "C+G") if entry[0] in kinds else (entry, "G")
        processes = []
        for pid, ((_, memory, instance), kind) in kinds.items():
            name = read("process_name", partial(b.process_name, pid))
            if isinstance(name, Unavailable) and name.reason.startswith("NVML answered NOT_FOUND"):
                name = Unavailable("not visible here: the process runs in another PID namespace or has exited")
            processes.append(
                GpuProcess(
                    pid=pid,
                    name=name,
                    used_memory_bytes=Unavailable("the driver did not report it") if memory is None else memory,
                    type=kind,
                    gpu_instance_id=instance,
                )
            )
        return tuple(processes)


def _item(value: tuple[T, ...] | Unavailable, position: int) -> T | Unavailable:
    return value if isinstance(value, Unavailable) else value[position]


def _named(value: int | Unavailable, names: dict[int, str]) -> str | Unavailable:
    if isinstance(value, Unavailable):
        return value
    return names.get(value, f"unknown ({value})")


def _dotted(value: tuple[int, int] | Unavailable) -> str | Unavailable:
    return value if isinstance(value, Unavailable) else f"{value[0]}.{value[1]}"


def _watts(milliwatts: int | Unavailable) -> float | Unavailable:
    return milliwatts if isinstance(milliwatts, Unavailable) else milliwatts / 1000


def _reasons(mask: int | Unavailable) -> tuple[str, ...] | Unavailable:
    if isinstance(mask, Unavailable):
        return mask
    return tuple(name for bit, name in enumerate(CLOCK_EVENT_REASONS) if mask & (1 << bit))
