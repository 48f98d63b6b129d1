"""Facts about the filesystems behind the places a training job reads and writes."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class StorageLocation:
    role: str  # cwd, home, tmp, torch_cache, hf_cache, user; the most specific one when roles share a path
    path: str  # as asked for, made absolute
    exists: bool | Unavailable  # Unavailable when stat() was refused (a parent without search permission)
    measured_path: str  # the path measured: the nearest existing ancestor when `path` does not exist yet
    mount_point: str | Unavailable
    filesystem: str | Unavailable  # ext4, xfs, nfs4, overlay, tmpfs, ...
    is_network_filesystem: bool | Unavailable
    is_read_only: bool | Unavailable
    total_bytes: int | Unavailable
    free_bytes: int | Unavailable  # available to this (unprivileged) user
    device: str | Unavailable  # the mount source, e.g. /dev/nvme0n1p2, server:/export
    block_device: str | Unavailable | None  # the whole disk in /sys/block, e.g. nvme0n1; None for non-block
    media: str | Unavailable  # nvme, ssd, hdd, network, memory, virtual (a hypervisor's disk)
    also_roles: tuple[str, ...] = ()  # other roles at the same path, e.g. ("home",) for a cwd of ~


@dataclass(frozen=True, slots=True)
class StorageFacts:
    locations: tuple[StorageLocation, ...]
    shm_total_bytes: int | Unavailable  # size of /dev/shm: DataLoader workers share batches through it
    shm_free_bytes: int | Unavailable
