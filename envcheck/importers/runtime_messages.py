"""Reads the warnings and errors torch, NVML and NumPy print into a pasted report (above the collect_env block or
inside it) into RuntimeMessages: each decoded into its numbers, with the words it came from. Pure text in, facts out.

The wordings are torch's own: c10/cuda/CUDAFunctions.cpp (driver too old, no driver), torch/cuda/__init__.py
(_check_capability: capability not compatible, GPU too old, the 2.8 minimum/maximum and the 2.11 list of built
CCs), torch/backends/cudnn/__init__.py (cuDNN mismatch),
torch/csrc/utils/tensor_numpy.cpp and NumPy's own import guard, nvidia-smi's NVML error."""

from __future__ import annotations

import re

from envcheck.facts.messages import (
    CudnnMismatch,
    DriverTooOld,
    GpuTooOld,
    NoDriver,
    NumpyFailure,
    NvmlMismatch,
    RuntimeMessages,
    UnsupportedArch,
)
from envcheck.importers.collect_env_text import clean_line

# a cited line stays readable in a one-line finding; the warning's URL and advice add nothing past this
MAX_SOURCE_CHARS = 300

_DRIVER_TOO_OLD = re.compile(r"The NVIDIA driver on your system is too old \(found version (\d{4,6})\)\.?", re.I)
_NO_DRIVER = re.compile(r"Found no NVIDIA driver on your system\.?", re.I)
_ARCH = r"(?:sm|compute)_\d+[a-z]?"
# what an arch name is (sm_86, sm_90a, sm_100f, compute_37): a list cut mid-name leaves "sm_6f" or "sm_5"
_ARCH_NAME = re.compile(r"(?:sm|compute)_\d{2,3}[af]?")
_NAME_CHARS = 200  # how far before "with CUDA capability" the GPU's name may start (it runs from the last colon)
_UNSUPPORTED_ARCH = re.compile(
    r"\s*with CUDA capability sm_(\d{2,3})[a-z]? is not compatible"
    r" with the current PyTorch installation\.?"
    rf"(?:\s*The current PyTorch install supports CUDA capabilities\s*((?:{_ARCH}\s*)+)\.?)?",
    re.I,
)
_GPU_TOO_OLD = re.compile(
    r"Found GPU\s*(\d+)\s+(.{1,120}?) which is of cuda capability (\d+)\.(\d+)\.?\s*"
    r"PyTorch no longer supports this GPU because it is too old\.?"
    r"(?:\s*The minimum cuda capability (?:supported by this library|that we support) is (\d+)\.(\d+)\.?)?",
    re.I,
)
# torch 2.8-2.10 (_check_capability): "Found GPU0 NVIDIA GeForce GTX 1080 Ti which is of cuda capability 6.1.
# Minimum and Maximum cuda capability supported by this version of PyTorch is (7.0) - (12.0)". Only a capability
# below the minimum is read: above the maximum it also warned for GPUs the wheel runs (GB10, 12.1 on 12.0 code).
_MIN_MAX = re.compile(
    r"Found GPU\s*(\d+)\s+(.{1,120}?) which is of cuda capability (\d+)\.(\d+)\.?\s*"
    r"Minimum and Maximum cuda capability supported by this version of PyTorch is\s*"
    r"\(\s*(\d+)\.(\d+)\s*\)\s*-\s*\(\s*(\d+)\.(\d+)\s*\)",
    re.I,
)
# torch 2.11+ (_warn_unsupported_code, pytorch/pytorch#166185): "Found GPU0 Tesla V100-PCIE-32GB which is of compute
# capability (CC) 7.0. The following list shows the CCs this version of PyTorch was built for and the hardware CCs it
# supports: - 7.5 which supports hardware CC >=7.5,<8.0 - 8.0 which supports hardware CC >=8.0,<9.0 except {8.7} ..."
_CC_LIST = re.compile(
    r"Found GPU\s*(\d+)\s+(.{1,120}?) which is of compute capability \(CC\) (\d+)\.(\d+)\.?\s*"
    r"The following list shows the CCs this version of PyTorch was built for and the hardware CCs it supports:",
    re.I,
)
_CC_ENTRY = re.compile(
    r"(\d+)\.(\d+) which supports hardware CC\s*"
    r"(?:>=\s*(\d+)\.(\d+)\s*,\s*<\s*(\d+)\.(\d+)(?:\s*except\s*\{([^}]*)\})?|\{([^}]*)\})",
    re.I,
)
_CC_LIST_END = re.compile(
    r"Please follow the instructions|No published PyTorch|Your installed torch|_warn_unsupported_code|UserWarning", re.I
)
_CC_LIST_CHARS = 1200  # how far the list of built CCs may run after its header
_NUMPY = (
    re.compile(r"A module that was compiled using NumPy 1\.x cannot be run in\s*NumPy (\d+\.\d+(?:\.\d+)?)", re.I),
    re.compile(r"Failed to initialize NumPy(?::\s*[^(]*[^(\s])?", re.I),
    re.compile(r"Numpy is not available", re.I),
)
_NVML_MISMATCH = re.compile(
    r"Failed to initialize NVML: Driver/library version mismatch(?:\s*NVML library version: (\d+(?:\.\d+)+))?", re.I
)
_CUDNN_VERSION = r"\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\)|\d{4,6}"
_CUDNN_MISMATCH = re.compile(
    rf"cuDNN version incompatibility: PyTorch was compiled\s+against ({_CUDNN_VERSION}) "
    rf"but (?:found runtime version|linked against) ({_CUDNN_VERSION})",
    re.I,
)


