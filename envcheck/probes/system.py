"""Probes the operating system and what this process runs inside: container, WSL, hypervisor.

Files are read through `context.roots` and variables through `context.environ`, so recorded trees
replay through this same code. Only the interpreter's own facts (architecture, libc, euid, rlimit)
are taken live.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.facts.system import SystemFacts, wsl_of_kernel
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.mounts import parse_mountinfo, root_mount

# Markers in /proc/1/cgroup paths and mountinfo roots, most specific first: a Kubernetes pod
# also runs under containerd or docker, and the pod is what the user needs to hear about.
_CGROUP_MARKERS = (
    ("kubepods", "kubernetes"),
    ("libpod", "podman"),
    ("docker", "docker"),
    ("containerd", "containerd"),
    ("lxc", "lxc"),
)
# Bind mounts of /etc/hosts, /etc/hostname and /etc/resolv.conf come from the runtime's own
# directory, visible in the mountinfo `root` field even with cgroup v2 namespaces ("0::/").
_MOUNT_ROOT_MARKERS = (
    ("/kubelet/pods/", "kubernetes"),
    ("/containers/storage/", "podman"),
    ("/docker/containers/", "docker"),
)
_KIND_PRIORITY = ("kubernetes", "podman", "docker", "containerd", "lxc", "systemd-nspawn")

# DMI sys_vendor / product_name prefixes, after systemd's dmi_vendor_table (src/basic/virt.c).
_DMI_VENDORS = (
    ("product_name", "Google Compute Engine", "google"),
    ("sys_vendor", "Google", "google"),
    ("sys_vendor", "Amazon EC2", "amazon"),
    ("product_name", "KVM", "kvm"),
    ("sys_vendor", "KVM", "kvm"),
    ("sys_vendor", "OpenStack", "kvm"),
    ("sys_vendor", "KubeVirt", "kvm"),
    ("sys_vendor", "QEMU", "qemu"),
    ("sys_vendor", "VMware", "vmware"),
    ("product_name", "VMware", "vmware"),
    ("sys_vendor", "innotek GmbH", "oracle"),
    ("product_name", "VirtualBox", "oracle"),
    ("sys_vendor", "Xen", "xen"),
    ("product_name", "HVM domU", "xen"),
    ("sys_vendor", "Bochs", "bochs"),
    ("sys_vendor", "Parallels", "parallels"),
    ("sys_vendor", "BHYVE", "bhyve"),
    ("sys_vendor", "Apple Virtualization", "apple"),
    ("sys_vendor", "Alibaba Cloud", "alibaba"),
)


def _read(path: Path) -> str | None:
    """The file's text, or None when it is missing or unreadable (both mean "no evidence here")."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # EACCES on a parent: no evidence either way
        return False


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5); values may be quoted."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return values


def probe_distribution(roots: HostRoots) -> str | Unavailable:
    # os-release(5): /etc/os-release first, /usr/lib/os-release as the fallback.
    for path in (roots.etc / "os-release", roots.root / "usr/lib/os-release"):
        text = _read(path)
        if text is not None:
            fields = parse_os_release(text)
            name = fields.get("PRETTY_NAME") or fields.get("NAME")
            if name:
                return name
    return Unavailable("no readable /etc/os-release or /usr/lib/os-release")


def probe_libc(roots: HostRoots) -> str | Unavailable:
    """The C library of this interpreter: glibc with its version, or musl (Alpine)."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (ValueError, OSError):
        version = None
    if version:
        return version
    name, number = platform.libc_ver()
    if name:
        return f"{name} {number}".strip()
    # musl has no version API; its dynamic loader is named after it (/lib/ld-musl-x86_64.so.1).
    if any((roots.root / "lib").glob("ld-musl-*.so.1")):
        return "musl"
    return Unavailable("neither glibc nor musl found for this interpreter")


def probe_container(context: ProbeContext) -> tuple[str | None, tuple[str, ...]]:
    """The container runtime, if any, and every piece of evidence seen (for the user to verify)."""
    roots, environ = context.roots, context.environ
    kinds: list[str] = []
    evidence: list[str] = []

    def seen(kind: str, what: str) -> None:
        kinds.append(kind)
        evidence.append(what)

    if _exists(roots.root / ".dockerenv"):
        seen("docker", "/.dockerenv exists")
    if _exists(roots.root / "run/.containerenv"):
        seen("podman", "/run/.containerenv exists")
    if environ.get("KUBERNETES_SERVICE_HOST"):
        seen("kubernetes", "KUBERNETES_SERVICE_HOST is set")
    # systemd's container interface: the manager sets container= for PID 1 (and nspawn, lxc and
    # podman export it); /proc/1/environ is readable only by root.
    pid1_environ = _read(roots.proc / "1/environ") or ""
    pid1_container = next((v[10:] for v in pid1_environ.split("\0") if v.startswith("container=")), None)
    for where, value in (("environment", environ.get("container")), ("/proc/1/environ", pid1_container)):
        if value:
            seen(value, f"container={value} in the {where}")
    cgroup = _read(roots.proc / "1/cgroup") or ""
    for marker, kind in _CGROUP_MARKERS:
        if marker in cgroup:
            seen(kind, f"/proc/1/cgroup mentions {marker}")
            break
    entries = parse_mountinfo(_read(roots.proc / "self/mountinfo") or "")
    root = root_mount(entries)
    if root is not None and root.filesystem in ("overlay", "fuse.fuse-overlayfs"):
        seen("unknown", f"the root filesystem is {root.filesystem} (/proc/self/mountinfo)")
    for marker, kind in _MOUNT_ROOT_MARKERS:
        if any(marker in entry.root for entry in entries):
            seen(kind, f"a mount comes from {marker.strip('/')} (/proc/self/mountinfo)")
            break
    if not kinds:
        return None, ()
    known_kinds = [kind for kind in _KIND_PRIORITY if kind in kinds]
    other = [kind for kind in kinds if kind != "unknown"]
    kind = known_kinds[0] if known_kinds else (other[0] if other else "unknown")
    return kind, tuple(dict.fromkeys(evidence))


def probe_wsl(roots: HostRoots) -> tuple[bool, int | Unavailable | None]:
    """Whether this is WSL, and which version, from the running kernel's release and version strings."""
    return wsl_of_kernel(_read(roots.proc / "sys/kernel/osrelease") or "", _read(roots.proc / "version") or "")


