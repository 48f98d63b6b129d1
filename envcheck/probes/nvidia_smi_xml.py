"""Maps a parsed `nvidia-smi -q -x` tree from any driver of the last decade onto GpuFacts.

Values are read leniently: one unreadable or unsupported value becomes an `Unavailable` with its reason.
Checking the bytes (malformed, hostile) is `envcheck.probes.nvidia_smi`'s job, before this runs.
"""

from __future__ import annotations

import dataclasses
import re
import typing
import xml.etree.ElementTree as ET
from typing import TypeVar

from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import CLOCK_EVENT_REASONS, LOST_GPU, Gpu, GpuFacts, GpuProcess, MigDevice
from envcheck.facts.gpu_health import EccCounts, EccFacts, RemappedRows, RetiredPages

_NO_NVLINKS = Unavailable("`nvidia-smi -q` does not report NVLinks", fix="nvidia-smi nvlink --status")
_NO_TOPOLOGY = Unavailable("`nvidia-smi -q` does not report GPU topology", fix="nvidia-smi topo -m")
_NO_NVML_VERSION = Unavailable("`nvidia-smi -q` does not report the NVML version")
_NO_SLICES = Unavailable("`nvidia-smi -q` does not report MIG slices", fix="nvidia-smi mig -lgi")


def gpu_facts_from_tree(root: ET.Element, source: str, *, format_name: str = "nvidia-smi XML") -> GpuFacts:
    """GpuFacts from the <nvidia_smi_log> element; `source` is recorded as given ("nvidia-smi-xml:FILE").

    `format_name` says, in the reason of a field the file lacks, what the file was (the `-q` text importer
    builds the same tree from text).
    """
    driver = root.findtext("driver_version", "").strip()
    values = _Values(driver or "unknown", format_name)
    gpus = tuple(_gpu(index, element, values) for index, element in enumerate(root.findall("gpu")))
    attached = values.integer(root, "attached_gpus", scope="")
    cuda = values.text(root, "cuda_version", scope="")
    if cuda == "Not Found":  # drivers before 410 print this; it means the field did not exist yet
        cuda = Unavailable("the driver did not report a CUDA version")
    return GpuFacts(
        source=source,
        driver_version=values.text(root, "driver_version", scope=""),
        cuda_driver_version=cuda,
        nvml_version=_NO_NVML_VERSION,
        gpu_count=attached if isinstance(attached, int) else len(gpus),
        gpus=gpus,
        topology=_NO_TOPOLOGY,
        missing_fields=values.missing_fields(),
        no_gpu_reason=None if gpus else "the nvidia-smi output lists no GPUs",
    )


