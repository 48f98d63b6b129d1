"""What the largest all-reduce's busbw should reach on the fabric the ranks share, and how a measured figure is
judged against it. Pure: the ranks' facts and the GPU specs in, an Expectation (or why none) out.

busbw is comparable with one link's rate per direction (nccl-tests PERFORMANCE.md), so the expectation is:
NVLink where every GPU of the node has it (profiles/gpus.toml nvlink_gb_s, quoted for both directions: half of it),
else the PCIe link the snapshot reports (max generation and width; the current ones drop while a GPU idles), else
the GPU spec's PCIe generation at x16. Across nodes the slowest node's NIC sets the rate (cluster/network.py: its
active IB / RoCE ports together, else its fastest Ethernet interface), or a node's own link where that is slower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envcheck.advise.communication import PCIE_X16_GB_S_PER_DIRECTION
from envcheck.cluster.facts import Expectation, RankFacts
from envcheck.facts.gpu import Gpu, GpuFacts
from envcheck.knowledge import Knowledge

# ../shared/reference/collective_bandwidth.md (IBM autopilot): expect at least 80% of the link's peak; below 25%
# is an alarm. The NVLink figures there agree: 8xH100 without NVLS measure 368 of 450 GB/s (82%).
PASS_SHARE = 0.80
ALARM_SHARE = 0.25
# Test seam (docs/cluster.md): an expected busbw in GB/s for any backend, so the shortfall path (the repeat and the
# re-runs in fresh processes) runs on gloo on a CPU.
EXPECTED_VARIABLE = "ENVCHECK_CLUSTER_TEST_EXPECTED_GB_S"
NO_EXPECTATION_GLOO = "no expected bandwidth for gloo on CPU: the figures are reported, not judged"
NO_EXPECTATION_NODES = "across nodes the NIC's rate sets busbw"
NOT_JUDGED = "the figures are reported, not judged"


def node_snapshots(ranks: Sequence[RankFacts]) -> dict[int, RankFacts]:
    """node rank -> the rank that probed that node's host (its local rank 0; the first of its ranks otherwise)."""
    nodes: dict[int, RankFacts] = {}
    for facts in sorted(ranks, key=lambda facts: (facts.place.local_rank != 0, facts.place.rank)):
        nodes.setdefault(facts.place.node_rank, facts)
    return dict(sorted(nodes.items()))


def gpu_of(facts: RankFacts, node: RankFacts) -> Gpu | None:
    """The GPU a rank ran on, found in its node's snapshot by the UUID the rank read from CUDA."""
    gpu = node.snapshot.gpu
    uuid = facts.matmul.gpu_uuid
    if not isinstance(gpu, GpuFacts) or uuid is None:
        return None
    return next((device for device in gpu.gpus if device.uuid == uuid), None)


def expect_busbw(
    ranks: Sequence[RankFacts], backend: str, knowledge: Knowledge | None, environ: Mapping[str, str]
) -> tuple[Expectation | None, str]:
    """The expected busbw of the ranks' fabric, and a sentence on what it is (or why there is none)."""
    seam = environ.get(EXPECTED_VARIABLE)
    if seam:
        seamed = Expectation(float(seam), "set by a test", f"the test seam {EXPECTED_VARIABLE}")
        return seamed, _sentence(seamed)
    if backend != "nccl":
        return None, NO_EXPECTATION_GLOO
    if len(ranks) < 2:
        return None, "one rank: the collectives cross no link (busbw is 0 by definition)"
    nodes = node_snapshots(ranks)
    if len(nodes) != 1:
        return _across_nodes(ranks, nodes, knowledge)
    node = next(iter(nodes.values()))
    expected = _within_node(ranks, node, knowledge)
    if isinstance(expected, str):
        return None, expected
    return expected, _sentence(expected)