def _acpi_oem_id(roots: HostRoots) -> str | None:
    # ACPI table header: OEM ID is bytes 10-15 (ACPI spec 5.2.6). Firecracker writes "FIRECK" and
    # has no DMI. The tables are readable by root only.
    try:
        with open(roots.sys / "firmware/acpi/tables/DSDT", "rb") as table:
            header = table.read(16)
    except OSError:
        return None
    return header[10:16].decode("ascii", errors="replace").strip() if len(header) >= 16 else None


def probe_virtualization(roots: HostRoots, is_wsl: bool) -> str | Unavailable | None:
    """The hypervisor seen from inside: a systemd-detect-virt style id, None on bare metal."""
    dmi = {name: _read(roots.sys / "class/dmi/id" / name) for name in ("sys_vendor", "product_name")}
    for name, prefix, vendor in _DMI_VENDORS:
        if (dmi[name] or "").strip().startswith(prefix):
            return vendor
    # Hyper-V and Azure: "Microsoft Corporation" + "Virtual Machine" (a Surface is Microsoft too).
    if (dmi["sys_vendor"] or "").startswith("Microsoft") and (dmi["product_name"] or "").startswith("Virtual"):
        return "microsoft"
    cpuinfo = _read(roots.proc / "cpuinfo")
    flags = next((line for line in (cpuinfo or "").splitlines() if line.startswith("flags")), None)
    if flags is not None and "hypervisor" in flags.split():
        if is_wsl:
            return "microsoft"  # WSL2 is a Hyper-V utility VM without DMI
        if (_read(roots.sys / "hypervisor/type") or "").strip() == "xen":
            return "xen"
        if _acpi_oem_id(roots) == "FIRECK":
            return "firecracker"
        return "unknown"  # the CPU says "hypervisor" but nothing names it
    if flags is not None or any(value is not None for value in dmi.values()):
        return None  # x86 flags without "hypervisor", or DMI naming no hypervisor vendor
    return Unavailable("neither /sys/class/dmi/id nor CPU flags in /proc/cpuinfo are readable")


def probe_uptime(roots: HostRoots) -> float | Unavailable:
    text = _read(roots.proc / "uptime")
    if text is None:
        return Unavailable(f"cannot read {roots.proc / 'uptime'}")
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return Unavailable(f"unexpected content in {roots.proc / 'uptime'}: {text[:40]!r}")


def probe_open_files_limit() -> int | Unavailable | None:
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError) as error:
        return Unavailable(f"getrlimit(RLIMIT_NOFILE) failed: {error}")
    return None if soft == resource.RLIM_INFINITY else soft


def probe_system(context: ProbeContext) -> SystemFacts:
    roots = context.roots
    # The kernel's own answers (uname(2) reads the same values), so a recorded tree replays them.
    os_name = (_read(roots.proc / "sys/kernel/ostype") or platform.system()).strip()
    kernel = (_read(roots.proc / "sys/kernel/osrelease") or platform.release()).strip()
    hostname = (_read(roots.proc / "sys/kernel/hostname") or socket.gethostname()).strip()
    container, evidence = probe_container(context)
    is_wsl, wsl_version = probe_wsl(roots)
    return SystemFacts(
        os_name=os_name,
        distribution=probe_distribution(roots),
        kernel=kernel,
        architecture=platform.machine(),
        hostname=hostname,
        libc=probe_libc(roots),
        container=container,
        container_evidence=evidence,
        is_wsl=is_wsl,
        virtualization=probe_virtualization(roots, is_wsl),
        uptime_s=probe_uptime(roots),
        is_root=os.geteuid() == 0,
        open_files_limit=probe_open_files_limit(),
        wsl_version=wsl_version,
    )
