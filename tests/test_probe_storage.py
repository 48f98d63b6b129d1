"""The storage probe: the mountinfo parser on its own, recorded host trees with a fake filesystem, this machine."""

from __future__ import annotations

import dataclasses
import posixpath
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.storage import StorageFacts, StorageLocation
from envcheck.probes import storage
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.mounts import (
    disk_media,
    find_mount,
    is_network_filesystem,
    parse_mountinfo,
    parse_mountinfo_line,
    unescape,
)
from envcheck.probes.storage import probe_storage

HOSTS = Path(__file__).parent / "fixtures" / "hosts"
GIB = 1024**3
MIB = 1024**2


@dataclass
class FakeFilesystem:
    """Answers path questions from sets and a table of sizes instead of the machine running the test."""

    cwd: str
    home_dir: str = "/root"
    existing: set[str] = field(default_factory=set)  # directories that exist, with their ancestors
    writable: set[str] = field(default_factory=lambda: {"/tmp"})
    denied: set[str] = field(default_factory=set)  # stat() on these or below raises EACCES
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)  # longest path prefix wins

    def getcwd(self) -> str:
        return self.cwd

    def home(self) -> str:
        return self.home_dir

    def exists(self, path: str) -> bool:
        if any(path == d or path.startswith(d + "/") for d in self.denied):
            raise PermissionError(13, "Permission denied", path)
        return path == "/" or any(e == path or e.startswith(path + "/") for e in self.existing)

    def is_writable_dir(self, path: str) -> bool:
        return path in self.writable

    def realpath(self, path: str) -> str:
        return path

    def disk_usage(self, path: str) -> tuple[int, int]:
        keys = [key for key in self.usage if path == key or path.startswith(key.rstrip("/") + "/")]
        if not keys or (path.startswith(str(HOSTS)) and path not in self.usage):  # a tree's /dev/shm
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.usage[max(keys, key=len)]


def context_of(tree: Path, environ: dict[str, str], paths: tuple[str, ...] = ()) -> ProbeContext:
    roots = HostRoots(proc=tree / "proc", sys=tree / "sys", etc=tree / "etc", root=tree)
    return ProbeContext(roots=roots, environ=environ, paths=paths)


def by_role(facts: StorageFacts) -> dict[str, StorageLocation]:
    return {location.role: location for location in facts.locations}


def unavailable_reasons(facts: StorageFacts) -> list[str]:
    values = [facts.shm_total_bytes, facts.shm_free_bytes]
    values += [getattr(loc, f.name) for loc in facts.locations for f in dataclasses.fields(loc)]
    return [value.reason for value in values if isinstance(value, Unavailable)]


# --- mountinfo, on its own ---------------------------------------------------------------------


def test_parses_a_line_with_optional_fields_and_escapes() -> None:
    line = (
        r"420 29 8:1 /datasets/imagenet\040(2012) /mnt/imagenet\040ro ro,relatime shared:61 master:3"
        r" - xfs /dev/sda1 rw,attr2"
    )
    entry = parse_mountinfo_line(line)
    assert entry is not None
    assert (entry.mount_id, entry.parent_id, entry.major, entry.minor) == (420, 29, 8, 1)
    assert entry.root == "/datasets/imagenet (2012)"
    assert entry.mount_point == "/mnt/imagenet ro"
    assert (entry.filesystem, entry.source) == ("xfs", "/dev/sda1")
    assert entry.is_read_only is True
    assert entry.super_options == ("rw", "attr2")


