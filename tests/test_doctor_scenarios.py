"""`envcheck doctor --from SNAPSHOT.json` end to end on machines built from real GPU fixtures plus a torch install.

Each scenario is a cause seen in real bug reports; the test pins the exit code, the failing check and its fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envcheck.cli import app
from envcheck.snapshot import Snapshot, to_json
from tests import factories

runner = CliRunner()


def doctor(tmp_path: Path, snapshot: Snapshot, *options: str) -> tuple[int, str]:
    path = tmp_path / "snapshot.json"
    path.write_text(to_json(snapshot))
    result = runner.invoke(app, ["doctor", "--from", str(path), *options])
    return result.exit_code, result.stdout


def failures(tmp_path: Path, snapshot: Snapshot) -> tuple[int, dict[str, dict[str, Any]]]:
    code, text = doctor(tmp_path, snapshot, "--json")
    findings = json.loads(text)["findings"]
    return code, {finding["id"]: finding for finding in findings if finding["severity"] == "fail"}


RTX4090 = "rtx4090-driver535.86.05"


def test_a_healthy_rtx4090_box_exits_0_without_failures(tmp_path: Path) -> None:
    code, failed = failures(tmp_path, factories.gpu_machine(factories.nvidia_smi_gpu(RTX4090)))
    assert failed == {}
    assert code == 0
    code, text = doctor(tmp_path, factories.gpu_machine(factories.nvidia_smi_gpu(RTX4090)))
    assert code == 0 and "CUDA" in text


def test_a_healthy_two_gpu_workstation_with_a_recent_wheel_exits_0(tmp_path: Path) -> None:
    gpu = factories.nvidia_smi_gpu("rtx-a5000x2-driver590.44.01")
    archs = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")
    torch = factories.torch_on(gpu, version="2.9.1+cu130", cuda_version="13.0", arch_list=archs)
    python = factories.python(packages=factories.packages(torch="2.9.1+cu130", torchvision="0.24.1+cu130"))
    code, failed = failures(tmp_path, factories.gpu_machine(gpu, torch, python=python))
    assert failed == {} and code == 0


def test_driver_too_old_for_the_wheel_exits_1_naming_the_minimum_and_the_wheel_it_runs(tmp_path: Path) -> None:
    gpu = factories.nvml_gpu("rtx4090-driver535.86.05", driver_version="470.82.01")
    # driver 470 cannot start torch's CUDA 12.1: torch sees no device
    no_cuda = factories.torch(is_cuda_available=False, device_count=0, devices=())
    code, failed = failures(tmp_path, factories.gpu_machine(gpu, no_cuda))
    assert code == 1
    finding = failed["cuda.driver_too_old"]
    assert "470.82.01" in finding["title"] and "525.60.13" in finding["title"]
    assert "whl/cu118" in finding["fix"]
    code, text = doctor(tmp_path, factories.gpu_machine(gpu, no_cuda))
    assert code == 1 and "525.60.13" in text


def test_cpu_only_wheel_on_a_gpu_machine_exits_1_with_the_cuda_index_url(tmp_path: Path) -> None:
    cpu = factories.torch(version="2.3.1+cpu", cuda_version=None, cudnn_version=None, nccl_version=None,
                          is_cuda_available=False, device_count=0, arch_list=(), devices=())  # fmt: skip
    code, failed = failures(tmp_path, factories.gpu_machine(factories.nvidia_smi_gpu(RTX4090), cpu))
    assert code == 1
    assert set(failed) == {"install.cpu_wheel_on_gpu"}
    assert "https://download.pytorch.org/whl/cu121" in failed["install.cpu_wheel_on_gpu"]["fix"]


def test_kepler_gpu_missing_from_a_cu121_wheel_exits_1_with_no_kernel_image(tmp_path: Path) -> None:
    k80 = factories.nvidia_smi_gpu("k80x4-driver430.26-ecc-dbe-retired")
    # driver 430 cannot start CUDA 12.1, so torch reports no devices and get_arch_list() returns []
    unusable = factories.torch(devices=(), arch_list=(), is_cuda_available=False, device_count=0)
    code, failed = failures(tmp_path, factories.gpu_machine(k80, unusable))
    assert code == 1
    assert "no kernel image" in failed["cuda.arch_support"]["title"]
    assert "cu118" in failed["cuda.arch_support"]["fix"]
    assert "cuda.driver_too_old" in failed  # driver 430 (CUDA 10.1) is also too old for cu121


def test_torchvision_of_another_release_exits_1_with_the_matching_pin(tmp_path: Path) -> None:
    python = factories.python(packages=factories.packages(torch="2.3.1+cu121", torchvision="0.16.0+cu121"))
    machine = factories.gpu_machine(factories.nvidia_smi_gpu(RTX4090), python=python)
    code, failed = failures(tmp_path, machine)
    assert code == 1 and set(failed) == {"install.companion_versions"}
    assert "torchvision==0.18.1" in failed["install.companion_versions"]["fix"]


@pytest.mark.parametrize(
    ("sections", "check_id"),
    [
        ({"python": factories.python(packages=factories.packages(torch="2.2.2", numpy="2.0.1"))}, "install.numpy_abi"),
        ({"environment": factories.environment(CUDA_VISIBLE_DEVICES="-1")}, "cuda.visible_devices"),
    ],
)
def test_numpy_2_and_hidden_gpus_exit_1(tmp_path: Path, sections: dict[str, Any], check_id: str) -> None:
    code, failed = failures(tmp_path, factories.gpu_machine(factories.nvidia_smi_gpu(RTX4090), **sections))
    assert code == 1 and check_id in failed
