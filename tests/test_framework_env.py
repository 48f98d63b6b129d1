"""`--from` a detectron2 or OpenMMLab (mmcv, mmdetection) environment table: the same facts as torch's collect_env
(torch build, CUDA, GPUs, driver, torchvision), plus what those tables state beyond it (each GPU's capability,
torch's arch list and cuDNN from its build settings), judged by the same checks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.python import PythonFacts
from envcheck.facts.toolchain import Tool, ToolchainFacts
from envcheck.finding import Severity
from envcheck.importers.collect_env import CollectEnvError
from envcheck.importers.framework_env import (
    DETECTRON2,
    OPENMMLAB,
    FrameworkEnvError,
    format_of,
    snapshot_from_framework_env,
)
from envcheck.loaders import InputError, load_snapshot_file
from envcheck.snapshot import Snapshot

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "framework_env"
D2 = FIXTURES / "detectron2-torch1.8-cu111-gtx1650ti-maxq.txt"
D2_CPU = FIXTURES / "detectron2-torch1.7.1-arch-linux-cpu.txt"
MMDET = FIXTURES / "mmdet-torch1.6-cu101-4x-rtx2080ti.txt"
# torch 1.6.0 (CUDA 10.2) under an RTX 3090, with torch's own warning above the table (detectron2#3076's layout)
RTX3090_WARNING = """\
GeForce RTX 3090 with CUDA capability sm_86 is not compatible with the current PyTorch installation.
The current PyTorch install supports CUDA capabilities sm_37 sm_50 sm_60 sm_61 sm_70 sm_75 compute_37.
If you want to use the GeForce RTX 3090 GPU with PyTorch, please check the instructions at https://pytorch.org/get-started/locally/

  warnings.warn(incompatible_device_warn.format(device_name, capability, " ".join(arch_list), device_name))
