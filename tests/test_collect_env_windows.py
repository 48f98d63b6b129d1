"""A pasted collect_env names its OS: Windows (and WSL) pastes are judged with the Windows driver minimums, and
the system facts a paste never gives (host, user, container, limits) make their checks skip, never pass or fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.system import SystemFacts
from envcheck.finding import Finding, Severity
from envcheck.importers.collect_env import snapshot_from_collect_env
from envcheck.knowledge import load_knowledge
from envcheck.snapshot import Snapshot, from_json, to_json

KNOWLEDGE = load_knowledge()
FIXTURES = Path(__file__).parent / "fixtures" / "collect_env"
WINDOWS = "windows-torch2.1-cu121-driver526-rtx3080.txt"
WINDOWS_LINES = ("OS: Microsoft Windows 10 Pro", "Python platform: Windows-10-10.0.19045-SP0")


def paste(name: str, *replacements: tuple[str, str]) -> Snapshot:
    """A fixture, optionally edited line by line into a scenario (another OS, another driver)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return snapshot_from_collect_env(text.encode(), name)


def findings(snapshot: Snapshot) -> dict[str, Finding]:
    return {finding.id: finding for finding in run_checks(CheckInput(snapshot, knowledge=KNOWLEDGE))}


def test_the_windows_paste_names_the_os_and_leaves_what_it_does_not_say_unavailable() -> None:
    system = paste(WINDOWS).system
    assert isinstance(system, SystemFacts)
    assert (system.os_name, system.distribution, system.architecture) == (
        "Windows",
        "Microsoft Windows 10 Pro",
        "AMD64",
    )
    assert system.is_wsl is False and system.wsl_version is None
    for unknown in (system.hostname, system.kernel, system.is_root, system.container, system.libc):
        assert isinstance(unknown, Unavailable) and unknown.reason


def test_a_windows_driver_below_the_windows_floor_fails_where_linux_numbering_would_pass() -> None:
    # cu121 wheels bundle their runtime: the floor is CUDA 12.x minor-version compatibility, 527.41 on Windows
    # and 525.60.13 on Linux (profiles/compat/cuda_toolkits.toml). Driver 526.98 sits between the two.
    windows = findings(paste(WINDOWS))["cuda.driver_too_old"]
    assert windows.severity is Severity.FAIL
    assert "526.98 is older than 527.41" in windows.title and "windows driver" in windows.detail
    assert windows.fix is not None and "nvidia.com/Download" in windows.fix and "ubuntu-drivers" not in windows.fix
    as_linux = paste(
        WINDOWS,
        (WINDOWS_LINES[0], "OS: Ubuntu 22.04.3 LTS (x86_64)"),
        (WINDOWS_LINES[1], "Python platform: Linux-6.2.0-39-generic-x86_64-with-glibc2.35"),
    )
    linux = findings(as_linux)["cuda.driver_too_old"]
    assert linux.severity is Severity.OK and "525.60.13" in linux.title


def test_a_windows_11_paste_on_the_windows_floor_passes() -> None:
    healthy = paste(
        WINDOWS,
        (WINDOWS_LINES[0], "OS: Microsoft Windows 11 Home"),
        ("Nvidia driver version: 526.98", "Nvidia driver version: 527.41"),
    )
    assert isinstance(healthy.system, SystemFacts) and healthy.system.distribution == "Microsoft Windows 11 Home"
    assert findings(healthy)["cuda.driver_too_old"].severity is Severity.OK


def test_a_wsl_paste_is_judged_with_the_windows_driver_it_runs_on() -> None:
    wsl = paste(
        WINDOWS,
        (WINDOWS_LINES[0], "OS: Ubuntu 22.04.3 LTS (x86_64)"),
        (WINDOWS_LINES[1], "Python platform: Linux-5.15.133.1-microsoft-standard-WSL2-x86_64-with-glibc2.35"),
    )
    system = wsl.system
    assert isinstance(system, SystemFacts) and system.os_name == "Linux"
    assert system.is_wsl is True and system.wsl_version == 2 and system.kernel == "5.15.133.1-microsoft-standard-WSL2"
    assert findings(wsl)["cuda.driver_too_old"].severity is Severity.FAIL  # 526.98 < 527.41 (Windows numbering)


def test_system_checks_skip_what_a_paste_lacks() -> None:
    for name in (WINDOWS, "linux-torch2.1-cu121-a100x8-conda.txt", "macos-torch2.2-arm64-m2pro.txt"):
        found = findings(paste(name))
        system_checks = [f for f in found.values() if f.id.startswith("system.")]
        assert system_checks and all(f.severity is Severity.SKIP for f in system_checks), name
        assert found["system.root_in_container"].detail  # the skip says why


def test_a_linux_paste_without_the_platform_line_does_not_claim_to_know_about_wsl() -> None:
    old = paste("linux-torch1.4-cu101-gtx1080ti-2020.txt")  # 2020 layout: no `Python platform`, no machine
    system = old.system
    assert isinstance(system, SystemFacts) and system.os_name == "Linux"
    assert isinstance(system.is_wsl, Unavailable) and isinstance(system.architecture, Unavailable)
    assert findings(old)["cuda.wsl_driver"].severity is Severity.SKIP


@pytest.mark.parametrize(
    ("os_line", "platform_line", "family"),
    [
        ("OS: Microsoft Windows 10 Pro", "", "Windows"),  # layouts before torch 1.8 have no platform line
        ("OS: Mac OSX 10.15.7 (x86_64)", "", "Darwin"),
        ("OS: CentOS Linux 7 (Core) (x86_64)", "", "Linux"),
        ("OS: Could not collect", "Python platform: Windows-10-10.0.22631-SP0", "Windows"),
        ("OS: Could not collect", "", None),
    ],
)
def test_os_family_from_every_layout(os_line: str, platform_line: str, family: str | None) -> None:
    snapshot = paste(WINDOWS, (WINDOWS_LINES[0], os_line), (WINDOWS_LINES[1], platform_line))
    if family is None:
        assert isinstance(snapshot.system, Unavailable) and "OS" in snapshot.system.reason
        # 526.98 meets the Linux floor (525.60.13) but not the Windows one (527.41): no verdict without the OS
        unknown = findings(snapshot)["cuda.driver_too_old"]
        assert unknown.severity is Severity.SKIP and "the OS is unknown" in unknown.detail
    else:
        assert isinstance(snapshot.system, SystemFacts) and snapshot.system.os_name == family


def test_windows_paste_round_trips_through_json() -> None:
    snapshot = paste(WINDOWS)
    assert from_json(to_json(snapshot)) == snapshot