def _gpu(index: int, gpu: ET.Element, values: _Values) -> Gpu:
    bus_id = values.text(gpu, "pci/pci_bus_id")
    if isinstance(bus_id, Unavailable) and gpu.get("id"):
        bus_id = gpu.get("id", "")
    power = "gpu_power_readings" if gpu.find("gpu_power_readings") is not None else "power_readings"
    return Gpu(
        index=index,
        name=values.text(gpu, "product_name"),
        uuid=values.text(gpu, "uuid"),
        serial=values.text(gpu, "serial"),
        pci_bus_id=bus_id,
        minor_number=values.integer(gpu, "minor_number"),
        brand=values.text(gpu, "product_brand"),
        board_part_number=values.text(gpu, "board_part_number"),
        vbios_version=values.text(gpu, "vbios_version"),
        architecture=values.text(gpu, "product_architecture"),
        compute_capability=values.text(gpu, "compute_cap"),
        memory_total_bytes=values.mib(gpu, "fb_memory_usage/total"),
        memory_used_bytes=values.mib(gpu, "fb_memory_usage/used"),
        memory_free_bytes=values.mib(gpu, "fb_memory_usage/free"),
        bar1_total_bytes=values.mib(gpu, "bar1_memory_usage/total"),
        bar1_used_bytes=values.mib(gpu, "bar1_memory_usage/used"),
        # 545+ split the reading into instant and average; nvidia-smi's own table shows the instant one.
        power_draw_watts=values.first_watts(
            gpu, f"{power}/instant_power_draw", f"{power}/power_draw", f"{power}/average_power_draw"
        ),
        # enforced_power_limit is the effective one (the least of the limits set) before 530.
        power_limit_watts=values.first_watts(
            gpu, f"{power}/current_power_limit", f"{power}/enforced_power_limit", f"{power}/power_limit"
        ),
        power_default_limit_watts=values.watts(gpu, f"{power}/default_power_limit"),
        power_max_limit_watts=values.watts(gpu, f"{power}/max_power_limit"),
        temperature_c=values.celsius(gpu, "temperature/gpu_temp"),
        temperature_slowdown_c=values.celsius(gpu, "temperature/gpu_temp_slow_threshold"),
        temperature_shutdown_c=values.celsius(gpu, "temperature/gpu_temp_max_threshold"),
        temperature_max_operating_c=values.celsius(gpu, "temperature/gpu_temp_max_gpu_threshold"),
        sm_clock_mhz=values.mhz(gpu, "clocks/sm_clock"),
        sm_clock_max_mhz=values.mhz(gpu, "max_clocks/sm_clock"),
        memory_clock_mhz=values.mhz(gpu, "clocks/mem_clock"),
        memory_clock_max_mhz=values.mhz(gpu, "max_clocks/mem_clock"),
        clock_event_reasons=_clock_event_reasons(gpu, values),
        pcie_generation=values.integer(gpu, "pci/pci_gpu_link_info/pcie_gen/current_link_gen"),
        pcie_generation_max=values.integer(gpu, "pci/pci_gpu_link_info/pcie_gen/max_link_gen"),
        pcie_width=values.integer(gpu, "pci/pci_gpu_link_info/link_widths/current_link_width", "x"),
        pcie_width_max=values.integer(gpu, "pci/pci_gpu_link_info/link_widths/max_link_width", "x"),
        pcie_replay_count=values.integer(gpu, "pci/replay_counter"),
        is_persistence_mode=values.enabled(gpu, "persistence_mode"),
        compute_mode=values.text(gpu, "compute_mode"),
        is_mig_enabled=values.enabled(gpu, "mig_mode/current_mig"),
        is_mig_enabled_pending=values.enabled(gpu, "mig_mode/pending_mig"),
        mig_devices=_mig_devices(gpu, values),
        ecc=_ecc(gpu, values),
        retired_pages=_retired_pages(gpu, values),
        remapped_rows=_remapped_rows(gpu, values),
        nvlinks=_NO_NVLINKS,
        fan_speed_percent=values.integer(gpu, "fan_speed", "%"),
        utilization_gpu_percent=values.integer(gpu, "utilization/gpu_util", "%"),
        utilization_memory_percent=values.integer(gpu, "utilization/memory_util", "%"),
        processes=_processes(gpu, values),
    )


def _clock_event_reasons(gpu: ET.Element, values: _Values) -> tuple[str, ...] | Unavailable:
    # Renamed from "throttle" to "event" reasons in driver 530 (dtd v12); the reason names stayed.
    for section, prefix in (
        ("clocks_event_reasons", "clocks_event_reason_"),
        ("clocks_throttle_reasons", "clocks_throttle_reason_"),
    ):
        element = gpu.find(section)
        if element is None:
            continue
        active = []
        for name in CLOCK_EVENT_REASONS:
            # the XML says display_clocks_setting where NVML says DisplayClockSetting
            tag = prefix + ("display_clocks_setting" if name == "display_clock_setting" else name)
            if values.text(element, tag, record=False) == "Active":
                active.append(name)
        return tuple(active)
    return values.absent("gpu/clocks_event_reasons")


def _mig_devices(gpu: ET.Element, values: _Values) -> tuple[MigDevice, ...] | Unavailable:
    element = gpu.find("mig_devices")
    if element is None:
        return values.absent("gpu/mig_devices")
    devices = []
    scope = "gpu/mig_devices/mig_device/"
    for position, device in enumerate(element.findall("mig_device")):
        index = values.integer(device, "index", scope=scope)
        devices.append(
            MigDevice(
                index=index if isinstance(index, int) else position,
                gpu_instance_id=values.integer(device, "gpu_instance_id", scope=scope),
                compute_instance_id=values.integer(device, "compute_instance_id", scope=scope),
                memory_total_bytes=values.mib(device, "fb_memory_usage/total", scope=scope),
                memory_used_bytes=values.mib(device, "fb_memory_usage/used", scope=scope),
                multiprocessor_count=values.integer(
                    device, "device_attributes/shared/multiprocessor_count", scope=scope
                ),
                slice_count=_NO_SLICES,
            )
        )
    return tuple(devices)  # the text "None" (no MIG devices) gives ()


def _ecc(gpu: ET.Element, values: _Values) -> EccFacts:
    return EccFacts(
        is_enabled=values.enabled(gpu, "ecc_mode/current_ecc"),
        is_enabled_pending=values.enabled(gpu, "ecc_mode/pending_ecc"),
        volatile=_ecc_counts(gpu, "ecc_errors/volatile", values),
        aggregate=_ecc_counts(gpu, "ecc_errors/aggregate", values),
    )