def test_unescape_covers_the_four_mangled_characters() -> None:
    assert unescape(r"a\040b\011c\012d\134e") == "a b\tc\nd\\e"
    assert unescape(r"C:\134") == "C:\\"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw",  # no separator
        "36 35 98:0 /mnt1 /mnt2 rw,noatime - ext3",  # truncated after the separator
        "x 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw",  # id not a number
        "36 35 98 /mnt1 /mnt2 rw - ext3 /dev/root rw",  # no major:minor
        "36 35 - /mnt1 /mnt2 rw ext3 /dev/root rw",  # separator too early
    ],
)
def test_malformed_lines_are_skipped(line: str) -> None:
    assert parse_mountinfo_line(line) is None
    good = "29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw"
    assert [e.mount_point for e in parse_mountinfo(f"{line}\n{good}\n")] == ["/"]


@given(st.text())
def test_parser_never_raises(text: str) -> None:
    parse_mountinfo(text)


def test_find_mount_takes_the_longest_prefix_and_the_latest_overmount() -> None:
    entries = parse_mountinfo(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 8:2 / /data rw - xfs /dev/sda2 rw\n"
        "3 1 0:40 / /dev/shm rw - tmpfs tmpfs rw,size=1024k\n"
        "4 3 0:41 / /dev/shm rw - tmpfs shm rw,size=65536k\n"
    )

    def mount_of(path: str) -> str | None:
        entry = find_mount(entries, path)
        return None if entry is None else entry.source

    assert mount_of("/data/x/y") == "/dev/sda2"
    assert mount_of("/data") == "/dev/sda2"
    assert mount_of("/data2/x") == "/dev/sda1"  # a sibling with a common prefix is not under /data
    assert mount_of("/dev/shm") == "shm"
    assert find_mount(entries[1:3], "/home") is None


def test_network_filesystems() -> None:
    for name in ("nfs", "nfs4", "cifs", "lustre", "fuse.sshfs", "fuse.gcsfuse", "9p", "wekafs"):
        assert is_network_filesystem(name), name
    for name in ("ext4", "xfs", "overlay", "tmpfs", "fuse.fuse-overlayfs", "zfs"):
        assert not is_network_filesystem(name), name


# --- recorded hosts ----------------------------------------------------------------------------


def test_bare_metal_nvme_hdd_and_nfs_home() -> None:
    tree = HOSTS / "ubuntu2204-baremetal-nvme-hdd-nfs"
    filesystem = FakeFilesystem(
        cwd="/data/ada/project",
        existing={"/data/ada/project", "/home/ada/.cache/huggingface/hub", "/tmp", "/mnt/imagenet ro/train"},
        usage={"/": (1800 * GIB, 900 * GIB), "/data": (7450 * GIB, 2100 * GIB), "/home": (50000 * GIB, 1 * GIB)},
    )
    facts = probe_storage(context_of(tree, {"HOME": "/home/ada"}, ("/mnt/imagenet ro/train",)), filesystem)
    roles = by_role(facts)
    assert list(roles) == ["cwd", "home", "tmp", "torch_cache", "hf_cache", "user"]
    cwd = roles["cwd"]
    assert (cwd.mount_point, cwd.filesystem, cwd.device, cwd.block_device, cwd.media) == (
        "/data",
        "xfs",
        "/dev/sda1",
        "sda",
        "hdd",
    )
    assert (cwd.total_bytes, cwd.free_bytes, cwd.is_read_only) == (7450 * GIB, 2100 * GIB, False)
    home = roles["home"]
    assert (home.filesystem, home.device, home.is_network_filesystem) == (
        "nfs4",
        "fs01.lab.internal:/export/home",
        True,
    )
    assert (home.block_device, home.media) == (None, "network")
    torch_cache = roles["torch_cache"]
    assert torch_cache.path == "/home/ada/.cache/torch"
    assert (torch_cache.exists, torch_cache.measured_path) == (False, "/home/ada/.cache")
    assert torch_cache.media == "network"
    assert roles["hf_cache"].path == "/home/ada/.cache/huggingface/hub"
    assert roles["hf_cache"].exists is True
    tmp = roles["tmp"]
    assert (tmp.mount_point, tmp.filesystem, tmp.block_device, tmp.media) == ("/", "ext4", "nvme0n1", "nvme")
    user = roles["user"]
    assert (user.mount_point, user.is_read_only, user.media) == ("/mnt/imagenet ro", True, "hdd")
    assert isinstance(facts.shm_total_bytes, Unavailable)  # no size recorded for this tree's /dev/shm
    assert facts.shm_total_bytes.fix is not None
    assert decode(StorageFacts, encode(facts)) == facts


