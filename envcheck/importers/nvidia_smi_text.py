"""Reads the text of `nvidia-smi -q` (what people paste into bug reports) into the same GpuFacts as its XML.

The text is the XML's tree printed as indented "Label : value" lines. It is parsed back into the element
tree `nvidia-smi -q -x` would have printed, with the XML's tag names, and handed to the XML mapper
(`envcheck.probes.nvidia_smi_xml`): one reading of values (units, "N/A", "[Not Supported]") for both formats.
Only the labels whose tag is not the label in lower_snake case need a row in the tables below.

Command line equivalent of what this reads: `nvidia-smi -q` (or `nvidia-smi -a`; `-i N` and `-d ...` give a part).
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

from envcheck.facts.gpu import CLOCK_EVENT_REASONS, GpuFacts, LostGpu
from envcheck.importers.nvidia_smi_layout import SECTIONS
from envcheck.probes.nvidia_smi import MAX_BYTES, MAX_DEPTH, MAX_ELEMENTS, MAX_GPUS, ROOT
from envcheck.probes.nvidia_smi_xml import gpu_facts_from_tree

FORMAT_NAME = "nvidia-smi -q text"

_BANNER = re.compile(r"^\s*=+\s*NVSMI LOG\s*=+\s*$")
_DRIVER_LINE = re.compile(r"^\s*Driver Version\s*:\s*\S", re.MULTILINE)
# "GPU 00000000:3B:00.0" opens a GPU's block; older drivers print a 4-digit domain ("GPU 0000:01:00.0").
_GPU_LINE = re.compile(r"^\s*GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$")
_DETECT_CHARS = 65536  # the banner and the driver line are the first lines of the output
# nvidia-smi's line for a GPU it lists but cannot open (nvmlDeviceGetHandleByIndex failed), in place of its block
# and often before the banner (it goes to stderr). Spellings seen in public reports: "for GPU 0000:0B:00.0: Unknown
# Error" (older drivers), "for GPU0000:07:00.0: Unknown Error", "for GPU1: 0000:34:00.0: Unknown Error" (recent
# ones), "for GPU 0000:03:00.0: GPU is lost.  Reboot the system to recover this GPU" (wrapped on Windows).
_LOST_GPU = re.compile(
    r"Unable to (?:determine|detect) the device handle for GPU\s*(?:(\d{1,3})\s*:\s*)?"
    r"([0-9A-Fa-f]{3,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*:\s*([^.\r\n]{1,80})",
    re.IGNORECASE,
)
_MAX_LOST_LINE_CHARS = 200


class NvidiaSmiTextError(ValueError):
    """The text is not `nvidia-smi -q` output envcheck can read; the message is one line."""


def looks_like_nvidia_smi_q(text: str) -> bool:
    """True for text holding the `-q` banner followed by its "Driver Version : ..." line (not the table of
    plain `nvidia-smi`, which collect_env pastes and bug reports often hold, and which has neither)."""
    head = text[:_DETECT_CHARS]
    for number, line in enumerate(head.splitlines()):
        if _BANNER.match(line):
            rest = head.split("\n", number + 1)[-1]
            return _DRIVER_LINE.search(rest[:2000]) is not None
    return False


def parse_nvidia_smi_text(text: str, source: str) -> GpuFacts:
    """GpuFacts from `nvidia-smi -q` text; `source` is recorded as given ("nvidia-smi-q:FILE").

    Raises NvidiaSmiTextError, and nothing else, for text that is not readable `-q` output.
    """
    if len(text) > MAX_BYTES:
        raise NvidiaSmiTextError(f"input of {len(text)} characters is too large for nvidia-smi output")
    root = _tree([line for line in _log_lines(text) if not _LOST_GPU.search(line)])
    if root.find("driver_version") is None:
        raise NvidiaSmiTextError("no 'Driver Version' line after the NVSMI LOG banner: not nvidia-smi -q output")
    return with_lost_gpus(gpu_facts_from_tree(root, source, format_name=FORMAT_NAME), read_lost_gpus(text))


def read_lost_gpus(text: str) -> tuple[LostGpu, ...]:
    """Every GPU nvidia-smi said it could not open, anywhere in `text` (a -q log, a collect_env paste), once each."""
    found: dict[str, LostGpu] = {}
    for line in text.splitlines():
        match = _LOST_GPU.search(line)
        if match is None:
            continue
        index, bus_id, error = match.groups()
        quoted = " ".join(line[match.start() :].split())[:_MAX_LOST_LINE_CHARS]
        lost = LostGpu(bus_id.upper(), int(index) if index else None, error.strip(), quoted)
        found.setdefault(lost.pci_bus_id, lost)
    return tuple(found.values())


def layout_of_text(text: str) -> ET.Element:
    """The element tree of `-q` text as read, before any value is interpreted (make_layout.py learns from it)."""
    return _tree(_log_lines(text))


def with_lost_gpus(facts: GpuFacts, lost: tuple[LostGpu, ...]) -> GpuFacts:
    """`facts` with the GPUs the driver could not open; when it opened none, that is why there are no GPUs."""
    if not lost:
        return facts
    reason = facts.no_gpu_reason
    if not facts.gpus:
        reason = f"the driver lists {len(lost)} GPU(s) it cannot open: {lost[0].source_line}"
    return dataclasses.replace(facts, lost_gpus=lost, no_gpu_reason=reason)


def _log_lines(text: str) -> list[str]:
    """The lines of the first log: from its banner to the next banner or the end of a pasted code block."""
    lines = text.replace("\u00a0", " ").splitlines()
    start = next((number for number, line in enumerate(lines) if _BANNER.match(line)), None)
    if start is None:
        raise NvidiaSmiTextError("no '==============NVSMI LOG==============' banner: not nvidia-smi -q output")
    log = []
    for line in lines[start + 1 :]:
        if _BANNER.match(line) or line.lstrip().startswith(("```", "~~~", "</details>", "</pre>")):
            break  # a second run (`watch`, a loop) or the end of the paste: only the first log is read
        log.append(line.expandtabs(4).rstrip())
    return log


def _tree(lines: list[str]) -> ET.Element:
    """The element tree of the log. A line's parent is the nearest header line above it indented less;
    lines indented under a line that has a value ("HW Slowdown : Not Active" over "HW Thermal Slowdown")
    are its siblings, as in the XML. A log pasted with its indentation stripped is read by the sections'
    known contents instead (_flat_parent)."""
    root = ET.Element(ROOT)
    stack: list[tuple[int, ET.Element]] = [(-1, root)]  # open headers: (indent, element)
    is_flat = _is_flat(lines)
    elements = gpus = 0
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        gpu = _GPU_LINE.match(line)
        if gpu:
            gpus += 1
            if gpus > MAX_GPUS:
                raise NvidiaSmiTextError(f"more than {MAX_GPUS} GPU blocks; no node has that many GPUs")
            del stack[1:]
            stack.append((indent, ET.SubElement(root, "gpu", id=gpu.group(1))))
            continue
        label, colon, value = line.partition(":")
        label = label.strip()
        if is_flat:
            del stack[_flat_parent(stack, label) + 1 :]
        else:
            while stack[-1][0] >= indent:
                stack.pop()
        parent = stack[-1][1]
        if not label:
            continue
        elements += 1
        if elements > MAX_ELEMENTS:
            raise NvidiaSmiTextError(f"more than {MAX_ELEMENTS:,} lines; {MAX_GPUS} GPUs' nvidia-smi -q has far fewer")
        element = _child(parent, _tag(parent.tag, label))
        if colon:
            element.text = value.strip()
        else:
            if len(stack) >= MAX_DEPTH:
                raise NvidiaSmiTextError(f"sections nested deeper than {MAX_DEPTH}")
            stack.append((indent, element))
    return root


def _is_flat(lines: list[str]) -> bool:
    """True when a GPU's block holds one level of indentation at most (nvidia-smi prints three or more): the
    paste lost it, as GitHub renders a log outside a code block or a chat client collapses spaces."""
    indents: set[int] = set()
    gpu_indent: int | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if _GPU_LINE.match(line):
            gpu_indent = indent if gpu_indent is None else gpu_indent
        elif gpu_indent is not None:
            indents.add(indent)
    return gpu_indent is not None and len(indents) <= 1


def _flat_parent(stack: list[tuple[int, ET.Element]], label: str) -> int:
    """Where in the open sections a line of a flattened log belongs: the innermost one whose known contents
    (nvidia_smi_layout.SECTIONS) hold its tag ("Total" after "BAR1 Memory Usage" stays in it, "Fan Speed" closes
    it); a label no open section knows stays in the innermost one."""
    for depth in range(len(stack) - 1, -1, -1):
        section = stack[depth][1].tag
        tag = _tag(section, label).split("/")[0]
        # a process's fields sit in a <process_info> that _child adds under <processes>
        known = SECTIONS.get("process_info" if section == "processes" else section, frozenset())
        if tag in known:
            return depth
    return len(stack) - 1


def _child(parent: ET.Element, path: str) -> ET.Element:
    """A new element at `path` ("a/b" creates or reuses <a>, then adds <b>) under `parent`."""
    if parent.tag == "processes":  # one <process_info> per process: a repeated label starts the next one
        infos = parent.findall("process_info")
        if not infos or infos[-1].find(path) is not None:
            infos.append(ET.SubElement(parent, "process_info"))
        parent = infos[-1]
    *sections, leaf = path.split("/")
    for section in sections:
        found = parent.find(section)
        parent = found if found is not None else ET.SubElement(parent, section)
    return ET.SubElement(parent, leaf)


def _snake(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _tag(parent: str, label: str) -> str:
    """The XML tag (or "section/tag" path) nvidia-smi uses for `label` inside the section `parent`."""
    name = _snake(label)
    if parent in ("clocks_event_reasons", "clocks_throttle_reasons"):
        reason = _REASONS.get(name, name)
        return f"{parent[:-1]}_{reason}"  # clocks_event_reason_gpu_idle
    if parent.endswith("clocks") and name in _CLOCKS:
        return _CLOCKS[name]
    return _IN_SECTION.get((parent, name)) or _ANYWHERE.get(name) or name


_REASONS = {
    "idle": "gpu_idle",
    "display_clock_setting": "display_clocks_setting",  # the XML's spelling; CLOCK_EVENT_REASONS has the other
    **{name: name for name in CLOCK_EVENT_REASONS if name != "display_clock_setting"},
}
_CLOCKS = {"graphics": "graphics_clock", "sm": "sm_clock", "memory": "mem_clock", "video": "video_clock"}
_ANYWHERE = {"serial_number": "serial", "gpu_uuid": "uuid"}
_POWER_SECTIONS = ("power_readings", "gpu_power_readings", "module_power_readings", "gpu_memory_power_readings")
_IN_SECTION = {
    ("pci", "bus_id"): "pci_bus_id",
    ("pci", "gpu_link_info"): "pci_gpu_link_info",
    ("pci", "replays_since_reset"): "replay_counter",
    ("pci", "bridge_chip"): "pci_bridge_chip",
    ("pci_gpu_link_info", "pcie_generation"): "pcie_gen",
    ("pci_gpu_link_info", "link_width"): "link_widths",
    ("pcie_gen", "max"): "max_link_gen",
    ("pcie_gen", "current"): "current_link_gen",
    ("link_widths", "max"): "max_link_width",
    ("link_widths", "current"): "current_link_width",
    ("mig_mode", "current"): "current_mig",
    ("mig_mode", "pending"): "pending_mig",
    ("ecc_mode", "current"): "current_ecc",
    ("ecc_mode", "pending"): "pending_ecc",
    ("driver_model", "current"): "current_dm",
    ("driver_model", "pending"): "pending_dm",
    ("utilization", "gpu"): "gpu_util",
    ("utilization", "memory"): "memory_util",
    ("utilization", "encoder"): "encoder_util",
    ("utilization", "decoder"): "decoder_util",
    ("volatile", "sram_uncorrectable_sec_ded"): "sram_uncorrectable_secded",
    ("aggregate", "sram_uncorrectable_sec_ded"): "sram_uncorrectable_secded",
    # The text prints one count where the XML nests it beside the page list.
    ("retired_pages", "single_bit_ecc"): "multiple_single_bit_retirement/retired_count",
    ("retired_pages", "double_bit_ecc"): "double_bit_retirement/retired_count",
    ("retired_pages", "pending_page_blacklist"): "pending_blacklist",
    ("retired_pages", "pending_page_retirement"): "pending_retirement",
    ("retired_pages", "pending"): "pending_retirement",  # drivers before ~450
    ("remapped_rows", "correctable_error"): "remapped_row_corr",
    ("remapped_rows", "uncorrectable_error"): "remapped_row_unc",
    ("remapped_rows", "pending"): "remapped_row_pending",
    ("remapped_rows", "remapping_failure_occurred"): "remapped_row_failure",
    ("temperature", "gpu_current_temp"): "gpu_temp",
    ("temperature", "gpu_shutdown_temp"): "gpu_temp_max_threshold",
    ("temperature", "gpu_slowdown_temp"): "gpu_temp_slow_threshold",
    ("temperature", "gpu_max_operating_temp"): "gpu_temp_max_gpu_threshold",
    ("temperature", "memory_current_temp"): "memory_temp",
    ("temperature", "memory_max_operating_temp"): "gpu_temp_max_mem_threshold",
    ("temperature", "gpu_t_limit_temp"): "gpu_temp_tlimit",
    **{(section, "instantaneous_power_draw"): "instant_power_draw" for section in _POWER_SECTIONS},
    # Drivers before ~470 print each "MIG Device" right under the GPU; later ones nest them in "MIG Devices",
    # as the XML does (<mig_devices><mig_device>): both become one <mig_device> per section.
    ("gpu", "mig_device"): "mig_devices/mig_device",
    ("processes", "process_id"): "pid",
    ("processes", "name"): "process_name",
    ("processes", "used_gpu_memory"): "used_memory",
}
