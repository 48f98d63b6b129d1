"""The network probe over /sys trees the test writes in the kernel's layout (a GPU node with a 25 GbE NIC, an HDR
InfiniBand port and a RoCE port that is down, docker's bridge and a veth; a container without /sys/class/infiniband),
the live /sys of this machine, NCCL's filter syntax, the codec, and system.nccl_network judging those facts."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.checks.network import check_nccl_network
from envcheck.checks.registry import CheckInput
from envcheck.facts.common import Unavailable
from envcheck.facts.network import NOT_COLLECTED, HcaPort, NcclSelection, NetworkFacts, select_by_nccl_filter
from envcheck.finding import Severity
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.network import probe_interface, probe_network
from envcheck.snapshot import from_json, snapshot_to_dict, to_json
from tests import factories

PCI = "devices/pci0000:16/0000:16:02.0"


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def _interface(sys_root: Path, name: str, parent: str, driver: str | None = None, **files: str) -> None:
    """/sys/devices/PARENT/net/NAME with its attribute files, /sys/class/net/NAME pointing at it; a PCI function's
    driver link where DRIVER is given."""
    directory = sys_root / parent / "net" / name
    directory.mkdir(parents=True)
    for attribute, text in files.items():
        if attribute in ("bridge", "bonding"):
            (directory / attribute).mkdir()
        else:
            (directory / attribute).write_text(text + "\n")
    if driver:
        drivers = sys_root / "bus/pci/drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        _link(sys_root / parent / "driver", drivers)
        _link(directory / "device", sys_root / parent)
    _link(sys_root / "class/net" / name, directory)


def _hca(sys_root: Path, name: str, function: str, netdevs: tuple[str, ...], **ports: dict[str, str]) -> None:
    device = sys_root / PCI / function
    hca = device / "infiniband" / name
    for port, files in ports.items():
        (hca / "ports" / port.removeprefix("port")).mkdir(parents=True)
        for attribute, text in files.items():
            (hca / "ports" / port.removeprefix("port") / attribute).write_text(text + "\n")
    for netdev in netdevs:
        (device / "net" / netdev).mkdir(parents=True, exist_ok=True)
    _link(hca / "device", device)
    _link(sys_root / "class/infiniband" / name, hca)


def gpu_node(tmp_path: Path) -> HostRoots:
    """A GPU node: lo, a 25 GbE port (ixgbe), an HDR InfiniBand HCA with its IPoIB interface ib0, a RoCE NIC whose
    port and interface are down, docker's bridge and one veth."""
    sys_root = tmp_path / "sys"
    virtual = "devices/virtual"
    _interface(sys_root, "lo", virtual, type="772", operstate="unknown", flags="0x9", mtu="65536")
    _interface(sys_root, "docker0", virtual, type="1", operstate="down", flags="0x1003", mtu="1500", bridge="")
    _interface(sys_root, "veth3f2a1b0", virtual, type="1", operstate="up", flags="0x1103", mtu="1500", speed="10000")
    _interface(
        sys_root,
        "eth0",
        f"{PCI}/0000:17:00.0",
        "ixgbe",
        type="1",
        operstate="up",
        flags="0x1003",
        mtu="9000",
        speed="25000",
    )
    _interface(
        sys_root, "ib0", f"{PCI}/0000:18:00.0", "mlx5_core", type="32", operstate="up", flags="0x1043", mtu="4092"
    )
    _interface(
        sys_root, "eth2", f"{PCI}/0000:19:00.0", "mlx5_core", type="1", operstate="down", flags="0x1002", mtu="1500"
    )
    _hca(
        sys_root,
        "mlx5_0",
        "0000:18:00.0",
        ("ib0",),
        port1={
            "state": "4: ACTIVE",
            "phys_state": "5: LinkUp",
            "rate": "200 Gb/sec (4X HDR)",
            "link_layer": "InfiniBand",
        },
    )
    _hca(
        sys_root,
        "mlx5_1",
        "0000:19:00.0",
        ("eth2",),
        port1={"state": "1: DOWN", "phys_state": "3: Disabled", "rate": "40 Gb/sec (4X QDR)", "link_layer": "Ethernet"},
    )
    (tmp_path / "proc").mkdir()
    (tmp_path / "root").mkdir()
    return HostRoots(proc=tmp_path / "proc", sys=sys_root, etc=tmp_path / "etc", root=tmp_path / "root")