def test_docker_overlay_root_and_small_shm() -> None:
    tree = HOSTS / "docker-cuda-ubuntu2204-on-ec2-g5"
    filesystem = FakeFilesystem(
        cwd="/workspace",
        existing={"/workspace", "/root", "/tmp"},
        usage={
            "/": (484 * GIB, 402 * GIB),
            "/workspace": (233 * GIB, 230 * GIB),
            str(tree / "dev/shm"): (64 * MIB, 64 * MIB),
        },
    )
    facts = probe_storage(context_of(tree, {"HOME": "/root"}), filesystem)
    roles = by_role(facts)
    workspace = roles["cwd"]
    assert (workspace.filesystem, workspace.device, workspace.block_device, workspace.media) == (
        "ext4",
        "/dev/nvme1n1",
        "nvme1n1",
        "nvme",
    )
    home = roles["home"]
    assert (home.filesystem, home.device, home.mount_point) == ("overlay", "overlay", "/")
    assert isinstance(home.block_device, Unavailable)
    assert "belongs to the host" in home.block_device.reason
    assert home.block_device.fix is not None
    assert isinstance(home.media, Unavailable)
    assert (facts.shm_total_bytes, facts.shm_free_bytes) == (64 * MIB, 64 * MIB)
    assert all(unavailable_reasons(facts))


def test_kubernetes_pod_on_persistent_disk_and_hf_home() -> None:
    tree = HOSTS / "k8s-pod-debian12-on-gke"
    filesystem = FakeFilesystem(cwd="/data", existing={"/data/hf"}, usage={"/": (95 * GIB, 60 * GIB)})
    environ = {"HOME": "/home/trainer", "HF_HOME": "/data/hf", "TORCH_HOME": "/data/torch"}
    facts = probe_storage(context_of(tree, environ), filesystem)
    roles = by_role(facts)
    assert roles["hf_cache"].path == "/data/hf/hub"
    assert (roles["hf_cache"].exists, roles["hf_cache"].measured_path) == (False, "/data/hf")
    # GCE PersistentDisk says rotational=1 even when SSD-backed: its vendor marks it virtual.
    assert (roles["torch_cache"].block_device, roles["torch_cache"].media) == ("sdb", "virtual")
    assert roles["torch_cache"].also_roles == ()
    assert roles["cwd"].also_roles == ()
    assert isinstance(roles["cwd"].total_bytes, int)  # /data falls back to the "/" entry of the fake


def test_wsl2_windows_drive_is_a_network_filesystem() -> None:
    tree = HOSTS / "wsl2-ubuntu2204"
    cwd = "/mnt/c/Users/ada/datasets"
    filesystem = FakeFilesystem(cwd=cwd, existing={cwd, "/home/ada"}, usage={"/": (1007 * GIB, 950 * GIB)})
    facts = probe_storage(context_of(tree, {"HOME": "/home/ada"}), filesystem)
    roles = by_role(facts)
    assert (roles["cwd"].filesystem, roles["cwd"].device, roles["cwd"].media) == ("9p", "C:\\", "network")
    assert (roles["home"].block_device, roles["home"].media) == ("sdd", "virtual")


# --- edge cases --------------------------------------------------------------------------------


def test_shared_paths_become_one_location_with_every_role(tmp_path: Path) -> None:
    filesystem = FakeFilesystem(cwd="/home/ada", existing={"/home/ada"}, usage={"/": (GIB, GIB)})
    context = ProbeContext(roots=HostRoots(proc=tmp_path), environ={"HOME": "/home/ada"}, paths=("~", "."))
    facts = probe_storage(context, filesystem)
    first = facts.locations[0]
    assert (first.role, first.path, first.also_roles) == ("user", "/home/ada", ("cwd", "home"))
    assert [loc.path for loc in facts.locations].count("/home/ada") == 1


