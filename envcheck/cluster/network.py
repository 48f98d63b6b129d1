"""The network between nodes, from each node's snapshot: the rate NCCL can reach across nodes (its NIC), whether the
nodes' InfiniBand / RoCE ports agree, and whether each rank's NCCL_SOCKET_IFNAME / NCCL_IB_HCA name interfaces its
node has and has up. Pure: rank facts in, rates and findings out.

The NIC rate NCCL may use on a node: the sum of the active IB / RoCE ports that NCCL_IB_HCA lets through (NCCL spreads
its channels over every such port; none when NCCL_IB_DISABLE=1), else the fastest physical Ethernet interface that is
up (and NCCL_SOCKET_IFNAME lets through). A ring across nodes runs at the slowest node's rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from envcheck.checks.network import selection_problem
from envcheck.cluster.facts import RankFacts
from envcheck.facts.common import Unavailable
from envcheck.facts.environment import EnvironmentFacts
from envcheck.facts.network import (
    NCCL_VARIABLES,
    NetworkFacts,
    hca_port_names,
    interface_names,
    select_by_nccl_filter,
)
from envcheck.finding import Finding, Severity

GBIT_PER_GBYTE = 8
# Ethernet NICs NCCL's socket transport can use: a bond carries its members' traffic together
_SOCKET_KINDS = ("ethernet", "bond")


@dataclass(frozen=True, slots=True)
class NicRate:
    """What one node's network gives NCCL across nodes, per direction."""

    gbit_s: float
    link: str  # "2 active InfiniBand ports (mlx5_0:1 200 Gb/sec (4X HDR), ...)", "eth0 Ethernet 25000 Mb/s"
    source: str  # the /sys files it comes from


def variables(facts: RankFacts) -> dict[str, str]:
    """The NCCL_* variables of a rank (as its snapshot recorded them: these are never secrets)."""
    environment = facts.snapshot.environment
    if not isinstance(environment, EnvironmentFacts):
        return {}
    return {variable.name: variable.value for variable in environment.variables if variable.name.startswith("NCCL_")}


def nic_rate(network: NetworkFacts | Unavailable, environ: Mapping[str, str]) -> NicRate | str:
    """The rate NCCL may use on one node, or why it is not known."""
    if isinstance(network, Unavailable):
        return f"no network facts ({network.reason})"
    if environ.get("NCCL_IB_DISABLE") != "1" and isinstance(network.hca_ports, tuple):
        names = hca_port_names(network.hca_ports)
        assert isinstance(names, tuple)
        allowed = set(select_by_nccl_filter(environ["NCCL_IB_HCA"], names) if "NCCL_IB_HCA" in environ else names)
        ports = [
            port
            for port in network.hca_ports
            if port.is_active and f"{port.hca}:{port.port}" in allowed and isinstance(port.rate_gbit_s, float)
        ]
        if ports:
            layers = " / ".join(sorted({"RoCE" if port.link_layer == "Ethernet" else "InfiniBand" for port in ports}))
            listed = ", ".join(f"{port.hca}:{port.port} {port.rate}" for port in ports)
            total = sum(port.rate_gbit_s for port in ports if isinstance(port.rate_gbit_s, float))
            return NicRate(total, f"{len(ports)} active {layers} port(s) ({listed})", "/sys/class/infiniband/*/ports")
    if isinstance(network.interfaces, Unavailable):
        return f"no interfaces ({network.interfaces.reason})"
    names = interface_names(network.interfaces)
    assert isinstance(names, tuple)
    allowed = set(
        select_by_nccl_filter(environ["NCCL_SOCKET_IFNAME"], names) if "NCCL_SOCKET_IFNAME" in environ else names
    )
    speeds = [
        (interface.speed_mbit_s, interface.name)
        for interface in network.interfaces
        if interface.is_up
        and not interface.is_virtual
        and interface.kind in _SOCKET_KINDS
        and interface.name in allowed
        and isinstance(interface.speed_mbit_s, int)
    ]
    if not speeds:
        return "no active InfiniBand / RoCE port, and no physical Ethernet interface that is up reports its speed"
    speed, name = max(speeds)
    return NicRate(speed / 1000, f"{name} Ethernet {speed} Mb/s (sockets)", "/sys/class/net/*/speed")


