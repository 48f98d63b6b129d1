"""NVSwitch boards and their fabric manager: the probe over /sys and /proc trees the test writes (an HGX host, one
without NVSwitch, a container, a /proc with hidepid), and cuda.fabric_manager judging those facts without CUDA."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.facts.common import Unavailable
from envcheck.facts.environment import NOT_RECORDED, NvSwitchFabric
from envcheck.finding import Finding, Severity
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.fabric import FABRIC_MANAGER_COMM, count_nvswitches, probe_fabric
from tests import factories
from tests.test_checks_cuda import only

H100_X8 = "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"

# PCI functions of an HGX H100 8-GPU board as sysfs lists them (bus id: vendor, class): GPUs are 3D controllers,
# the four NVSwitches "bridge, other"; plus an Intel host bridge and a Mellanox NIC.
HGX_PCI = {
    "0000:00:00.0": ("0x8086", "0x060000"),
    "0000:18:00.0": ("0x10de", "0x030200"),
    "0000:2a:00.0": ("0x10de", "0x030200"),
    "0000:05:00.0": ("0x10de", "0x068000"),
    "0000:06:00.0": ("0x10de", "0x068000"),
    "0000:07:00.0": ("0x10de", "0x068000"),
    "0000:08:00.0": ("0x10de", "0x068000"),
    "0000:29:00.0": ("0x15b3", "0x020700"),
}


def host_tree(tmp_path: Path, pci: dict[str, tuple[str, str]], processes: dict[int, str]) -> HostRoots:
    for bus_id, (vendor, pci_class) in pci.items():
        function = tmp_path / "sys/bus/pci/devices" / bus_id
        function.mkdir(parents=True)
        (function / "vendor").write_text(vendor + "\n")
        (function / "class").write_text(pci_class + "\n")
    (tmp_path / "proc/self").mkdir(parents=True)
    for pid, comm in processes.items():
        (tmp_path / "proc" / str(pid)).mkdir()
        (tmp_path / "proc" / str(pid) / "comm").write_text(comm + "\n")
    (tmp_path / "root").mkdir()
    return HostRoots(proc=tmp_path / "proc", sys=tmp_path / "sys", etc=tmp_path / "etc", root=tmp_path / "root")


def fabric(roots: HostRoots) -> NvSwitchFabric:
    return probe_fabric(ProbeContext(environ={}, roots=roots))


def test_hgx_host_with_the_fabric_manager_running(tmp_path: Path) -> None:
    # the kernel keeps 15 characters of a process name: nv-fabricmanager shows as nv-fabricmanage
    assert FABRIC_MANAGER_COMM == "nv-fabricmanage"
    roots = host_tree(tmp_path, HGX_PCI, {1: "systemd", 812: "nv-fabricmanage", 900: "python3"})
    assert fabric(roots) == NvSwitchFabric(nvswitch_count=4, is_fabric_manager_running=True)


def test_hgx_host_with_the_fabric_manager_stopped(tmp_path: Path) -> None:
    roots = host_tree(tmp_path, HGX_PCI, {1: "systemd", 900: "python3", 901: "nv-hostengine"})
    assert fabric(roots) == NvSwitchFabric(nvswitch_count=4, is_fabric_manager_running=False)


def test_inside_a_container_a_missing_daemon_is_unknown_not_stopped(tmp_path: Path) -> None:
    roots = host_tree(tmp_path, HGX_PCI, {1: "bash", 7: "python3"})
    (roots.root / ".dockerenv").write_text("")
    found = fabric(roots)
    assert found.nvswitch_count == 4
    assert isinstance(found.is_fabric_manager_running, Unavailable)
    assert "docker container" in found.is_fabric_manager_running.reason
    # a container sharing the host's PID namespace sees the daemon, and then it is known to run
    (roots.proc / "812").mkdir()
    (roots.proc / "812/comm").write_text("nv-fabricmanage\n")
    assert fabric(roots).is_fabric_manager_running is True


def test_proc_with_hidepid_is_unknown(tmp_path: Path) -> None:
    roots = host_tree(tmp_path, HGX_PCI, {4242: "python3"})  # only our own process: /proc/1 is hidden
    running = fabric(roots).is_fabric_manager_running
    assert isinstance(running, Unavailable) and "hidepid" in running.reason


def test_no_nvswitch_and_no_pci_listing(tmp_path: Path) -> None:
    workstation = {"0000:01:00.0": ("0x10de", "0x030000"), "0000:01:00.1": ("0x10de", "0x040300")}  # GPU + audio
    roots = host_tree(tmp_path, workstation, {1: "systemd"})
    assert fabric(roots) == NvSwitchFabric(nvswitch_count=0, is_fabric_manager_running=False)
    missing = count_nvswitches(tmp_path / "nowhere")
    assert isinstance(missing, Unavailable) and missing.reason.startswith(f"cannot list {tmp_path}/nowhere/bus/pci")


def test_live_probe_never_raises() -> None:
    found = probe_fabric(ProbeContext())
    assert isinstance(found.nvswitch_count, int | Unavailable)
    assert isinstance(found.is_fabric_manager_running, bool | Unavailable)


# --- the check ---------------------------------------------------------------------------------------------

FAST = Unavailable("skipped on request")  # doctor --fast: no torch probe, no CUDA result


def fabric_check(facts: NvSwitchFabric | Unavailable, framework: object = FAST) -> Finding:
    environment = replace(factories.environment(), fabric=facts)
    snapshot = factories.gpu_machine(factories.nvml_gpu(H100_X8), environment=environment, framework=framework)
    return only("cuda.fabric_manager", snapshot)


def test_nvswitches_without_the_fabric_manager_fail_even_without_cuda() -> None:
    finding = fabric_check(NvSwitchFabric(4, False))
    assert finding.severity is Severity.FAIL
    assert finding.title == "4 NVSwitch(es) on the PCI bus but no nv-fabricmanager process is running"
    assert "error 802" in finding.detail and "550.54.15" in finding.detail
    assert finding.fix is not None and "systemctl enable --now nvidia-fabricmanager" in finding.fix


@pytest.mark.parametrize(
    ("facts", "severity", "words"),
    [
        (NvSwitchFabric(4, True), Severity.OK, "nv-fabricmanager running for 4 NVSwitch(es)"),
        (NvSwitchFabric(0, False), Severity.OK, "no NVSwitch on the PCI bus"),
        (
            NvSwitchFabric(4, Unavailable("inside a docker container the host's processes are invisible")),
            Severity.SKIP,
            "docker container",
        ),
        (NvSwitchFabric(Unavailable("cannot list /sys/bus/pci/devices"), False), Severity.SKIP, "/sys/bus/pci"),
        (NOT_RECORDED, Severity.SKIP, "skipped on request"),  # an old snapshot under --fast: as before
    ],
)
def test_where_it_cannot_know_or_nothing_is_wrong(
    facts: NvSwitchFabric | Unavailable, severity: Severity, words: str
) -> None:
    finding = fabric_check(facts)
    assert finding.severity is severity
    assert words in finding.title + finding.detail


def test_a_cuda_result_outranks_the_process_scan() -> None:
    h100 = factories.nvml_gpu(H100_X8)
    healthy = factories.framework(torch=factories.torch_on(h100))
    assert fabric_check(NvSwitchFabric(4, False), healthy).severity is Severity.OK  # CUDA started: it is running
    stuck = factories.torch(is_cuda_available=False, devices=(), cuda_error="CUDA error: system not yet initialized")
    stuck_framework = factories.framework(torch=stuck)
    finding = fabric_check(NvSwitchFabric(4, Unavailable("inside a docker container")), stuck_framework)
    assert finding.severity is Severity.FAIL and "8 GPU(s)" in finding.title
