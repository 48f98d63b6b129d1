"""The numbers inside error messages, decoded: sizes of an out-of-memory report, CUDA error codes, sm_XX and the
wheel's arch list, the glibc and nvJitLink versions a library asks for. Pure text in, values out.

torch's own warnings (driver too old, capability not compatible, cuDNN mismatch) are decoded by
envcheck.importers.runtime_messages, the same reader the collect_env importer uses; this module adds the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from envcheck.knowledge.signatures import ErrorCode, SignatureTable

_UNITS = {"b": 1, "bytes": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = r"(\d+(?:\.\d+)?)\s*(bytes|[KMGT]iB|B)"
# torch >= 2.1 (c10/cuda/CUDACachingAllocator.cpp): "Tried to allocate 2.00 GiB. GPU 0 has a total capacity of
# 79.15 GiB of which 1.06 GiB is free. Process 1234 has 40.00 GiB memory in use. Including non-PyTorch memory,
# this process has 38.00 GiB memory in use. Of the allocated memory 36.50 GiB is allocated by PyTorch, and
# 1.02 GiB is reserved by PyTorch but unallocated."
_TRIED = re.compile(rf"Tried to allocate {_SIZE}", re.I)
_CAPACITY = re.compile(rf"GPU (\d+) has a total capaci?ty of {_SIZE} of which {_SIZE} is free", re.I)
_OTHER_PROCESS = re.compile(rf"Process (\d+) has {_SIZE} memory in use", re.I)
_THIS_PROCESS = re.compile(rf"this process has {_SIZE} memory in use", re.I)
_UNALLOCATED = re.compile(rf"and {_SIZE} is reserved by PyTorch but unallocated", re.I)
# torch < 2.1: "(GPU 0; 7.79 GiB total capacity; 6.33 GiB already allocated; 7.31 MiB free;
# 6.40 GiB reserved in total by PyTorch)"
_OLD_CAPACITY = re.compile(
    rf"\(GPU (\d+); {_SIZE} total capacity; {_SIZE} already allocated; {_SIZE} free;"
    rf"(?: {_SIZE} allowed;)? {_SIZE} reserved in total by PyTorch",
    re.I,
)
_ERROR_NUMBER = re.compile(r"\bError (\d{2,3}): ")
_ERROR_NAME = re.compile(r"\b(cudaError[A-Z]\w+)")
_SM = re.compile(r"\bsm_(\d{2,3})[a-z]?\b")
_GLIBC = re.compile(r"version [`']GLIBC_(\d+\.\d+)' not found(?: \(required by ([^)\s]+))?")
_NVJITLINK = re.compile(r"undefined symbol: (__nvJitLink\w+?)_(\d+)_(\d+), version libnvJitLink")
# bounded: an unbounded run before ".so" is tried from every position of a long token (quadratic on binary noise)
_LIBRARY = re.compile(r"([^\s:'\"]{1,400}\.so(?:\.[\d.]+)?|[^\s:'\"]{1,400}\.pyd): undefined symbol")
_MEMBER = re.compile(r"GLOBAL_RANK: (\d+), MEMBER: (\d+)/(\d+)")
_WATCHDOG = re.compile(r"WorkNCCL\(SeqNum=(\d+), OpType=(\w+).{0,200}?Timeout\(ms\)=(\d+)\)")
_SEGMENT = re.compile(r"shared memory segment (\S+) \(size (\d+)\)")
_DLL = re.compile(r'Error loading "([^"\r\n]{1,300}?\.dll)"')


def flat(text: str) -> str:
    """TEXT on one line with single spaces: messages wrap anywhere (a terminal, a log shipper, an issue's paste)."""
    return " ".join(text.split())


def parse_size(number: str, unit: str) -> int:
    """ "2.00", "GiB" -> 2147483648: the sizes torch's allocator prints (binary units)."""
    return int(float(number) * _UNITS[unit.lower()])


@dataclass(frozen=True, slots=True)
class OomReport:
    """The numbers of a CUDA out-of-memory message; None where this torch's wording does not give them."""

    gpu_index: int | None
    requested_bytes: int | None
    total_bytes: int | None
    free_bytes: int | None
    this_process_bytes: int | None  # everything this process holds, PyTorch's cache and CUDA contexts included
    reserved_unallocated_bytes: int | None  # cached by PyTorch but not handed out: the fragmentation measure
    other_processes: tuple[tuple[int, int], ...]  # (pid, bytes) of processes the message lists
    reserved_bytes: int | None = None  # torch < 2.1: all PyTorch had reserved (its cache), without the CUDA context

    @property
    def held_elsewhere_bytes(self) -> int | None:
        """GPU memory neither free nor this process's: other processes (and, in torch < 2.1's wording, this
        process's own CUDA context, which that wording does not count)."""
        if self.total_bytes is None or self.free_bytes is None:
            return None
        held = self.this_process_bytes if self.this_process_bytes is not None else self.reserved_bytes
        return None if held is None else self.total_bytes - self.free_bytes - held


def read_oom(text: str) -> OomReport:
    text = flat(text)
    tried = _TRIED.search(text)
    requested = parse_size(*tried.groups()) if tried else None
    unallocated = _UNALLOCATED.search(text)
    this = _THIS_PROCESS.search(text)
    others = tuple(
        dict.fromkeys((int(pid), parse_size(number, unit)) for pid, number, unit in _OTHER_PROCESS.findall(text))
    )
    capacity = _CAPACITY.search(text)
    if capacity is not None:
        index, total_n, total_u, free_n, free_u = capacity.groups()
        return OomReport(
            int(index),
            requested,
            parse_size(total_n, total_u),
            parse_size(free_n, free_u),
            parse_size(*this.groups()) if this else None,
            parse_size(*unallocated.groups()) if unallocated else None,
            others,
        )
    old = _OLD_CAPACITY.search(text)
    if old is not None:
        groups = old.groups()
        index, total, allocated, free = groups[0], groups[1:3], groups[3:5], groups[5:7]
        reserved = parse_size(*groups[-2:])
        gap = reserved - parse_size(*allocated)
        return OomReport(
            int(index), requested, parse_size(*total), parse_size(*free), None, max(gap, 0), others, reserved
        )
    return OomReport(None, requested, None, None, None, None, others)


def error_codes(text: str, table: SignatureTable) -> tuple[ErrorCode, ...]:
    """The CUDA error codes a text names, by number ("Error 802: ...") or by name (cudaErrorSystemNotReady)."""
    text = flat(text)
    found: dict[int, ErrorCode] = {}
    for number in _ERROR_NUMBER.findall(text):
        entry = table.error_code(int(number))
        if entry is not None:
            found.setdefault(entry.code, entry)
    for name in _ERROR_NAME.findall(text):
        entry = table.error_code_named(name)
        if entry is not None:
            found.setdefault(entry.code, entry)
    for entry in table.error_codes:  # cudaGetErrorString's words without a number ("... : system not yet initialized")
        if entry.message.casefold() in text.casefold():
            found.setdefault(entry.code, entry)
    return tuple(found.values())


_ARCH = re.compile(r"(?:sm_|compute_)?(\d{1,2})(\d)[af]?")


def capability_of_sm(sm: str) -> tuple[int, int] | None:
    """ "sm_86" or "86" -> (8, 6); "120" -> (12, 0): the last digit is the minor version. None for what is no
    arch name (a cut paste leaves "sm_6f" or "sm_")."""
    match = _ARCH.fullmatch(sm)
    return (int(match.group(1)), int(match.group(2))) if match else None


def sm_mentions(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"sm_{digits}" for digits in _SM.findall(text)))


