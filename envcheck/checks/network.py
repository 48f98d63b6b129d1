"""Checks of the network NCCL will use: NCCL_SOCKET_IFNAME and NCCL_IB_HCA must name interfaces and HCA ports this
machine has, and that are up. A filter that selects nothing stops NCCL at its start ("Bootstrap : no socket interface
found", "NET/IB : No device found") or sends a multi-node job over the wrong link.

`selection_problem` is shared with the cluster checks, which match each rank's variables against its node's facts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.facts.network import NetworkFacts
from envcheck.finding import Finding, Severity

CHECK_ID = "system.nccl_network"
# What NCCL does when its filter leaves it nothing (NCCL's "Bootstrap : no socket interface found" error; with no IB
# device it logs "NET/IB : No device found." and uses its socket transport)
_CONSEQUENCE = {
    "NCCL_SOCKET_IFNAME": "NCCL cannot connect its ranks",
    "NCCL_IB_HCA": "NCCL falls back to TCP sockets",
}


def candidates(variable: str, network: NetworkFacts) -> dict[str, bool] | Unavailable:
    """name -> is up, of what VARIABLE filters: the interfaces (NCCL_SOCKET_IFNAME) or the "hca:port"s (NCCL_IB_HCA)."""
    if variable == "NCCL_SOCKET_IFNAME":
        if isinstance(network.interfaces, Unavailable):
            return network.interfaces
        return {interface.name: interface.is_up for interface in network.interfaces}
    if isinstance(network.hca_ports, Unavailable):
        return network.hca_ports
    return {f"{port.hca}:{port.port}": port.is_active for port in network.hca_ports}


def describe_candidates(names: Mapping[str, bool]) -> str:
    """ "eth0 (up), docker0 (down)", or what there is none of."""
    return ", ".join(f"{name} ({'up' if is_up else 'down'})" for name, is_up in names.items()) or "none"


def selection_problem(variable: str, value: str, selected: tuple[str, ...], network: NetworkFacts) -> str | None:
    """Why VARIABLE=VALUE, which selects SELECTED here, leaves NCCL nothing to use; None when it selects one that is
    up (the "hca:port" of an active port for NCCL_IB_HCA)."""
    names = candidates(variable, network)
    if isinstance(names, Unavailable):
        return None
    what = "interface" if variable == "NCCL_SOCKET_IFNAME" else "InfiniBand / RoCE port"
    if not selected:
        return f"{variable}={value} matches no {what} here; there are: {describe_candidates(names)}"
    if not any(names.get(name) for name in selected):
        up = {name: is_up for name, is_up in names.items() if is_up}
        return (
            f"{variable}={value} selects only {what}s that are down ({', '.join(selected)});"
            f" up here: {describe_candidates(up)}"
        )
    return None


def _suggestion(variable: str, network: NetworkFacts) -> str:
    names = candidates(variable, network)
    up = [name for name, is_up in names.items() if is_up] if isinstance(names, dict) else []
    if variable == "NCCL_SOCKET_IFNAME" and isinstance(network.interfaces, tuple):
        physical = {interface.name for interface in network.interfaces if not interface.is_virtual}
        up = [name for name in up if name in physical] or up
    if not up:
        return f"unset {variable} (NCCL then chooses), or bring the link up: ip link / ibstat"
    return f"export {variable}=={','.join(up)}  (or unset it and let NCCL choose)"


@check(CHECK_ID, "NCCL_SOCKET_IFNAME / NCCL_IB_HCA name network interfaces and HCA ports this machine has, up.")
def check_nccl_network(given: CheckInput) -> Iterator[Finding]:
    network = given.snapshot.network
    if isinstance(network, Unavailable):
        yield skipped(CHECK_ID, "NCCL_SOCKET_IFNAME / NCCL_IB_HCA", network)
        return
    if not network.nccl:
        yield Finding(CHECK_ID, Severity.OK, "NCCL_SOCKET_IFNAME and NCCL_IB_HCA are not set: NCCL chooses")
        return
    for selection in network.nccl:
        if isinstance(selection.selected, Unavailable):
            yield skipped(CHECK_ID, f"{selection.variable}={selection.value}", selection.selected)
            continue
        problem = selection_problem(selection.variable, selection.value, selection.selected, network)
        if problem:
            yield Finding(
                CHECK_ID,
                Severity.WARN,
                f"{problem.split(';', 1)[0]}: {_CONSEQUENCE[selection.variable]}",
                detail=problem,
                fix=_suggestion(selection.variable, network),
                evidence=("network.nccl", "network.interfaces", "network.hca_ports"),
            )
        else:
            yield Finding(
                CHECK_ID,
                Severity.OK,
                f"{selection.variable}={selection.value} selects {', '.join(selection.selected)}",
            )
