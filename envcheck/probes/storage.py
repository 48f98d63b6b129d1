"""Probes the filesystems and disks behind the directories a training job reads and writes.

Mounts come from `roots.proc/self/mountinfo`, disks from `roots.sys`; path and space questions go
through a `Filesystem` (live by default) so recorded host trees replay with made-up sizes.
"""

from __future__ import annotations

import os
import posixpath
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

from envcheck.facts.common import Unavailable
from envcheck.facts.storage import StorageFacts, StorageLocation
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.mounts import MountEntry, block_and_media, find_mount, parse_mountinfo

T = TypeVar("T")

# stat() on a hard-mounted NFS share whose server is gone blocks forever (nfs(5), "hard"). Each
# filesystem call runs in a daemon thread and is abandoned after this long.
STAT_TIMEOUT_S = 5.0

# When roles share a path the most specific one names the location (checks key on it); the
# others go to `also_roles`. Locations are listed in the order below their first role is asked.
_ROLE_PRECEDENCE = ("user", "torch_cache", "hf_cache", "tmp", "cwd", "home")


class Filesystem(Protocol):
    """The questions the storage probe asks the live filesystem; tests pass a fake."""

    def getcwd(self) -> str: ...
    def home(self) -> str: ...  # used only when HOME is not in the environment
    def exists(self, path: str) -> bool: ...  # raises OSError when stat() is refused or hangs
    def is_writable_dir(self, path: str) -> bool: ...
    def realpath(self, path: str) -> str: ...
    def disk_usage(self, path: str) -> tuple[int, int]: ...  # (total, free to unprivileged) bytes


def _bounded(call: Callable[[], T], what: str) -> T:
    results: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            results.put((True, call()))
        except OSError as error:
            results.put((False, error))

    threading.Thread(target=run, name=f"envcheck-{what}", daemon=True).start()
    try:
        is_ok, value = results.get(timeout=STAT_TIMEOUT_S)
    except queue.Empty:
        raise TimeoutError(f"{what} did not return within {STAT_TIMEOUT_S:g} s (a hung network mount?)") from None
    if not is_ok:
        raise value  # type: ignore[misc]  # an OSError put by run()
    return value  # type: ignore[return-value]  # the call's own result


class LiveFilesystem:
    def getcwd(self) -> str:
        return str(Path.cwd())

    def home(self) -> str:
        return str(Path.home())

    def exists(self, path: str) -> bool:
        try:
            _bounded(Path(path).stat, f"stat {path}")
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def is_writable_dir(self, path: str) -> bool:
        return Path(path).is_dir() and os.access(path, os.W_OK | os.X_OK)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def disk_usage(self, path: str) -> tuple[int, int]:
        stats = _bounded(lambda: os.statvfs(path), f"statvfs {path}")
        # f_bavail, not f_bfree: ext4 reserves 5% for root, which a training job cannot use.
        return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


def _expand_home(path: str, home: str) -> str:
    return home + path[1:] if path == "~" or path.startswith("~/") else path


