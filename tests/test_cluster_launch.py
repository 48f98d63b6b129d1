"""`python -m envcheck.cluster` end to end under a real torchrun with gloo on this CPU: a passing run, ranks whose
facts differ (through the documented snapshot seam) with a slowed rank, a rank that never reaches the barrier, and a
rank that never joins the rendezvous. Each run is bounded; the ranks run with one thread each."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from envcheck.snapshot import to_json
from tests import factories

# find_spec, not importorskip: importing torch into the pytest process at collection would grow every process the
# suite forks later (the fuzz harness caps its children's memory)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the ranks need torch")

ROOT = Path(__file__).resolve().parents[1]
SMALL_SWEEP = ("--max-size-mib", "1", "--iterations", "2")


def _environment(**extra: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ENVCHECK_CLUSTER_", "NCCL_"))}
    environ.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra)
    return environ


def _torchrun(
    *arguments: str, timeout_s: float = 90, ranks: int = 2, **extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    return _run([*argv, "-m", "envcheck.cluster", "--backend", "gloo", *arguments], timeout_s, _environment(**extra))


def _run(argv: list[str], timeout_s: float, environ: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, env=environ, cwd=ROOT, timeout=timeout_s, check=False)
    return result, time.monotonic() - started


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Rank 0's JSON: the whole of stdout (the other rank prints nothing there)."""
    try:
        data: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"stdout is not one JSON report:\n{result.stdout}\n--- stderr ---\n{result.stderr[-3000:]}")
    return data


def _finding(report: dict[str, Any], finding_id: str) -> dict[str, Any]:
    return next(finding for finding in report["findings"] if finding["id"] == finding_id)


