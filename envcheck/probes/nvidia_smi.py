"""Gets `nvidia-smi -q -x` XML safely, from the live executable or a file, and turns it into GpuFacts.

Owns the guard against hostile XML: entity declarations, internal DTD subsets and external
entities are refused before anything is expanded or fetched.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from xml.parsers import expat

from envcheck.facts.gpu import GpuFacts, no_gpu_facts
from envcheck.probes.bounded import one_line_tail, run_bounded
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.nvidia_smi_xml import gpu_facts_from_tree

ROOT = "nvidia_smi_log"
MAX_BYTES = 64 * 1024 * 1024  # a 16-GPU file is about 1 MiB; anything far larger is not nvidia-smi output
MAX_DEPTH = 32  # nvidia-smi nests 6 deep; a deeper tree is garbage or an attack on the walker
MAX_GPUS = 64  # no node has more (a DGX has 8, an HGX 16); 100,000 <gpu> took minutes to map and print
MAX_ELEMENTS = 500_000  # a GPU is ~800 elements, a few thousand with many processes: 64 GPUs fit with room
_TAIL_CHARS = 300  # how much of a failing nvidia-smi's output a reason quotes


class NvidiaSmiXmlError(ValueError):
    """The bytes are not `nvidia-smi -q -x` output envcheck can read; the message is one line."""


class _Hostile(Exception):
    """Raised from inside expat callbacks to stop parsing at the first dangerous declaration."""


# A plain external DOCTYPE, as nvidia-smi prints it: <!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
_PLAIN_DOCTYPE = re.compile(rb'<!DOCTYPE\s+nvidia_smi_log\s+SYSTEM\s+"[A-Za-z0-9_.\-]*"\s*>')
_XML_ENCODING = re.compile(rb'<\?xml[^>]*encoding\s*=\s*["\']([A-Za-z0-9_.\-]+)["\']')


def _check_bytes(data: bytes) -> None:
    """Refuse what could smuggle a declaration past expat's callbacks or exhaust memory."""
    if not data.strip():
        raise NvidiaSmiXmlError("empty input, not nvidia-smi -q -x output")
    if len(data) > MAX_BYTES:
        raise NvidiaSmiXmlError(f"input of {len(data)} bytes is too large for nvidia-smi output")
    # NUL never occurs in text; it is binary data, or UTF-16/32, which would hide markup from the scans below.
    if b"\x00" in data:
        raise NvidiaSmiXmlError("binary data, not nvidia-smi -q -x output")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NvidiaSmiXmlError(f"not UTF-8 text (byte {error.start})") from None
    declared = _XML_ENCODING.search(data[:200])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
        raise NvidiaSmiXmlError(f"unsupported XML encoding {declared.group(1).decode()!r}")
    if b"<!ENTITY" in data:
        raise NvidiaSmiXmlError("refusing XML with an ENTITY declaration")
    doctypes = data.count(b"<!DOCTYPE")
    if doctypes > 1 or (doctypes == 1 and not _PLAIN_DOCTYPE.search(data)):
        raise NvidiaSmiXmlError("refusing XML with a DOCTYPE other than nvidia-smi's plain external one")