# Counter names of the layout introduced with driver ~450 (dtd v11); Hopper's drivers split SRAM
# uncorrectable errors into parity and SEC-DED.
_CORRECTED = ("sram_correctable", "dram_correctable")
_UNCORRECTED = ("sram_uncorrectable", "sram_uncorrectable_parity", "sram_uncorrectable_secded", "dram_uncorrectable")


def _ecc_counts(gpu: ET.Element, path: str, values: _Values) -> EccCounts:
    element = gpu.find(path)
    if element is None:
        absent = values.absent(f"gpu/{path}")
        return EccCounts(corrected=absent, uncorrected=absent)
    if element.find("single_bit") is not None or element.find("double_bit") is not None:
        return EccCounts(  # the layout before driver ~450: per-location counters and a total
            corrected=values.integer(gpu, f"{path}/single_bit/total"),
            uncorrected=values.integer(gpu, f"{path}/double_bit/total"),
        )
    return EccCounts(
        corrected=values.total(element, _CORRECTED, f"gpu/{path}"),
        uncorrected=values.total(element, _UNCORRECTED, f"gpu/{path}"),
    )


def _retired_pages(gpu: ET.Element, values: _Values) -> RetiredPages | Unavailable:
    element = gpu.find("retired_pages")
    if element is None or len(element) == 0:
        return _leaf(gpu, "retired_pages", values)
    # pending_blacklist was renamed pending_retirement around driver 450; both mean "reset to apply"
    pending = "pending_retirement" if element.find("pending_retirement") is not None else "pending_blacklist"
    return _whole(
        RetiredPages(
            single_bit_count=values.integer(gpu, "retired_pages/multiple_single_bit_retirement/retired_count"),
            double_bit_count=values.integer(gpu, "retired_pages/double_bit_retirement/retired_count"),
            is_pending=values.yes_no(gpu, f"retired_pages/{pending}"),
        )
    )


def _remapped_rows(gpu: ET.Element, values: _Values) -> RemappedRows | Unavailable:
    element = gpu.find("remapped_rows")
    if element is None or len(element) == 0:
        return _leaf(gpu, "remapped_rows", values)  # <remapped_rows>N/A</remapped_rows> before Ampere
    return _whole(
        RemappedRows(
            correctable=values.integer(gpu, "remapped_rows/remapped_row_corr"),
            uncorrectable=values.integer(gpu, "remapped_rows/remapped_row_unc"),
            is_pending=values.yes_no(gpu, "remapped_rows/remapped_row_pending"),
            has_failure=values.yes_no(gpu, "remapped_rows/remapped_row_failure"),
        )
    )


def _leaf(gpu: ET.Element, path: str, values: _Values) -> Unavailable:
    """A section printed as a bare value ("N/A") or left out: why it has no counters."""
    text = values.text(gpu, path)
    return text if isinstance(text, Unavailable) else Unavailable(f"unreadable value {text[:40]!r}")


_Section = TypeVar("_Section", RetiredPages, RemappedRows)


def _whole(section: _Section) -> _Section | Unavailable:
    """One Unavailable for a section the GPU does not support at all, rather than one per field."""
    fields = [getattr(section, field.name) for field in dataclasses.fields(section)]
    if all(isinstance(field, Unavailable) for field in fields) and len({str(field) for field in fields}) == 1:
        return typing.cast(Unavailable, fields[0])
    return section


def _processes(gpu: ET.Element, values: _Values) -> tuple[GpuProcess, ...] | Unavailable:
    element = gpu.find("processes")
    if element is None:
        return values.absent("gpu/processes")
    processes = []
    scope = "gpu/processes/process_info/"
    for info in element.findall("process_info"):
        pid = values.integer(info, "pid", scope=scope)
        if not isinstance(pid, int):
            continue  # a process entry without a PID says nothing a check could act on
        instance = values.integer(info, "gpu_instance_id", record=False)
        kind = values.text(info, "type", scope=scope)
        processes.append(
            GpuProcess(
                pid=pid,
                name=values.text(info, "process_name", scope=scope),
                used_memory_bytes=values.mib(info, "used_memory", scope=scope),
                type=kind if isinstance(kind, str) else "C",
                gpu_instance_id=instance if isinstance(instance, int) else None,
            )
        )
    return tuple(processes)


