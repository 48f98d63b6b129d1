"""Workload checks (`doctor --profile`): each requirement of a shipped profile, met and not met, and bad profiles."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge import Knowledge, WorkloadProfile, load_knowledge, load_workload
from envcheck.probes.nvidia_smi import load_nvidia_smi_xml
from envcheck.snapshot import Snapshot, to_json
from tests import factories
from tests.shared_fixtures import shared_fixture

GIB = factories.GIB
OWN = Path(__file__).resolve().parent / "fixtures" / "nvidia-smi"


@cache
def knowledge() -> Knowledge:
    return load_knowledge()


@cache
def xml(name: str) -> GpuFacts:
    own = OWN / f"{name}.xml"
    return load_nvidia_smi_xml(own if own.exists() else shared_fixture(f"nvidia-smi/{name}.xml"))


RTX4090 = "rtx4090-driver535.86.05"  # 24 GiB, cc 8.9 (from the knowledge base: this XML has no compute_cap)
T4 = "t4-driver515.105.01"  # 15 GiB, cc 7.5
H100X8 = "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"
L40SX2 = "l40s-x2-driver550.90.07-pcie-gen3x8-throttling"
A100_MIG = "a100-sxm4-40gb-mig-driver510.47.03"  # two 3g.20gb MIG devices of 19.5 GiB


def workload_findings(profile: str | WorkloadProfile, snapshot: Snapshot, with_knowledge: bool = True) -> list[Finding]:
    workload = load_workload(profile) if isinstance(profile, str) else profile
    given = CheckInput(snapshot, knowledge=knowledge() if with_knowledge else None, workload=workload)
    return list(run_checks(given, only_areas=("workload",)))


def by_id(findings: list[Finding]) -> dict[str, set[Severity]]:
    table: dict[str, set[Severity]] = {}
    for finding in findings:
        table.setdefault(finding.id, set()).add(finding.severity)
    return table


def test_no_profile_gives_no_workload_finding() -> None:
    snapshot = factories.snapshot(gpu=xml(RTX4090))
    assert [f for f in run_checks(CheckInput(snapshot, knowledge=knowledge())) if f.id.startswith("workload.")] == []


def test_lora_fits_an_rtx_4090_box() -> None:
    findings = workload_findings("llama-7b-lora", factories.snapshot(gpu=xml(RTX4090)))
    assert by_id(findings) == {
        "workload.gpu_memory": {Severity.OK},
        "workload.dtypes": {Severity.OK},
        "workload.compute_capability": {Severity.OK},
        "workload.ram": {Severity.OK},
        "workload.disk": {Severity.OK},
        "workload.cpu_cores": {Severity.OK},
    }  # no total-memory finding: the profile runs on one GPU


def test_lora_on_a_t4_fails_memory_bf16_and_architecture() -> None:
    findings = {f.id: f for f in workload_findings("llama-7b-lora", factories.snapshot(gpu=xml(T4)))}
    # a T4 (cc 7.5) runs no flash attention, so its attention scores are counted (17.0 GB, not 16.3)
    assert findings["workload.gpu_memory"].severity is Severity.FAIL
    assert (
        findings["workload.gpu_memory"].title
        == "llama-7b-lora needs 17.0 GB (15.8 GiB) per GPU; GPU 0 (Tesla T4) has 15.0 GB (14.0 GiB) free "
        "(1.1 GB (1.0 GiB) held by other processes)"
    )
    assert findings["workload.dtypes"].severity is Severity.FAIL
    assert (
        findings["workload.dtypes"].title
        == "llama-7b-lora: bf16 needs compute capability 8.0+; GPU 0 (Tesla T4) is 7.5"
    )
    assert findings["workload.compute_capability"].severity is Severity.FAIL


def test_sharded_full_finetune_needs_the_total_across_gpus() -> None:
    h100 = by_id(workload_findings("llama-7b-full", factories.snapshot(gpu=xml(H100X8))))
    assert h100["workload.total_gpu_memory"] == {Severity.OK}
    assert h100["workload.gpu_memory"] == {Severity.OK}
    l40s = {f.id: f for f in workload_findings("llama-7b-full", factories.snapshot(gpu=xml(L40SX2)))}
    assert l40s["workload.total_gpu_memory"].severity is Severity.FAIL
    # other processes hold 40 GB of each 48 GB L40S: 16.7 GB free together cannot hold the sharded job
    assert "does not fit the 2 GPU(s) together (16.7 GB" in l40s["workload.total_gpu_memory"].title
    assert "held by other processes" in l40s["workload.gpu_memory"].title


def test_mig_limits_a_process_to_its_instance_memory() -> None:
    (memory,) = [
        f
        for f in workload_findings("llama-7b-full", factories.snapshot(gpu=xml(A100_MIG)))
        if f.id == "workload.gpu_memory"
    ]
    assert memory.severity is Severity.FAIL and "has 20.9 GB" in memory.title  # not the GPU's 42.9 GB
    lora = workload_findings("llama-7b-lora", factories.snapshot(gpu=xml(A100_MIG)))
    assert by_id(lora)["workload.gpu_memory"] == {Severity.OK}  # 16.3 GB fits the 20.9 GB instance


def test_ram_cpu_and_disk_shortfalls() -> None:
    snapshot = factories.snapshot(
        gpu=xml(RTX4090),
        memory=factories.memory(cgroup_limit_bytes=16 * GIB),
        cpu=factories.cpu(usable_cpus=4.0, cgroup_quota_cpus=4.0),
        storage=factories.storage(locations=(factories.location(free_bytes=10 * GIB),)),
    )
    findings = {f.id: f for f in workload_findings("llama-7b-lora", snapshot)}
    assert findings["workload.ram"].severity is Severity.FAIL
    assert (
        findings["workload.ram"].title
        == "llama-7b-lora needs 32 GB of RAM; the container's memory limit is 17.2 GB (16.0 GiB)"
    )
    assert (
        findings["workload.cpu_cores"].severity is Severity.WARN
        and "4 of 128 usable" in findings["workload.cpu_cores"].title
    )
    assert findings["workload.disk"].severity is Severity.WARN and "10.7 GB" in findings["workload.disk"].title


def test_missing_facts_skip_with_the_reason() -> None:
    missing = Unavailable("probe failed: permission denied")
    snapshot = factories.snapshot(gpu=missing, memory=missing, cpu=missing, storage=missing)
    for finding in workload_findings("llama-7b-lora", snapshot):
        assert finding.severity is Severity.SKIP and finding.detail == missing.reason, finding
    # compute capability unknown: an old driver's XML, no knowledge base, a torch that saw another GPU
    unknown = workload_findings("llama-7b-lora", factories.snapshot(gpu=xml(RTX4090)), with_knowledge=False)
    assert by_id(unknown)["workload.compute_capability"] == {Severity.SKIP}


def test_compute_capability_from_torch_when_the_driver_does_not_say() -> None:
    device = factories.torch().devices[0]
    torch = factories.torch(devices=(replace(device, name="NVIDIA GeForce RTX 4090", compute_capability="8.9"),))
    snapshot = factories.snapshot(gpu=xml(RTX4090), framework=factories.framework(torch=torch))
    assert by_id(workload_findings("llama-7b-lora", snapshot, with_knowledge=False))["workload.dtypes"] == {Severity.OK}


def test_a_machine_without_gpu_fails_once_for_memory() -> None:
    table = by_id(workload_findings("cifar10-cnn", factories.snapshot()))
    assert table["workload.gpu_memory"] == {Severity.FAIL}
    assert table["workload.dtypes"] == {Severity.SKIP} and table["workload.compute_capability"] == {Severity.SKIP}


def test_fp8_needs_ada_or_hopper() -> None:
    fp8 = replace(load_workload("llama-7b-lora"), dtypes_required=("fp8",), min_compute_capability=(8, 0))
    a100 = xml("a100-sxm4-80gb-driver535.129.03-ecc-remap-failure")
    assert by_id(workload_findings(fp8, factories.snapshot(gpu=a100)))["workload.dtypes"] == {Severity.FAIL}
    assert by_id(workload_findings(fp8, factories.snapshot(gpu=xml(H100X8))))["workload.dtypes"] == {Severity.OK}


# --- through the command line ------------------------------------------------------------------


def envcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "unknown workload profile"),
        ('name = "x"\n', "missing"),
        ("name = [[[", "not valid TOML"),
    ],
)
def test_bad_profiles_are_one_line_errors_with_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(to_json(factories.snapshot()))
    profile = "no-such-profile"
    if content is not None:
        path = tmp_path / "profile.toml"
        path.write_text(content)
        profile = str(path)
    result = envcheck("doctor", "--from", str(snapshot), "--profile", profile)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_profile_findings_reach_the_report(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(to_json(factories.snapshot(gpu=xml(T4))))
    result = envcheck("doctor", "--from", str(snapshot), "--profile", "llama-7b-lora", "--only", "workload")
    assert result.returncode == 1, result.stderr
    assert "llama-7b-lora needs 17.0 GB" in result.stdout
    assert envcheck("doctor", "--from", str(snapshot), "--profile", "cifar10-cnn", "--only", "workload").returncode == 0