def read_messages(text: str) -> RuntimeMessages:
    """Every message of the kinds above in `text`; lines are joined first, since torch wraps its warnings."""
    joined = " ".join(line for line in (clean_line(raw) for raw in text.splitlines()) if line)
    return RuntimeMessages(
        driver_too_old=_driver_too_old(joined),
        no_driver=NoDriver(source_line(match.group(0))) if (match := _NO_DRIVER.search(joined)) else None,
        unsupported_archs=_unsupported_archs(joined),
        gpus_too_old=_gpus_too_old(joined),
        numpy_failure=_numpy_failure(joined),
        nvml_mismatch=_nvml_mismatch(joined),
        cudnn_mismatch=_cudnn_mismatch(joined),
    )


def decode_cuda_version(number: int) -> str:
    """cudaDriverGetVersion's encoding, 1000 * major + 10 * minor: 9010 -> "9.1", 11040 -> "11.4", 12020 -> "12.2"."""
    return f"{number // 1000}.{number % 1000 // 10}"


def source_line(text: str) -> str:
    """The words as quoted in a finding: on one line, control characters escaped, at most MAX_SOURCE_CHARS."""
    flat = " ".join(text.split())
    printable = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in flat)
    return printable if len(printable) <= MAX_SOURCE_CHARS else printable[: MAX_SOURCE_CHARS - 3] + "..."


def _driver_too_old(text: str) -> DriverTooOld | None:
    match = _DRIVER_TOO_OLD.search(text)
    if match is None:
        return None
    return DriverTooOld(decode_cuda_version(int(match.group(1))), source_line(match.group(0)))


def _capability_of_sm(digits: str) -> str:
    """sm_86 -> "8.6", sm_120 -> "12.0": the last digit is the minor version."""
    return f"{int(digits[:-1])}.{digits[-1]}"


def _unsupported_archs(text: str) -> tuple[UnsupportedArch, ...]:
    found: dict[str, UnsupportedArch] = {}
    previous_end = 0
    # The anchor is searched, then the name looked for behind it: a pattern that starts with the name tries
    # 200 characters at every position and took a minute on a 6 MB paste.
    for match in _UNSUPPORTED_ARCH.finditer(text):
        before = text[max(previous_end, match.start() - _NAME_CHARS) : match.start()].rsplit(":", 1)[-1]
        previous_end = match.end()
        whole = before + match.group(0)
        # the name runs from the previous colon ("UserWarning:"); a wrapped path or "warnings.warn(" is not part of it
        name = re.split(r"\s(?:warnings\.warn\(|return\s)", before.strip())[-1].strip()
        name = re.sub(r"^UserWarning\s*", "", name).strip()
        # a cut list's broken names are left out: "sm_6f" is no architecture, and downstream code parses each name
        arches = tuple(a for a in (match.group(2) or "").split() if _ARCH_NAME.fullmatch(a))
        quoted = source_line(whole[whole.find(name) if name else 0 :])
        found.setdefault(name, UnsupportedArch(name, _capability_of_sm(match.group(1)), arches, quoted))
    for message in _cc_list_warnings(text):
        found.setdefault(message.gpu_name, message)
    return tuple(found.values())


