"""The cgroup (v1 or v2) limits on this process: CPU quota, memory limit and memory usage.

Finds the process's cgroup from /proc/self/cgroup and /proc/self/mountinfo, then reads the controller
files. Parsers are pure; every read goes through `HostRoots` so recorded trees replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from envcheck.facts.common import Unavailable
from envcheck.probes.context import HostRoots
from envcheck.probes.mounts import MountEntry, parse_mountinfo

T = TypeVar("T", int, float)

# v1 reports "no limit" as PAGE_COUNTER_MAX pages, i.e. LONG_MAX rounded down to the page size:
# 9223372036854771712 with 4 KiB pages, 9223372036854710272 with 64 KiB pages (arm64). Anything at
# or above 2**62 bytes (4 EiB) is no real limit on any machine, so treat it as unlimited.
# Source: mm/page_counter.c and Documentation/admin-guide/cgroup-v1/memory.rst.
V1_UNLIMITED_BYTES = 9223372036854771712
_UNLIMITED_FLOOR_BYTES = 2**62


@dataclass(frozen=True, slots=True)
class CgroupMembership:
    """One line of /proc/self/cgroup: `hierarchy-ID:controller-list:cgroup-path` (man 7 cgroups)."""

    hierarchy_id: int
    controllers: tuple[str, ...]  # empty for the v2 line "0::/path"
    path: str


@dataclass(frozen=True, slots=True)
class CgroupDir:
    """Where one controller's files for this process live, under the roots."""

    version: int  # 1 or 2
    leaf: Path  # the process's own cgroup directory
    top: Path  # the hierarchy's mount point: the highest directory we can see
    is_root_cgroup: bool  # the process sits in the root of the hierarchy


def parse_proc_self_cgroup(text: str) -> tuple[CgroupMembership, ...]:
    """Parse /proc/self/cgroup; ValueError when a line does not have the three fields."""
    memberships = []
    for line in text.splitlines():
        if not line.strip():
            continue
        hierarchy_id, controllers, path = line.split(":", 2)  # the path itself may contain ':'
        if not path.startswith("/"):
            raise ValueError(f"cgroup path {path!r} is not absolute")
        names = tuple(name for name in controllers.split(",") if name)
        memberships.append(CgroupMembership(int(hierarchy_id), names, path))
    if not memberships:
        raise ValueError("no cgroup memberships")
    return tuple(memberships)


def cgroup_mounts(text: str) -> tuple[MountEntry, ...]:
    """The cgroup (v1) and cgroup2 mounts in /proc/self/mountinfo; other lines are skipped, malformed ones too.

    A mount's `root` is the cgroup path visible at its mount point; v1 lists its controllers in the super
    options (rw,cpu,cpuacct).
    """
    return tuple(mount for mount in parse_mountinfo(text) if mount.filesystem in ("cgroup", "cgroup2"))


def parse_cpu_max(text: str) -> float | None:
    """v2 `cpu.max` ("$MAX $PERIOD", MAX may be "max") as CPUs; None for no limit.

    Documentation/admin-guide/cgroup-v2.rst, "cpu.max": the group may use up to $MAX in each $PERIOD.
    """
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"expected '$MAX $PERIOD', got {text.strip()!r}")
    period = int(fields[1])
    if fields[0] == "max":
        return None
    return _cpus(int(fields[0]), period)


def parse_cfs_quota(quota_text: str, period_text: str) -> float | None:
    """v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` as CPUs; a quota of -1 means no limit.

    Documentation/scheduler/sched-bwc.rst: "A value of -1 for cpu.cfs_quota_us indicates that the group
    does not have any bandwidth restriction in place".
    """
    quota = int(quota_text.strip())
    period = int(period_text.strip())
    if quota == -1:  # the kernel stores any negative write as -1 and only ever reads back -1
        return None
    return _cpus(quota, period)


def parse_memory_bytes(text: str) -> int | None:
    """`memory.max` / `memory.limit_in_bytes`: bytes, or None for "max" and the v1 unlimited sentinel."""
    value = text.strip()
    if value == "max":
        return None
    number = int(value)
    if number < 0:
        raise ValueError(f"negative byte count {number}")
    return None if number >= _UNLIMITED_FLOOR_BYTES else number


def locate_cgroup(roots: HostRoots, controller: str) -> CgroupDir | Unavailable:
    """The directory holding `controller`'s files for this process, v1 hierarchy first, else v2.

    On hybrid hosts (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) the controller
    is attached to its v1 hierarchy, so that one wins; on pure v2 hosts there is no v1 line.
    """
    cgroup_file = roots.proc / "self" / "cgroup"
    mountinfo_file = roots.proc / "self" / "mountinfo"
    try:
        # surrogateescape: paths are bytes to the kernel and need not be UTF-8; this round-trips them.
        memberships = parse_proc_self_cgroup(cgroup_file.read_text(errors="surrogateescape"))
        mounts = cgroup_mounts(mountinfo_file.read_text(errors="surrogateescape"))
    except OSError as error:
        return Unavailable(f"cannot read the process's cgroup: {error}")
    except ValueError as error:
        return Unavailable(f"{cgroup_file} is malformed: {error}")
    for membership in memberships:
        if controller in membership.controllers:
            v1_mounts = [m for m in mounts if m.filesystem == "cgroup" and controller in m.super_options]
            found = _resolve(roots, 1, membership.path, v1_mounts)
            if found is not None:
                return found
    for membership in memberships:
        if membership.hierarchy_id == 0 and not membership.controllers:
            found = _resolve(roots, 2, membership.path, [m for m in mounts if m.filesystem == "cgroup2"])
            if found is not None:
                return found
    return Unavailable(
        f"no mounted cgroup hierarchy holds the {controller} controller for this process",
        fix="mount the cgroup filesystem in the container (docker and Kubernetes do this by default)",
    )


