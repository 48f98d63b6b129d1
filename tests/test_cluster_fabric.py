"""The fabric's expected busbw and the judgement of the largest all-reduce against it (with the repeat and the
transport re-runs), doctor's checks per node, stragglers named by GPU, and the Markdown and JSON reports: pure code on
rank facts built from recorded snapshots of real machines."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from envcheck.cluster.fabric import EXPECTED_VARIABLE, NO_EXPECTATION_GLOO, NO_EXPECTATION_NODES, expect_busbw
from envcheck.cluster.facts import (
    BandwidthRow,
    Expectation,
    NcclTransport,
    Place,
    Rerun,
    Sweep,
    rank_facts_from_json,
    rank_facts_to_json,
    telemetry_of,
)
from envcheck.cluster.report import build_report
from envcheck.cluster.timing import check_stragglers, check_sweep, rank_missing
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.network import NOT_COLLECTED
from envcheck.finding import Severity
from envcheck.knowledge import load_knowledge
from envcheck.render.cluster import render_cluster_json, render_cluster_markdown
from envcheck.snapshot import Snapshot
from tests import factories
from tests.cluster_factories import rank

H100 = "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"
T4 = "t4-driver515.105.01"


def _machine(fixture: str) -> Snapshot:
    return factories.gpu_machine(factories.nvml_gpu(fixture))


def _uuids(snapshot: Snapshot) -> list[str]:
    gpu = snapshot.gpu
    assert isinstance(gpu, GpuFacts)
    return [str(device.uuid) for device in gpu.gpus]


def _node_ranks(snapshot: Snapshot, count: int, **changes: object) -> list:  # type: ignore[type-arg]
    """COUNT ranks of one node: rank 0 holds the node's snapshot, each rank runs on the GPU of its number."""
    uuids = _uuids(snapshot)
    return [
        rank(n, snapshot, world_size=count, gpu_uuid=uuids[n % len(uuids)], **changes)  # type: ignore[arg-type]
        for n in range(count)
    ]


# --- what the fabric should give ---


def test_nvlink_gpus_expect_half_the_quoted_nvlink_rate() -> None:
    expected, sentence = expect_busbw(_node_ranks(_machine(H100), 8), "nccl", load_knowledge(), {})
    assert expected is not None
    assert expected.busbw_gb_s == 450  # profiles/gpus.toml: H100 SXM nvlink_gb_s 900, both directions together
    assert expected.link == "NVLink 900 GB/s (450 per direction)"
    assert sentence.startswith("expected busbw 450 GB/s")


def test_a_pcie_gpu_expects_its_links_max_generation_and_width_from_the_snapshot() -> None:
    t4 = _machine(T4)
    ranks = [rank(0, t4, gpu_uuid=_uuids(t4)[0]), rank(1, t4, gpu_uuid=_uuids(t4)[0])]
    expected, _ = expect_busbw(ranks, "nccl", load_knowledge(), {})
    assert expected is not None
    assert expected.busbw_gb_s == 15.75  # PCIe 3.0 x16, per direction
    assert expected.link.startswith("PCIe 3.0 x16") and expected.source == "the snapshot's PCIe link"
    narrow = replace(t4, gpu=replace(t4.gpu, gpus=(replace(t4.gpu.gpus[0], pcie_width_max=8),)))  # type: ignore[arg-type, union-attr]
    pair = [rank(n, narrow, gpu_uuid=_uuids(t4)[0]) for n in (0, 1)]
    expected, _ = expect_busbw(pair, "nccl", load_knowledge(), {})
    assert expected is not None and expected.busbw_gb_s == pytest.approx(7.875)


def test_no_expectation_for_gloo_nor_across_nodes_but_the_seam_sets_one() -> None:
    h100 = _machine(H100)
    assert expect_busbw([rank(0, h100)], "gloo", None, {}) == (None, NO_EXPECTATION_GLOO)
    old = replace(h100, network=NOT_COLLECTED)  # a snapshot from before the network section
    two_nodes = [rank(0, old, world_size=16), rank(8, old, world_size=16, host="node-b")]
    expected, sentence = expect_busbw(two_nodes, "nccl", load_knowledge(), {})  # the NIC: tests/test_cluster_network.py
    assert expected is None and sentence.startswith(f"{NO_EXPECTATION_NODES}, and on node 0 (node-a): no network facts")
    assert expect_busbw(_node_ranks(h100, 1), "nccl", load_knowledge(), {})[0] is None  # one rank: busbw is 0
    expected, _ = expect_busbw([rank(0)], "gloo", None, {EXPECTED_VARIABLE: "12.5"})
    assert expected is not None and expected.busbw_gb_s == 12.5


