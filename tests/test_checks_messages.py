"""Checks that judge from torch's own words in a pasted report (Snapshot.messages), on hand-built facts: each
fires from its message, cites the line, and stays quiet on a healthy report or a live machine."""

from __future__ import annotations

from dataclasses import replace

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.messages import (
    NO_MESSAGES,
    CudnnMismatch,
    DriverTooOld,
    NoDriver,
    NumpyFailure,
    NvmlMismatch,
    RuntimeMessages,
    UnsupportedArch,
)
from envcheck.finding import Finding, Severity
from envcheck.knowledge import load_knowledge
from envcheck.snapshot import Snapshot
from tests import factories

CUT_OFF = Unavailable("not in collect_env output")
KNOWLEDGE = load_knowledge()


def pasted(messages: RuntimeMessages = NO_MESSAGES, **sections: object) -> Snapshot:
    """A collect_env paste cut off before its GPU lines, with these messages."""
    defaults: dict[str, object] = {"gpu": CUT_OFF, "environment": CUT_OFF, "system": CUT_OFF}
    snapshot = factories.snapshot(**{**defaults, **sections})
    return replace(snapshot, source="collect-env:paste.txt", messages=messages)


def finding(snapshot: Snapshot, check_id: str) -> Finding:
    (found,) = [f for f in run_checks(CheckInput(snapshot, knowledge=KNOWLEDGE)) if f.id == check_id]
    return found


def cuda_build(version: str = "1.12.1+cu102", cuda: str = "10.2", *, available: bool = False) -> object:
    torch = factories.torch(version=version, cuda_version=cuda, is_cuda_available=available, devices=(), arch_list=())
    return factories.framework(torch=torch)


def test_driver_too_old_fails_from_the_decoded_version_without_a_driver_line() -> None:
    line = "The NVIDIA driver on your system is too old (found version 9010)."
    result = finding(pasted(RuntimeMessages(driver_too_old=DriverTooOld("9.1", line)), framework=cuda_build()),
                     "cuda.driver_too_old")  # fmt: skip
    assert result.severity is Severity.FAIL
    assert "CUDA 9.1" in result.title and "torch 1.12.1+cu102" in result.title and "440.33" in result.title
    assert f"from the line: {line}" in result.detail


def test_no_driver_warns_in_driver_loaded_and_names_the_line() -> None:
    line = "Found no NVIDIA driver on your system."
    result = finding(pasted(RuntimeMessages(no_driver=NoDriver(line)), framework=cuda_build("1.7.0+cu110", "11.0")),
                     "cuda.driver_loaded")  # fmt: skip
    assert result.severity is Severity.WARN and f"from the line: {line}" in result.detail


def test_nvml_mismatch_warns_in_driver_loaded() -> None:
    message = NvmlMismatch("550.54", "Failed to initialize NVML: Driver/library version mismatch")
    result = finding(pasted(RuntimeMessages(nvml_mismatch=message)), "cuda.driver_loaded")
    assert result.severity is Severity.WARN and "550.54" in result.title and "Reboot" in (result.fix or "")


def test_arch_support_fails_from_the_warning_when_the_gpu_lines_are_cut_off() -> None:
    line = "NVIDIA GeForce RTX 5090 D with CUDA capability sm_120 is not compatible with the current PyTorch ..."
    message = UnsupportedArch("NVIDIA GeForce RTX 5090 D", "12.0", ("sm_50", "sm_90"), line)
    snapshot = pasted(RuntimeMessages(unsupported_archs=(message,)), framework=cuda_build("2.6.0+cu126", "12.6"))
    result = finding(snapshot, "cuda.arch_support")
    assert result.severity is Severity.FAIL and "sm_120" in result.title and line in result.detail


def test_a_cuda_build_with_no_gpu_no_driver_and_no_cuda_warns_of_a_container_without_gpus() -> None:
    could_not = Unavailable("collect_env could not list the GPUs (`nvidia-smi -L` failed or is missing)")
    result = finding(pasted(framework=cuda_build("2.1.0+cu121", "12.1"), gpu=could_not), "cuda.gpu_access")
    assert result.severity is Severity.WARN and "container" in result.detail and "--gpus all" in (result.fix or "")


def test_gpu_access_is_quiet_on_a_live_machine_a_visible_gpu_and_an_explained_failure() -> None:
    live = factories.snapshot(framework=cuda_build("2.1.0+cu121", "12.1"))  # a CPU laptop with the default wheel
    assert finding(live, "cuda.gpu_access").severity is Severity.OK
    available = pasted(framework=cuda_build("2.1.0+cu121", "12.1", available=True))
    assert finding(available, "cuda.gpu_access").severity is Severity.OK
    explained = pasted(RuntimeMessages(no_driver=NoDriver("Found no NVIDIA driver")), framework=cuda_build())
    assert finding(explained, "cuda.gpu_access").severity is Severity.OK


def test_a_cpu_build_in_a_paste_without_gpu_lines_warns() -> None:
    cpu = factories.framework(torch=factories.torch(version="1.7.1+cpu", cuda_version=None, is_cuda_available=False))
    result = finding(pasted(framework=cpu), "install.cpu_wheel_on_gpu")
    assert result.severity is Severity.WARN and "CPU-only" in result.title
    on_this_machine = factories.snapshot(framework=cpu)  # live, no GPU: the CPU wheel is right here
    assert finding(on_this_machine, "install.cpu_wheel_on_gpu").severity is Severity.OK


def test_numpy_failure_fails_numpy_abi_with_the_line() -> None:
    line = "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.0.1"
    snapshot = pasted(RuntimeMessages(numpy_failure=NumpyFailure("2.0.1", line)))
    snapshot = replace(snapshot, python=factories.python(packages=factories.packages(torch="2.1.0", numpy="2.0.1")))
    result = finding(snapshot, "install.numpy_abi")
    assert result.severity is Severity.FAIL and "numpy<2" in (result.fix or "") and line in result.detail


def test_cudnn_mismatch_fails_ld_library_path() -> None:
    message = CudnnMismatch("9.20.0", "9.13.1", "cuDNN version incompatibility: ...")
    result = finding(pasted(RuntimeMessages(cudnn_mismatch=message)), "cuda.ld_library_path")
    assert result.severity is Severity.FAIL and "9.20.0" in result.title and "9.13.1" in result.title


def test_a_healthy_paste_without_messages_gets_no_finding_from_them() -> None:
    snapshot = pasted(framework=cuda_build("2.3.1+cu121", "12.1", available=True), gpu=factories.gpu())
    loud = [f.id for f in run_checks(CheckInput(snapshot, knowledge=KNOWLEDGE)) if f.severity is Severity.FAIL]
    assert loud == []
