"""The doctor on every real and pasted fixture, finding by finding: no false claim on a healthy machine, no
wrong fix on a broken one (issue 4's bar). Each test pins a finding the fixture audit found wrong."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import known
from envcheck.finding import Finding, Severity
from envcheck.knowledge import load_knowledge
from envcheck.loaders import load_snapshot_file
from envcheck.snapshot import Snapshot
from tests import factories
from tests.shared_fixtures import shared_glob, shared_param

KNOWLEDGE = load_knowledge()
COLLECT_ENV = Path(__file__).parent / "fixtures" / "collect_env"
LOCAL_XML = Path(__file__).parent / "fixtures" / "nvidia-smi"
EVERY_FIXTURE = [
    *shared_glob("nvidia-smi", "*.xml"),
    *(
        pytest.param(path, id=path.name)
        for path in sorted([*LOCAL_XML.glob("*.xml"), *COLLECT_ENV.glob("*.txt")], key=lambda path: path.name)
    ),
]


def findings_of(snapshot: Snapshot) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in run_checks(CheckInput(snapshot, knowledge=KNOWLEDGE)):
        found.setdefault(finding.id, []).append(finding)
    return found


def doctor(path: Path) -> dict[str, list[Finding]]:
    return findings_of(load_snapshot_file(path))


def one(found: dict[str, list[Finding]], check_id: str) -> Finding:
    (finding,) = found[check_id]
    return finding


@pytest.mark.parametrize(
    ("fixture", "severity", "advice", "not_advised"),
    [
        # Ampere has bf16 and TF32; only FP8 is missing, so fp16 + GradScaler is the wrong advice there
        shared_param("nvidia-smi/a100-sxm4-40gb-mig-driver510.47.03.xml", Severity.INFO, "bfloat16", "torch.float16"),
        (COLLECT_ENV / "linux-torch2.1-cu118-torchvision0.15-mismatch.txt", Severity.INFO, "bfloat16", "torch.float16"),
        # Volta/Turing: fp16 tensor cores, no bf16/TF32
        shared_param("nvidia-smi/t4-driver515.105.01.xml", Severity.INFO, "torch.float16", "bfloat16"),
        # Kepler/Pascal: no tensor cores at all, fp16 autocast is no speed-up
        shared_param("nvidia-smi/k80x4-driver430.26-ecc-dbe-retired.xml", Severity.INFO, "fp32", "bfloat16"),
        (COLLECT_ENV / "linux-torch1.4-cu101-gtx1080ti-2020.txt", Severity.INFO, "fp32", "bfloat16"),
    ],
)
def test_dtype_advice_fits_what_the_gpu_lacks(fixture: Path, severity: Severity, advice: str, not_advised: str) -> None:
    finding = one(doctor(fixture), "cuda.dtype_support")
    assert finding.severity is severity
    assert finding.fix is not None and advice in finding.fix and not_advised not in finding.fix


def test_a_windows_driver_too_old_for_cu121_names_the_cu118_wheel_it_runs() -> None:
    found = doctor(COLLECT_ENV / "windows-torch2.1-cu121-driver526-rtx3080.txt")
    too_old = one(found, "cuda.driver_too_old")
    assert too_old.severity is Severity.FAIL and too_old.fix is not None
    # driver 526.98 (CUDA 11.8) runs the cu118 wheels, which have sm_86 on Windows too (cuda118.bat)
    assert "torch 2.7.1+cu118" in too_old.fix and "whl/cu118" in too_old.fix
    assert "no official wheel" not in too_old.fix
    assert one(found, "cuda.arch_support").severity is Severity.OK  # Windows cu121 wheels have sm_86


def test_the_cpu_wheel_fix_reinstalls_torchaudio_too() -> None:
    found = doctor(COLLECT_ENV / "windows-torch2.1-cpu-wheel-rtx4090.txt")
    fix = one(found, "install.cpu_wheel_on_gpu").fix
    # a CPU torchaudio left behind stays 2.1.0+cpu beside the CUDA torch
    assert fix is not None and "torchaudio==2.1.0" in fix and "whl/cu121" in fix


def test_the_cpu_wheel_fix_names_a_wheel_with_code_for_the_gpu() -> None:
    pasted = load_snapshot_file(COLLECT_ENV / "linux-torch2.5-cu124-rtx5090-sm120.txt")
    framework = known(pasted.framework)
    assert framework is not None and framework.torch is not None
    cpu_torch = dataclasses.replace(framework.torch, version="2.5.1+cpu", cuda_version=None, arch_list=())
    cpu_machine = dataclasses.replace(pasted, framework=dataclasses.replace(framework, torch=cpu_torch))
    fix = one(findings_of(cpu_machine), "install.cpu_wheel_on_gpu").fix
    # torch 2.5.1's cu124 wheel has no sm_120: the fix must name a release with Blackwell code (cu128+)
    assert fix is not None and "whl/cu124" not in fix and "torch==2.5.1" not in fix


def test_a_paste_cut_before_its_package_list_claims_nothing_about_packages() -> None:
    found = doctor(COLLECT_ENV / "truncated-torch2.2-cu118-rtx3080.txt")
    for check_id in ("install.duplicate_torch", "install.numpy_abi", "install.nvml_binding"):
        assert one(found, check_id).severity is Severity.SKIP, check_id
    # the torch that imported still has a release to judge the Python against
    python = one(found, "install.python_supported")
    assert python.severity is Severity.OK and "torch 2.2.1" in python.title


def test_a_rocm_torch_says_nothing_of_an_nvidia_fabric() -> None:
    fabric = one(doctor(COLLECT_ENV / "linux-torch2.1-rocm5.6-rx7900xtx.txt"), "cuda.fabric_manager")
    assert fabric.severity is Severity.SKIP


def test_native_windows_claims_no_device_nodes() -> None:
    found = doctor(COLLECT_ENV / "windows-torch1.13-cu117-rtx3060.txt")
    nodes = one(found, "cuda.container_gpus")
    assert nodes.severity is Severity.OK and "/dev" not in nodes.title and "present" not in nodes.title


@pytest.mark.parametrize("fixture", sorted(COLLECT_ENV.glob("windows-*.txt")), ids=lambda path: path.name)
def test_no_fix_tells_a_windows_user_to_sudo_or_apt(fixture: Path) -> None:
    system = known(load_snapshot_file(fixture).system)
    assert system is not None and system.os_name == "Windows"
    fixes = [finding.fix for group in doctor(fixture).values() for finding in group if finding.fix]
    assert fixes and not [fix for fix in fixes if "sudo" in fix or "apt" in fix]


@pytest.mark.parametrize("fixture", EVERY_FIXTURE)
def test_every_fixture_gets_a_verdict_from_every_check(fixture: Path) -> None:
    found = doctor(fixture)
    assert all(group for group in found.values())
    assert all(finding.fix is None or finding.fix.strip() for group in found.values() for finding in group)


def test_mig_devices_in_a_pasted_gpu_list_are_not_reported_as_mig_off(tmp_path: Path) -> None:
    # collect_env prints `nvidia-smi -L` without UUIDs; a MIG GPU lists its devices on the lines below it
    text = (COLLECT_ENV / "linux-torch2.1-cu121-a100x8-conda.txt").read_text()
    mig_lines = "GPU 0: NVIDIA A100-SXM4-80GB\n  MIG 3g.40gb     Device  0:\n  MIG 3g.40gb     Device  1:\n"
    assert "GPU 0: NVIDIA A100-SXM4-80GB\n" in text
    pasted = tmp_path / "mig.txt"
    pasted.write_text(text.replace("GPU 0: NVIDIA A100-SXM4-80GB\n", mig_lines, 1))
    found = doctor(pasted)
    (mig,) = found["gpu.mig"]
    assert mig.severity is Severity.INFO and mig.title.startswith("GPU 0 (NVIDIA A100-SXM4-80GB): MIG is enabled")
    assert "2 MIG device(s)" in mig.title and "()" not in mig.title
    assert one(found, "gpu.present").title.startswith("8 NVIDIA GPU(s)")  # the MIG lines are not GPUs


@pytest.mark.parametrize(
    ("fixture", "sm"),
    [("windows-torch1.13-cu117-rtx3060.txt", "sm_86"), ("windows-torch2.1-cu121-driver526-rtx3080.txt", "sm_86")],
)
def test_windows_wheels_have_arch_tables(fixture: str, sm: str) -> None:
    arch = one(doctor(COLLECT_ENV / fixture), "cuda.arch_support")
    assert arch.severity is Severity.OK and f"({sm})" in arch.title


def test_a_paste_without_gpus_says_nothing_about_the_pci_bus() -> None:
    pasted = one(doctor(COLLECT_ENV / "macos-torch2.2-arm64-m2pro.txt"), "cuda.driver_loaded")
    assert pasted.severity == Severity.SKIP
    assert "does not show the PCI bus" in (pasted.detail or "")
    live = one(findings_of(factories.snapshot()), "cuda.driver_loaded")  # probed here: the bus was looked at
    assert (live.severity, live.title) == (Severity.OK, "no NVIDIA GPU on the PCI bus left without a driver")