def _probe(roots: HostRoots, **environ: str) -> NetworkFacts:
    return probe_network(ProbeContext(environ=environ, roots=roots))


def test_a_gpu_node_interfaces_with_their_speed_mtu_driver_and_kind(tmp_path: Path) -> None:
    facts = _probe(gpu_node(tmp_path))
    assert isinstance(facts.interfaces, tuple)
    by_name = {interface.name: interface for interface in facts.interfaces}
    assert list(by_name) == ["docker0", "eth0", "eth2", "ib0", "lo", "veth3f2a1b0"]
    eth0 = by_name["eth0"]
    assert (eth0.kind, eth0.is_virtual, eth0.is_up, eth0.speed_mbit_s, eth0.mtu, eth0.driver) == (
        "ethernet",
        False,
        True,
        25000,
        9000,
        "ixgbe",
    )
    assert (by_name["ib0"].kind, by_name["ib0"].driver, by_name["ib0"].is_virtual) == ("infiniband", "mlx5_core", False)
    assert (by_name["lo"].kind, by_name["lo"].is_virtual, by_name["lo"].is_up) == ("loopback", True, True)
    assert (by_name["docker0"].kind, by_name["docker0"].is_virtual, by_name["docker0"].is_up) == ("bridge", True, False)
    veth = by_name["veth3f2a1b0"]
    assert (veth.kind, veth.is_virtual, veth.driver, veth.speed_mbit_s) == ("virtual", True, None, 10000)
    assert by_name["eth2"].is_up is False
    assert isinstance(by_name["eth2"].speed_mbit_s, Unavailable)  # no speed file: the kernel had none to give
    assert facts.nccl == ()


def test_infiniband_and_roce_ports_with_rate_state_and_link_layer(tmp_path: Path) -> None:
    facts = _probe(gpu_node(tmp_path))
    assert facts.hca_ports == (
        HcaPort("mlx5_0", 1, "ACTIVE", True, "LinkUp", "InfiniBand", "200 Gb/sec (4X HDR)", 200.0, ("ib0",)),
        HcaPort("mlx5_1", 1, "DOWN", False, "Disabled", "Ethernet", "40 Gb/sec (4X QDR)", 40.0, ("eth2",)),
    )


def test_the_nccl_variables_matched_against_the_interfaces_and_ports(tmp_path: Path) -> None:
    facts = _probe(gpu_node(tmp_path), NCCL_SOCKET_IFNAME="^docker,lo,veth", NCCL_IB_HCA="=mlx5_1:1")
    assert facts.nccl == (
        NcclSelection("NCCL_SOCKET_IFNAME", "^docker,lo,veth", ("eth0", "eth2", "ib0")),
        NcclSelection("NCCL_IB_HCA", "=mlx5_1:1", ("mlx5_1:1",)),
    )


def test_a_container_without_the_infiniband_class_says_so_and_a_host_has_no_hca(tmp_path: Path) -> None:
    roots = gpu_node(tmp_path)
    for link in (roots.sys / "class/infiniband").iterdir():
        link.unlink()
    (roots.sys / "class/infiniband").rmdir()
    assert _probe(roots).hca_ports == ()
    (roots.root / ".dockerenv").write_text("")
    ports = _probe(roots, NCCL_IB_HCA="mlx5").hca_ports
    assert isinstance(ports, Unavailable) and "inside this docker container" in ports.reason
    assert _probe(roots, NCCL_IB_HCA="mlx5").nccl[0].selected == ports


