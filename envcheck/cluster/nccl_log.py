"""NCCL's NCCL_DEBUG=INFO lines, read for what a rank's communicator uses: the network (IB or sockets, on which
devices) and each channel's transport (P2P, SHM, NET). Pure: text in, facts out.

Line formats are NCCL's own, quoted from real logs in tests/test_cluster_nccl_log.py (NCCL 2.5 to 2.22):
  host:919:1150 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB ib0:192.168.11.1<0>
  host:45305:45305 [0] NCCL INFO NET/Socket : Using [0]ens3:172.31.12.210<0>
  host:45361:45361 [0] NCCL INFO NET/IB : No device found.
  host:919:1150 [0] NCCL INFO Channel 01/0 : 8[0] -> 15[7] via P2P/IPC/read
  host:926:1151 [7] NCCL INFO Channel 03/0 : 15[7] -> 6[6] [send] via NET/Socket/3
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from envcheck.cluster.facts import NcclTransport

# how many of the matched lines a rank sends to rank 0 (8 GPUs x 32 channels would be hundreds)
MAX_LINES = 24

_PREFIX = r"NCCL INFO "
_NET_USING = re.compile(_PREFIX + r"NET/(?P<net>\w+) ?: Using (?P<devices>.*?)\s*(?:; OOB .*)?$")
_NET_NONE = re.compile(_PREFIX + r"NET/IB ?: No device found")
_USING_NETWORK = re.compile(_PREFIX + r"Using network (?P<net>\w+)")
# "Channel 00/0 : 0[0] -> 1[1] via P2P/IPC", "Channel 09 : 6[6] -> 7[7] via SHM/direct/direct", NCCL 2.4's "Ring 00 :"
_CHANNEL = re.compile(
    _PREFIX + r"(?:Channel|Ring) \d+(?:/\d+)? : \S+ -> \S+(?: \[(?:send|receive)\])? via (?P<path>.+?)\s*$"
)
# one device of a "Using" list: "[0]mlx5_0:1/IB", "[1]mlx5_1:1/IB/SHARP", "[0]mlx5_4:1/RoCE [RO]", "[0]eth0:10.0.0.2<0>"
_DEVICE = re.compile(r"\[\d+\](?P<device>[^\s\[<;]+)")


def parse_nccl_lines(lines: Iterable[str]) -> NcclTransport | None:
    """The transport facts of one rank's log; None when no line of it says anything about transports."""
    network: str | None = None
    interfaces: list[str] = []
    is_ib_missing = False
    channels: list[str] = []
    kept: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if (match := _NET_USING.search(line)) is not None:
            network = network or match["net"]
            interfaces.extend(d for d in _DEVICE.findall(match["devices"]) if d not in interfaces)
        elif _NET_NONE.search(line):
            is_ib_missing = True
        elif (match := _USING_NETWORK.search(line)) is not None:
            network = match["net"]  # the network NCCL settled on, after any plugin or IB attempt
        elif (match := _CHANNEL.search(line)) is not None:
            if match["path"] in channels:
                continue  # the same path on the next channel: keep one line of each
            channels.append(match["path"])
        else:
            continue
        kept.append(line.strip())
    if not kept:
        return None
    return NcclTransport(network, tuple(interfaces), is_ib_missing, tuple(channels), tuple(kept[:MAX_LINES]))


def transport_kinds(transport: NcclTransport) -> tuple[str, ...]:
    """P2P, SHM, NET/IB, NET/Socket: the kinds of the channels' paths ("P2P/IPC/read" is P2P; NCCL 2.4 wrote
    "direct shared memory" for SHM and "direct pointer" for P2P)."""
    kinds: list[str] = []
    for path in transport.channels:
        first, _, rest = path.partition("/")
        if first == "NET":
            kind = "NET/" + rest.split("/", 1)[0]
        elif "shared memory" in path:
            kind = "SHM"
        elif path.startswith("direct pointer"):
            kind = "P2P"
        else:
            kind = first
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def describe_transport(transport: NcclTransport | None) -> str:
    """'IB (mlx5_0:1/IB); channels P2P, NET/IB', or what is not known."""
    if transport is None:
        return "no NCCL transport lines"
    network = transport.network or ("none (NET/IB: no device found)" if transport.is_ib_missing else "not named")
    if transport.interfaces:
        network += f" ({', '.join(transport.interfaces)})"
    kinds = transport_kinds(transport)
    return f"network {network}; channels {', '.join(kinds) if kinds else 'not logged'}"
