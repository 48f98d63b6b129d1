"""NVSwitch chips on the PCI bus and whether the fabric manager, which CUDA needs on such boards, is running.

Command line equivalents: `lspci -d 10de::0680` (NVSwitches) and `pgrep -x nv-fabricmanage` (the daemon).
"""

from __future__ import annotations

from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.facts.environment import NvSwitchFabric
from envcheck.probes.context import ProbeContext
from envcheck.probes.system import probe_container

_NVIDIA_VENDOR = "0x10de"
# NVSwitch's PCI class "bridge, other" (NVIDIA's go-nvlib nvpci: PCINvSwitchClass = 0x068000; NCCL's topology
# detection reads the same class file). NVIDIA GPUs are 0x0300xx / 0x0302xx.
_NVSWITCH_CLASS = "0x068000"
# /proc/PID/comm holds 15 characters (TASK_COMM_LEN 16 with the NUL): the daemon nv-fabricmanager shows as this.
FABRIC_MANAGER_COMM = "nv-fabricmanager"[:15]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:  # a PCI function or a process that went away between the listing and the read
        return None


def count_nvswitches(sys_root: Path) -> int | Unavailable:
    devices = sys_root / "bus/pci/devices"
    try:
        functions = list(devices.iterdir())
    except OSError as error:
        return Unavailable(f"cannot list {devices}: {error.strerror or error}")
    return sum(
        1
        for function in functions
        if _read(function / "vendor") == _NVIDIA_VENDOR and _read(function / "class") == _NVSWITCH_CLASS
    )


def probe_fabric_manager(context: ProbeContext) -> bool | Unavailable:
    """True when an nv-fabricmanager process is visible; False only where every process of the host would be."""
    proc = context.roots.proc
    try:
        pids = [entry for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError as error:
        return Unavailable(f"cannot list {proc}: {error.strerror or error}")
    if any(_read(pid / "comm") == FABRIC_MANAGER_COMM for pid in pids):
        return True
    fix = "on the host: systemctl status nvidia-fabricmanager"
    container, _ = probe_container(context)
    if container is not None:
        return Unavailable(f"inside a {container} container the host's processes are invisible", fix)
    if _read(proc / "1/comm") is None:  # mounted with hidepid: other users' processes are hidden
        return Unavailable(f"{proc} hides other users' processes (hidepid), so a root daemon is invisible", fix)
    return False


def probe_fabric(context: ProbeContext) -> NvSwitchFabric:
    return NvSwitchFabric(
        nvswitch_count=count_nvswitches(context.roots.sys), is_fabric_manager_running=probe_fabric_manager(context)
    )
