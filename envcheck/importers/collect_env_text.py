"""Reads the text of `python -m torch.utils.collect_env` as people paste it into bug reports into labelled values,
multi-line sections and package lines: every layout since 2019, tolerant of quoting, fences, CRLF and edits.
Building facts from them is envcheck.importers.collect_env."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

# Canonical label of each value collect_env prints, by our key. The labels have kept their spelling since
# torch 1.0; lines were only added (ROCM/Clang/Libc in 1.7, Python platform in 1.8, CUDA_MODULE_LOADING and
# CPU in 2.0, Is XPU available and Caching allocator config in 2.5+).
LABELS = {
    "torch_version": "PyTorch version",
    "debug_build": "Is debug build",
    "cuda_build": "CUDA used to build PyTorch",
    "rocm_build": "ROCM used to build PyTorch",
    "os": "OS",
    "gcc": "GCC version",
    "clang": "Clang version",
    "cmake": "CMake version",
    "libc": "Libc version",
    "python_version": "Python version",
    "python_platform": "Python platform",
    "cuda_available": "Is CUDA available",
    "cuda_runtime": "CUDA runtime version",
    "cuda_module_loading": "CUDA_MODULE_LOADING set to",
    "gpu_models": "GPU models and configuration",
    "driver": "Nvidia driver version",
    "cudnn": "cuDNN version",
    "xpu_available": "Is XPU available",
    "hip_runtime": "HIP runtime version",
    "miopen_runtime": "MIOpen runtime version",
    "xnnpack_available": "Is XNNPACK available",
    "allocator_config": "Caching allocator config",
    "cpu": "CPU",
    "libraries": "Versions of relevant libraries",
}
# Values that continue on the following lines: the GPU list, cuDNN candidates, lscpu's block, the packages.
MULTILINE = frozenset({"gpu_models", "cudnn", "cpu", "libraries"})
# A blank line ends these (lscpu's block and the package list have no blank lines inside).
ENDS_AT_BLANK = frozenset({"gpu_models", "cudnn"})
# Labels this long or longer may be matched fuzzily: a missing first character, a hand-edited word.
# Shorter ones (OS, CPU) must match exactly, or lscpu's "CPU(s)" would pass for "CPU".
_FUZZY_MIN_CHARS = 8
_FUZZY_CUTOFF = 0.9  # "Torch version" and "ytorch version" pass; "CUDA version" is not "cuDNN version" (0.87)

# Shortenings people type when they retype the block by hand (normalised: lower case, letters and digits only).
_HAND_EDITED = {
    "pytorch": "torch_version",
    "torch": "torch_version",
    "python": "python_version",
    "cudaavailable": "cuda_available",
    "driverversion": "driver",
    "nvidiadriver": "driver",
    "gpumodels": "gpu_models",
    "gpus": "gpu_models",
}
_NORMALISED_LABELS = {re.sub(r"[^a-z0-9]", "", label.lower()): key for key, label in LABELS.items()} | _HAND_EDITED
_PACKAGE_LINE = re.compile(r"^\[?(pip3?|conda)\]\s*(.*)$", re.IGNORECASE)
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MARKUP_TAG = re.compile(r"</?(?:details|summary|pre|code|br|p|b|strong)\b[^>]*>", re.IGNORECASE)
_START_MARKER = "collectingenvironmentinformation"
_FORMAT_MARKERS = (
    re.compile(r"collecting\W*environment\W*information"),
    re.compile(r"torch version\s*:"),  # also "ytorch version:" with the first character lost
    re.compile(r"is debug build\s*:"),
    re.compile(r"cuda used to build pytorch\s*:"),
)


@dataclass(frozen=True, slots=True)
class PackageLine:
    """One line of "Versions of relevant libraries": `[pip3] torch==2.1.0` or `[conda] pytorch 2.1.0 BUILD CHANNEL`."""

    manager: str  # "pip" or "conda"
    name: str  # normalised: lower case, `_` and `.` as `-`
    version: str  # verbatim
    build: str | None  # conda's build string, e.g. py3.10_cuda12.1_cudnn8.9.2_0; None for pip
    channel: str | None  # conda's channel (pytorch, conda-forge, pypi); None for pip


@dataclass(frozen=True, slots=True)
class CollectEnvReport:
    """What a collect_env paste said, before any interpretation."""

    values: dict[str, str]  # key of LABELS -> the text after the label's colon, stripped
    continued: dict[str, tuple[str, ...]]  # key of MULTILINE -> the lines that followed it
    packages: tuple[PackageLine, ...]
    preamble: tuple[str, ...]  # lines before the block: the warnings torch printed while collect_env ran
    has_start_marker: bool = field(default=False)


def decode_text(data: bytes) -> str:
    """The paste as text: UTF-16 when it has a BOM (PowerShell's `>` writes UTF-16LE), else UTF-8, leniently."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def clean_line(line: str) -> str:
    """One line without what pasting adds: quote markers, fences, HTML wrappers, bullets, odd spaces and colons."""
    line = line.replace("\uff1a", ":").replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    line = _MARKUP_TAG.sub("", line).strip()
    while line.startswith(">"):  # e-mail or markdown quoting, possibly nested
        line = line[1:].lstrip()
    if line.startswith(("```", "~~~")):
        return ""
    if line.startswith(("- ", "* ")):
        line = line[2:]
    return line.strip("`").strip()


def match_label(label: str) -> str | None:
    """The LABELS key a (possibly mangled) label stands for, or None."""
    normalised = re.sub(r"[^a-z0-9]", "", label.lower())
    if normalised in _NORMALISED_LABELS:
        return _NORMALISED_LABELS[normalised]
    if len(normalised) < _FUZZY_MIN_CHARS:
        return None
    candidates = [name for name in _NORMALISED_LABELS if len(name) >= _FUZZY_MIN_CHARS]
    close = difflib.get_close_matches(normalised, candidates, n=1, cutoff=_FUZZY_CUTOFF)
    return _NORMALISED_LABELS[close[0]] if close else None


def parse_package_line(line: str) -> PackageLine | None:
    match = _PACKAGE_LINE.match(line)
    if match is None:
        return None
    manager = "conda" if match.group(1).lower() == "conda" else "pip"
    rest = match.group(2).strip()
    if manager == "pip":
        name, separator, version = rest.partition("==")
        name, version, build, channel = name.strip(), version.strip().lstrip("="), None, None
        if not separator:
            return None  # "torch @ file:///..." or "Could not collect": no version to read
    else:
        words = rest.split()
        if len(words) < 2:
            return None
        name, version = words[0], words[1]
        build = words[2] if len(words) > 2 else None
        channel = words[3] if len(words) > 3 else ("pypi" if build == "<pip>" else None)
    if not _PACKAGE_NAME.match(name) or not version[:1].isdigit():
        return None
    return PackageLine(manager, re.sub(r"[-_.]+", "-", name.lower()), version, build, channel)


def parse_collect_env(text: str) -> CollectEnvReport:
    """Split a paste into labelled values; never raises (what is missing is decided by the caller)."""
    values: dict[str, str] = {}
    continued: dict[str, list[str]] = {}
    packages: list[PackageLine] = []
    preamble: list[str] = []
    current: str | None = None
    has_started = has_start_marker = False
    for raw in text.splitlines():
        line = clean_line(raw)
        if not line:
            if current in ENDS_AT_BLANK:
                current = None
            continue
        squeezed = re.sub(r"[^a-z]", "", line.lower())
        if _START_MARKER in squeezed or (len(squeezed) > 20 and _START_MARKER.endswith(squeezed)):
            if has_started and values:
                break  # a second run pasted below the first (before/after a fix): read the first only
            has_started = has_start_marker = True
            current = None
            continue
        package = parse_package_line(line)
        if package is not None:
            packages.append(package)
            has_started, current = True, "libraries"
            continue
        label, colon, value = line.partition(":")
        key = match_label(label) if colon else None
        if key is not None:
            values.setdefault(key, value.strip())  # the first block wins when a paste holds two
            has_started, current = True, key
            continue
        if current in MULTILINE:
            continued.setdefault(current, []).append(line)
        elif not has_started:
            preamble.append(line)
    return CollectEnvReport(
        values=values,
        continued={key: tuple(lines) for key, lines in continued.items()},
        packages=tuple(packages),
        preamble=tuple(preamble),
        has_start_marker=has_start_marker,
    )


def split_runs(text: str) -> tuple[str, ...]:
    """The paste cut into the collect_env runs it holds, in order: one, or more when a report was pasted again
    below itself (before and after a fix). A run starts at its start marker, or at a second `PyTorch version`
    line when the marker was not copied, and takes the lines between the previous run's last line and its start
    with it: the warnings torch printed while that run imported it and the words people write between the two."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    last_block_line = -1  # the last labelled or package line of the current run
    has_values = has_torch = False
    for number, raw in enumerate(lines):
        line = clean_line(raw)
        if not line:
            continue
        squeezed = re.sub(r"[^a-z]", "", line.lower())
        is_marker = _START_MARKER in squeezed or (len(squeezed) > 20 and _START_MARKER.endswith(squeezed))
        label, colon, _ = line.partition(":")
        key = match_label(label) if colon and not is_marker else None
        if (is_marker and has_values) or (key == "torch_version" and has_torch):
            starts.append(last_block_line + 1)
            has_values = has_torch = False
        if is_marker:
            continue
        if key is not None or parse_package_line(line) is not None:
            has_values, last_block_line = True, number
            has_torch = has_torch or key == "torch_version"
    return tuple("".join(lines[start:end]) for start, end in zip(starts, [*starts[1:], len(lines)], strict=True))


def looks_like_collect_env(text: str) -> bool:
    """True for text holding collect_env's markers (its first lines), as loaders' format detection needs."""
    head = text[:20000].lower().replace("\uff1a", ":")
    return any(marker.search(head) for marker in _FORMAT_MARKERS)
