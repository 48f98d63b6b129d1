"""The network interfaces and InfiniBand / RoCE ports of this machine, read from /sys, and what NCCL_SOCKET_IFNAME /
NCCL_IB_HCA select of them.

Command line equivalents: `ip -d link show` and `ethtool IFACE` (speed) for /sys/class/net; `ibstat` (or
`ibv_devinfo`) for /sys/class/infiniband/*/ports/*/{state,phys_state,rate,link_layer}.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.facts.network import HcaPort, NetworkFacts, NetworkInterface, nccl_selections
from envcheck.probes.context import ProbeContext
from envcheck.probes.system import probe_container

# include/uapi/linux/if_arp.h
_LINK_TYPES = {1: "ethernet", 32: "infiniband", 772: "loopback"}
_IFF_UP = 0x1  # include/uapi/linux/if.h
_IB_PORT_ACTIVE = 4  # "4: ACTIVE" (include/rdma/ib_verbs.h, enum ib_port_state)
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*Gb/sec")
_NUMBERED = re.compile(r"^\s*(\d+)\s*:\s*(.*)$")  # "4: ACTIVE", "5: LinkUp"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _number(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def _speed(path: Path) -> int | Unavailable:
    """/sys/class/net/IFACE/speed: Mb/s; -1 where the driver knows none; EINVAL while the link is down."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError as error:
        if error.errno == errno.EINVAL:
            return Unavailable("the kernel gives none for a link that is down or a virtual device")
        return Unavailable(f"cannot read {path}: {error.strerror or error}")
    try:
        speed = int(text)
    except ValueError:
        return Unavailable(f"{path} holds {text[:40]!r}, not a number")
    if speed <= 0 or speed == 0xFFFFFFFF:  # SPEED_UNKNOWN, printed as -1 (or as its unsigned form by old kernels)
        return Unavailable("the driver reports no speed (-1, as virtio does)", "ethtool " + path.parent.name)
    return speed


def probe_interface(directory: Path) -> NetworkInterface:
    """One /sys/class/net entry (a symlink into /sys/devices/...; virtual devices live under /sys/devices/virtual)."""
    name = directory.name
    is_under_virtual = "/devices/virtual/" in str(directory.resolve())
    link_type = _number(directory / "type")
    if link_type == 772:
        kind = "loopback"
    elif (directory / "bridge").is_dir():
        kind = "bridge"
    elif (directory / "bonding").is_dir():
        kind = "bond"
    elif is_under_virtual:
        kind = "virtual"
    else:
        kind = _LINK_TYPES.get(link_type or 0, f"link type {link_type}" if link_type is not None else "unknown")
    operstate = _read(directory / "operstate") or "unknown"
    flags = _number(directory / "flags")
    is_up = operstate == "up" or (operstate == "unknown" and flags is not None and bool(flags & _IFF_UP))
    mtu = _number(directory / "mtu")
    driver_link = directory / "device" / "driver"
    driver = driver_link.resolve().name if driver_link.exists() else None
    return NetworkInterface(
        name=name,
        kind=kind,
        is_virtual=kind in ("loopback", "bridge", "virtual"),
        operstate=operstate,
        is_up=is_up,
        speed_mbit_s=_speed(directory / "speed"),
        mtu=mtu if mtu is not None else Unavailable(f"cannot read {directory / 'mtu'}"),
        driver=driver,
    )


def probe_interfaces(sys_root: Path) -> tuple[NetworkInterface, ...] | Unavailable:
    class_net = sys_root / "class/net"
    try:
        entries = sorted(class_net.iterdir(), key=lambda entry: entry.name)
    except OSError as error:
        return Unavailable(f"cannot list {class_net}: {error.strerror or error}", "ip -d link show")
    return tuple(probe_interface(entry) for entry in entries)


def _state(text: str | None) -> tuple[int | None, str]:
    """ "4: ACTIVE" -> (4, "ACTIVE"); anything else verbatim, with no number."""
    match = _NUMBERED.match(text or "")
    if match:
        return int(match.group(1)), match.group(2).strip()
    return None, text or "unknown"


def probe_hca_port(hca: Path, port: Path, netdevs: tuple[str, ...]) -> HcaPort:
    state_number, state = _state(_read(port / "state"))
    _, physical_state = _state(_read(port / "phys_state"))
    rate = _read(port / "rate") or ""
    match = _RATE.match(rate)
    return HcaPort(
        hca=hca.name,
        port=int(port.name),
        state=state,
        is_active=state_number == _IB_PORT_ACTIVE,
        physical_state=physical_state,
        link_layer=_read(port / "link_layer") or "InfiniBand",  # kernels before RoCE support write no link_layer
        rate=rate,
        rate_gbit_s=float(match.group(1)) if match else Unavailable(f"{port / 'rate'} holds {rate[:40]!r}"),
        netdevs=netdevs,
    )


def probe_hca_ports(context: ProbeContext) -> tuple[HcaPort, ...] | Unavailable:
    class_infiniband = context.roots.sys / "class/infiniband"
    if not class_infiniband.exists():
        container, _ = probe_container(context)
        if container is not None:
            return Unavailable(
                f"{class_infiniband} is absent inside this {container} container: the host's InfiniBand / RoCE"
                " adapters, if any, are not visible here",
                "on the host: ibstat (or run the container with the host's /sys/class/infiniband and /dev/infiniband)",
            )
        return ()  # no RDMA driver loaded: no InfiniBand or RoCE adapter
    ports: list[HcaPort] = []
    try:
        hcas = sorted(class_infiniband.iterdir(), key=lambda entry: entry.name)
        for hca in hcas:
            net = hca / "device" / "net"
            netdevs = tuple(sorted(entry.name for entry in net.iterdir())) if net.is_dir() else ()
            numbered = [port for port in (hca / "ports").iterdir() if port.name.isdigit()]
            ports += [probe_hca_port(hca, port, netdevs) for port in sorted(numbered, key=lambda port: int(port.name))]
    except OSError as error:
        return Unavailable(f"cannot read {class_infiniband}: {error.strerror or error}", "ibstat")
    return tuple(ports)


def probe_network(context: ProbeContext) -> NetworkFacts:
    interfaces = probe_interfaces(context.roots.sys)
    hca_ports = probe_hca_ports(context)
    return NetworkFacts(interfaces, hca_ports, nccl_selections(context.environ, interfaces, hca_ports))
