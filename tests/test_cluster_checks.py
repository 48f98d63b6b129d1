"""The cluster's pure parts on hand-built facts: consistency and timing checks, nccl-tests' bandwidth formulas, the
parsers of torch's timeout texts, the rank facts' JSON, and the report's JSON envelope."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from envcheck.cluster.bandwidth import bandwidth_row, bus_factor, elements_for, format_size, sweep_sizes
from envcheck.cluster.consistency import check_environment, check_gpus, check_versions
from envcheck.cluster.facts import AllReduceCheck, BandwidthRow, Place, Sweep, rank_facts_from_json, rank_facts_to_json
from envcheck.cluster.ranks import LaunchError, describe_rank, missing_ranks, place_from_environment
from envcheck.cluster.report import build_report
from envcheck.cluster.timing import (
    check_all_reduce,
    check_clock_skew,
    check_stragglers,
    check_sweep,
    rank_missing,
)
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Severity
from envcheck.render.cluster import SCHEMA, render_cluster_json
from tests import factories
from tests.cluster_factories import rank

# --- versions, GPUs, environment ---


def test_identical_ranks_agree() -> None:
    ranks = [rank(0), rank(1)]
    assert check_versions(ranks).severity is Severity.OK
    assert check_gpus(ranks).severity is Severity.OK
    assert check_environment(ranks).severity is Severity.OK


def test_a_rank_with_another_torch_and_nccl_is_named() -> None:
    other = factories.snapshot(
        framework=factories.framework(torch=factories.torch(version="2.4.0", nccl_version="2.21.5"))
    )
    finding = check_versions([rank(0), rank(1, other, host="node-b")])
    assert finding.id == "cluster.version_mismatch"
    assert finding.severity is Severity.FAIL
    assert "torch" in finding.title and "NCCL" in finding.title
    assert "2.4.0 on rank 1 (node-b)" in finding.detail
    assert "2.3.1+cu121 on rank 0 (node-a)" in finding.detail


def test_a_package_version_that_differs_is_a_mismatch() -> None:
    other = factories.snapshot(python=factories.python(packages=factories.packages(torch="2.3.1", numpy="2.0.0")))
    finding = check_versions([rank(0), rank(1, other)])
    assert finding.severity is Severity.FAIL
    assert "package numpy" in finding.title
    assert "package torchvision: 0.18.1 on rank 0 (node-a); not installed on rank 1 (node-a)" in finding.detail


def test_a_rank_that_did_not_probe_a_section_is_no_difference() -> None:
    """Local ranks other than 0 do not probe the host: their Unavailable GPU facts are left out."""
    unprobed = factories.snapshot(gpu=Unavailable("skipped on request"), python=Unavailable("skipped on request"))
    assert check_versions([rank(0), rank(1, unprobed)]).severity is Severity.OK
    assert check_gpus([rank(0), rank(1, unprobed)]).severity is Severity.OK


def test_nodes_with_other_gpus_are_named() -> None:
    h100 = factories.gpu_machine(factories.nvml_gpu("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"))
    a100 = factories.gpu_machine(factories.nvml_gpu("a100-sxm4-80gb-driver535.129.03-ecc-remap-failure"))
    finding = check_gpus([rank(0, h100), rank(8, a100, world_size=16, host="node-b")])
    assert finding.id == "cluster.gpu_mismatch"
    assert finding.severity is Severity.FAIL
    assert "model" in finding.title and "count" in finding.title
    versions = check_versions([rank(0, h100), rank(8, a100, world_size=16, host="node-b")])
    assert "550.54.15 on rank 0 (node-a); 535.129.03 on rank 8 (node-b)" in versions.detail


def test_a_node_with_a_lowered_power_limit_is_named() -> None:
    h100 = factories.gpu_machine(factories.nvml_gpu("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"))
    gpu = h100.gpu
    assert isinstance(gpu, GpuFacts)
    capped = replace(gpu, gpus=tuple(replace(device, power_limit_watts=350.0) for device in gpu.gpus))
    finding = check_gpus([rank(0, h100), rank(8, replace(h100, gpu=capped), world_size=16, host="node-b")])
    assert finding.severity is Severity.FAIL
    assert finding.title.endswith("power limit (W)")
    assert "350.0 x8 on rank 8 (node-b)" in finding.detail


def test_nccl_variables_that_differ_are_shown_redacted() -> None:
    mine = factories.snapshot(environment=factories.environment(NCCL_SOCKET_IFNAME="eth0", NCCL_IB_PASSWORD="hunter2"))
    theirs = factories.snapshot(environment=factories.environment(NCCL_SOCKET_IFNAME="ib0", NCCL_IB_PASSWORD="other"))
    finding = check_environment([rank(0, mine), rank(1, theirs)])
    assert finding.id == "cluster.env_mismatch"
    assert finding.severity is Severity.WARN
    assert "NCCL_SOCKET_IFNAME: eth0 on rank 0 (node-a); ib0 on rank 1 (node-a)" in finding.detail
    assert "hunter2" not in finding.detail and "other" not in finding.detail  # both redacted: they agree as shown


def test_a_variable_set_on_one_rank_only_differs() -> None:
    mine = factories.snapshot(environment=factories.environment(NCCL_P2P_DISABLE="1"))
    finding = check_environment([rank(0, mine), rank(1)])
    assert "NCCL_P2P_DISABLE: 1 on rank 0 (node-a); (not set) on rank 1 (node-a)" in finding.detail


# --- what the ranks measured ---


def test_a_wrong_all_reduce_fails_naming_the_rank() -> None:
    wrong = rank(1, all_reduce=AllReduceCheck(3, 2, 3.0, False))
    finding = check_all_reduce([rank(0), wrong])
    assert finding.id == "cluster.allreduce_wrong"
    assert finding.severity is Severity.FAIL
    assert "rank 1 (node-a): int64 2" in finding.detail
    assert check_all_reduce([rank(0), rank(1)]).severity is Severity.OK


def test_clock_skew_over_a_second_warns() -> None:
    assert check_clock_skew([rank(0), rank(1, clock_s=1_800_000_000.2)]).severity is Severity.OK
    skewed = check_clock_skew([rank(0), rank(1, clock_s=1_800_000_003.5)])
    assert skewed.id == "cluster.clock_skew"
    assert skewed.severity is Severity.WARN
    assert "3.50 s" in skewed.title


def test_with_two_ranks_the_slower_is_compared_with_the_fastest() -> None:
    finding = check_stragglers([rank(0, matmul_s=0.010), rank(1, matmul_s=0.0125)])
    assert finding.id == "cluster.straggler"
    assert finding.severity is Severity.WARN
    assert "rank 1 (node-a)" in finding.detail and "25% slower than the fastest" in finding.detail
    assert check_stragglers([rank(0, matmul_s=0.010), rank(1, matmul_s=0.0105)]).severity is Severity.OK


def test_from_three_identical_devices_the_median_is_the_reference() -> None:
    """A single fast outlier must not make its healthy siblings stragglers: the median, not the fastest."""
    ranks = [rank(0, matmul_s=0.007, world_size=4), *(rank(n, matmul_s=0.010, world_size=4) for n in (1, 2)),
             rank(3, matmul_s=0.013, world_size=4)]  # fmt: skip
    finding = check_stragglers(ranks)
    assert finding.severity is Severity.WARN
    assert "rank 3" in finding.detail and "rank 1" not in finding.detail and "slower than the median" in finding.detail


def test_only_identical_devices_are_compared() -> None:
    ranks = [rank(0, matmul_s=0.010), rank(1, matmul_s=0.030, device="NVIDIA A100-SXM4-80GB")]
    assert check_stragglers(ranks).severity is Severity.SKIP


def test_a_missing_rank_is_a_failure_naming_it() -> None:
    finding = rank_missing(["rank 1 (node 0, local rank 1, host vm)"], "first barrier", 10, "Ranks 1 failed ...\nmore")
    assert finding.id == "cluster.rank_missing"
    assert finding.severity is Severity.FAIL
    assert "rank 1 (node 0, local rank 1, host vm)" in finding.title and "10 s" in finding.title
    assert finding.detail == "Ranks 1 failed ..."


# --- nccl-tests' formulas ---


@pytest.mark.parametrize(
    ("collective", "n", "factor"),
    [("all_reduce", 2, 1.0), ("all_reduce", 8, 1.75), ("all_gather", 2, 0.5), ("all_gather", 8, 0.875)],
)
def test_bus_factors_are_nccl_tests(collective: str, n: int, factor: float) -> None:
    assert bus_factor(collective, n) == pytest.approx(factor)


def test_a_row_is_the_median_time_then_algbw_and_busbw() -> None:
    row = bandwidth_row("all_reduce", 1_000_000_000, [0.5, 0.1, 0.2, 0.3, 0.9], 8)
    assert row.median_s == 0.3
    assert row.algbw_gb_s == pytest.approx(1 / 0.3)
    assert row.busbw_gb_s == pytest.approx(1 / 0.3 * 2 * 7 / 8)


def test_the_sweep_grows_by_four_and_ends_at_the_maximum() -> None:
    assert sweep_sizes(64 * 1024 * 1024)[:3] == (1024, 4096, 16384)
    assert sweep_sizes(64 * 1024 * 1024)[-1] == 64 * 1024 * 1024
    assert sweep_sizes(3000) == (1024, 3000)
    assert elements_for(1024, 3) == 255  # 256 floats rounded down to a multiple of 3 ranks
    assert format_size(64 * 1024 * 1024) == "64 MiB" and format_size(1024) == "1 KiB"


def test_the_sweep_finding_reports_the_largest_size_unjudged() -> None:
    rows = (BandwidthRow("all_reduce", 1024, 0.001, 0.001, 0.001), BandwidthRow("all_reduce", 1 << 20, 0.001, 1.0, 1.0))
    finding = check_sweep(Sweep("gloo", "cpu", 5, rows, "no expected bandwidth for gloo on CPU"))
    assert finding.severity is Severity.INFO
    assert finding.title == "all_reduce busbw 1.00 GB/s at 1 MiB"
    assert finding.detail == "no expected bandwidth for gloo on CPU"


# --- torch's timeout texts (torch 2.15, real lines) and the launcher's environment ---


@pytest.mark.parametrize(
    ("text", "world_size", "missing"),
    [
        ("[Rank 0]: Ranks 1 failed to pass monitoredBarrier in 10000 ms", 2, (1,)),
        ("[Rank 0]: Ranks 1, 3 failed to pass monitoredBarrier in 5000 ms", 4, (1, 3)),
        ("wait timeout after 5000ms, keys: /default_pg/0//cpu//0/1", 2, (1,)),
        ("Timed out after 11 seconds waiting for clients. 1/2 clients joined.", 3, (1, 2)),
    ],
)
def test_missing_ranks_from_torch_errors(text: str, world_size: int, missing: tuple[int, ...]) -> None:
    assert missing_ranks(text, world_size) == missing


def test_a_missing_rank_is_placed_by_the_ranks_per_node() -> None:
    me = Place(0, 0, 16, 8, 0, "node-a")
    assert describe_rank(3, me) == "rank 3 (node 0, local rank 3, host node-a)"
    assert describe_rank(9, me) == "rank 9 (node 1, local rank 1, host unknown: it never reported)"


def test_the_place_comes_from_torchruns_variables() -> None:
    environ = {"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "8", "GROUP_RANK": "1"}
    place = place_from_environment(environ)
    assert (place.rank, place.local_rank, place.local_world_size, place.node_rank) == (9, 1, 8, 1)
    with pytest.raises(LaunchError, match="RANK is not set: start this under torchrun"):
        place_from_environment({"WORLD_SIZE": "2"})
    with pytest.raises(LaunchError, match="must lie in"):
        place_from_environment({"WORLD_SIZE": "2", "RANK": "2"})


# --- transport and report ---


def test_rank_facts_survive_their_json() -> None:
    facts = rank(1, factories.gpu_machine(factories.nvml_gpu("t4-driver515.105.01")))
    assert rank_facts_from_json(rank_facts_to_json(facts)) == facts
    with pytest.raises(ValueError, match=r"not 'envcheck\.cluster\.rank/1'"):
        rank_facts_from_json(json.dumps({"schema": "envcheck.cluster.rank/0"}))


def test_the_report_json_has_a_versioned_envelope_and_a_row_per_rank() -> None:
    other = factories.snapshot(framework=factories.framework(torch=factories.torch(version="2.4.0")))
    report = build_report(2, "gloo", 10.0, [rank(0), rank(1, other)], None)
    data = json.loads(render_cluster_json(report))
    assert data["schema"] == SCHEMA == "envcheck.cluster/1"
    assert data["exit_code"] == report.exit_code == 1
    assert [row["torch"] for row in data["ranks"]] == ["2.3.1+cu121", "2.4.0"]
    assert {finding["id"] for finding in data["findings"]} >= {"cluster.version_mismatch", "cluster.straggler"}


# --- the command lines ---


def test_envcheck_cluster_prints_the_launch_lines() -> None:
    from typer.testing import CliRunner

    from envcheck.cli import app

    result = CliRunner().invoke(app, ["cluster"])
    assert result.exit_code == 0
    assert "torchrun --standalone --nproc-per-node 8 -m envcheck.cluster" in result.output
    assert "srun" in result.output


def test_outside_a_launcher_the_rank_program_is_a_one_line_usage_error() -> None:
    import os
    import subprocess
    import sys

    environ = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE")}
    result = subprocess.run(
        [sys.executable, "-m", "envcheck.cluster"], capture_output=True, text=True, env=environ, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("envcheck: error: WORLD_SIZE is not set: start this under torchrun")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_nccl_without_a_cuda_device_is_a_one_line_usage_error() -> None:
    """This machine has no GPU: --backend nccl must say so and exit 2 on every rank, before any process group."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("torch") is None:  # not importorskip: torch stays out of the pytest process
        pytest.skip("the rank needs torch")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("RANK", "CUDA_VISIBLE"))}
    environ.update(WORLD_SIZE="1", RANK="0", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", "envcheck.cluster", "--backend", "nccl"],
        capture_output=True, text=True, env=environ, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "envcheck: error: --backend nccl needs a CUDA device and torch sees none here: use --backend gloo\n"
    )
