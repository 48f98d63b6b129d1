"""The install checks that judge the torch build against the knowledge base: where each fires, where it must not."""

from __future__ import annotations

import pytest

from envcheck.checks.registry import CheckInput, all_checks
from envcheck.facts.common import Unavailable
from envcheck.finding import Finding, Severity
from envcheck.knowledge import Knowledge, load_knowledge
from envcheck.snapshot import Snapshot
from tests import factories

KNOWLEDGE = load_knowledge()


def findings_of(check_id: str, snapshot: Snapshot, knowledge: Knowledge | None = KNOWLEDGE) -> list[Finding]:
    (registered,) = [c for c in all_checks() if c.id == check_id]
    return list(registered.run(CheckInput(snapshot, knowledge=knowledge)))


def only(check_id: str, snapshot: Snapshot, knowledge: Knowledge | None = KNOWLEDGE) -> Finding:
    (finding,) = findings_of(check_id, snapshot, knowledge)
    return finding


def with_packages(**versions: str) -> Snapshot:
    return factories.snapshot(python=factories.python(packages=factories.packages(**versions)))


CPU_TORCH = factories.torch(version="2.3.1+cpu", cuda_version=None, cudnn_version=None, nccl_version=None,
                            is_cuda_available=False, device_count=0, arch_list=(), devices=())  # fmt: skip


def test_cpu_wheel_on_a_gpu_machine_fails_with_the_index_url_of_the_newest_variant_the_driver_runs() -> None:
    rtx4090 = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    finding = only("install.cpu_wheel_on_gpu", factories.gpu_machine(rtx4090, CPU_TORCH))
    assert finding.severity is Severity.FAIL
    assert "CPU-only" in finding.title and "2.3.1+cpu" in finding.title
    # 2.3.1 ships cu118 and cu121; driver 535.86 runs both (12.x minor-version compatibility needs 525.60.13)
    assert finding.fix is not None and "https://download.pytorch.org/whl/cu121" in finding.fix
    assert "torch==2.3.1 torchvision==0.18.1" in finding.fix


def test_cpu_wheel_fix_falls_back_to_an_older_variant_for_an_old_driver() -> None:
    gpu = factories.nvml_gpu("t4-driver515.105.01")  # 515 < 525.60.13: no cu12x wheel runs
    finding = only("install.cpu_wheel_on_gpu", factories.gpu_machine(gpu, CPU_TORCH))
    assert finding.severity is Severity.FAIL
    assert finding.fix is not None and "whl/cu118" in finding.fix


def test_cpu_wheel_is_fine_without_a_gpu_and_a_cuda_wheel_is_fine_with_one() -> None:
    no_gpu = factories.snapshot(framework=factories.framework(torch=CPU_TORCH))
    assert only("install.cpu_wheel_on_gpu", no_gpu).severity is Severity.OK
    rtx4090 = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    assert only("install.cpu_wheel_on_gpu", factories.gpu_machine(rtx4090)).severity is Severity.OK
    rocm = factories.torch(version="2.3.1+rocm6.0", cuda_version=None, hip_version="6.0.32830")
    assert only("install.cpu_wheel_on_gpu", factories.gpu_machine(rtx4090, rocm)).severity is Severity.OK


def test_torchvision_of_another_release_fails_and_names_the_matching_one() -> None:
    finding = only("install.companion_versions", with_packages(torch="2.3.1+cu121", torchvision="0.17.2+cu121"))
    assert finding.severity is Severity.FAIL
    assert "torchvision 0.17.2" in finding.title and "made for torch 2.2.2" in finding.title
    assert finding.fix is not None and "torchvision==0.18.1" in finding.fix and "whl/cu121" in finding.fix


def test_torchaudio_mismatch_fails_and_matching_versions_pass_with_local_tags_stripped() -> None:
    mismatched = with_packages(torch="2.1.0", torchvision="0.16.0", torchaudio="2.0.2")
    finding = only("install.companion_versions", mismatched)
    assert finding.severity is Severity.FAIL and "torchaudio 2.0.2" in finding.title
    assert finding.fix is not None and "torchaudio==2.1.0" in finding.fix and "torchvision" not in finding.fix
    matched = with_packages(torch="2.3.1+cu121", torchvision="0.18.1+cu121", torchaudio="2.3.1+cu121")
    assert only("install.companion_versions", matched).severity is Severity.OK
    assert only("install.companion_versions", with_packages(torch="2.3.1")).severity is Severity.OK


def test_companion_check_skips_what_it_cannot_know() -> None:
    assert only("install.companion_versions", factories.snapshot(), knowledge=None).severity is Severity.SKIP
    unknown = with_packages(torch="9.9.0", torchvision="0.1.0")
    assert only("install.companion_versions", unknown).severity is Severity.SKIP


@pytest.mark.parametrize(
    ("torch", "numpy", "severity"),
    [
        ("2.2.2+cu121", "2.0.0", Severity.FAIL),
        ("1.13.1", "2.1.3", Severity.FAIL),
        ("2.3.0", "2.0.0", Severity.OK),  # first release built against NumPy 2
        ("2.2.2", "1.26.4", Severity.OK),
        ("2.5.1", "1.26.4", Severity.OK),  # a NumPy 2 build runs with NumPy 1.x too
    ],
)
def test_numpy_2_with_a_torch_built_against_numpy_1(torch: str, numpy: str, severity: Severity) -> None:
    finding = only("install.numpy_abi", with_packages(torch=torch, numpy=numpy))
    assert finding.severity is severity
    if severity is Severity.FAIL:
        assert finding.fix is not None and "numpy<2" in finding.fix
        assert "compiled using NumPy 1.x" in finding.detail


def test_python_outside_the_release_range_warns_and_inside_passes() -> None:
    too_new = factories.snapshot(python=factories.python(version="3.12.4", packages=factories.packages(torch="2.1.2")))
    finding = only("install.python_supported", too_new)
    assert finding.severity is Severity.WARN
    assert "3.8-3.11" in finding.title and finding.fix is not None and "torch==" in finding.fix
    too_old = factories.snapshot(python=factories.python(version="3.9.18", packages=factories.packages(torch="2.9.0")))
    assert only("install.python_supported", too_old).severity is Severity.WARN
    assert only("install.python_supported", factories.snapshot()).severity is Severity.OK


def test_python_check_skips_without_a_version_or_a_known_release() -> None:
    unknown_python = factories.snapshot(python=factories.python(version=Unavailable("not in the paste")))
    assert only("install.python_supported", unknown_python).severity is Severity.SKIP
    no_torch = factories.framework(is_torch_installed=False, torch=None)
    unlisted = factories.snapshot(
        python=factories.python(packages=factories.packages(numpy="1.26.4")), framework=no_torch
    )
    assert only("install.python_supported", unlisted).severity is Severity.SKIP


def test_smoke_test_skips_when_the_source_ran_none() -> None:
    pasted = factories.torch(cpu_smoke_test=Unavailable("collect_env runs no computation"), devices=())
    finding = only("install.smoke_test", factories.snapshot(framework=factories.framework(torch=pasted)))
    assert finding.severity is Severity.SKIP


def test_no_install_check_fails_on_the_healthy_machine_with_knowledge() -> None:
    snapshot = factories.snapshot()
    for registered in all_checks():
        if registered.area == "install":
            for finding in registered.run(CheckInput(snapshot, knowledge=KNOWLEDGE)):
                assert finding.severity in (Severity.OK, Severity.INFO, Severity.SKIP), finding
