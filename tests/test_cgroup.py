"""The cgroup reader on recorded v1, v2 and hybrid trees, on broken ones, and on this machine."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envcheck.facts.common import Unavailable
from envcheck.probes import cgroup
from envcheck.probes.context import HostRoots

FIXTURES = Path(__file__).parent / "fixtures" / "cgroup"
GIB = 1024**3
KUBEPODS_LEAF = (
    "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod6f1c2a9e_41d2_4b1e_9a3c_0d3e5f7a8b21.slice/"
    "cri-containerd-5b0f7d2a9c1e4f3b8a6d2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a.scope"
)


def roots_of(tree: Path) -> HostRoots:
    return HostRoots(proc=tree / "proc", sys=tree / "sys", etc=tree / "etc", root=tree)


def copy_of(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


# --- pure parsers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("200000 100000\n", 2.0), ("max 100000\n", None), ("50000 100000", 0.5), ("150000 100000", 1.5)],
)
def test_cpu_max(text: str, cpus: float | None) -> None:
    assert cgroup.parse_cpu_max(text) == cpus


@pytest.mark.parametrize(("quota", "period", "cpus"), [("-1\n", "100000\n", None), ("150000\n", "100000\n", 1.5)])
def test_cfs_quota(quota: str, period: str, cpus: float | None) -> None:
    assert cgroup.parse_cfs_quota(quota, period) == cpus


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("max\n", None),
        ("8589934592\n", 8 * GIB),
        ("9223372036854771712\n", None),  # v1 unlimited with 4 KiB pages
        ("9223372036854710272\n", None),  # v1 unlimited with 64 KiB pages (arm64)
        ("0\n", 0),
    ],
)
def test_memory_bytes(text: str, limit: int | None) -> None:
    assert cgroup.parse_memory_bytes(text) == limit


@pytest.mark.parametrize("text", ["", "garbage", "max", "0 100000", "100000 0", "1 2 3", "max max"])
def test_malformed_cpu_max_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        cgroup.parse_cpu_max(text)


def test_proc_self_cgroup_keeps_colons_in_paths_and_splits_controllers() -> None:
    parsed = cgroup.parse_proc_self_cgroup("2:cpu,cpuacct:/docker/a:b\n0::/\n")
    assert parsed == (
        cgroup.CgroupMembership(2, ("cpu", "cpuacct"), "/docker/a:b"),
        cgroup.CgroupMembership(0, (), "/"),
    )


def test_mountinfo_unescapes_and_keeps_only_cgroup_mounts() -> None:
    text = (
        "26 24 0:23 / /proc rw - proc proc rw\n"
        "41 31 0:38 /a\\040b /sys/fs/cgroup/my\\040dir rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
        "nonsense\n"
    )
    (mount,) = cgroup.cgroup_mounts(text)
    assert (mount.filesystem, mount.root, mount.mount_point, mount.super_options) == (
        "cgroup2",
        "/a b",
        "/sys/fs/cgroup/my dir",
        ("rw",),
    )


@given(st.text())
def test_parsers_fail_only_with_value_error(text: str) -> None:
    cgroup.cgroup_mounts(text)
    for parse in (cgroup.parse_cpu_max, cgroup.parse_memory_bytes, cgroup.parse_proc_self_cgroup):
        with contextlib.suppress(ValueError):
            parse(text)


# --- recorded trees -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tree", "version", "quota", "limit", "usage"),
    [
        ("v2-kubepods-nested", 2, 2.0, 8 * GIB, 1879048192),
        ("v2-user-session-unlimited", 2, None, None, 734003200),
        ("v2-docker-cgroupns", 2, None, 16 * GIB, 52428800),
        ("v1-docker-limited", 1, 1.5, 4 * GIB, GIB),
        ("v1-hybrid-unlimited", 1, None, None, 3473408),
    ],
)
def test_recorded_trees(tree: str, version: int, quota: float | None, limit: int | None, usage: int) -> None:
    roots = roots_of(FIXTURES / tree)
    located = cgroup.locate_cgroup(roots, "memory")
    assert isinstance(located, cgroup.CgroupDir) and located.version == version
    assert cgroup.read_cpu_quota_cpus(roots) == quota
    assert cgroup.read_memory_limit_bytes(roots) == limit
    assert cgroup.read_memory_usage_bytes(roots) == usage


def test_nested_path_is_resolved_through_mountinfo() -> None:
    roots = roots_of(FIXTURES / "v2-kubepods-nested")
    located = cgroup.locate_cgroup(roots, "cpu")
    assert isinstance(located, cgroup.CgroupDir)
    assert located.leaf == FIXTURES / "v2-kubepods-nested" / KUBEPODS_LEAF
    assert located.top == FIXTURES / "v2-kubepods-nested" / "sys/fs/cgroup"


def test_a_tighter_parent_limit_wins(tmp_path: Path) -> None:
    tree = copy_of("v2-kubepods-nested", tmp_path)
    (tree / KUBEPODS_LEAF / "cpu.max").write_text("max 100000\n")
    (tree / KUBEPODS_LEAF / "memory.max").write_text("max\n")
    (tree / KUBEPODS_LEAF).parent.joinpath("cpu.max").write_text("50000 100000\n")
    assert cgroup.read_cpu_quota_cpus(roots_of(tree)) == 0.5
    assert cgroup.read_memory_limit_bytes(roots_of(tree)) == 8 * GIB


def test_v2_root_cgroup_without_interface_files_has_no_limit(tmp_path: Path) -> None:
    tree = copy_of("v2-docker-cgroupns", tmp_path)
    for name in ("cpu.max", "memory.max", "memory.current"):
        (tree / "sys/fs/cgroup" / name).unlink()
    roots = roots_of(tree)
    assert cgroup.read_cpu_quota_cpus(roots) is None
    assert cgroup.read_memory_limit_bytes(roots) is None
    assert cgroup.read_memory_usage_bytes(roots) is None


def test_missing_interface_files_in_a_child_cgroup_are_unavailable(tmp_path: Path) -> None:
    tree = copy_of("v2-kubepods-nested", tmp_path)
    for path in (tree / "sys").rglob("*"):
        if path.name in ("cpu.max", "memory.max", "memory.current"):
            path.unlink()
    roots = roots_of(tree)
    for value in (
        cgroup.read_cpu_quota_cpus(roots),
        cgroup.read_memory_limit_bytes(roots),
        cgroup.read_memory_usage_bytes(roots),
    ):
        assert isinstance(value, Unavailable), value
        assert "does not exist" in value.reason or "no cpu.max" in value.reason or "no memory.max" in value.reason


@pytest.mark.parametrize(
    ("tree", "removed", "expected_in_reason"),
    [
        ("v2-kubepods-nested", "proc/self/cgroup", "cannot read the process's cgroup"),
        ("v2-kubepods-nested", "proc/self/mountinfo", "cannot read the process's cgroup"),
        ("v2-kubepods-nested", KUBEPODS_LEAF, "does not exist"),
        ("v1-docker-limited", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "no cpu.max or cpu.cfs_quota_us"),
    ],
)
def test_missing_files_are_unavailable_with_a_reason(
    tmp_path: Path, tree: str, removed: str, expected_in_reason: str
) -> None:
    copied = copy_of(tree, tmp_path)
    target = copied / removed
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    quota = cgroup.read_cpu_quota_cpus(roots_of(copied))
    assert isinstance(quota, Unavailable) and expected_in_reason in quota.reason


def test_no_cgroup_mount_for_the_controller_is_unavailable(tmp_path: Path) -> None:
    tree = copy_of("v1-docker-limited", tmp_path)
    (tree / "proc/self/mountinfo").write_text("26 24 0:23 / /proc rw - proc proc rw\n")
    quota = cgroup.read_cpu_quota_cpus(roots_of(tree))
    assert isinstance(quota, Unavailable) and "no mounted cgroup hierarchy" in quota.reason
    assert quota.fix


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"\x00\xff\xfe", b"-5\n", b"12 34 56\n"])
@pytest.mark.parametrize(
    ("tree", "relative"),
    [
        ("v2-kubepods-nested", f"{KUBEPODS_LEAF}/cpu.max"),
        ("v2-kubepods-nested", f"{KUBEPODS_LEAF}/memory.max"),
        ("v2-kubepods-nested", f"{KUBEPODS_LEAF}/memory.current"),
        ("v1-docker-limited", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"),
        ("v1-docker-limited", "sys/fs/cgroup/memory/memory.limit_in_bytes"),
        ("v1-docker-limited", "proc/self/cgroup"),
    ],
)
def test_malformed_files_are_unavailable_never_an_exception(
    tmp_path: Path, tree: str, relative: str, content: bytes
) -> None:
    copied = copy_of(tree, tmp_path)
    (copied / relative).write_bytes(content)
    roots = roots_of(copied)
    results = [
        cgroup.read_cpu_quota_cpus(roots),
        cgroup.read_memory_limit_bytes(roots),
        cgroup.read_memory_usage_bytes(roots),
    ]
    assert any(isinstance(result, Unavailable) for result in results)
    assert all(result.reason for result in results if isinstance(result, Unavailable))


def test_an_empty_root_is_unavailable(tmp_path: Path) -> None:
    roots = roots_of(tmp_path)
    assert isinstance(cgroup.read_cpu_quota_cpus(roots), Unavailable)
    assert isinstance(cgroup.read_memory_limit_bytes(roots), Unavailable)
    assert isinstance(cgroup.read_memory_usage_bytes(roots), Unavailable)


# --- this machine -------------------------------------------------------------------------------


def _raw_dir(controller: str) -> tuple[int, Path, Path] | None:
    """The controller's directory found by hand (version, leaf, mount point): the test's own reading.

    Pure v2 hosts have /sys/fs/cgroup/cgroup.controllers; otherwise the controller has a v1 mount.
    """
    memberships = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    mounts = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    is_v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    for _, names, path in memberships:
        if is_v2 and names != "":
            continue
        if not is_v2 and controller not in names.split(","):
            continue
        for fields in mounts:
            fstype, options = fields[-3], fields[-1].split(",")
            if (is_v2 and fstype == "cgroup2") or (fstype == "cgroup" and controller in options):
                root, mount_point = fields[3], Path(fields[4])
                relative = path[len(root) :] if path.startswith(root) else ""
                return (2 if is_v2 else 1), mount_point / relative.lstrip("/"), mount_point
    return None


@pytest.mark.skipif(not Path("/proc/self/mountinfo").exists(), reason="needs Linux /proc")
def test_live_quota_and_limit_match_the_raw_files() -> None:
    found = _raw_dir("cpu")
    if found is None:
        pytest.skip("no cgroup cpu controller mounted here")
    version, leaf, top = found
    located = cgroup.locate_cgroup(HostRoots(), "cpu")
    assert isinstance(located, cgroup.CgroupDir) and located.version == version

    expected: list[float] = []
    directory = leaf
    while True:
        if version == 2 and (directory / "cpu.max").exists():
            max_text, period = (directory / "cpu.max").read_text().split()
            if max_text != "max":
                expected.append(int(max_text) / int(period))
        elif version == 1 and (directory / "cpu.cfs_quota_us").exists():
            quota = int((directory / "cpu.cfs_quota_us").read_text())
            if quota > 0:
                expected.append(quota / int((directory / "cpu.cfs_period_us").read_text()))
        if directory == top:
            break
        directory = directory.parent
    assert cgroup.read_cpu_quota_cpus(HostRoots()) == (min(expected) if expected else None)

    memory = _raw_dir("memory")
    if memory is not None:
        name = "memory.max" if memory[0] == 2 else "memory.limit_in_bytes"
        raw = (memory[1] / name).read_text().strip() if (memory[1] / name).exists() else "max"
        limit = cgroup.read_memory_limit_bytes(HostRoots())
        if raw == "max" or int(raw) >= 2**62:
            assert limit is None or isinstance(limit, int)  # a parent may still set one
        else:
            assert isinstance(limit, int) and limit <= int(raw)
        usage = cgroup.read_memory_usage_bytes(HostRoots())
        assert usage is None or (isinstance(usage, int) and usage > 0)