def _gpus_too_old(text: str) -> tuple[GpuTooOld, ...]:
    found: dict[int, GpuTooOld] = {}
    for match in _GPU_TOO_OLD.finditer(text):
        index, name, major, minor, low_major, low_minor = match.groups()
        minimum = f"{low_major}.{low_minor}" if low_major is not None else None
        message = GpuTooOld(int(index), name.strip(), f"{major}.{minor}", minimum, source_line(match.group(0)))
        found.setdefault(int(index), message)
    for match in _MIN_MAX.finditer(text):
        index, name, major, minor, low_major, low_minor = match.groups()[:6]
        if (int(major), int(minor)) < (int(low_major), int(low_minor)):
            message = GpuTooOld(
                int(index), name.strip(), f"{major}.{minor}", f"{low_major}.{low_minor}", source_line(match.group(0))
            )
            found.setdefault(int(index), message)
    return tuple(found.values())


def _cc_list_archs(text: str, device: tuple[int, int]) -> tuple[tuple[str, ...], bool]:
    """The built CCs of torch 2.11+'s list as sm_XY, and whether one of their hardware ranges holds the device."""
    archs: list[str] = []
    is_covered = False
    for entry in _CC_ENTRY.finditer(text):
        major, minor, low_major, low_minor, high_major, high_minor, _excluded, listed = entry.groups()
        archs.append(f"sm_{major}{minor}")
        if listed is not None:
            members = {tuple(int(n) for n in cc.split(".")) for cc in re.findall(r"\d+\.\d+", listed)}
            is_covered = is_covered or device in members
            continue
        # An "except {8.7}" is not read as a refusal: Jetson Orin (8.7) is warned against sm_80 code it runs.
        low, high = (int(low_major), int(low_minor)), (int(high_major), int(high_minor))
        is_covered = is_covered or low <= device < high
    return tuple(archs), is_covered


def _cc_list_warnings(text: str) -> list[UnsupportedArch]:
    """torch 2.11+'s warning, kept only where no hardware range of its list holds the GPU (its major is not built)."""
    found = []
    for match in _CC_LIST.finditer(text):
        _index, name, major, minor = match.groups()
        rest = text[match.end() : match.end() + _CC_LIST_CHARS]
        end = _CC_LIST_END.search(rest)
        listed = rest[: end.start()] if end else rest
        archs, is_covered = _cc_list_archs(listed, (int(major), int(minor)))
        if archs and not is_covered:
            line = source_line(match.group(0) + " " + listed.strip())
            found.append(UnsupportedArch(name.strip(), f"{major}.{minor}", archs, line))
    return found


def _numpy_failure(text: str) -> NumpyFailure | None:
    for pattern in _NUMPY:
        match = pattern.search(text)
        if match is not None:
            version = match.group(1) if pattern.groups else None
            return NumpyFailure(version, source_line(match.group(0)))
    return None


def _nvml_mismatch(text: str) -> NvmlMismatch | None:
    match = _NVML_MISMATCH.search(text)
    return NvmlMismatch(match.group(1), source_line(match.group(0))) if match else None


def _cudnn_version(text: str) -> str:
    """(9, 13, 1) -> "9.13.1"; the integer form of torch < 1.8 is cudnn.h's CUDNN_VERSION: 7005 -> "7.0.5"."""
    numbers = [int(part) for part in re.findall(r"\d+", text)]
    if len(numbers) == 3:
        return ".".join(map(str, numbers))
    value = numbers[0]
    scale = 10000 if value >= 90000 else 1000  # cuDNN 9 changed CUDNN_VERSION to major*10000+minor*100+patch
    return f"{value // scale}.{value % scale // 100}.{value % 100}"


def _cudnn_mismatch(text: str) -> CudnnMismatch | None:
    match = _CUDNN_MISMATCH.search(text)
    if match is None:
        return None
    return CudnnMismatch(_cudnn_version(match.group(1)), _cudnn_version(match.group(2)), source_line(match.group(0)))
