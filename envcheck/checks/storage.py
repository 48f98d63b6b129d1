"""Checks of the disks behind the working, temporary and cache directories."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import GIB, format_bytes, skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.facts.storage import StorageLocation
from envcheck.finding import Finding, Severity

# A checkpoint of a 7B model in bf16 is ~14 GB and datasets/caches are larger: below this a run
# dies hours in with "No space left on device".
FREE_WARN_BYTES = 20 * GIB
FREE_FAIL_BYTES = 2 * GIB
# Directories a training job writes to: checkpoints (cwd), downloads (caches), temporary files.
WRITTEN_ROLES = {"cwd", "home", "tmp", "torch_cache", "hf_cache"}


def _locations(given: CheckInput, check_id: str, what: str) -> Iterator[StorageLocation | Finding]:
    storage = given.snapshot.storage
    if isinstance(storage, Unavailable):
        yield skipped(check_id, what, storage)
        return
    yield from storage.locations


@check("storage.free_space", "Each working and cache directory has free space (warn < 20 GiB, fail < 2 GiB).")
def check_free_space(given: CheckInput) -> Iterator[Finding]:
    check_id = "storage.free_space"
    # One finding per filesystem: home, caches and tmp often share one, and its free space is shared too.
    by_mount: dict[str, list[StorageLocation]] = {}
    for location in _locations(given, check_id, "free disk space"):
        if isinstance(location, Finding):
            yield location
            continue
        if isinstance(location.free_bytes, Unavailable):
            yield skipped(check_id, f"free space at {location.role} ({location.path})", location.free_bytes)
            continue
        by_mount.setdefault(_mount(location), []).append(location)
    for mount, sharing in by_mount.items():
        free = min(location.free_bytes for location in sharing if isinstance(location.free_bytes, int))
        where = f"{mount} ({', '.join(location.role for location in sharing)})"
        severity = Severity.FAIL if free < FREE_FAIL_BYTES else Severity.WARN if free < FREE_WARN_BYTES else Severity.OK
        if severity is Severity.OK:
            yield Finding(check_id, severity, f"{format_bytes(free)} free on {where}")
        else:
            yield Finding(
                check_id,
                severity,
                f"only {format_bytes(free)} free on {where}",
                detail="Used by: " + ", ".join(f"{location.role} {location.path}" for location in sharing) + ".",
                fix=f"Free space on {mount} or point the cache elsewhere (TORCH_HOME, HF_HOME, TMPDIR).",
                evidence=tuple(f"storage.locations[{location.role}].free_bytes" for location in sharing),
            )


@check("storage.read_only", "Cache and temporary directories are writable (not on a read-only mount).")
def check_read_only(given: CheckInput) -> Iterator[Finding]:
    check_id = "storage.read_only"
    flagged = False
    for location in _locations(given, check_id, "read-only mounts"):
        if isinstance(location, Finding):
            yield location
            return
        # Datasets given with --path are read, and are often mounted read-only on purpose.
        if location.is_read_only is True and {location.role, *location.also_roles} & WRITTEN_ROLES:
            flagged = True
            yield Finding(
                check_id,
                Severity.WARN,
                f"{location.role} ({location.path}) is on a read-only mount ({_mount(location)})",
                detail="Downloads of weights and datasets and checkpoints written there will fail.",
                fix="Point the cache at a writable disk, e.g. export HF_HOME=/scratch/hf TORCH_HOME=/scratch/torch",
                evidence=(f"storage.locations[{location.role}].is_read_only",),
            )
    if not flagged:
        yield Finding(check_id, Severity.OK, "no directory the job writes to is on a read-only mount")


@check("storage.slow_media", "Cache directories are not on a rotational disk or a network filesystem.")
def check_slow_media(given: CheckInput) -> Iterator[Finding]:
    check_id = "storage.slow_media"
    flagged = False
    for location in _locations(given, check_id, "storage media"):
        if isinstance(location, Finding):
            yield location
            return
        roles = {location.role, *location.also_roles}
        if not roles & {"cwd", "torch_cache", "hf_cache", "user"}:
            continue
        # A working directory on a hard disk is common for code and outputs; only datasets and caches,
        # read at random many times per epoch, suffer from seeks.
        if location.media == "hdd" and roles & {"torch_cache", "hf_cache", "user"}:
            flagged = True
            yield Finding(
                check_id,
                Severity.WARN,
                f"{location.role} ({location.path}) is on a rotational disk ({location.block_device})",
                detail="Random reads of many small files (datasets, shards) are 100x slower than on an SSD.",
                fix="Move datasets and caches to an SSD/NVMe disk, or stage them into RAM (/dev/shm) first.",
                evidence=(f"storage.locations[{location.role}].media",),
            )
        elif location.is_network_filesystem is True:
            flagged = True
            yield Finding(
                check_id,
                Severity.INFO,
                f"{location.role} ({location.path}) is on a network filesystem ({location.filesystem})",
                detail=_WSL_DRIVE_NOTE
                if location.filesystem == "9p"
                else "Fine for large sequential files; many small files or concurrent writers are slow.",
                fix="Copy the project and data into the Linux filesystem (e.g. ~/)"
                if location.filesystem == "9p"
                else "Stage hot datasets onto local disk before training.",
                evidence=(f"storage.locations[{location.role}].filesystem",),
            )
    if not flagged:
        yield Finding(check_id, Severity.OK, "caches are not on a rotational disk or a network filesystem")


# Microsoft's WSL docs ("Comparing WSL versions", file performance): files on the Windows drive
# reach WSL 2 over 9p and are far slower than those in the Linux filesystem.
_WSL_DRIVE_NOTE = (
    "Under WSL 2 a Windows drive is reached over the 9p protocol, far slower than the Linux filesystem "
    "for the many small reads of data loading."
)


def _mount(location: StorageLocation) -> str:
    return location.mount_point if isinstance(location.mount_point, str) else location.measured_path