def test_two_ranks_pass_with_a_correct_all_reduce_and_busbw() -> None:
    result, _ = _torchrun("--json", "--timeout", "30", *SMALL_SWEEP)
    report = _report(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert report["schema"] == "envcheck.cluster/1"
    assert [row["rank"] for row in report["ranks"]] == [0, 1]
    assert all(row["all_reduce_correct"] for row in report["ranks"])
    assert _finding(report, "cluster.allreduce_wrong")["severity"] == "ok"
    assert _finding(report, "cluster.version_mismatch")["severity"] == "ok"
    rows = report["sweep"]["rows"]
    assert {row["collective"] for row in rows} == {"all_reduce", "all_gather"}
    assert all(row["busbw_gb_s"] > 0 for row in rows)
    assert report["sweep"]["expectation"].startswith("no expected bandwidth for gloo on CPU")
    assert report["sweep"]["reruns"] == []
    assert [(node["node_rank"], node["rank"]) for node in report["nodes"]] == [(0, 0)]  # doctor on local rank 0's
    assert any(finding["id"] == "system.shm_size" for finding in report["nodes"][0]["findings"])
    assert all(row["copy_gb_s"] > 0 for row in report["ranks"])


def test_three_ranks_pass_and_print_markdown() -> None:
    result, _ = _torchrun("--markdown", "--timeout", "30", *SMALL_SWEEP, ranks=3, timeout_s=120)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    assert text.startswith("**envcheck cluster: 3 of 3 ranks reported on 1 node(s), gloo**")
    rows = [line for line in text.splitlines() if line.startswith(("| 0 | 0.0 |", "| 1 | 0.1 |", "| 2 | 0.2 |"))]
    assert len(rows) == 3, text
    assert "all-reduce correct on all 3 ranks (sum 6, int64 and float32)" in text
    assert "| all_reduce | 1024 KiB |" in text  # 1 MiB rounded down to whole floats per rank: 3 x 87381
    assert "doctor on rank 0:" in text


def test_a_shortfall_is_repeated_then_rerun_in_fresh_processes_per_transport() -> None:
    """The seam sets an expectation gloo cannot meet: the repeat runs in a fresh subgroup, then each rank starts a
    child per NCCL_*_DISABLE variable and the children's own process group measures again. gloo ignores the
    variables, so no transport is named."""
    result, elapsed = _torchrun(
        "--json", "--timeout", "30", *SMALL_SWEEP, ENVCHECK_CLUSTER_TEST_EXPECTED_GB_S="1000", timeout_s=150
    )
    report = _report(result)
    assert result.returncode == 1, result.stderr[-3000:]
    bandwidth = _finding(report, "cluster.bandwidth")
    assert bandwidth["severity"] == "fail"  # far below 25% of 1000 GB/s
    assert "of 1000 GB/s (set by a test): below 80%" in bandwidth["title"]
    reruns = report["sweep"]["reruns"]
    assert [rerun["label"] for rerun in reruns] == ["repeat", "NCCL_P2P_DISABLE=1", "NCCL_SHM_DISABLE=1"]
    assert all(rerun["error"] is None and rerun["busbw_gb_s"] > 0 for rerun in reruns), reruns
    assert "gloo reads no NCCL_* variable" in bandwidth["detail"]
    assert elapsed < 120


def test_injected_facts_that_differ_and_a_slowed_rank_are_reported(tmp_path: Path) -> None:
    mine = factories.snapshot(environment=factories.environment(NCCL_SOCKET_IFNAME="eth0"))
    theirs = factories.snapshot(
        environment=factories.environment(NCCL_SOCKET_IFNAME="ib0"),
        framework=factories.framework(torch=factories.torch(version="2.4.0+cu121")),
    )
    (tmp_path / "rank0.json").write_text(to_json(mine))
    (tmp_path / "rank1.json").write_text(to_json(theirs))
    result, _ = _torchrun(
        "--json",
        "--timeout",
        "30",
        *SMALL_SWEEP,
        ENVCHECK_CLUSTER_SNAPSHOT_0=str(tmp_path / "rank0.json"),
        ENVCHECK_CLUSTER_SNAPSHOT_1=str(tmp_path / "rank1.json"),
        ENVCHECK_CLUSTER_TEST_SLOW_RANK="1",
    )
    report = _report(result)
    assert result.returncode == 1, result.stderr[-3000:]
    versions = _finding(report, "cluster.version_mismatch")
    assert versions["severity"] == "fail"
    assert "2.4.0+cu121 on rank 1" in versions["detail"]
    environment = _finding(report, "cluster.env_mismatch")
    assert "NCCL_SOCKET_IFNAME: eth0 on rank 0" in environment["detail"]
    straggler = _finding(report, "cluster.straggler")
    assert straggler["severity"] == "warn"
    assert straggler["detail"].startswith("rank 1 ")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_two_nodes_whose_networks_differ_are_named(tmp_path: Path) -> None:
    """Two torchrun agents on this machine form a job of two nodes (--nnodes 2, one rank each, GROUP_RANK 0 and 1);
    the seam gives node 1 four of node 0's eight InfiniBand ports and no eth0, which NCCL_SOCKET_IFNAME names."""
    ports = tuple(factories.hca_port(f"mlx5_{n}") for n in range(8))
    variables = {"NCCL_SOCKET_IFNAME": "eth0"}
    node_a = factories.network(hca_ports=ports, **variables)
    node_b = factories.network((factories.interface("ens5"),), hca_ports=ports[:4], **variables)
    for number, network in enumerate((node_a, node_b)):
        snapshot = factories.snapshot(environment=factories.environment(**variables), network=network)
        (tmp_path / f"rank{number}.json").write_text(to_json(snapshot))
    environ = _environment(
        ENVCHECK_CLUSTER_SNAPSHOT_0=str(tmp_path / "rank0.json"),
        ENVCHECK_CLUSTER_SNAPSHOT_1=str(tmp_path / "rank1.json"),
    )
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    launch += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    run = ["-m", "envcheck.cluster", "--backend", "gloo", "--json", "--timeout", "30", *SMALL_SWEEP]
    agents = [
        subprocess.Popen(
            [*launch, "--node-rank", str(node), *run],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            cwd=ROOT,
        )
        for node in (1, 0)
    ]
    try:
        outputs = [agent.communicate(timeout=120) for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
                agent.communicate()
    stdout, stderr = outputs[1]  # node 0's agent runs rank 0, the one that reports
    result = subprocess.CompletedProcess(agents[1].args, agents[1].returncode, stdout, stderr)
    report = _report(result)
    assert result.returncode == 0, stderr[-3000:]  # warnings only
    assert [(row["rank"], row["node_rank"]) for row in report["ranks"]] == [(0, 0), (1, 1)]
    ports_finding = _finding(report, "cluster.network_mismatch")
    assert ports_finding["severity"] == "warn"
    assert "8 active: 400 Gb/sec (4X NDR) x8 on node 0 (" in ports_finding["title"]
    assert "4 active: 400 Gb/sec (4X NDR) x4 on node 1 (" in ports_finding["title"]
    interfaces = _finding(report, "cluster.nccl_interface")
    assert interfaces["severity"] == "warn" and interfaces["title"].endswith(")")
    assert "node 1 (" in interfaces["title"] and "node 0 (" not in interfaces["title"]
    assert "NCCL_SOCKET_IFNAME=eth0 matches no interface here; there are: ens5 (up) (rank 1)" in interfaces["detail"]
    doctor = {node["node_rank"]: node["findings"] for node in report["nodes"]}
    assert [finding["severity"] for finding in doctor[1] if finding["id"] == "system.nccl_network"] == ["warn"]
    assert [finding["severity"] for finding in doctor[0] if finding["id"] == "system.nccl_network"] == ["ok"]


def test_a_rank_that_never_reaches_the_barrier_is_named_within_the_timeout() -> None:
    result, elapsed = _torchrun("--json", "--timeout", "10", ENVCHECK_CLUSTER_TEST_ABSENT_RANK="1")
    report = _report(result)
    assert result.returncode == 1
    missing = _finding(report, "cluster.rank_missing")
    assert missing["severity"] == "fail"
    assert "rank 1 (node 0, local rank 1, host " in missing["title"]
    assert "first barrier within 10 s" in missing["title"]
    assert elapsed < 10 + 25  # the timeout, plus starting torchrun and importing torch twice on a loaded machine


def test_a_rank_that_never_joins_is_named_and_rank_zero_exits_one() -> None:
    """Rank 0 alone, told the world has two ranks: the rendezvous times out and names rank 1."""
    port = _free_port()
    environ = _environment(
        WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    argv = [sys.executable, "-m", "envcheck.cluster", "--backend", "gloo", "--json", "--timeout", "5"]
    result, elapsed = _run(argv, 60, environ)
    report = _report(result)
    assert result.returncode == 1
    assert report["ranks_reported"] == 0
    missing = _finding(report, "cluster.rank_missing")
    assert "rank 1 (node 0, local rank 1, host " in missing["title"]
    assert "rendezvous" in missing["title"]
    assert elapsed < 5 + 20