def test_gpus_the_node_did_not_list_give_no_expectation() -> None:
    ranks = [rank(n, _machine(H100), gpu_uuid="GPU-not-there") for n in (0, 1)]
    expected, sentence = expect_busbw(ranks, "nccl", load_knowledge(), {})
    assert expected is None and "not in their node's snapshot" in sentence


# --- the judgement of the largest all-reduce ---

NVLINK = Expectation(450.0, "NVLink 900 GB/s (450 per direction)", "profiles/gpus.toml nvlink_gb_s")


def _sweep(busbw: float, *reruns: Rerun, backend: str = "nccl") -> Sweep:
    rows = (BandwidthRow("all_reduce", 1 << 20, 0.001, 1.0, 1.0), BandwidthRow("all_reduce", 1 << 30, 0.01, 1, busbw))
    return Sweep(backend, "NVIDIA H100 80GB HBM3", 5, rows, "expected busbw 450 GB/s", NVLINK, reruns)


def test_eighty_percent_of_the_link_passes() -> None:
    finding = check_sweep(_sweep(370.0))
    assert finding.severity is Severity.OK
    assert (
        finding.title
        == "all_reduce busbw 370.00 GB/s at 1 GiB is 82% of 450 GB/s (NVLink 900 GB/s (450 per direction))"
    )


def test_a_shortfall_that_recovers_on_the_repeat_is_a_transient_warning() -> None:
    finding = check_sweep(_sweep(300.0, Rerun("repeat", 380.0, None)))
    assert finding.severity is Severity.WARN
    assert "below 80%" in finding.title and "a transient" in finding.detail
    assert "repeat: busbw 380.00 GB/s, 84%" in finding.detail


def test_the_transport_whose_switching_off_restores_the_rate_is_named() -> None:
    reruns = (
        Rerun("repeat", 90.0, None),
        Rerun("NCCL_P2P_DISABLE=1", 150.0, None),
        Rerun("NCCL_SHM_DISABLE=1", 91.0, None),
    )
    finding = check_sweep(_sweep(80.0, *reruns))
    assert finding.severity is Severity.FAIL  # 90 of 450 is 20%: below the 25% alarm
    assert "the P2P transport is at fault" in finding.detail
    assert "NCCL_P2P_DISABLE=1: busbw 150.00 GB/s, 33%" in finding.detail


def test_when_no_transport_helps_the_link_is_blamed_and_a_failed_rerun_is_shown() -> None:
    reruns = (
        Rerun("repeat", 200.0, None),
        Rerun("NCCL_P2P_DISABLE=1", 60.0, None),
        Rerun("NCCL_SHM_DISABLE=1", None, "timed out after 40 s"),
    )
    finding = check_sweep(_sweep(200.0, *reruns))
    assert finding.severity is Severity.WARN
    assert "did not help: the link itself" in finding.detail
    assert "NCCL_SHM_DISABLE=1: failed (timed out after 40 s)" in finding.detail


def test_on_gloo_the_reruns_name_no_transport() -> None:
    finding = check_sweep(
        _sweep(1.0, Rerun("repeat", 1.0, None), Rerun("NCCL_P2P_DISABLE=1", 900.0, None), backend="gloo")
    )
    assert "gloo reads no NCCL_* variable" in finding.detail
    assert "at fault" not in finding.detail


def test_a_timeout_on_nccl_names_the_flight_recorder_dumps() -> None:
    finding = rank_missing(
        ["rank 1 (node 0, local rank 1, host a)"],
        "bandwidth sweep",
        60,
        "Watchdog caught collective operation timeout",
        "/tmp/envcheck_nccl_trace_rank_",
    )
    assert "/tmp/envcheck_nccl_trace_rank_<rank>" in finding.detail and "torchfrtrace /tmp" in finding.detail


# --- stragglers named by GPU ---


def test_a_slow_gpu_is_named_with_host_index_uuid_and_its_telemetry() -> None:
    h100 = _machine(H100)
    ranks = _node_ranks(h100, 4, matmul_s=0.010, copy_gb_s=2000.0)
    ranks[3] = replace(ranks[3], matmul=replace(ranks[3].matmul, median_s=0.013))
    ranks[2] = replace(ranks[2], matmul=replace(ranks[2].matmul, copy_gb_s=1500.0))
    finding = check_stragglers(ranks)
    assert finding.severity is Severity.WARN
    lines = finding.detail.splitlines()
    assert lines[0].startswith(
        f"rank 2 (node-a) GPU 2 {_uuids(h100)[2]} (NVIDIA H100 80GB HBM3): memory copy 1500.0 GB/s"
    )
    assert lines[1].startswith(f"rank 3 (node-a) GPU 3 {_uuids(h100)[3]}")
    assert "GEMM 13.0 ms, 30% slower than the median 10.0 ms" in lines[1]
    assert "[when probed: SM clock 1980 of 1980 MHz, throttle: none, 58 °C, PCIe gen 5 x16 (max gen 5 x16)]" in lines[1]