def read_cpu_quota_cpus(roots: HostRoots) -> float | Unavailable | None:
    """The CPU quota in CPUs (the tightest along the path to the hierarchy's top); None when unlimited."""

    def read(directory: Path, version: int) -> float | None:
        if version == 2:
            return parse_cpu_max((directory / "cpu.max").read_text())
        quota = (directory / "cpu.cfs_quota_us").read_text()
        return parse_cfs_quota(quota, (directory / "cpu.cfs_period_us").read_text())

    return _tightest(roots, "cpu", read, "cpu.max or cpu.cfs_quota_us")


def read_memory_limit_bytes(roots: HostRoots) -> int | Unavailable | None:
    """The memory limit in bytes (the tightest along the path to the hierarchy's top); None when unlimited."""

    def read(directory: Path, version: int) -> int | None:
        name = "memory.max" if version == 2 else "memory.limit_in_bytes"
        return parse_memory_bytes((directory / name).read_text())

    return _tightest(roots, "memory", read, "memory.max or memory.limit_in_bytes")


def read_memory_usage_bytes(roots: HostRoots) -> int | Unavailable | None:
    """Memory charged to this process's cgroup in bytes (page cache included, as the kernel charges it).

    v1 `memory.usage_in_bytes` is a slightly fuzzy counter (cgroup-v1/memory.rst, section 5.5); it is
    the number the v1 OOM killer compares with the limit, so it is the one reported.
    """
    located = locate_cgroup(roots, "memory")
    if isinstance(located, Unavailable):
        return located
    name = "memory.current" if located.version == 2 else "memory.usage_in_bytes"
    path = located.leaf / name
    try:
        text = path.read_text()
    except FileNotFoundError:
        if located.version == 2 and located.is_root_cgroup:
            return None  # v2 has no memory.current in the root cgroup: nothing is charged to a limit
        return Unavailable(f"{path} does not exist")
    except (OSError, UnicodeDecodeError) as error:
        return Unavailable(f"cannot read {path}: {error}")
    value = text.strip()
    if not value.isdigit():  # also refuses a sign: a usage is never negative
        return Unavailable(f"{path} holds {value[:40]!r}, not a byte count")
    return int(value)


def _tightest(
    roots: HostRoots,
    controller: str,
    read: Callable[[Path, int], T | None],
    names: str,
) -> T | Unavailable | None:
    # Limits are hierarchical: a parent's cpu.max or memory.max caps all its children (cgroup-v2.rst,
    # "Top-down constraint"), and Kubernetes often sets the limit on the pod, not the container.
    # So walk from the process's cgroup up to the top we can see and keep the tightest limit.
    located = locate_cgroup(roots, controller)
    if isinstance(located, Unavailable):
        return located
    if not located.leaf.is_dir():
        return Unavailable(f"the process's cgroup directory {located.leaf} does not exist")
    limits: list[T] = []
    found_any = False
    directory = located.leaf
    while True:
        try:
            value = read(directory, located.version)
        except FileNotFoundError:
            value = None
        except OSError as error:
            return Unavailable(f"cannot read {names} in {directory}: {error}")
        except ValueError as error:
            return Unavailable(f"unexpected content in {names} under {directory}: {error}")
        else:
            found_any = True
        if value is not None:
            limits.append(value)
        if directory in (located.top, directory.parent):  # the mount point, or / as a last guard
            break
        directory = directory.parent
    if not found_any:
        if located.version == 2 and located.is_root_cgroup:
            return None  # the v2 root cgroup has no cpu.max or memory.max: no limit can apply there
        return Unavailable(f"no {names} in {located.leaf} or its parents")
    return min(limits) if limits else None


def _resolve(roots: HostRoots, version: int, path: str, mounts: list[MountEntry]) -> CgroupDir | None:
    for mount in mounts:
        relative = _relative_to(path, mount.root)
        if relative is None:
            continue
        top = _host_path(roots, mount.mount_point)
        leaf = top.joinpath(*relative.parts) if relative.parts else top
        return CgroupDir(version, leaf, top, is_root_cgroup=path == "/" and mount.root == "/")
    return None


def _relative_to(path: str, root: str) -> PurePosixPath | None:
    # Without a cgroup namespace a container sees its full host path (/docker/<id>) and a mount whose
    # root is that same path; with one, both are "/". A path outside the mount's root ("/../x" after a
    # process moved out of the namespace) is not visible here.
    if ".." in PurePosixPath(path).parts:
        return None
    try:
        return PurePosixPath(path).relative_to(PurePosixPath(root))
    except ValueError:
        return None


def _host_path(roots: HostRoots, mount_point: str) -> Path:
    absolute = PurePosixPath(mount_point)
    for prefix, base in (("/sys", roots.sys), ("/proc", roots.proc)):
        try:
            inner = absolute.relative_to(prefix)
        except ValueError:
            continue
        return base.joinpath(*inner.parts)
    return roots.root.joinpath(*absolute.parts[1:])


def _cpus(quota_us: int, period_us: int) -> float:
    if quota_us <= 0 or period_us <= 0:
        raise ValueError(f"quota {quota_us} and period {period_us} must be positive")
    return quota_us / period_us