"""


def load(path: Path, text: str | None = None) -> Snapshot:
    data = (text if text is not None else path.read_text()).encode()
    return snapshot_from_framework_env(data, path.name)


def failures(snapshot: Snapshot) -> dict[str, str]:
    return {f.id: f.title for f in run_checks(CheckInput(snapshot)) if f.severity is Severity.FAIL}


def rtx3090_on_torch16() -> str:
    text = D2.read_text().replace("1.8.1+cu111", "1.6.0+cu102").replace("0.9.1+cu111", "0.7.0+cu102")
    text = text.replace("GeForce GTX 1650 Ti with Max-Q Design (arch=7.5)", "GeForce RTX 3090 (arch=8.6)")
    text = text.replace("CUDA Runtime 11.1", "CUDA Runtime 10.2").replace("CUDA_VERSION=11.1", "CUDA_VERSION=10.2")
    flags = (
        "-gencode;arch=compute_37,code=sm_37;-gencode;arch=compute_50,code=sm_50;-gencode;arch=compute_60,code=sm_60"
    )
    flags += (
        ";-gencode;arch=compute_61,code=sm_61;-gencode;arch=compute_70,code=sm_70;-gencode;arch=compute_75,code=sm_75"
    )
    flags += ";-gencode;arch=compute_37,code=compute_37"
    head, _, tail = text.partition("  - NVCC architecture flags: ")
    return head + "  - NVCC architecture flags: " + flags + "\n" + tail.split("\n", 1)[1]


def test_detectron2_table_gives_torch_cuda_gpu_and_packages() -> None:
    snapshot = load(D2)
    assert snapshot.source == "detectron2-env:detectron2-torch1.8-cu111-gtx1650ti-maxq.txt"
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    torch = framework.torch
    assert (torch.version, torch.cuda_version, torch.is_cuda_available, torch.cudnn_version) == (
        "1.8.1+cu111",
        "11.1",
        True,
        8005,
    )
    assert torch.arch_list == ("sm_37", "sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86")
    assert framework.python_version == "3.8.5"
    assert isinstance(snapshot.gpu, GpuFacts)
    (gpu,) = snapshot.gpu.gpus
    assert (gpu.name, gpu.compute_capability) == ("GeForce GTX 1650 Ti with Max-Q Design", "7.5")
    assert isinstance(snapshot.python, PythonFacts)
    versions = {package.name: package.version for package in snapshot.python.packages}
    assert (versions["torch"], versions["torchvision"], versions["numpy"]) == ("1.8.1+cu111", "0.9.1+cu111", "1.19.5")
    assert failures(snapshot) == {}


def test_a_cpu_only_torch_whose_settings_name_no_cuda() -> None:
    snapshot = load(D2_CPU)
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    assert (framework.torch.version, framework.torch.cuda_version, framework.torch.is_cuda_available) == (
        "1.7.1",
        None,
        False,
    )
    assert isinstance(snapshot.gpu, Unavailable)  # no GPU row: the table cannot say whether there is one
    assert failures(snapshot) == {}


def test_settings_cut_before_the_cuda_line_leave_the_build_unknown_not_cpu() -> None:
    text = D2_CPU.read_text().split("  - CPU capability usage")[0]
    framework = load(D2_CPU, text).framework
    assert isinstance(framework, Unavailable) and "CUDA used to build PyTorch" in framework.reason


def test_mmdetection_lines_give_four_gpus_and_the_build() -> None:
    snapshot = load(MMDET)
    assert snapshot.source.startswith("openmmlab-env:")
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    torch = framework.torch
    assert (torch.version, torch.cuda_version, torch.cudnn_version, torch.is_cuda_available) == (
        "1.6.0",
        "10.1",
        7603,
        True,
    )
    assert torch.arch_list[-2:] == ("sm_75", "compute_37")
    assert isinstance(snapshot.gpu, GpuFacts)
    assert [gpu.name for gpu in snapshot.gpu.gpus] == ["GeForce RTX 2080 Ti"] * 4
    assert isinstance(snapshot.python, PythonFacts)
    assert {"torchvision", "mmcv", "mmdet"} <= {package.name for package in snapshot.python.packages}
    assert failures(snapshot) == {}


def h100_on_torch18() -> str:
    """torch 1.8.1+cu111 (sm_37 to sm_86, no PTX) under a Hopper GPU: no kernel for sm_90."""
    return D2.read_text().replace("GeForce GTX 1650 Ti with Max-Q Design (arch=7.5)", "NVIDIA H100 PCIe (arch=9.0)")


def test_a_gpu_newer_than_the_wheel_fails_from_the_table_alone() -> None:
    snapshot = load(D2, h100_on_torch18())
    assert "NVIDIA H100 PCIe" in failures(snapshot)["cuda.arch_support"]
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.gpus[0].compute_capability == "9.0"


def test_torch_warning_above_the_table_is_read_with_it() -> None:
    snapshot = load(D2, RTX3090_WARNING + rtx3090_on_torch16())
    (arch,) = snapshot.messages.unsupported_archs
    assert (arch.gpu_name, arch.compute_capability) == ("GeForce RTX 3090", "8.6")
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    assert framework.torch.arch_list[-1] == "compute_37"  # the build settings' list, as the warning quotes it


@pytest.mark.parametrize(
    ("row", "nvcc"),
    [
        ("CUDA compiler           Cuda compilation tools, release 10.1, V10.1.243", "10.1.243"),
        ("CUDA compiler           Build cuda_11.5.r11.5/compiler.30411180_0", "11.5"),
        ("CUDA compiler           CUDA 10.1", None),  # the CUDA detectron2's own ops were built with, not nvcc
    ],
)
def test_the_nvcc_a_table_quotes_is_the_toolchain_checks_nvcc(row: str, nvcc: str | None) -> None:
    text = D2.read_text().replace("CUDA compiler           CUDA 10.1", row)
    text = text.replace(
        "Compiler                GCC 9.3", "Compiler ($CXX)         c++ (Ubuntu 9.4.0-1ubuntu1~20.04.1) 9.4.0"
    )
    snapshot = load(D2, text)
    toolchain = snapshot.toolchain
    assert isinstance(toolchain, ToolchainFacts)
    assert isinstance(toolchain.gcc, Tool) and toolchain.gcc.version == "9.4.0"
    if nvcc is None:
        assert not isinstance(toolchain.nvcc, Tool)
        return
    assert isinstance(toolchain.nvcc, Tool) and toolchain.nvcc.version == nvcc
    (finding,) = [f for f in run_checks(CheckInput(snapshot)) if f.id == "toolchain.nvcc_cuda_major"]
    if nvcc.startswith("10."):  # torch 1.8.1+cu111 is CUDA 11: building detectron2's ops with it is refused
        assert finding.severity in (Severity.INFO, Severity.WARN) and "is CUDA 10" in finding.title
    else:
        assert finding.severity is Severity.OK


def test_the_compiler_detectron2_was_built_with_is_not_the_systems() -> None:
    toolchain = load(D2).toolchain  # "Compiler  GCC 9.3" and "CUDA compiler  CUDA 10.1": detectron2's own build
    assert isinstance(toolchain, Unavailable)


def test_mmcv_gcc_and_nvcc_lines_are_the_systems() -> None:
    toolchain = load(MMDET).toolchain
    assert isinstance(toolchain, ToolchainFacts)
    assert isinstance(toolchain.nvcc, Tool) and toolchain.nvcc.version == "10.1.243"
    assert isinstance(toolchain.gcc, Tool) and toolchain.gcc.version == "7.5.0"


@pytest.mark.parametrize(
    ("said", "expected"), [("Yes", True), ("No: torch.cuda.is_available() == False", False), ("False", False)]
)
def test_the_spellings_of_gpu_available(said: str, expected: bool) -> None:
    text = D2.read_text().replace("GPU available           True", f"GPU available           {said}")
    framework = load(D2, text).framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    assert framework.torch.is_cuda_available is expected


def test_detection_tells_the_two_layouts_and_torch_collect_env_apart() -> None:
    assert format_of(D2.read_text()) == DETECTRON2
    assert format_of(MMDET.read_text()) == OPENMMLAB
    assert format_of("sys.platform: linux\nPython: 3.8\n") is None  # no PyTorch row
    torch_report = Path(__file__).parent / "fixtures" / "collect_env" / "linux-torch2.1-cu121-a100x8-conda.txt"
    assert load_snapshot_file(torch_report).source.startswith("collect-env:")


def test_from_reads_a_table_and_refuses_one_without_pytorch(tmp_path: Path) -> None:
    assert load_snapshot_file(D2).source.startswith("detectron2-env:")
    broken = tmp_path / "env.txt"
    broken.write_text(D2.read_text().replace("PyTorch                 1.8.1+cu111", "PyTorch                 failed"))
    with pytest.raises(InputError, match=r"env\.txt: no readable PyTorch row"):
        load_snapshot_file(broken)


def test_doctor_from_a_detectron2_table_exits_1_on_the_arch_gap(tmp_path: Path) -> None:
    path = tmp_path / "env.txt"
    path.write_text(h100_on_torch18())
    command = [sys.executable, "-m", "envcheck", "doctor", "--from", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NVIDIA H100 PCIe" in result.stdout and "from detectron2-env:env.txt" in result.stdout


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.text(max_size=200), where=st.floats(min_value=0, max_value=1))
def test_fuzz_garbage_inside_a_table_is_read_or_refused_in_one_line(tmp_path: Path, garbage: str, where: float) -> None:
    """Whatever is pasted into the table, `--from` answers a Snapshot or a one-line InputError, nothing else."""
    text = MMDET.read_text() if where > 0.5 else D2.read_text()
    cut = int(len(text) * where)
    path = tmp_path / "fuzz.txt"
    path.write_bytes((text[:cut] + garbage + text[cut:]).encode("utf-8", "replace"))
    with contextlib.suppress(InputError):
        load_snapshot_file(path)
    with contextlib.suppress(FrameworkEnvError, CollectEnvError):
        snapshot_from_framework_env(path.read_bytes(), path.name)
