"""The network across nodes, on hand-built facts: the expected busbw of a job across nodes from the slowest node's NIC
(its active IB / RoCE ports together, else its fastest Ethernet interface), as NCCL_IB_HCA / NCCL_SOCKET_IFNAME /
NCCL_IB_DISABLE let NCCL use them; nodes whose ports differ; a rank whose NCCL variables name what its node lacks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envcheck.cluster.fabric import expect_busbw, node_snapshots
from envcheck.cluster.facts import RankFacts
from envcheck.cluster.network import check_hca_ports, check_nccl_interfaces
from envcheck.cluster.report import build_report
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.network import NOT_COLLECTED, NetworkFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge import load_knowledge
from envcheck.snapshot import Snapshot
from tests import factories
from tests.cluster_factories import rank

NDR_X8 = tuple(factories.hca_port(f"mlx5_{n}") for n in range(8))


def _node_snapshot(network: NetworkFacts | Unavailable, **variables: str) -> Snapshot:
    return factories.snapshot(environment=factories.environment(**variables), network=network)


def _two_nodes(first: Snapshot, second: Snapshot) -> list[RankFacts]:
    """One rank on each of two nodes (ranks 0 and 8 of 16: torchrun numbers the second node's ranks from 8)."""
    return [rank(0, first, world_size=16), rank(8, second, world_size=16, host="node-b")]


def test_eight_ndr_ports_per_node_expect_their_sum() -> None:
    node = _node_snapshot(factories.network(hca_ports=NDR_X8))
    expected, sentence = expect_busbw(_two_nodes(node, node), "nccl", load_knowledge(), {})
    assert expected is not None
    assert expected.busbw_gb_s == 400  # 8 x 400 Gb/s = 3200 Gb/s = 400 GB/s per direction
    assert expected.link.startswith("the NIC of node 0 (node-a): 8 active InfiniBand port(s) (mlx5_0:1 400 Gb/sec")
    assert expected.link.endswith("3200 Gb/s (400 GB/s)")
    assert expected.source == "the snapshot's /sys/class/infiniband/*/ports"
    assert sentence.startswith("expected busbw 400 GB/s")


def test_the_slowest_node_sets_the_rate_and_its_ports_are_named_as_differing() -> None:
    full = _node_snapshot(factories.network(hca_ports=NDR_X8))
    down = replace(NDR_X8[7], state="DOWN", is_active=False, physical_state="Polling")
    short = _node_snapshot(factories.network(hca_ports=(*NDR_X8[:7], down)))
    ranks = _two_nodes(full, short)
    expected, _ = expect_busbw(ranks, "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == 350  # 7 x 400 Gb/s
    assert expected.link.startswith("the NIC of node 1 (node-b): 7 active InfiniBand port(s)")
    finding = check_hca_ports(node_snapshots(ranks))
    assert finding.severity is Severity.WARN
    assert finding.title == (
        "the nodes' InfiniBand / RoCE ports differ: 8 active: 400 Gb/sec (4X NDR) x8 on node 0 (node-a);"
        " 7 active: 400 Gb/sec (4X NDR) x7 on node 1 (node-b)"
    )
    same = check_hca_ports(node_snapshots(_two_nodes(full, full)))
    assert same.severity is Severity.OK and "on 2 node(s): 8 active" in same.title


def test_a_port_at_a_lower_rate_differs_too() -> None:
    hdr = (*NDR_X8[:7], factories.hca_port("mlx5_7", rate_gbit_s=200.0))
    ranks = _two_nodes(
        _node_snapshot(factories.network(hca_ports=NDR_X8)), _node_snapshot(factories.network(hca_ports=hdr))
    )
    finding = check_hca_ports(node_snapshots(ranks))
    assert finding.severity is Severity.WARN and "200 Gb/sec (4X HDR) x1" in finding.title
    expected, _ = expect_busbw(ranks, "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == 375  # (7 x 400 + 200) / 8


@pytest.mark.parametrize(
    ("variables", "busbw", "link"),
    [
        ({"NCCL_IB_HCA": "=mlx5_0,mlx5_1"}, 100.0, "2 active InfiniBand port(s)"),  # NCCL uses only those two
        ({"NCCL_IB_HCA": "^=mlx5_0"}, 350.0, "7 active InfiniBand port(s)"),
        ({"NCCL_IB_DISABLE": "1"}, 3.125, "eth0 Ethernet 25000 Mb/s (sockets)"),  # 25 GbE
        ({"NCCL_IB_HCA": "mlx4"}, 3.125, "eth0 Ethernet"),  # matches no port: NCCL falls back to sockets
    ],
)
def test_the_nccl_variables_decide_which_ports_count(variables: dict[str, str], busbw: float, link: str) -> None:
    node = _node_snapshot(factories.network(hca_ports=NDR_X8, **variables), **variables)
    expected, _ = expect_busbw(_two_nodes(node, node), "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == busbw
    assert link in expected.link


def test_ethernet_only_nodes_expect_the_fastest_physical_interface_that_is_up() -> None:
    interfaces = (
        factories.interface("eth0", 10000),
        factories.interface("eth1", 100000, is_up=False, operstate="down"),  # faster, but down
        factories.interface("docker0", 100000, kind="bridge", is_virtual=True),
        factories.interface("eth2", 25000),
    )
    node = _node_snapshot(factories.network(interfaces))
    expected, _ = expect_busbw(_two_nodes(node, node), "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == 3.125 and expected.link.startswith("the NIC of node 0")
    assert "eth2 Ethernet 25000 Mb/s" in expected.link
    pinned = _node_snapshot(factories.network(interfaces), NCCL_SOCKET_IFNAME="=eth0")
    expected, _ = expect_busbw(_two_nodes(pinned, pinned), "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == 1.25  # NCCL_SOCKET_IFNAME pins the 10 GbE port


def test_a_node_without_a_rate_gives_no_expectation_and_says_which() -> None:
    node = _node_snapshot(factories.network(hca_ports=NDR_X8))
    virtio = _node_snapshot(factories.network((factories.interface("eth0", None, driver="virtio_net"),)))
    expected, sentence = expect_busbw(_two_nodes(node, virtio), "nccl", load_knowledge(), {})
    assert expected is None
    assert sentence == (
        "across nodes the NIC's rate sets busbw, and on node 1 (node-b): no active InfiniBand / RoCE port, and no"
        " physical Ethernet interface that is up reports its speed: the figures are reported, not judged"
    )
    old = _node_snapshot(NOT_COLLECTED)
    expected, sentence = expect_busbw(_two_nodes(old, node), "nccl", load_knowledge(), {})
    assert expected is None and "on node 0 (node-a): no network facts (this snapshot does not record" in sentence


def test_a_node_whose_own_gpu_link_is_slower_than_the_nic_sets_the_rate() -> None:
    t4 = factories.gpu_machine(factories.nvml_gpu("t4-driver515.105.01"), network=factories.network(hca_ports=NDR_X8))
    assert isinstance(t4.gpu, GpuFacts)
    uuid = str(t4.gpu.gpus[0].uuid)
    ranks = [
        rank(number, t4, world_size=4, host=f"node-{node}", gpu_uuid=uuid)
        for number, node in ((0, "a"), (1, "a"), (2, "b"), (3, "b"))
    ]
    ranks = [
        replace(
            facts,
            place=replace(
                facts.place, local_rank=facts.place.rank % 2, local_world_size=2, node_rank=facts.place.rank // 2
            ),
        )
        for facts in ranks
    ]
    expected, _ = expect_busbw(ranks, "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == 15.75  # PCIe 3.0 x16 below 8 x 400 Gb/s
    assert expected.link == "PCIe 3.0 x16 (15.75 GB/s per direction) within node 0 (node-a)"


def _interfaces_finding(ranks: list[RankFacts]) -> Finding | None:
    return check_nccl_interfaces(ranks, node_snapshots(ranks))


def test_a_rank_whose_socket_interface_its_node_lacks_or_has_down_is_named_with_its_node() -> None:
    node_a = _node_snapshot(factories.network(), NCCL_SOCKET_IFNAME="eth0")
    interfaces = (factories.interface("ens5"), factories.interface("eth0", is_up=False, operstate="down"))
    node_b = _node_snapshot(factories.network(interfaces), NCCL_SOCKET_IFNAME="eth0")
    finding = _interfaces_finding(_two_nodes(node_a, node_b))
    assert finding is not None and finding.severity is Severity.WARN
    assert finding.title == "NCCL_SOCKET_IFNAME / NCCL_IB_HCA name no interface that is up on node 1 (node-b)"
    assert finding.detail == (
        "node 1 (node-b): NCCL_SOCKET_IFNAME=eth0 selects only interfaces that are down (eth0); up here: ens5 (up)"
        " (rank 8)"
    )
    missing = _node_snapshot(factories.network((factories.interface("ens5"),)), NCCL_IB_HCA="mlx5_0")
    finding = _interfaces_finding(_two_nodes(node_a, missing))
    assert finding is not None
    assert (
        "node 1 (node-b): NCCL_IB_HCA=mlx5_0 matches no InfiniBand / RoCE port here; there are: none" in finding.detail
    )


def test_variables_that_fit_every_node_pass_and_unset_ones_add_no_finding() -> None:
    node = _node_snapshot(factories.network(hca_ports=NDR_X8), NCCL_SOCKET_IFNAME="eth", NCCL_IB_HCA="mlx5")
    finding = _interfaces_finding(_two_nodes(node, node))
    assert finding is not None and finding.severity is Severity.OK and "(4 checked)" in finding.title
    plain = _node_snapshot(factories.network())
    assert _interfaces_finding(_two_nodes(plain, plain)) is None


def test_the_report_carries_both_findings_for_a_job_across_nodes_only() -> None:
    full = _node_snapshot(factories.network(hca_ports=NDR_X8), NCCL_SOCKET_IFNAME="ib")
    short = _node_snapshot(factories.network(hca_ports=NDR_X8[:4]), NCCL_SOCKET_IFNAME="ib")
    report = build_report(16, "nccl", 60.0, _two_nodes(full, short), None)
    ids = {finding.id: finding for finding in report.findings}
    assert ids["cluster.network_mismatch"].severity is Severity.WARN
    assert ids["cluster.nccl_interface"].severity is Severity.WARN  # no interface starts with "ib" on either node
    single = build_report(2, "nccl", 60.0, [rank(0, full), rank(1, full)], None)
    assert "cluster.network_mismatch" not in {finding.id for finding in single.findings}