# --- doctor per node, and the reports ---


def test_the_straggler_shows_nvml_right_after_its_gemm_and_why_a_sample_failed() -> None:
    """The GPU as the NVML child read it after the GEMM (hot: its clock held down by a thermal slowdown), instead of
    the idle GPU the node's probe saw; where the sample failed, its reason beside the probe-time reading."""
    h100 = _machine(H100)
    assert isinstance(h100.gpu, GpuFacts)
    hot = replace(
        h100.gpu.gpus[3],
        sm_clock_mhz=1410,
        temperature_c=91,
        power_draw_watts=512.4,
        clock_event_reasons=("sw_thermal_slowdown", "hw_thermal_slowdown"),
    )
    ranks = _node_ranks(h100, 4, matmul_s=0.010, copy_gb_s=2000.0)
    slow = replace(ranks[3].matmul, median_s=0.013, telemetry=telemetry_of(hot))
    ranks[3] = replace(ranks[3], matmul=slow)
    finding = check_stragglers(ranks)
    assert finding.detail.endswith(
        "[right after the GEMM: SM clock 1410 of 1980 MHz, throttle: sw_thermal_slowdown, hw_thermal_slowdown,"
        " 91 °C, 512 W, PCIe gen 5 x16 (max gen 5 x16)]"
    )
    failed = Unavailable("NVML after the GEMM: NVML hung in nvmlInit: no answer within 10 s")
    ranks[3] = replace(ranks[3], matmul=replace(slow, telemetry=failed))
    assert check_stragglers(ranks).detail.endswith(
        "[right after the GEMM: NVML after the GEMM: NVML hung in nvmlInit: no answer within 10 s;"
        " when probed: SM clock 1980 of 1980 MHz, throttle: none, 58 °C, PCIe gen 5 x16 (max gen 5 x16)]"
    )
    text = rank_facts_to_json(ranks[3])
    assert rank_facts_from_json(text) == ranks[3]  # the sample travels to rank 0 in the rank's JSON


def test_doctors_checks_run_on_each_nodes_snapshot_and_count_in_the_exit_code() -> None:
    """Node b's disk is full: doctor's storage.free_space fails there, named under node b, and the job's exit is 1
    although every cross-node check passes. Node a's second rank probed no host: it gets no doctor of its own."""
    full = factories.storage(locations=(factories.location(free_bytes=100 * 1024 * 1024),))
    node_b = rank(8, factories.snapshot(storage=full), world_size=16, host="node-b")
    second = replace(rank(1), place=Place(1, 1, 16, 8, 0, "node-a"))
    report = build_report(16, "gloo", 60.0, [rank(0, world_size=16), second, node_b], None, (), load_knowledge())
    assert [(node.node_rank, node.hostname, node.rank) for node in report.nodes] == [(0, "node-a", 0), (1, "node-b", 8)]
    failing = [finding.id for node in report.nodes for finding in node.findings if finding.severity is Severity.FAIL]
    assert failing == ["storage.free_space"]
    assert report.exit_code == 1
    assert all(finding.severity is not Severity.FAIL for finding in report.findings)
    data = json.loads(render_cluster_json(report))
    assert [node["host"] for node in data["nodes"]] == ["node-a", "node-b"]
    assert data["nodes"][1]["summary"].startswith("1 failure")
    assert data["exit_code"] == 1


def test_the_markdown_report_marks_differing_cells_and_lists_the_reruns() -> None:
    other = factories.snapshot(framework=factories.framework(torch=factories.torch(version="2.4.0")))
    transport = NcclTransport("IB", ("mlx5_0:1/IB",), False, ("P2P/IPC/read",), ("line",))
    ranks = [rank(0, transport=transport), rank(1, other, transport=replace(transport, network="Socket"))]
    report = build_report(2, "nccl", 60.0, ranks, _sweep(100.0, Rerun("repeat", 101.0, None)), (), None)
    text = render_cluster_markdown(report)
    assert "| 1 | 0.1 | node-a | none | **2.4.0 ≠** | **Socket ≠** | 10.00 | 0.0 |" in text
    assert "the same on every rank: Python 3.11.9, torch CUDA 12.1, cuDNN 8902, NCCL 2.20.5" in text
    assert "**Socket ≠**" in text
    assert "| all_reduce, repeat | 1 GiB |  |  | 101.000 | 22% |" in text
    assert "`cluster.nccl_transport` NCCL chose another network on some ranks: NCCL network" in text
    data = json.loads(render_cluster_json(report))
    assert data["differing"] == ["NCCL network", "torch"]
    assert data["ranks"][0]["nccl_transport"]["kinds"] == ["P2P"]
    assert data["sweep"]["reruns"] == [{"label": "repeat", "busbw_gb_s": 101.0, "error": None}]


