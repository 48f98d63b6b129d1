"""Facts about the operating system and what the process runs inside (container, WSL, VM)."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """The live probe fills every field; an imported report (a pasted collect_env) names the OS but not the
    kernel, host, user or container, and those fields are then Unavailable so the checks that need them skip."""

    os_name: str  # platform.system(): Linux, Darwin, Windows
    distribution: str | Unavailable  # PRETTY_NAME of /etc/os-release, e.g. "Ubuntu 22.04.4 LTS"
    kernel: str | Unavailable
    architecture: str | Unavailable  # platform.machine(): x86_64, aarch64, arm64
    hostname: str | Unavailable
    libc: str | Unavailable  # "glibc 2.36", "musl"
    # docker, podman, kubernetes, lxc, containerd, systemd-nspawn, unknown; None = not in one
    container: str | Unavailable | None
    container_evidence: tuple[str, ...]  # what gave the container away, for the user to verify
    is_wsl: bool | Unavailable
    # hypervisor seen from inside, as systemd-detect-virt names it (kvm, amazon, google, microsoft,
    # firecracker; unknown = the CPU flags a hypervisor that nothing names); None on bare metal
    virtualization: str | Unavailable | None
    uptime_s: float | Unavailable
    is_root: bool | Unavailable
    open_files_limit: int | Unavailable | None  # soft RLIMIT_NOFILE; None = unlimited
    # 1 or 2 under WSL (WSL1 translates syscalls, WSL2 is a VM: GPU and disk behave differently);
    # None when not WSL. Last, with a default, so snapshots written before it still decode.
    wsl_version: int | Unavailable | None = None


def wsl_of_kernel(release: str, version: str = "") -> tuple[bool, int | Unavailable | None]:
    """Whether a kernel is WSL's, and which WSL, from its release (and /proc/version when there is one).

    The live probe and the collect_env importer both ask this of a kernel string. WSL2 releases look like
    "5.15.153.1-microsoft-standard-WSL2" (older: "4.19.128-microsoft-standard"), WSL1 like
    "4.4.0-19041-Microsoft" (the Windows build number, capital M).
    """
    text = f"{release} {version}"
    if "microsoft" not in text.lower() and "wsl" not in text.lower():
        return False, None
    if "WSL2" in text or "microsoft-standard" in text:
        return True, 2
    if "Microsoft" in release:
        return True, 1
    return True, Unavailable(f"WSL kernel {release.strip()!r} does not say which WSL version")