def test_tmpdir_is_honoured_only_when_usable(tmp_path: Path) -> None:
    filesystem = FakeFilesystem(cwd="/w", writable={"/scratch/tmp", "/tmp"})
    context = ProbeContext(roots=HostRoots(proc=tmp_path), environ={"HOME": "/h", "TMPDIR": "/scratch/tmp"})
    assert by_role(probe_storage(context, filesystem))["tmp"].path == "/scratch/tmp"
    context = ProbeContext(roots=HostRoots(proc=tmp_path), environ={"HOME": "/h", "TMPDIR": "/gone"})
    assert by_role(probe_storage(context, filesystem))["tmp"].path == "/tmp"


def test_permission_denied_and_missing_mountinfo_give_reasons(tmp_path: Path) -> None:
    filesystem = FakeFilesystem(cwd="/", existing={"/secret"}, denied={"/secret/inner"})
    context = ProbeContext(
        roots=HostRoots(proc=tmp_path, root=tmp_path), environ={"HOME": "/h"}, paths=("/secret/inner/x",)
    )
    facts = probe_storage(context, filesystem)
    user = by_role(facts)["user"]
    assert isinstance(user.exists, Unavailable)
    assert "Permission denied" in user.exists.reason
    assert user.measured_path == "/secret"
    assert isinstance(user.mount_point, Unavailable)
    assert "mountinfo" in user.mount_point.reason
    assert isinstance(user.total_bytes, Unavailable)
    assert all(unavailable_reasons(facts))


def test_device_mapper_takes_the_slowest_disk_underneath(tmp_path: Path) -> None:
    for disk, rotational in (("nvme0n1", "0"), ("sda", "1")):
        (tmp_path / "block" / disk / "queue").mkdir(parents=True)
        (tmp_path / "block" / disk / "queue/rotational").write_text(rotational + "\n")
    (tmp_path / "block/nvme0n1/nvme0n1p3").mkdir()
    (tmp_path / "block/dm-0/slaves/nvme0n1p3").mkdir(parents=True)
    roots = HostRoots(sys=tmp_path)
    assert disk_media(roots, "dm-0") == "nvme"
    (tmp_path / "block/dm-0/slaves/sda").mkdir()
    assert disk_media(roots, "dm-0") == "hdd"
    assert isinstance(disk_media(roots, "sdz"), Unavailable)
    assert disk_media(roots, "vda") == "virtual"


def test_a_hung_stat_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "STAT_TIMEOUT_S", 0.05)
    with pytest.raises(TimeoutError, match="did not return"):
        storage._bounded(lambda: time.sleep(1), "stat /mnt/dead-nfs")


# --- this machine ------------------------------------------------------------------------------


def test_this_machine() -> None:
    facts = probe_storage(ProbeContext(paths=(".", "/nonexistent/envcheck/x")))
    assert all(unavailable_reasons(facts))
    cwd = by_role(facts).get("cwd") or next(loc for loc in facts.locations if "cwd" in loc.also_roles)
    usage = shutil.disk_usage(cwd.measured_path)
    assert cwd.total_bytes == usage.total
    assert isinstance(cwd.free_bytes, int)
    assert abs(cwd.free_bytes - usage.free) < max(GIB, usage.total // 100)
    missing = next(loc for loc in facts.locations if loc.path == "/nonexistent/envcheck/x")
    assert (missing.exists, missing.measured_path) == (False, "/")
    assert posixpath.isabs(cwd.path)
    if Path("/dev/shm").is_dir():
        assert isinstance(facts.shm_total_bytes, int)
    assert decode(StorageFacts, encode(facts)) == facts
