"""The GPU's own first driver branch (profiles/compat/driver_floors.toml): `doctor` fails below it
(gpu.driver_too_old) exactly where `setup` plans nothing, naming the same branch to install; both call
knowledge.rules.driver_below_floor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envcheck.advise.setup_plan import plan_setup
from envcheck.advise.target import hypothetical_target
from envcheck.finding import Severity
from envcheck.knowledge.rules import driver_below_floor
from tests import factories
from tests.shared_fixtures import shared_fixture
from tests.test_checks_install import KNOWLEDGE, findings_of, only
from tests.test_checks_workload import envcheck

RTX4090 = "rtx4090-driver535.86.05"  # a real recording (tests/fixtures/nvml), changed per scenario below
BLACKWELL = {"device[0].name": "NVIDIA GeForce RTX 5090", "device[0].compute_capability": [12, 0]}


def test_an_rtx_5090_on_driver_535_fails_with_the_branch_to_install() -> None:
    rtx5090 = factories.nvml_gpu(RTX4090, **BLACKWELL)  # driver 535.86.05, as recorded
    finding = only("gpu.driver_too_old", factories.gpu_machine(rtx5090))
    assert finding.severity is Severity.FAIL
    assert finding.title == (
        "driver 535.86.05 cannot drive NVIDIA GeForce RTX 5090: "
        "Blackwell (GeForce RTX 50 / RTX PRO) GPUs need driver branch R570 or newer"
    )
    assert finding.fix is not None and "R570 or newer (>= 570)" in finding.fix
    upgraded = factories.nvml_gpu(RTX4090, driver_version="570.86.16", **BLACKWELL)
    passed = only("gpu.driver_too_old", factories.gpu_machine(upgraded))
    assert passed.severity is Severity.OK and "R570" in passed.title


def test_the_wheel_check_does_not_pass_a_driver_that_cannot_drive_the_gpu() -> None:
    # cu126's minor-version floor (525.60.13) is met by 535, yet the driver does not load on the card:
    # cuda.driver_too_old must not say "runs torch", it leaves the verdict to gpu.driver_too_old
    rtx5090 = factories.nvml_gpu(RTX4090, **BLACKWELL)
    torch = factories.torch_on(rtx5090, version="2.7.1+cu126", cuda_version="12.6")
    machine = factories.gpu_machine(rtx5090, torch)
    assert only("cuda.driver_too_old", machine).severity is Severity.SKIP
    assert only("gpu.driver_too_old", machine).severity is Severity.FAIL


@pytest.mark.parametrize(
    ("changes", "severity", "fragment"),
    [
        ({}, Severity.OK, "Ada Lovelace GPUs need driver branch R520"),  # the recorded 4090 on 535
        ({"driver_version": "516.94"}, Severity.FAIL, "driver 516.94 cannot drive NVIDIA GeForce RTX 4090"),
        ({"device[0].name": "NVIDIA A100-PCIE-40GB", "device[0].compute_capability": [8, 0],
          "driver_version": "440.33.01"}, Severity.FAIL, "Ampere (A100 / A30) GPUs need driver branch R450"),
        ({"device[0].name": "Tesla V100-PCIE-16GB", "device[0].compute_capability": [7, 0]}, Severity.OK,
         "no first driver branch recorded"),
        ({"driver_version": "not a version"}, Severity.SKIP, "is not a version number"),  # never a failure
    ],
)  # fmt: skip
def test_each_architecture_is_judged_against_its_own_floor(
    changes: dict[str, object], severity: Severity, fragment: str
) -> None:
    finding = only("gpu.driver_too_old", factories.gpu_machine(factories.nvml_gpu(RTX4090, **changes)))
    assert finding.severity is severity
    assert fragment in finding.title + (finding.detail or "")


def test_no_gpu_gives_no_finding_and_no_knowledge_a_skip() -> None:
    assert findings_of("gpu.driver_too_old", factories.snapshot(), KNOWLEDGE) == []
    rtx5090 = factories.nvml_gpu(RTX4090, **BLACKWELL)
    assert only("gpu.driver_too_old", factories.gpu_machine(rtx5090), None).severity is Severity.SKIP


@pytest.mark.parametrize(
    ("gpu", "driver"),
    [
        ("NVIDIA GeForce RTX 5090", "535.104.05"),
        ("NVIDIA B200", "560.35.03"),
        ("NVIDIA GeForce RTX 4090", "516.94"),
        ("NVIDIA A100-SXM4-80GB", "440.33.01"),
    ],
)
def test_setup_and_doctor_share_one_judgement(gpu: str, driver: str) -> None:
    target = hypothetical_target(KNOWLEDGE, gpus=(gpu,), driver=driver, python="3.11", os="linux", arch="x86_64")
    below = driver_below_floor(KNOWLEDGE, driver, tuple((g.name, g.compute_capability) for g in target.gpus))
    assert below is not None
    plan = plan_setup(KNOWLEDGE, target)
    assert not plan.fits and any(below.summary in reason for reason in plan.reasons)
    # the branch itself, or (A100: cu11x wheels need 450.80.02) a release of it
    assert any(f">= {below.to_install}" in advice for advice in plan.upgrades), plan.upgrades
    (target_gpu,) = target.gpus
    assert target_gpu.compute_capability is not None
    major, minor = target_gpu.compute_capability
    facts = factories.nvml_gpu(
        RTX4090,
        driver_version=driver,
        **{"device[0].name": target_gpu.name, "device[0].compute_capability": [major, minor]},
    )
    finding = only("gpu.driver_too_old", factories.gpu_machine(facts))
    assert finding.severity is Severity.FAIL and finding.title == below.summary


def test_doctor_and_setup_on_an_nvidia_smi_xml_of_an_rtx_5090_on_535(tmp_path: Path) -> None:
    """The real 4090 XML (driver 535.86.05) with the product name and architecture of an RTX 5090."""
    real = shared_fixture("nvidia-smi/rtx4090-driver535.86.05.xml").read_text()
    assert "<driver_version>535.86.05</driver_version>" in real
    xml = tmp_path / "rtx5090-driver535.86.05.xml"
    blackwell = real.replace("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 5090")
    xml.write_text(blackwell.replace("Ada Lovelace", "Blackwell"))
    doctor = envcheck("doctor", "--from", str(xml), "--json")
    assert doctor.returncode == 1, doctor.stderr
    (finding,) = [f for f in json.loads(doctor.stdout)["findings"] if f["id"] == "gpu.driver_too_old"]
    assert finding["severity"] == "fail" and "need driver branch R570" in finding["title"]
    assert ">= 570" in finding["fix"]
    setup = envcheck("setup", "--from", str(xml), "--python", "3.11", "--os", "linux", "--arch", "x86_64")
    assert "Nothing fits" in setup.stdout, setup.stdout + setup.stderr
    text = " ".join(setup.stdout.split())
    assert "driver 535.86.05 cannot drive NVIDIA GeForce RTX 5090" in text and ">= 570" in text
