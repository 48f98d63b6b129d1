"""Which mount holds a path (/proc/self/mountinfo, parsed by pure functions) and which disk is behind it (/sys).

Shared by the storage probe (the filesystem and disk behind a directory) and the system probe (is
the root an overlay, i.e. are we in a container).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.probes.context import HostRoots

# Filesystem types whose data lives on another machine. Starts from util-linux's
# mnt_fstype_is_netfs() (libmount/src/utils.c) and systemd's fstype_is_network()
# (src/basic/mountpoint-util.c), plus the parallel and FUSE object-store filesystems found on
# GPU clusters and cloud VMs (Lustre, GPFS, BeeGFS, WekaFS, s3fs, gcsfuse, JuiceFS, Mountpoint
# for S3, blobfuse). 9p is included: WSL2 mounts Windows drives (/mnt/c) over 9p.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "cephfs",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "wekafs",
        "gfs",
        "gfs2",
        "ocfs2",
        "pvfs2",
        "orangefs",
        "panfs",
        "davfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.juicefs",
        "fuse.mountpoint-s3",
        "fuse.goofys",
        "fuse.rclone",
        "fuse.blobfuse",
        "fuse.blobfuse2",
        "fuse.curlftpfs",
        "fuse.cephfs",
    }
)

# Filesystems whose pages live in RAM (and count against the cgroup memory limit).
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})

# Vendors/models of disks that a hypervisor emulates, from /sys/block/<disk>/device/{vendor,model}:
# QEMU, VMware, Hyper-V/Azure ("Msft Virtual Disk"), GCE ("Google PersistentDisk"), VirtualBox.
_VIRTUAL_DISK_MARKERS = ("QEMU", "VMware", "Msft", "Virtual Disk", "Google", "PersistentDisk", "VBOX")

# mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c, mangle()).
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of /proc/<pid>/mountinfo (proc(5)), with paths unescaped."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str  # the directory of the source filesystem that is mounted here (bind mounts)
    mount_point: str
    mount_options: tuple[str, ...]  # per-mount: rw/ro, nosuid, relatime, ...
    filesystem: str  # ext4, nfs4, overlay, fuse.sshfs, ...
    source: str  # /dev/nvme0n1p2, server:/export, overlay, tmpfs
    super_options: tuple[str, ...]  # per-superblock: rw/ro, upperdir=..., size=...

    @property
    def is_read_only(self) -> bool:
        return "ro" in self.mount_options or "ro" in self.super_options

    @property
    def is_network(self) -> bool:
        return is_network_filesystem(self.filesystem)

    def super_option(self, name: str) -> str | None:
        prefix = f"{name}="
        for option in self.super_options:
            if option.startswith(prefix):
                return option[len(prefix) :]
        return None


def is_network_filesystem(filesystem: str) -> bool:
    # nfs-like variants (e.g. "nfs3") as util-linux does with its "nfs" prefix test.
    return filesystem in NETWORK_FILESYSTEMS or filesystem.startswith("nfs")


def unescape(field: str) -> str:
    """`/mnt/my\\040disk` as `/mnt/my disk`."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match[1], 8)), field)


def parse_mountinfo_line(line: str) -> MountEntry | None:
    """One mountinfo line, or None when it does not have the documented shape.

    Format (proc(5)): `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    with zero or more optional fields before the lone `-` separator.
    """
    fields = line.split()
    try:
        separator = fields.index("-", 6)
    except ValueError:
        return None
    if len(fields) < separator + 3:
        return None
    major, _, minor = fields[2].partition(":")
    try:
        mount_id, parent_id, major_number, minor_number = int(fields[0]), int(fields[1]), int(major), int(minor)
    except ValueError:
        return None
    return MountEntry(
        mount_id=mount_id,
        parent_id=parent_id,
        major=major_number,
        minor=minor_number,
        root=unescape(fields[3]),
        mount_point=unescape(fields[4]),
        mount_options=tuple(fields[5].split(",")),
        filesystem=unescape(fields[separator + 1]),
        source=unescape(fields[separator + 2]),
        super_options=tuple(fields[separator + 3].split(",")) if len(fields) > separator + 3 else (),
    )


def parse_mountinfo(text: str) -> tuple[MountEntry, ...]:
    """Every well-formed line; malformed ones are skipped (a truncated read must not stop a probe)."""
    entries = (parse_mountinfo_line(line) for line in text.splitlines())
    return tuple(entry for entry in entries if entry is not None)


def is_under(path: str, mount_point: str) -> bool:
    if mount_point == "/":
        return path.startswith("/")
    return path == mount_point or path.startswith(mount_point + "/")