def wanted_locations(
    environ: Mapping[str, str], filesystem: Filesystem, paths: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(role, absolute path) of every directory to inspect, before deduplication."""
    cwd = filesystem.getcwd()
    home = environ.get("HOME") or filesystem.home()

    def absolute(path: str) -> str:
        return posixpath.normpath(posixpath.join(cwd, _expand_home(path, home)))

    # tempfile._candidate_tempdir_list(): TMPDIR, TEMP, TMP, then fixed dirs, first writable wins.
    tmp_candidates = [environ[name] for name in ("TMPDIR", "TEMP", "TMP") if environ.get(name)]
    tmp_candidates += ["/tmp", "/var/tmp", "/usr/tmp"]
    tmp = next((path for path in tmp_candidates if filesystem.is_writable_dir(absolute(path))), cwd)
    # torch.hub._get_torch_home(): $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch.
    xdg_cache = environ.get("XDG_CACHE_HOME") or "~/.cache"
    torch_cache = environ.get("TORCH_HOME") or posixpath.join(xdg_cache, "torch")
    # huggingface_hub.constants: the hub cache (where weights land) is $HF_HUB_CACHE, the legacy
    # $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface.
    hf_home = environ.get("HF_HOME") or posixpath.join(xdg_cache, "huggingface")
    hf_cache = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE") or posixpath.join(hf_home, "hub")
    wanted = [("cwd", cwd), ("home", home), ("tmp", tmp), ("torch_cache", torch_cache), ("hf_cache", hf_cache)]
    wanted += [("user", path) for path in paths]
    return [(role, absolute(path)) for role, path in wanted]


def _measured(filesystem: Filesystem, path: str) -> tuple[bool | Unavailable, str]:
    """Whether `path` exists, and the nearest ancestor that can be stat'ed (the path itself if it exists).

    A cache directory not created yet will land on its parent's filesystem, so that is measured.
    """
    exists: bool | Unavailable | None = None
    candidate = path
    while True:
        try:
            if filesystem.exists(candidate):
                return (exists if exists is not None else candidate == path), candidate
        except OSError as error:
            if exists is None:
                exists = Unavailable(f"cannot stat {candidate}: {error.strerror or error}")
        if candidate == "/":
            return (exists if exists is not None else False), candidate
        candidate = posixpath.dirname(candidate)


def measure_location(
    role: str, path: str, entries: tuple[MountEntry, ...] | Unavailable, roots: HostRoots, filesystem: Filesystem
) -> StorageLocation:
    exists, measured_path = _measured(filesystem, path)
    try:
        resolved = filesystem.realpath(measured_path)  # a symlinked cache may live on another disk
        total_bytes, free_bytes = filesystem.disk_usage(resolved)
        total: int | Unavailable = total_bytes
        free: int | Unavailable = free_bytes
    except OSError as error:
        resolved = measured_path
        total = free = Unavailable(f"statvfs({measured_path}) failed: {error.strerror or error}")
    entry = None if isinstance(entries, Unavailable) else find_mount(entries, resolved)
    if entry is None or isinstance(entries, Unavailable):
        missing = entries if isinstance(entries, Unavailable) else Unavailable(f"no mount holds {resolved}")
        return StorageLocation(
            role=role,
            path=path,
            exists=exists,
            measured_path=measured_path,
            mount_point=missing,
            filesystem=missing,
            is_network_filesystem=missing,
            is_read_only=missing,
            total_bytes=total,
            free_bytes=free,
            device=missing,
            block_device=missing,
            media=missing,
        )
    block_device, media = block_and_media(roots, entries, entry)
    return StorageLocation(
        role=role,
        path=path,
        exists=exists,
        measured_path=measured_path,
        mount_point=entry.mount_point,
        filesystem=entry.filesystem,
        is_network_filesystem=entry.is_network,
        is_read_only=entry.is_read_only,
        total_bytes=total,
        free_bytes=free,
        device=entry.source,
        block_device=block_device,
        media=media,
    )


def probe_storage(context: ProbeContext, filesystem: Filesystem | None = None) -> StorageFacts:
    filesystem = filesystem if filesystem is not None else LiveFilesystem()
    mountinfo_path = context.roots.proc / "self/mountinfo"
    entries: tuple[MountEntry, ...] | Unavailable
    try:
        entries = parse_mountinfo(mountinfo_path.read_text(encoding="utf-8", errors="replace"))
    except OSError as error:
        entries = Unavailable(f"cannot read {mountinfo_path}: {error.strerror or error}")
    roles_by_path: dict[str, list[str]] = {}
    for role, path in wanted_locations(context.environ, filesystem, context.paths):
        roles_by_path.setdefault(path, []).append(role)
    locations = []
    for path, roles in roles_by_path.items():
        role = min(roles, key=_ROLE_PRECEDENCE.index)
        location = measure_location(role, path, entries, context.roots, filesystem)
        locations.append(replace(location, also_roles=tuple(other for other in roles if other != role)))
    shm = str(context.roots.root / "dev/shm")
    try:
        shm_total, shm_free = filesystem.disk_usage(shm)
        shm_total_bytes: int | Unavailable = shm_total
        shm_free_bytes: int | Unavailable = shm_free
    except OSError as error:
        shm_total_bytes = shm_free_bytes = Unavailable(
            f"statvfs(/dev/shm) failed: {error.strerror or error}",
            "Mount a shared-memory tmpfs: docker run --shm-size=16g (or --ipc=host).",
        )
    return StorageFacts(tuple(locations), shm_total_bytes, shm_free_bytes)
