"""The memory probe on recorded /proc trees (with their cgroups), on broken meminfo, and on this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.memory import MemoryFacts
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.memory import estimate_available_bytes, parse_meminfo, probe_memory

CGROUP_TREES = Path(__file__).parent / "fixtures" / "cgroup"
GIB = 1024**3
KIB = 1024


def context_of(tree: Path) -> ProbeContext:
    return ProbeContext(roots=HostRoots(proc=tree / "proc", sys=tree / "sys", etc=tree / "etc", root=tree))


@pytest.mark.parametrize(
    ("tree", "limit", "usage"),
    [
        ("v2-kubepods-nested", 8 * GIB, 1879048192),
        ("v2-user-session-unlimited", None, 734003200),
        ("v1-docker-limited", 4 * GIB, GIB),
        ("v1-hybrid-unlimited", None, 3473408),
    ],
)
def test_recorded_machines(tree: str, limit: int | None, usage: int) -> None:
    facts = probe_memory(context_of(CGROUP_TREES / tree))
    assert facts.total_bytes == 263845372 * KIB
    assert facts.available_bytes == 248901232 * KIB
    assert (facts.swap_total_bytes, facts.swap_free_bytes) == (8388604 * KIB, 8388604 * KIB)
    assert (facts.cgroup_limit_bytes, facts.cgroup_usage_bytes) == (limit, usage)
    assert decode(MemoryFacts, encode(facts)) == facts


def test_old_kernel_without_mem_available_gets_the_kernel_estimate(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(CGROUP_TREES / "v1-docker-limited", tmp_path / "tree"))
    meminfo = tree / "proc" / "meminfo"
    meminfo.write_text("".join(ln for ln in meminfo.read_text().splitlines(True) if "MemAvailable" not in ln))
    facts = probe_memory(context_of(tree))
    # MemFree + Active(file) + Inactive(file) + SReclaimable, as in the fixture
    assert facts.available_bytes == (201234560 + 19409880 + 25560584 + 3617212) * KIB


def test_no_cgroup_files_leaves_ram_and_reports_why(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    shutil.copy(CGROUP_TREES / "v2-kubepods-nested" / "proc" / "meminfo", tmp_path / "proc" / "meminfo")
    facts = probe_memory(context_of(tmp_path))
    assert facts.total_bytes == 263845372 * KIB
    assert isinstance(facts.cgroup_limit_bytes, Unavailable) and facts.cgroup_limit_bytes.reason
    assert isinstance(facts.cgroup_usage_bytes, Unavailable) and facts.cgroup_usage_bytes.reason


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"\x00\xff\xfe", b"MemTotal: lots kB\n", b"MemTotal: 5 kB\n"])
def test_unusable_meminfo_fails_the_section_with_a_reason(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_bytes(content)
    # ProbeError is the one deliberate failure: the collector records the whole section as Unavailable.
    with pytest.raises(ProbeError, match="meminfo"):
        probe_memory(context_of(tmp_path))


def test_missing_meminfo_fails_the_section_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="cannot read"):
        probe_memory(context_of(tmp_path))


def test_parse_meminfo_units() -> None:
    parsed = parse_meminfo("MemTotal:       1024 kB\nHugePages_Total:       4\nbad line\nX: y kB\n")
    assert parsed == {"MemTotal": 1024 * KIB, "HugePages_Total": 4}
    assert estimate_available_bytes({"MemFree": 10, "MemAvailable": 7}) == 7


@given(st.text())
def test_parse_meminfo_never_raises(text: str) -> None:
    parse_meminfo(text)


# --- this machine -------------------------------------------------------------------------------


def _free_bytes() -> dict[str, list[int]]:
    output = subprocess.run(["free", "-b"], capture_output=True, text=True, check=True, timeout=10).stdout
    rows = {}
    for line in output.splitlines()[1:]:
        label, _, numbers = line.partition(":")
        rows[label.strip()] = [int(number) for number in numbers.split()]
    return rows


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux /proc")
def test_live_machine_agrees_with_psutil_and_free() -> None:
    facts = probe_memory(ProbeContext())
    virtual, swap = psutil.virtual_memory(), psutil.swap_memory()
    assert facts.total_bytes == virtual.total
    assert facts.swap_total_bytes == swap.total
    assert abs(facts.available_bytes - virtual.available) < 0.05 * virtual.total  # memory moves meanwhile
    if shutil.which("free"):
        free = _free_bytes()
        assert facts.total_bytes == free["Mem"][0]
        assert facts.swap_total_bytes == free["Swap"][0]
    for value in (facts.cgroup_limit_bytes, facts.cgroup_usage_bytes):
        assert not isinstance(value, Unavailable) or value.reason
