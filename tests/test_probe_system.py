"""The system probe on recorded host trees (bare metal, docker, a Kubernetes pod, WSL2) and on this machine."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

import pytest

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.system import SystemFacts
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.system import parse_os_release, probe_system, probe_wsl

HOSTS = Path(__file__).parent / "fixtures" / "hosts"


def context_of(tree: Path, environ: dict[str, str] | None = None) -> ProbeContext:
    roots = HostRoots(proc=tree / "proc", sys=tree / "sys", etc=tree / "etc", root=tree)
    return ProbeContext(roots=roots, environ=environ or {})


def unavailable_fields(facts: Any) -> dict[str, Unavailable]:
    return {
        field.name: getattr(facts, field.name)
        for field in dataclasses.fields(facts)
        if isinstance(getattr(facts, field.name), Unavailable)
    }


@pytest.mark.parametrize(
    ("tree", "environ", "expected"),
    [
        (
            "ubuntu2204-baremetal-nvme-hdd-nfs",
            {},
            {
                "distribution": "Ubuntu 22.04.4 LTS",
                "kernel": "5.15.0-105-generic",
                "hostname": "gpu-node-17",
                "container": None,
                "container_evidence": (),
                "is_wsl": False,
                "wsl_version": None,
                "virtualization": None,
                "uptime_s": 1036800.52,
            },
        ),
        (
            "docker-cuda-ubuntu2204-on-ec2-g5",
            {},
            {
                "distribution": "Ubuntu 22.04.3 LTS",
                "kernel": "6.5.0-1017-aws",
                "hostname": "3f2a9c1b7e6d",
                "container": "docker",
                "container_evidence": (
                    "/.dockerenv exists",
                    "the root filesystem is overlay (/proc/self/mountinfo)",
                    "a mount comes from docker/containers (/proc/self/mountinfo)",
                ),
                "is_wsl": False,
                "virtualization": "amazon",
                "uptime_s": 4211.37,
            },
        ),
        (
            "k8s-pod-debian12-on-gke",
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
            {
                "distribution": "Debian GNU/Linux 12 (bookworm)",
                "hostname": "trainer-7d9f8c6b5-x2kqp",
                "container": "kubernetes",
                "container_evidence": (
                    "KUBERNETES_SERVICE_HOST is set",
                    "/proc/1/cgroup mentions kubepods",
                    "the root filesystem is overlay (/proc/self/mountinfo)",
                    "a mount comes from kubelet/pods (/proc/self/mountinfo)",
                ),
                "virtualization": "google",
            },
        ),
        (
            "wsl2-ubuntu2204",
            {},
            {
                "kernel": "5.15.153.1-microsoft-standard-WSL2",
                "hostname": "DESKTOP-4K2J9QF",
                "container": None,
                "is_wsl": True,
                "wsl_version": 2,
                "virtualization": "microsoft",
            },
        ),
    ],
)
def test_recorded_hosts(tree: str, environ: dict[str, str], expected: dict[str, Any]) -> None:
    facts = probe_system(context_of(HOSTS / tree, environ))
    assert {name: getattr(facts, name) for name in expected} == expected
    assert facts.os_name == "Linux"
    assert decode(SystemFacts, encode(facts)) == facts


def test_empty_tree_gives_reasons_not_exceptions(tmp_path: Path) -> None:
    facts = probe_system(context_of(tmp_path))
    missing = unavailable_fields(facts)
    assert {"distribution", "virtualization", "uptime_s"} <= set(missing)
    assert all(value.reason for value in missing.values())
    assert facts.container is None
    assert facts.is_wsl is False


def test_container_markers_from_podman_and_the_container_variable(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").write_text('engine="podman-4.9.3"\n')
    facts = probe_system(context_of(tmp_path, {"container": "podman"}))
    assert facts.container == "podman"
    assert facts.container_evidence == ("/run/.containerenv exists", "container=podman in the environment")


def test_overlay_root_alone_is_an_unidentified_container(tmp_path: Path) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        "100 90 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
    )
    facts = probe_system(context_of(tmp_path))
    assert facts.container == "unknown"


def test_wsl1_and_unrecognised_kernels(tmp_path: Path) -> None:
    kernel = tmp_path / "proc/sys/kernel"
    kernel.mkdir(parents=True)
    (kernel / "osrelease").write_text("4.4.0-19041-Microsoft\n")
    assert probe_wsl(HostRoots(proc=tmp_path / "proc")) == (True, 1)
    (kernel / "osrelease").write_text("6.6.36.3-microsoft-custom\n")
    is_wsl, version = probe_wsl(HostRoots(proc=tmp_path / "proc"))
    assert is_wsl is True
    assert isinstance(version, Unavailable)
    assert "6.6.36.3-microsoft-custom" in version.reason


def test_hypervisor_flag_without_dmi_is_an_unknown_hypervisor(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu sse2 hypervisor avx2\n")
    assert probe_system(context_of(tmp_path)).virtualization == "unknown"


def test_garbage_uptime_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/uptime").write_text("not a number\n")
    uptime = probe_system(context_of(tmp_path)).uptime_s
    assert isinstance(uptime, Unavailable)
    assert "not a number" in uptime.reason


def test_os_release_quoting_and_comments() -> None:
    text = "# comment\nNAME='Alpine Linux'\nPRETTY_NAME=\"Alpine Linux v3.19\"\nID=alpine\n\nbroken line\n"
    assert parse_os_release(text) == {"NAME": "Alpine Linux", "PRETTY_NAME": "Alpine Linux v3.19", "ID": "alpine"}


def test_this_machine() -> None:
    facts = probe_system(ProbeContext())
    assert facts.hostname == socket.gethostname()
    assert all(value.reason for value in unavailable_fields(facts).values())
    os_release = Path("/etc/os-release")
    if os_release.exists():
        assert facts.distribution == parse_os_release(os_release.read_text())["PRETTY_NAME"]
    if Path("/.dockerenv").exists():
        assert facts.container is not None
        assert "/.dockerenv exists" in facts.container_evidence
    assert isinstance(facts.uptime_s, float)
    assert facts.uptime_s > 0
    assert facts.open_files_limit is None or isinstance(facts.open_files_limit, int)
    assert decode(SystemFacts, encode(facts)) == facts