def test_no_class_net_is_unavailable_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    roots = HostRoots(proc=tmp_path / "proc", sys=tmp_path / "sys", etc=tmp_path, root=tmp_path)
    facts = _probe(roots, NCCL_SOCKET_IFNAME="eth0")
    assert isinstance(facts.interfaces, Unavailable) and "class/net" in facts.interfaces.reason
    assert isinstance(facts.nccl[0].selected, Unavailable)


def test_garbage_in_sys_files_never_raises(tmp_path: Path) -> None:
    sys_root = tmp_path / "sys"
    _interface(
        sys_root, "eth0", f"{PCI}/0000:17:00.0", "ixgbe", type="ether", operstate="", flags="zz", mtu="x", speed="fast"
    )
    _hca(sys_root, "mlx5_0", "0000:18:00.0", (), port1={"state": "weird", "rate": "?"})
    (tmp_path / "proc").mkdir()
    facts = _probe(HostRoots(proc=tmp_path / "proc", sys=sys_root, etc=tmp_path, root=tmp_path))
    assert isinstance(facts.interfaces, tuple) and isinstance(facts.hca_ports, tuple)
    (eth0,) = facts.interfaces
    assert isinstance(eth0.speed_mbit_s, Unavailable) and isinstance(eth0.mtu, Unavailable)
    assert (eth0.kind, eth0.is_up) == ("unknown", False)
    (port,) = facts.hca_ports
    assert (port.state, port.is_active, port.link_layer) == ("weird", False, "InfiniBand")
    assert isinstance(port.rate_gbit_s, Unavailable)


@pytest.mark.skipif(not Path("/sys/class/net/lo").exists(), reason="needs Linux's /sys")
def test_the_live_loopback() -> None:
    lo = probe_interface(Path("/sys/class/net/lo"))
    assert (lo.kind, lo.is_virtual, lo.is_up, lo.driver) == ("loopback", True, True, None)
    assert isinstance(lo.speed_mbit_s, Unavailable) and lo.speed_mbit_s.reason  # EINVAL: lo has no speed
    assert isinstance(lo.mtu, int) and lo.mtu > 0


@pytest.mark.parametrize(
    ("value", "selected"),
    [
        ("eth", ("eth0", "eth10", "eth2")),
        ("=eth1", ()),
        ("=eth0,eth2", ("eth0", "eth2")),  # `=` makes every entry of the list exact
        ("^docker,lo", ("eth0", "eth10", "eth2", "ib0")),
        ("^=eth1", ("docker0", "eth0", "eth10", "eth2", "ib0", "lo")),
        ("ib", ("ib0",)),
        ("  ", ()),
    ],
)
def test_nccl_filter_syntax(value: str, selected: tuple[str, ...]) -> None:
    names = ("docker0", "eth0", "eth10", "eth2", "ib0", "lo")
    assert select_by_nccl_filter(value, names) == selected


def test_nccl_ib_hca_ports() -> None:
    ports = ("mlx5_0:1", "mlx5_0:2", "mlx5_1:1", "mlx5_10:1")
    assert select_by_nccl_filter("mlx5_0", ports) == ("mlx5_0:1", "mlx5_0:2")
    assert select_by_nccl_filter("mlx5_1", ports) == ("mlx5_1:1", "mlx5_10:1")  # a prefix, as NCCL reads it
    assert select_by_nccl_filter("=mlx5_1", ports) == ("mlx5_1:1",)
    assert select_by_nccl_filter("mlx5_0:2,mlx5_1:1", ports) == ("mlx5_0:2", "mlx5_1:1", "mlx5_10:1")
    assert select_by_nccl_filter("=mlx5_0:2,mlx5_1:1", ports) == ("mlx5_0:2", "mlx5_1:1")
    assert select_by_nccl_filter("^mlx5_0", ports) == ("mlx5_1:1", "mlx5_10:1")