def glibc_needed(text: str) -> tuple[str, str | None] | None:
    """ "version `GLIBC_2.28' not found (required by .../libtorch_cpu.so)" -> ("2.28", ".../libtorch_cpu.so")."""
    text = flat(text)
    matches = _GLIBC.findall(text)
    if not matches:
        return None
    newest = max(matches, key=lambda found: tuple(int(part) for part in found[0].split(".")))
    return newest[0], newest[1] or None


def nvjitlink_needed(text: str) -> tuple[str, str] | None:
    """ "__nvJitLinkAddData_12_1" -> ("__nvJitLinkAddData", "12.1"): the nvJitLink the caller was built with."""
    text = flat(text)
    match = _NVJITLINK.search(text)
    return (match.group(1), f"{match.group(2)}.{match.group(3)}") if match else None


def library_with_missing_symbol(text: str) -> str | None:
    """The shared library whose symbol is missing ("/.../torch_scatter/_scatter_cuda.so")."""
    text = flat(text)
    match = _LIBRARY.search(text)
    return match.group(1) if match else None


def lightning_members(text: str) -> tuple[int, set[int]] | None:
    """The world size in "MEMBER: k/N" and the members that printed it."""
    text = flat(text)
    found = _MEMBER.findall(text)
    if not found:
        return None
    sizes = {int(size) for _, _, size in found}
    return max(sizes), {int(member) for _, member, _ in found}


def watchdog(text: str) -> tuple[int, str, int] | None:
    """ "WorkNCCL(SeqNum=283, OpType=ALLREDUCE, ..., Timeout(ms)=600000)" -> (283, "ALLREDUCE", 600000)."""
    text = flat(text)
    match = _WATCHDOG.search(text)
    return (int(match.group(1)), match.group(2), int(match.group(3))) if match else None


def shm_segment(text: str) -> tuple[str, int] | None:
    """ "Error while creating shared memory segment /dev/shm/nccl-x (size 9637888)" -> (path, bytes)."""
    text = flat(text)
    match = _SEGMENT.search(text)
    return (match.group(1), int(match.group(2))) if match else None


def dll_named(text: str) -> str | None:
    text = flat(text)
    match = _DLL.search(text)
    return match.group(1) if match else None
