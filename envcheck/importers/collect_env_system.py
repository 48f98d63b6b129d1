"""The operating system a pasted collect_env output names: its `OS`, `Python platform`, `Python version` and
`Libc version` lines, read into SystemFacts. What collect_env never prints (host, user, container, limits) stays
Unavailable, so the checks that need it skip; the OS family reaches the checks whose rules differ by OS."""

from __future__ import annotations

import re
from collections.abc import Mapping

from envcheck.facts.common import Unavailable
from envcheck.facts.system import SystemFacts, wsl_of_kernel

NOT_PRINTED = "collect_env does not print it"
_UNKNOWN_WORDS = ("n/a", "none", "could not collect", "")
# platform.machine() spellings collect_env appends to the OS line, e.g. "Ubuntu 22.04.4 LTS (x86_64)"
_MACHINES = ("x86_64", "aarch64", "arm64", "ppc64le", "s390x", "i686", "armv7l", "AMD64", "ARM64")
_MACHINE = "|".join(_MACHINES)
_OS_LINE_MACHINE = re.compile(rf"\s*\((?P<machine>{_MACHINE})\)\s*$")
# platform.platform(): "Linux-5.15.0-1036-aws-x86_64-with-glibc2.31" (3.8+), "Linux-4.15.0-88-generic-x86_64-with-
# Ubuntu-18.04-bionic" (older), "Windows-10-10.0.19045-SP0", "macOS-14.3.1-arm64-arm-64bit", "Darwin-19.6.0-x86_64-..."
_LINUX_PLATFORM = re.compile(rf"^Linux-(?P<kernel>.+?)-(?P<machine>{_MACHINE})(?:-with-.*)?$")
_MAC_PLATFORM = re.compile(rf"^(?:macOS|Darwin)-(?P<release>[\d.]+)-(?P<machine>{_MACHINE})\b")
# CPython's sys.version on Windows ends with the compiler and target: "[MSC v.1916 64 bit (AMD64)]"
_MSC_MACHINE = re.compile(r"\[MSC v\.\d+ (?:64|32) bit \((?P<machine>AMD64|ARM64|Intel)\)\]")
# collect_env's get_os() on Linux prints the distribution's description; these words mark one when an old layout
# (before torch 1.8) left out both the machine and the Python platform line
_LINUX_WORDS = ("linux", "ubuntu", "debian", "centos", "fedora", "red hat", "rocky", "alma", "suse", "mint", "pop!_os")


def system_from_report(values: Mapping[str, str]) -> SystemFacts | Unavailable:
    """What the paste says about the OS, or Unavailable when it does not name one."""
    os_line, platform_line = _said(values, "os"), _said(values, "python_platform")
    os_name = _os_family(os_line, platform_line)
    if os_name is None:
        said = f" (it gives only: OS {os_line})" if os_line else ""
        return Unavailable(f"not in collect_env output: no readable `OS` or `Python platform` line{said}")
    not_printed = Unavailable(NOT_PRINTED)
    kernel = _kernel(os_name, platform_line)
    is_wsl, wsl_version = _wsl(os_name, kernel)
    return SystemFacts(
        os_name=os_name,
        distribution=_OS_LINE_MACHINE.sub("", os_line) or not_printed,
        kernel=kernel,
        architecture=_machine(os_line, platform_line, _said(values, "python_version")),
        hostname=not_printed,
        libc=_libc(_said(values, "libc")),
        container=not_printed,
        container_evidence=(),
        is_wsl=is_wsl,
        virtualization=not_printed,
        uptime_s=not_printed,
        is_root=not_printed,
        open_files_limit=not_printed,
        wsl_version=wsl_version,
    )


def _said(values: Mapping[str, str], key: str) -> str:
    text = values.get(key, "").strip()
    return "" if text.lower() in _UNKNOWN_WORDS else text


def _os_family(os_line: str, platform_line: str) -> str | None:
    """platform.system()'s spelling (Linux, Windows, Darwin); collect_env runs on these three only."""
    for prefix, family in (("Windows", "Windows"), ("Linux", "Linux"), ("macOS", "Darwin"), ("Darwin", "Darwin")):
        if platform_line.startswith(prefix + "-"):
            return family
    folded = os_line.casefold()
    if folded.startswith(("microsoft windows", "windows")):  # get_windows_version(): wmic's Caption
        return "Windows"
    if folded.startswith(("macos", "mac osx", "mac os x")):
        return "Darwin"
    if _OS_LINE_MACHINE.search(os_line) or any(word in folded for word in _LINUX_WORDS):
        return "Linux"
    return None


def _kernel(os_name: str, platform_line: str) -> str | Unavailable:
    match = _LINUX_PLATFORM.match(platform_line) if os_name == "Linux" else None
    return match.group("kernel") if match else Unavailable(NOT_PRINTED)


def _machine(os_line: str, platform_line: str, python_line: str) -> str | Unavailable:
    for match in (
        _OS_LINE_MACHINE.search(os_line),
        _LINUX_PLATFORM.match(platform_line),
        _MAC_PLATFORM.match(platform_line),
    ):
        if match:
            return match.group("machine")
    windows = _MSC_MACHINE.search(python_line)
    if windows:
        return {"Intel": "x86"}.get(windows.group("machine"), windows.group("machine"))
    return Unavailable(f"{NOT_PRINTED}: neither the OS line nor the Python lines name the machine")


def _wsl(os_name: str, kernel: str | Unavailable) -> tuple[bool | Unavailable, int | Unavailable | None]:
    """WSL and its version from the kernel release the `Python platform` line carries."""
    if os_name != "Linux":
        return False, None
    if isinstance(kernel, Unavailable):
        return Unavailable(f"{NOT_PRINTED}: no `Python platform` line with the kernel release"), kernel
    return wsl_of_kernel(kernel)


def _libc(line: str) -> str | Unavailable:
    """``glibc-2.31`` as the live probe spells it (``glibc 2.31``); Windows and macOS print N/A."""
    return line.replace("-", " ", 1) if line else Unavailable(NOT_PRINTED)