# --- the snapshot's JSON ---


def test_network_facts_round_trip_and_old_snapshots_load_as_not_collected(tmp_path: Path) -> None:
    facts = _probe(gpu_node(tmp_path), NCCL_SOCKET_IFNAME="eth")
    snapshot = factories.snapshot(network=facts)
    assert from_json(to_json(snapshot)) == snapshot
    old = snapshot_to_dict(snapshot)
    del old["network"]
    loaded = from_json(json.dumps(old))
    assert loaded.network == NOT_COLLECTED
    assert loaded == replace(snapshot, network=NOT_COLLECTED)


# --- system.nccl_network ---


def _findings(facts: NetworkFacts | Unavailable) -> list:  # type: ignore[type-arg]
    return list(check_nccl_network(CheckInput(factories.snapshot(network=facts))))


def test_unset_variables_pass_and_a_missing_section_skips(tmp_path: Path) -> None:
    (finding,) = _findings(_probe(gpu_node(tmp_path)))
    assert (finding.severity, finding.title) == (
        Severity.OK,
        "NCCL_SOCKET_IFNAME and NCCL_IB_HCA are not set: NCCL chooses",
    )
    (skipped,) = _findings(NOT_COLLECTED)
    assert skipped.severity is Severity.SKIP and skipped.detail == NOT_COLLECTED.reason


def test_an_interface_this_machine_lacks_is_named_with_those_it_has(tmp_path: Path) -> None:
    (finding,) = _findings(_probe(gpu_node(tmp_path), NCCL_SOCKET_IFNAME="=ens5"))
    assert finding.severity is Severity.WARN
    assert finding.title == "NCCL_SOCKET_IFNAME==ens5 matches no interface here: NCCL cannot connect its ranks"
    assert "there are: docker0 (down), eth0 (up), eth2 (down), ib0 (up), lo (up), veth3f2a1b0 (up)" in finding.detail
    assert finding.fix.startswith("export NCCL_SOCKET_IFNAME==eth0,ib0")  # the physical ones that are up


def test_an_interface_that_is_down_and_an_hca_port_that_is_down(tmp_path: Path) -> None:
    socket, hca = _findings(_probe(gpu_node(tmp_path), NCCL_SOCKET_IFNAME="eth2", NCCL_IB_HCA="mlx5_1"))
    assert socket.severity is Severity.WARN and "selects only interfaces that are down (eth2)" in socket.detail
    assert hca.severity is Severity.WARN
    assert hca.title.startswith("NCCL_IB_HCA=mlx5_1 selects only InfiniBand / RoCE ports that are down (mlx5_1:1)")
    assert hca.title.endswith("NCCL falls back to TCP sockets")
    assert "up here: mlx5_0:1 (up)" in hca.detail and hca.fix.startswith("export NCCL_IB_HCA==mlx5_0:1")


def test_variables_that_select_what_is_up_pass(tmp_path: Path) -> None:
    socket, hca = _findings(_probe(gpu_node(tmp_path), NCCL_SOCKET_IFNAME="eth", NCCL_IB_HCA="mlx5"))
    assert (socket.severity, socket.title) == (Severity.OK, "NCCL_SOCKET_IFNAME=eth selects eth0, eth2")
    assert (hca.severity, hca.title) == (Severity.OK, "NCCL_IB_HCA=mlx5 selects mlx5_0:1, mlx5_1:1")


def test_a_variable_whose_names_were_not_listed_skips(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / ".dockerenv").write_text("")
    roots = HostRoots(proc=tmp_path / "proc", sys=tmp_path / "sys", etc=tmp_path, root=tmp_path)
    (finding,) = _findings(_probe(roots, NCCL_IB_HCA="mlx5_0"))
    assert finding.severity is Severity.SKIP and "container" in finding.detail