def _parse_safely(data: bytes) -> ET.Element:
    """Parse with expat directly so every declaration callback can refuse, and nothing is ever fetched."""
    _check_bytes(data)
    builder = ET.TreeBuilder()
    depth = elements = gpus = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth, elements, gpus
        depth += 1
        elements += 1
        if depth > MAX_DEPTH:
            raise _Hostile(f"elements nested deeper than {MAX_DEPTH}")
        if depth == 2 and tag == "gpu":
            gpus += 1
            if gpus > MAX_GPUS:
                raise _Hostile(f"more than {MAX_GPUS} <gpu> elements; no node has that many GPUs")
        if elements > MAX_ELEMENTS:
            raise _Hostile(f"more than {MAX_ELEMENTS:,} elements; nvidia-smi output for {MAX_GPUS} GPUs has far fewer")
        builder.start(tag, attributes)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    def doctype(name: str, _system: str | None, _public: str | None, has_internal_subset: bool) -> None:
        if has_internal_subset:
            raise _Hostile("refusing XML with an internal DTD subset")
        if name != ROOT:
            raise _Hostile(f"refusing DOCTYPE {name!r}")

    def declaration(*_: object) -> None:
        raise _Hostile("refusing XML with an entity or notation declaration")

    def external_reference(*_: object) -> int:
        raise _Hostile("refusing XML that references an external entity")

    # The encoding override makes expat read UTF-8 whatever the document claims (checked above).
    parser = expat.ParserCreate(encoding="utf-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = declaration
    parser.UnparsedEntityDeclHandler = declaration
    parser.NotationDeclHandler = declaration
    parser.ExternalEntityRefHandler = external_reference
    try:
        parser.Parse(data, True)
    except _Hostile as error:
        raise NvidiaSmiXmlError(str(error)) from None
    except expat.ExpatError as error:
        raise NvidiaSmiXmlError(f"malformed XML: {expat.ErrorString(error.code)} at line {error.lineno}") from None
    root = builder.close()
    if root.tag != ROOT:
        raise NvidiaSmiXmlError(f"root element is <{root.tag[:40]}>, not <{ROOT}>: not nvidia-smi -q -x output")
    return root


def parse_nvidia_smi_xml(data: bytes, source: str) -> GpuFacts:
    """GpuFacts from `nvidia-smi -q -x` output; `source` is recorded as given ("nvidia-smi-xml:FILE").

    Raises NvidiaSmiXmlError, and nothing else, for input that is not well-formed, safe nvidia-smi XML.
    """
    return gpu_facts_from_tree(_parse_safely(data), source)


def load_nvidia_smi_xml(path: str | os.PathLike[str]) -> GpuFacts:
    """GpuFacts from a saved `nvidia-smi -q -x` file (`envcheck info --from FILE.xml`).

    Every NvidiaSmiXmlError message starts with the path, so callers print it as it is.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise NvidiaSmiXmlError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return parse_nvidia_smi_xml(data, f"nvidia-smi-xml:{path}")
    except NvidiaSmiXmlError as error:
        raise NvidiaSmiXmlError(f"{path}: {error}") from None


def probe_nvidia_smi(context: ProbeContext, executable: str = "nvidia-smi", timeout_s: float = 10.0) -> GpuFacts:
    """GPU facts from a live `nvidia-smi -q -x`, the fallback when the NVML binding cannot be loaded.

    Runs it in its own process group and kills the whole group on timeout: a GPU that fell off the bus
    makes nvidia-smi hang in the kernel, and it may leave children behind.
    """
    try:
        finished = run_bounded([executable, "-q", "-x"], timeout_s, context.environ)
    except FileNotFoundError:
        raise ProbeError(f"{executable} not found (is the NVIDIA driver installed?)") from None
    except OSError as error:
        raise ProbeError(f"cannot run {executable}: {error.strerror or error}") from None
    if finished.over_limit is not None:
        raise ProbeError(finished.over_limit_reason(f"{executable} -q -x"))
    if finished.returncode is None:
        raise ProbeError(
            f"{executable} -q -x did not answer within {timeout_s:g} s (a GPU may have fallen off the bus)"
        )
    if finished.returncode != 0:
        tail = one_line_tail(finished.stdout + b"\n" + finished.stderr, _TAIL_CHARS)
        # nvidia-smi says this, and exits 6, when the driver is loaded but sees no GPU
        if "no devices were found" in tail.lower():
            return no_gpu_facts("nvidia-smi", f"nvidia-smi: {tail}")
        raise ProbeError(f"{executable} -q -x exited with status {finished.returncode}: {tail or '(no output)'}")
    try:
        return parse_nvidia_smi_xml(finished.stdout, "nvidia-smi")
    except NvidiaSmiXmlError as error:
        raise ProbeError(f"{executable} -q -x printed unreadable XML: {error}") from None