def test_the_terminal_report_matches_its_golden_text() -> None:
    """8 ranks on an H100 node: GPU 3 a straggler, rank 5's NCCL on sockets, busbw short with its re-runs. The
    report people read, as a diff to review (refresh: ENVCHECK_UPDATE_GOLDEN=1, as tests/test_golden.py)."""
    import io
    import os

    from envcheck.render.cluster import render_cluster_terminal
    from tests.test_golden import GOLDEN

    transport = NcclTransport("IB", ("mlx5_0:1/IB",), False, ("P2P/IPC/read",), ("line",))
    ranks = [
        replace(
            facts,
            transport=replace(transport, network="Socket", interfaces=("eth0:10.0.0.5",))
            if facts.place.rank == 5
            else transport,
        )
        for facts in _node_ranks(_machine(H100), 8, matmul_s=0.010, copy_gb_s=2000.0)
    ]
    ranks[3] = replace(ranks[3], matmul=replace(ranks[3].matmul, median_s=0.0125))
    reruns = (
        Rerun("repeat", 200.0, None),
        Rerun("NCCL_P2P_DISABLE=1", 330.0, None),
        Rerun("NCCL_SHM_DISABLE=1", 201.0, None),
    )
    report = build_report(8, "nccl", 120.0, ranks, _sweep(190.0, *reruns), (), load_knowledge())
    output = io.StringIO()
    render_cluster_terminal(report, output)
    text = "".join(line.rstrip() + "\n" for line in output.getvalue().splitlines())
    path = GOLDEN / "cluster-h100x8-straggler.txt"
    if os.environ.get("ENVCHECK_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def _two_nodes() -> list:  # type: ignore[type-arg]
    """Node 0 (node-a): an H100 machine; node 1 (node-b): no NVIDIA driver, a CPU-only torch. Each node's local rank 1
    skips the host's sections as a live run does (its `gpu` section not collected)."""
    skipped = Unavailable("local rank 1: another rank probed this host")
    h100, cpu = _machine(H100), factories.snapshot()
    ranks = []
    for number, (snapshot, host) in enumerate(((h100, "node-a"), (h100, "node-a"), (cpu, "node-b"), (cpu, "node-b"))):
        local = number % 2
        facts = rank(
            number,
            replace(snapshot, gpu=skipped) if local else snapshot,
            world_size=4,
            host=host,
            gpu_uuid=_uuids(h100)[local] if host == "node-a" else None,
        )
        ranks.append(replace(facts, place=Place(number, local, 4, 2, number // 2, host)))
    return ranks


def test_the_rank_table_tells_a_fact_not_probed_from_a_fact_that_is_absent() -> None:
    """ "-" said both; now a local rank that did not probe the host reads "not probed", a node without a GPU "none"."""
    import io

    from envcheck.render.cluster import render_cluster_terminal

    report = build_report(4, "gloo", 120.0, _two_nodes(), None, (), load_knowledge())
    output = io.StringIO()
    render_cluster_terminal(report, output)
    table = {line.split()[0]: line for line in output.getvalue().splitlines() if "│" in line}
    assert "NVIDIA H100 80GB HBM3 x8 ≠" in table["0"]
    assert "not probed" in table["1"] and "not probed" in table["3"]
    assert "none ≠" in table["2"]  # node-b's GPUs: it has none, a fact and a difference
    assert "not probed" not in table["0"] + table["2"]
    assert " - " not in output.getvalue()
    # node-b has no driver: the driver column is shown, not folded into "the same on every rank"
    assert "550.54.15 ≠" in table["0"] and table["2"].split("│")[4].strip() == "none"
    shared = next(line for line in output.getvalue().splitlines() if line.startswith("the same on every rank"))
    assert "NVIDIA driver" not in shared and "GPUs" not in shared
    markdown = render_cluster_markdown(report)
    assert "| not probed |" in markdown and "**none ≠**" in markdown
    # the JSON keeps null for both: what null means per column is in docs/json.md
    rows = json.loads(render_cluster_json(report))["ranks"]
    assert [row["GPUs"] for row in rows] == ["NVIDIA H100 80GB HBM3 x8", None, "none", None]
    assert [row["NVIDIA driver"] for row in rows] == ["550.54.15", None, None, None]