def node_label(facts: RankFacts) -> str:
    return f"node {facts.place.node_rank} ({facts.place.hostname})"


def _ports_summary(network: NetworkFacts | Unavailable) -> str | None:
    """ "4 active: 200 Gb/sec (4X HDR) x4", or None when the node's ports were not listed."""
    if isinstance(network, Unavailable) or isinstance(network.hca_ports, Unavailable):
        return None
    rates = [port.rate for port in network.hca_ports if port.is_active]
    counted = ", ".join(f"{rate} x{rates.count(rate)}" for rate in sorted(set(rates)))
    return f"{len(rates)} active" + (f": {counted}" if counted else "")


def check_hca_ports(nodes: Mapping[int, RankFacts]) -> Finding:
    """The active InfiniBand / RoCE ports of every node, their count and rates, the same: a node with a port down
    or linked at a lower rate slows every all-reduce across nodes to its own rate. For jobs across nodes."""
    groups: dict[str, list[str]] = {}
    for facts in nodes.values():
        summary = _ports_summary(facts.snapshot.network)
        if summary is not None:
            groups.setdefault(summary, []).append(node_label(facts))
    if not groups:
        return Finding(
            "cluster.network_mismatch", Severity.SKIP, "no node recorded its InfiniBand / RoCE ports",
            detail="the snapshots have no network section, or a container hid /sys/class/infiniband",
        )  # fmt: skip
    if len(groups) == 1:
        return Finding(
            "cluster.network_mismatch", Severity.OK,
            f"the same InfiniBand / RoCE ports on {len(next(iter(groups.values())))} node(s): {next(iter(groups))}",
        )  # fmt: skip
    return Finding(
        "cluster.network_mismatch",
        Severity.WARN,
        "the nodes' InfiniBand / RoCE ports differ: " + "; ".join(f"{s} on {', '.join(n)}" for s, n in groups.items()),
        detail="\n".join(f"{', '.join(labels)}: {summary}" for summary, labels in groups.items()),
        fix="on the node with fewer or slower active ports: ibstat (a port Down or Polling: its cable or switch port;"
        " a lower rate: the link trained down)",
        evidence=("network.hca_ports",),
    )


def check_nccl_interfaces(ranks: Sequence[RankFacts], nodes: Mapping[int, RankFacts]) -> Finding | None:
    """Each rank's NCCL_SOCKET_IFNAME / NCCL_IB_HCA against the interfaces and ports of its own node: a filter that
    matches nothing there, or only what is down, is named with the node and what that node has. None when no rank
    set either variable where its node's network was recorded."""
    problems: dict[str, list[str]] = {}
    checked = 0
    for facts in ranks:
        node = nodes.get(facts.place.node_rank)
        network = node.snapshot.network if node else None
        if not isinstance(network, NetworkFacts):
            continue
        environ = variables(facts)
        for variable in NCCL_VARIABLES:
            if variable not in environ:
                continue
            checked += 1
            is_socket = variable == "NCCL_SOCKET_IFNAME"
            names = interface_names(network.interfaces) if is_socket else hca_port_names(network.hca_ports)
            if isinstance(names, Unavailable):
                continue
            selected = select_by_nccl_filter(environ[variable], names)
            problem = selection_problem(variable, environ[variable], selected, network)
            if problem and node is not None:
                problems.setdefault(f"{node_label(node)}: {problem}", []).append(str(facts.place.rank))
    if problems:
        lines = [f"{problem} (rank {', '.join(numbers)})" for problem, numbers in problems.items()]
        named = sorted({line.split(":", 1)[0] for line in problems})
        return Finding(
            "cluster.nccl_interface",
            Severity.WARN,
            f"NCCL_SOCKET_IFNAME / NCCL_IB_HCA name no interface that is up on {', '.join(named)}",
            detail="\n".join(lines),
            fix="set the variables to names every node has (ip -br link; ibstat), or unset them and let NCCL choose",
            evidence=("environment.variables", "network.interfaces", "network.hca_ports"),
        )
    if checked == 0:
        return None
    return Finding(
        "cluster.nccl_interface",
        Severity.OK,
        f"NCCL_SOCKET_IFNAME / NCCL_IB_HCA select an interface that is up on every node ({checked} checked)",
    )
