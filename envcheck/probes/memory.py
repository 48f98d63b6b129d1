"""The memory probe: RAM and swap from /proc/meminfo, and the cgroup memory limit and usage.

Everything is read through the context's roots (no psutil), so a recorded /proc replays exactly.
"""

from __future__ import annotations

from envcheck.facts.memory import MemoryFacts
from envcheck.probes import cgroup
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError

# The kernel prints these unconditionally (fs/proc/meminfo.c); without them the file is not meminfo.
_REQUIRED = ("MemTotal", "MemFree", "SwapTotal", "SwapFree")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes per field ("MemTotal:  24684092 kB" -> 25276510208); odd lines are skipped."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, separator, rest = line.partition(":")
        fields = rest.split()
        if not separator or not fields:
            continue
        try:
            number = int(fields[0])
        except ValueError:
            continue
        # "kB" here means KiB: fs/proc/meminfo.c shifts page counts by (PAGE_SHIFT - 10).
        is_kib = len(fields) > 1 and fields[1] == "kB"
        values[key.strip()] = number * 1024 if is_kib else number
    return values


def estimate_available_bytes(meminfo: dict[str, int]) -> int:
    """MemAvailable, or the kernel's own estimate of it on kernels before 3.14 that lack the line.

    The estimate follows si_mem_available() (mm/page_alloc.c, commit 34e431b0ae39): free memory plus
    the page cache and reclaimable slab that can be dropped, without the watermarks we cannot see.
    """
    if "MemAvailable" in meminfo:
        return meminfo["MemAvailable"]
    reclaimable = ("Active(file)", "Inactive(file)", "SReclaimable")
    return meminfo["MemFree"] + sum(meminfo.get(name, 0) for name in reclaimable)


def probe_memory(context: ProbeContext) -> MemoryFacts:
    """Collect MemoryFacts. Command line equivalents: `free -b`, `cat /sys/fs/cgroup/memory.max`.

    /proc/meminfo shows the host's RAM even inside a container (unless LXCFS is mounted over it), which
    is why the cgroup limit sits next to it: the tighter of the two is what a job can really use.
    """
    path = context.roots.proc / "meminfo"
    try:
        meminfo = parse_meminfo(path.read_text(errors="replace"))
    except OSError as error:
        raise ProbeError(f"cannot read {path}: {error}") from error
    missing = [name for name in _REQUIRED if name not in meminfo]
    if missing:
        raise ProbeError(f"{path} lacks {', '.join(missing)}: not a meminfo file the kernel wrote")
    return MemoryFacts(
        total_bytes=meminfo["MemTotal"],
        available_bytes=estimate_available_bytes(meminfo),
        swap_total_bytes=meminfo["SwapTotal"],
        swap_free_bytes=meminfo["SwapFree"],
        cgroup_limit_bytes=cgroup.read_memory_limit_bytes(context.roots),
        cgroup_usage_bytes=cgroup.read_memory_usage_bytes(context.roots),
    )