def find_mount(entries: Iterable[MountEntry], path: str) -> MountEntry | None:
    """The mount holding absolute `path`: the longest matching mount point.

    Among mounts on the same point the later line wins, because mountinfo lists mounts in the
    order they were made and a later mount hides the earlier one (e.g. /dev/shm mounted twice).
    """
    path = posixpath.normpath(path)
    best: MountEntry | None = None
    for entry in entries:
        if is_under(path, entry.mount_point) and (best is None or len(entry.mount_point) >= len(best.mount_point)):
            best = entry
    return best


def root_mount(entries: Iterable[MountEntry]) -> MountEntry | None:
    return find_mount(entries, "/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except (OSError, ValueError):
        return None


def _kernel_name(roots: HostRoots, entry: MountEntry) -> str | None:
    """The kernel's name of the device behind a mount (nvme0n1p2, dm-0, sda1), if it has one."""
    if entry.major != 0:  # major 0 = anonymous device: overlay, tmpfs, network, btrfs subvolumes
        uevent = _read(roots.sys / f"dev/block/{entry.major}:{entry.minor}/uevent") or ""
        for line in uevent.splitlines():
            if line.startswith("DEVNAME="):
                return line[len("DEVNAME=") :]
    if entry.source.startswith("/dev/"):
        # /dev/mapper/vg-root and /dev/disk/by-uuid/... are links to the kernel name (dm-0, sda1).
        return (roots.root / entry.source[1:]).resolve().name
    return None


def _whole_disk(roots: HostRoots, name: str) -> str | None:
    """The /sys/block disk of a device: itself, or the disk a partition directory sits in."""
    block = roots.sys / "block"
    if (block / name).is_dir():
        return name
    try:
        disks = sorted(block.iterdir())
    except OSError:
        return None
    return next((disk.name for disk in disks if (disk / name).is_dir()), None)


def disk_media(roots: HostRoots, disk: str, depth: int = 0) -> str | Unavailable:
    """nvme, ssd, hdd, virtual, memory or network for a /sys/block disk."""
    sys_disk = roots.sys / "block" / disk
    if disk.startswith("nvme"):
        return "nvme"
    if disk.startswith(("zram", "ram", "pmem")):
        return "memory"
    if disk.startswith(("nbd", "rbd")):
        return "network"
    if disk.startswith(("dm-", "md")) and depth < 4:
        # device-mapper (LVM, LUKS) and md RAID: judge by the disks underneath; the slowest wins.
        try:
            slaves = sorted(path.name for path in (sys_disk / "slaves").iterdir())
        except OSError:
            slaves = []
        parents = {_whole_disk(roots, slave) or slave for slave in slaves}
        media = [disk_media(roots, parent, depth + 1) for parent in sorted(parents)]
        known = [m for m in media if isinstance(m, str)]
        if not known:
            return Unavailable(f"no readable disks under {disk} ({sys_disk / 'slaves'})")
        return "hdd" if "hdd" in known else known[0]
    # virtio-blk (vd*), Xen (xvd*) and loop devices never set the non-rotational flag, so their
    # `rotational` reads 1 whatever the host's disk is: call them what they are, not hdd.
    if disk.startswith(("vd", "xvd", "loop")):
        return "virtual"
    identity = f"{_read(sys_disk / 'device/vendor') or ''} {_read(sys_disk / 'device/model') or ''}"
    if any(marker in identity for marker in _VIRTUAL_DISK_MARKERS):
        return "virtual"
    rotational = _read(sys_disk / "queue/rotational")
    if rotational == "1":
        return "hdd"
    if rotational == "0":
        return "ssd"
    return Unavailable(f"cannot read {sys_disk / 'queue/rotational'}")


def block_and_media(
    roots: HostRoots, entries: tuple[MountEntry, ...], entry: MountEntry, depth: int = 0
) -> tuple[str | Unavailable | None, str | Unavailable]:
    if entry.is_network:
        return None, "network"
    if entry.filesystem in MEMORY_FILESYSTEMS:
        return None, "memory"
    upper = entry.super_option("upperdir") if entry.filesystem == "overlay" else None
    if upper is not None and depth == 0:
        # On a host, an overlay's writes go to upperdir's filesystem; inside a container that path
        # belongs to the host and resolves back to the overlay itself.
        below = find_mount(entries, upper)
        if below is not None and below.filesystem != "overlay":
            return block_and_media(roots, entries, below, depth + 1)
    name = _kernel_name(roots, entry)
    if name is None:
        reason = f"the {entry.filesystem} mount at {entry.mount_point} ({entry.source}) shows no block device"
        if entry.filesystem in ("overlay", "fuse.fuse-overlayfs"):
            reason += "; the disk behind a container's overlay belongs to the host"
        fix = "Mount a host directory (docker run -v /fast/disk:/data) for datasets and caches."
        return Unavailable(reason, fix if "overlay" in entry.filesystem else None), Unavailable(reason)
    disk = _whole_disk(roots, name)
    if disk is None:
        reason = f"{name} has no entry under {roots.sys / 'block'}"
        return Unavailable(reason), Unavailable(reason)
    return disk, disk_media(roots, disk)