# Values nvidia-smi prints instead of a reading, and what each means for the user.
_NO_PERMISSION = Unavailable("no permission", fix="run nvidia-smi as root (or in the video group)")
_SPECIAL_VALUES = {
    "n/a": Unavailable("not supported"),
    "not supported": Unavailable("not supported"),
    "insufficient permissions": _NO_PERMISSION,
    "no permission": _NO_PERMISSION,
    "unknown error": Unavailable("the driver reported an unknown error"),
    "gpu requires reset": Unavailable("the GPU requires a reset", fix="sudo nvidia-smi -r -i <index>"),
    "gpu is lost": LOST_GPU,
    "requested functionality has been deprecated": Unavailable("deprecated by the driver"),
}
_NUMBER = re.compile(r"(-?[0-9]{1,19}(?:\.[0-9]{1,9})?) ?([A-Za-z%]*)", re.ASCII)
_MIB = 1024 * 1024


class _Values:
    """Reads one value at a time: strips units, maps N/A-style words to Unavailable, notes what is missing.

    `path` is relative to the element passed; `scope` says where that element sits, for missing_fields.
    """

    def __init__(self, driver: str, format_name: str) -> None:
        self._not_in_file = Unavailable(f"not in the {format_name} of driver {driver}")
        self._missing: dict[str, None] = {}  # insertion-ordered set

    def missing_fields(self) -> tuple[str, ...]:
        return tuple(self._missing)

    def absent(self, path: str) -> Unavailable:
        self._missing[path] = None
        return self._not_in_file

    def text(self, element: ET.Element, path: str, *, scope: str = "gpu/", record: bool = True) -> str | Unavailable:
        found = element.find(path)
        if found is None:
            return self.absent(scope + path) if record else self._not_in_file
        text = " ".join((found.text or "").split())  # values wrap across lines in some drivers' output
        if not text:
            return Unavailable("empty in this file")
        special = _SPECIAL_VALUES.get(text.strip("[]").lower())
        if special is not None:
            return special
        if text.startswith("[") and text.endswith("]"):  # other bracketed words are driver messages
            return Unavailable(f"nvidia-smi reported {text[1:-1][:60]!r}")
        return text

    def _number(self, element: ET.Element, path: str, unit: str, scope: str, record: bool) -> float | Unavailable:
        text = self.text(element, path, scope=scope, record=record)
        if isinstance(text, Unavailable):
            return text
        match = _NUMBER.fullmatch(text)
        if match is None or match.group(2) != unit:
            return Unavailable(f"unreadable value {text[:40]!r}")
        return float(match.group(1))

    def integer(
        self, element: ET.Element, path: str, unit: str = "", *, scope: str = "gpu/", record: bool = True
    ) -> int | Unavailable:
        number = self._number(element, path, unit, scope, record)
        if isinstance(number, Unavailable):
            return number
        return int(number) if number.is_integer() else Unavailable(f"unreadable value {number!r}")

    def mib(self, element: ET.Element, path: str, *, scope: str = "gpu/") -> int | Unavailable:
        mib = self.integer(element, path, "MiB", scope=scope)
        return mib if isinstance(mib, Unavailable) else mib * _MIB

    def watts(self, element: ET.Element, path: str) -> float | Unavailable:
        return self._number(element, path, "W", "gpu/", True)

    def first_watts(self, element: ET.Element, *paths: str) -> float | Unavailable:
        """The first of several spellings a driver printed; missing only if it printed none."""
        for path in paths:
            if element.find(path) is not None:
                return self.watts(element, path)
        return self.absent("gpu/" + paths[0])

    def celsius(self, element: ET.Element, path: str) -> int | Unavailable:
        return self.integer(element, path, "C")

    def mhz(self, element: ET.Element, path: str) -> int | Unavailable:
        return self.integer(element, path, "MHz")

    def _choice(self, element: ET.Element, path: str, true: str, false: str) -> bool | Unavailable:
        text = self.text(element, path)
        if isinstance(text, Unavailable) or text in (true, false):
            return text == true if isinstance(text, str) else text
        return Unavailable(f"unreadable value {text[:40]!r}")

    def enabled(self, element: ET.Element, path: str) -> bool | Unavailable:
        return self._choice(element, path, "Enabled", "Disabled")

    def yes_no(self, element: ET.Element, path: str) -> bool | Unavailable:
        return self._choice(element, path, "Yes", "No")

    def total(self, element: ET.Element, names: tuple[str, ...], scope: str) -> int | Unavailable:
        """The sum of the counters of `names` the element has; Unavailable when none is a number."""
        counts = [self.integer(element, name, record=False) for name in names if element.find(name) is not None]
        numbers = [count for count in counts if isinstance(count, int)]
        if numbers:
            return sum(numbers)
        if counts:
            return counts[0]
        return self.absent(f"{scope}/{names[0]}")
