"""Facts about the operating system and what the process runs inside (container, WSL, VM)."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class SystemFacts:
    os_name: str  # platform.system(): Linux, Darwin, Windows
    distribution: str | Unavailable  # PRETTY_NAME of /etc/os-release, e.g. "Ubuntu 22.04.4 LTS"
    kernel: str
    architecture: str  # platform.machine(): x86_64, aarch64, arm64
    hostname: str
    libc: str | Unavailable  # "glibc 2.36", "musl"
    container: str | None  # docker, podman, kubernetes, lxc, containerd; None when not in one
    container_evidence: tuple[str, ...]  # what gave the container away, for the user to verify
    is_wsl: bool
    virtualization: str | Unavailable | None  # hypervisor seen from inside (kvm, vmware, ...), None on metal
    uptime_s: float | Unavailable
    is_root: bool
    open_files_limit: int | Unavailable | None  # soft RLIMIT_NOFILE; None = unlimited
