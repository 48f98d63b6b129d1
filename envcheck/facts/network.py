"""Facts about the network a job's collectives cross: each network interface (link speed, MTU, driver, virtual or
not), each InfiniBand / RoCE port (rate, state, link layer), and what NCCL_SOCKET_IFNAME / NCCL_IB_HCA select of them.

`select_by_nccl_filter` reads NCCL's filter syntax; it is pure so the probe and the cluster checks (which match each
rank's variables against its node's interfaces) read it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    """One entry of /sys/class/net (`ip -d link show`; the speed as `ethtool IFACE` shows it)."""

    name: str
    # ethernet, infiniband (IPoIB), loopback, bridge, bond, virtual (veth, tun, ifb: under /sys/devices/virtual),
    # or "link type N" for another ARPHRD type
    kind: str
    is_virtual: bool  # loopback, bridge or another device of /sys/devices/virtual (a bond is not: it carries traffic)
    operstate: str  # operstate verbatim: up, down, unknown (lo, tun), dormant, lowerlayerdown
    is_up: bool  # operstate up, or unknown with IFF_UP in flags (the loopback and tunnels never say "up")
    # speed, Mb/s; Unavailable where the driver reports none (-1: virtio, many VMs) or the link is down (EINVAL)
    speed_mbit_s: int | Unavailable
    mtu: int | Unavailable
    driver: str | None  # the PCI (or virtio) driver bound to its device: mlx5_core, ixgbe; None for a virtual device


@dataclass(frozen=True, slots=True)
class HcaPort:
    """One port of an InfiniBand or RoCE adapter, from /sys/class/infiniband/HCA/ports/N (`ibstat`)."""

    hca: str  # mlx5_0
    port: int
    state: str  # "ACTIVE", from "4: ACTIVE"
    is_active: bool  # the state's number is 4 (IB_PORT_ACTIVE)
    physical_state: str  # "LinkUp", from "5: LinkUp"
    link_layer: str  # InfiniBand, or Ethernet (RoCE)
    rate: str  # verbatim: "200 Gb/sec (4X HDR)"
    rate_gbit_s: float | Unavailable  # the rate's number, Gb/s
    netdevs: tuple[str, ...]  # the adapter's network interfaces (/sys/class/infiniband/HCA/device/net): ib0, eth2


@dataclass(frozen=True, slots=True)
class NcclSelection:
    """A variable that tells NCCL which interfaces (or HCA ports) to use, and what it selects on this machine."""

    variable: str  # NCCL_SOCKET_IFNAME or NCCL_IB_HCA
    value: str
    # the interface names, or "hca:port", the filter lets through, up or not; Unavailable when those were not listed
    selected: tuple[str, ...] | Unavailable


# What snapshots from before the section decode to.
NOT_COLLECTED = Unavailable("this snapshot does not record network facts (envcheck's live network probe does)")

NCCL_VARIABLES = ("NCCL_SOCKET_IFNAME", "NCCL_IB_HCA")


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    interfaces: tuple[NetworkInterface, ...] | Unavailable
    # () where the kernel has no InfiniBand class (no RDMA driver); Unavailable where the class is hidden (container)
    hca_ports: tuple[HcaPort, ...] | Unavailable
    nccl: tuple[NcclSelection, ...]  # one per variable of NCCL_VARIABLES that is set


def interface_names(interfaces: tuple[NetworkInterface, ...] | Unavailable) -> tuple[str, ...] | Unavailable:
    """What NCCL_SOCKET_IFNAME filters: the interfaces' names."""
    return tuple(interface.name for interface in interfaces) if isinstance(interfaces, tuple) else interfaces


def hca_port_names(hca_ports: tuple[HcaPort, ...] | Unavailable) -> tuple[str, ...] | Unavailable:
    """What NCCL_IB_HCA filters: "hca:port" of each port."""
    return tuple(f"{port.hca}:{port.port}" for port in hca_ports) if isinstance(hca_ports, tuple) else hca_ports


def select_by_nccl_filter(value: str, names: Iterable[str]) -> tuple[str, ...]:
    """The NAMES (interface names, or "hca:port") that NCCL's filter VALUE lets through, in their order.

    NCCL's syntax (NCCL user guide, Environment Variables, NCCL_SOCKET_IFNAME and NCCL_IB_HCA): a comma-separated
    list of prefixes; a leading `^` excludes what matches instead; a leading `=` (after `^`, if any) makes each entry
    an exact name. An entry may end with `:port`, which then must match too (NCCL_IB_HCA=mlx5_0:1)."""
    text = value.strip()
    is_exclusion = text.startswith("^")
    text = text.removeprefix("^")
    is_exact = text.startswith("=")
    text = text.removeprefix("=")
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]

    def matches(name: str) -> bool:
        base, _, port = name.partition(":")
        for entry in entries:
            entry_name, has_port, entry_port = entry.partition(":")
            if has_port and entry_port != port:
                continue
            if (base == entry_name) if is_exact else base.startswith(entry_name):
                return True
        return False

    return tuple(name for name in names if matches(name) != is_exclusion)


def nccl_selections(
    environ: Mapping[str, str],
    interfaces: tuple[NetworkInterface, ...] | Unavailable,
    hca_ports: tuple[HcaPort, ...] | Unavailable,
) -> tuple[NcclSelection, ...]:
    """What each NCCL variable set in ENVIRON selects of these interfaces and HCA ports."""
    selections = []
    for variable in NCCL_VARIABLES:
        value = environ.get(variable)
        if value is None:
            continue
        names = interface_names(interfaces) if variable == "NCCL_SOCKET_IFNAME" else hca_port_names(hca_ports)
        selected = select_by_nccl_filter(value, names) if isinstance(names, tuple) else names
        selections.append(NcclSelection(variable, value, selected))
    return tuple(selections)
