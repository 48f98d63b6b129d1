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


def on(os_name: str, torch: str, numpy: str) -> Snapshot:
    return factories.snapshot(
        system=factories.system(os_name=os_name),
        python=factories.python(packages=factories.packages(torch=torch, numpy=numpy)),
    )


# Linux / Windows x torch 2.2 / 2.3 / 2.4 x numpy 1.26 / 2.0 (profiles/compat/numpy_abi.toml): Linux wheels run
# NumPy 2 from 2.3.0 (pytorch/pytorch#107302), Windows wheels from 2.4.1 (pytorch/pytorch#131668: 2.4.0's Windows
# wheels fail with numpy 2.0.1, "Fixed in rc 2.4.1"; #128860: 2.3.1 on Windows, "_ARRAY_API not found").
NUMPY_MATRIX = [
    ("Linux", "2.2.2", "1.26.4", Severity.OK),
    ("Linux", "2.2.2", "2.0.0", Severity.FAIL),
    ("Linux", "2.3.1", "1.26.4", Severity.OK),
    ("Linux", "2.3.1", "2.0.0", Severity.OK),
    ("Linux", "2.4.0", "1.26.4", Severity.OK),
    ("Linux", "2.4.0", "2.0.1", Severity.OK),
    ("Windows", "2.2.2", "1.26.4", Severity.OK),
    ("Windows", "2.2.2", "2.0.0", Severity.FAIL),
    ("Windows", "2.3.1", "1.26.4", Severity.OK),
    ("Windows", "2.3.1", "2.0.0", Severity.FAIL),
    ("Windows", "2.4.0", "1.26.4", Severity.OK),
    ("Windows", "2.4.0", "2.0.1", Severity.FAIL),
    ("Windows", "2.4.1", "2.0.1", Severity.OK),
    ("Windows", "2.3.0+cu121", "2.0.0", Severity.FAIL),
    ("Darwin", "2.3.0", "2.0.0", Severity.OK),
]


@pytest.mark.parametrize(("os_name", "torch", "numpy", "severity"), NUMPY_MATRIX)
def test_numpy_2_follows_each_platforms_release_history(
    os_name: str, torch: str, numpy: str, severity: Severity
) -> None:
    finding = only("install.numpy_abi", on(os_name, torch, numpy))
    assert finding.severity is severity, finding
    if severity is Severity.FAIL:
        first = "2.4.1" if os_name == "Windows" else "2.3.0"
        assert finding.fix is not None and "numpy<2" in finding.fix and f"torch >= {first}" in finding.fix
    if severity is Severity.FAIL and os_name == "Windows" and not torch.startswith("2.2"):
        assert "Windows wheels" in finding.title and "#131668" in finding.detail


def test_the_numpy_floors_are_data_with_their_sources() -> None:
    floors = {floor.platform: floor for floor in KNOWLEDGE.numpy_abi_floors}
    assert {p: f.first_torch for p, f in floors.items()} == {"linux": "2.3.0", "macos": "2.3.0", "windows": "2.4.1"}
    assert "131668" in floors["windows"].provenance.source and "107302" in floors["linux"].provenance.source
    # WSL runs Linux wheels: judged as Linux
    wsl = factories.snapshot(
        system=factories.system(is_wsl=True),
        python=factories.python(packages=factories.packages(torch="2.3.1", numpy="2.0.0")),
    )
    assert only("install.numpy_abi", wsl).severity is Severity.OK


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