def _within_node(ranks: Sequence[RankFacts], node: RankFacts, knowledge: Knowledge | None) -> Expectation | str:
    """The link between the GPUs of one node (NVLink, else PCIe), or why it is not known."""
    devices = [device for facts in ranks if (device := gpu_of(facts, node)) is not None]
    if not devices:
        return "the GPUs the ranks ran on are not in their node's snapshot (NVML did not list them)"
    expected = _nvlink(devices, knowledge) or _pcie(devices, knowledge)
    if expected is None:
        return f"neither NVLink nor the PCIe link of {devices[0].name} is known (snapshot and profiles/gpus.toml)"
    return expected


def _across_nodes(
    ranks: Sequence[RankFacts], nodes: Mapping[int, RankFacts], knowledge: Knowledge | None
) -> tuple[Expectation | None, str]:
    """The slowest node's NIC rate (in GB/s, per direction), or a node's own GPU link where that is slower."""
    from envcheck.cluster.network import GBIT_PER_GBYTE, nic_rate, node_label, variables

    rates = []
    for facts in nodes.values():
        rate = nic_rate(facts.snapshot.network, variables(facts))
        if isinstance(rate, str):
            return None, f"{NO_EXPECTATION_NODES}, and on {node_label(facts)}: {rate}: {NOT_JUDGED}"
        rates.append((rate.gbit_s, node_label(facts), rate))
    gbit_s, label, slowest = min(rates, key=lambda item: item[0])
    expected = Expectation(
        gbit_s / GBIT_PER_GBYTE,
        f"the NIC of {label}: {slowest.link}, {gbit_s:g} Gb/s ({gbit_s / GBIT_PER_GBYTE:g} GB/s)",
        f"the snapshot's {slowest.source}",
    )
    for node_rank, node in nodes.items():
        local = [facts for facts in ranks if facts.place.node_rank == node_rank]
        within = _within_node(local, node, knowledge) if len(local) > 1 else None
        if isinstance(within, Expectation) and within.busbw_gb_s < expected.busbw_gb_s:
            expected = Expectation(within.busbw_gb_s, f"{within.link} within {node_label(node)}", within.source)
    return expected, _sentence(expected)


def _sentence(expected: Expectation) -> str:
    return f"expected busbw {expected.busbw_gb_s:g} GB/s: {expected.link}, from {expected.source}"


def _nvlink(devices: Sequence[Gpu], knowledge: Knowledge | None) -> Expectation | None:
    names = {str(device.name) for device in devices}
    specs = [knowledge.gpu_by_name(name) if knowledge else None for name in names]
    rates = [spec.nvlink_gb_s if spec else None for spec in specs]
    if not rates or not all(isinstance(rate, float) and rate > 0 for rate in rates):
        return None
    slowest = min(rate for rate in rates if isinstance(rate, float))
    return Expectation(
        slowest / 2, f"NVLink {slowest:g} GB/s ({slowest / 2:g} per direction)", "profiles/gpus.toml nvlink_gb_s"
    )


def _pcie(devices: Sequence[Gpu], knowledge: Knowledge | None) -> Expectation | None:
    """The slowest of the GPUs' host links: a ring runs at its slowest hop."""
    links: list[tuple[float, int, int, str]] = []
    for device in devices:
        generation, width, source = device.pcie_generation_max, device.pcie_width_max, "the snapshot's PCIe link"
        if not isinstance(generation, int):
            spec = knowledge.gpu_by_name(str(device.name)) if knowledge else None
            generation, source = (spec.pcie_gen if spec else 0), "profiles/gpus.toml pcie_gen"
        if not isinstance(width, int) or width < 1:
            width = 16
        if not isinstance(generation, int) or generation not in PCIE_X16_GB_S_PER_DIRECTION:
            return None
        links.append((PCIE_X16_GB_S_PER_DIRECTION[generation] * width / 16, generation, width, source))
    rate, generation, width, source = min(links)
    return Expectation(rate, f"PCIe {generation}.0 x{width} ({rate:g} GB/s per direction)", source)


def share(busbw_gb_s: float, expected: Expectation) -> float:
    return busbw_gb_s / expected.busbw_gb_s if expected.busbw_gb_s > 0 else 0.0


def is_short(busbw_gb_s: float, expected: Expectation) -> bool:
    return share(busbw_gb_s, expected) < PASS_SHARE
