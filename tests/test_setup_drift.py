"""Plans from real snapshots (recorded nvidia-smi XML), the drift check, and the `envcheck setup` command's edges."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envcheck.advise.setup_drift import check_drift
from envcheck.advise.setup_plan import plan_setup
from envcheck.advise.target import target_from_snapshot
from envcheck.cli import app
from envcheck.facts.common import Unavailable
from envcheck.knowledge import load_knowledge
from envcheck.loaders import InputError
from envcheck.snapshot import to_json
from tests import factories
from tests.shared_fixtures import shared_fixture

KNOWLEDGE = load_knowledge()


def machine(xml: str, **python_changes: object):  # type: ignore[no-untyped-def]
    return factories.gpu_machine(factories.nvidia_smi_gpu(xml), python=factories.python(**python_changes))


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        # 8.9, driver 535.86: cu13x need 580, 2.15 has no cu12x; 2.14.1 cu126 (Python 3.11 from the factory)
        ("rtx4090-driver535.86.05", ("2.14.1", "cu126")),
        # 8.0 with MIG, driver 510.47: below the 12.x floor; cu118 (11.x floor 450.80.02) last in 2.7.1
        ("a100-sxm4-40gb-mig-driver510.47.03", ("2.7.1", "cu118")),
        # 7.0 x2, driver 418.87: cu101 (418.39) with sm_70 and Python 3.11? 1.x stops at 3.9/3.10: nothing fits
        ("v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement", None),
        # 8.6 x2, driver 590.44: the newest release's newest CUDA
        ("rtx-a5000x2-driver590.44.01", ("2.15.0", "cu132")),
    ],
)
def test_plan_from_recorded_machines(xml: str, expected: tuple[str, str] | None) -> None:
    target = target_from_snapshot(KNOWLEDGE, machine(xml), "fixture")
    assert target.gpus and all(gpu.compute_capability for gpu in target.gpus)
    plan = plan_setup(KNOWLEDGE, target)
    assert ((plan.torch, plan.variant) if plan.fits else None) == expected


def test_v100_on_driver_418_is_told_both_ways_out() -> None:
    plan = plan_setup(KNOWLEDGE, target_from_snapshot(KNOWLEDGE, machine(
        "v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement"), "fixture"))  # fmt: skip
    # cu13x start at sm_75, so Volta's newest is 2.14.1 cu126 (sm_70), which needs the 12.x floor
    assert plan.upgrades == (
        "upgrade the NVIDIA driver to >= 525.60.13 to run torch 2.14.1 cu126; "
        ">= 450.80.02 is enough for torch 2.7.1 cu118",
        "use Python 3.6-3.9 (torch 1.8.1 runs here)",
    )


def test_snapshot_without_system_section_is_an_input_error() -> None:
    message = r"f.json does not name the OS, CPU architecture \(probe timed out\); give them, e.g. --os linux --arch"
    with pytest.raises(InputError, match=message):
        target_from_snapshot(KNOWLEDGE, factories.snapshot(system=Unavailable("probe timed out")), "f.json")


def _cpu_plan():  # type: ignore[no-untyped-def]
    return plan_setup(KNOWLEDGE, target_from_snapshot(KNOWLEDGE, factories.snapshot(), "fixture"))


def test_drift_names_each_difference() -> None:
    plan = _cpu_plan()  # factory: Linux x86_64, Python 3.11, no GPU -> newest cpu wheels
    drifts = check_drift(
        plan, factories.packages(torch="2.3.1+cpu", torchvision=f"{plan.torchvision}+cu126"), KNOWLEDGE
    )
    assert [d.message for d in drifts] == [
        f"torch 2.3.1+cpu installed; plan says {plan.torch}+cpu",
        f"torchvision {plan.torchvision}+cu126 installed; plan says {plan.torchvision}+cpu",
    ]
    assert check_drift(plan, (), KNOWLEDGE)[0].message == f"torch is not installed; plan says {plan.torch}+cpu"


def test_untagged_linux_torch_is_pypis_default_cuda_build() -> None:
    plan = _cpu_plan()
    installed = factories.packages(torch=str(plan.torch), torchvision=f"{plan.torchvision}+cpu")
    drifts = check_drift(plan, installed, KNOWLEDGE)
    release = KNOWLEDGE.torch_release(str(plan.torch))
    assert release is not None and release.pypi_default_cuda is not None
    pypi = "cu" + release.pypi_default_cuda.replace(".", "")
    untagged = f"an untagged torch {plan.torch} is PyPI's {pypi} build"
    assert [d.message for d in drifts] == [f"torch {plan.torch} installed; plan says {plan.torch}+cpu ({untagged})"]
    matching = factories.packages(torch=f"{plan.torch}+cpu", torchvision=f"{plan.torchvision}+cpu")
    assert check_drift(plan, matching, KNOWLEDGE) == ()


def test_untagged_torchvision_beside_a_cpu_torch_is_drift() -> None:
    # issue 13: torch 2.13.0+cpu from the CPU index with torchvision 0.28.0 from PyPI (a CUDA build)
    plan = plan_setup(KNOWLEDGE, replace(_cpu_plan().target), "2.13")
    release = KNOWLEDGE.torch_release("2.13.0")
    assert release is not None and release.pypi_default_cuda is not None and plan.torchvision == release.torchvision
    pypi = "cu" + release.pypi_default_cuda.replace(".", "")
    drifts = check_drift(plan, factories.packages(torch="2.13.0+cpu", torchvision=release.torchvision), KNOWLEDGE)
    assert [d.message for d in drifts] == [
        f"torchvision {release.torchvision} installed; plan says {release.torchvision}+cpu"
        f" (an untagged torchvision {release.torchvision} is PyPI's {pypi} build)"
    ]


def _write(tmp_path: Path, snapshot) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "snapshot.json"
    path.write_text(to_json(snapshot))
    return path


def test_check_from_file_exits_1_on_drift_and_0_without(tmp_path: Path) -> None:
    plan = _cpu_plan()
    drifted = _write(tmp_path, factories.snapshot())  # the factory has torch 2.3.1 (untagged: PyPI's CUDA build)
    result = CliRunner().invoke(app, ["setup", "--check", "--from", str(drifted)])
    assert result.exit_code == 1
    assert f"torch 2.3.1 installed; plan says {plan.torch}+cpu (an untagged torch 2.3.1 is PyPI's cu121 build)" in (
        result.output.replace("\n", " ").replace("  ", " ")
    )
    installed = factories.packages(torch=f"{plan.torch}+cpu", torchvision=f"{plan.torchvision}+cpu")
    clean = _write(tmp_path, factories.snapshot(python=factories.python(packages=installed)))
    result = CliRunner().invoke(app, ["setup", "--check", "--from", str(clean), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drift"] == []


def test_apply_refuses_a_snapshot_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["setup", "--apply", "--yes", "--from", str(_write(tmp_path, factories.snapshot()))]
    )
    assert result.exit_code == 2
    assert "--apply installs into this machine's interpreters" in result.stderr


def test_hypothetical_target_on_the_command_line() -> None:
    argv = ["setup", "--gpu", "NVIDIA L4", "--driver", "535.104.05", "--python", "3.10", "--format", "json"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["torch"], document["variant"], document["fits"]) == ("2.14.1", "cu126", True)
    terminal = CliRunner().invoke(app, argv[:-2])
    assert "torch 2.14.1 cu130: needs driver >= 580, you have 535.104.05" in terminal.output
    assert (
        "python -m pip install torch==2.14.1+cu126 torchvision==0.29.1+cu126"
        " --index-url https://download.pytorch.org/whl/cu126" in terminal.output
    )


def test_nothing_fits_exits_1_with_what_to_upgrade() -> None:
    argv = ["setup", "--gpu", "NVIDIA A100-SXM4-80GB", "--driver", "418.39", "--python", "3.12"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1
    assert "upgrade the NVIDIA driver to >= 580" in result.output
    result = CliRunner().invoke(app, [*argv, "--format", "requirements"])
    assert result.exit_code == 1 and "nothing to install" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpu", "NVIDIA L4", "--driver", "535.1"], "needs --python VERSION"),
        (["--gpu", "Voodoo 3", "--driver", "535.1", "--python", "3.11"], "--gpu Voodoo 3: not in profiles/gpus.toml"),
        (["--python", "3.11", "--format", "yaml"], '--format "yaml": unknown format'),
        (["--python", "3.11", "--apply"], "--apply and --check need a real environment"),
        (["--python", "3.11", "--torch", "0.1"], "--torch 0.1: no such release"),
        (["--from", "/nonexistent.json"], "/nonexistent.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["setup", *argv])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_markdown_view() -> None:
    argv = ["setup", "--gpu", "none", "--python", "3.12", "--os", "macos", "--arch", "arm64", "--markdown"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0
    assert result.stdout.startswith("## envcheck setup: torch 2.15.0 (cpu, Apple MPS)")
    assert "```sh\npython -m pip install torch==2.15.0 torchvision==0.29.2\n```" in result.stdout


def test_snapshot_round_trip_keeps_the_plan(tmp_path: Path) -> None:
    snapshot = machine("t4-driver515.105.01")
    path = _write(tmp_path, replace(snapshot, source="live"))
    result = CliRunner().invoke(app, ["setup", "--from", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    # 7.5, driver 515.105: below the 12.x floor; cu118 has sm_75; last cu118 release 2.7.1 (Python 3.11)
    assert (json.loads(result.stdout)["torch"], json.loads(result.stdout)["variant"]) == ("2.7.1", "cu118")


def test_an_nvidia_smi_xml_plans_once_the_flags_name_what_it_lacks() -> None:
    xml = str(shared_fixture("nvidia-smi/t4-driver515.105.01.xml"))
    bare = CliRunner().invoke(app, ["setup", "--from", xml])
    assert bare.exit_code == 2
    assert "does not name the OS, CPU architecture, Python version" in bare.stderr
    assert "--os linux --arch x86_64 --python 3.11" in bare.stderr
    filled = CliRunner().invoke(app, ["setup", "--from", xml, "--os", "linux", "--arch", "x86_64", "--python", "3.11",
                                      "--format", "json"])  # fmt: skip
    assert filled.exit_code == 0, filled.output
    plan = json.loads(filled.stdout)
    assert (plan["torch"], plan["variant"]) == ("2.7.1", "cu118")  # the same plan as the full snapshot above


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--os", "windows"], "--os windows: FILE says system.os_name is linux"),
        (["--python", "3.10"], "--python 3.10: FILE says python.version is 3.11"),
        (["--gpu", "NVIDIA L4"], "--from cannot be combined with --gpu/--driver"),
        (["--python", "/usr/bin/python3"], "give the target's Python 3 version (3.11), not an interpreter"),
    ],
)
def test_flags_that_contradict_the_file_are_input_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    path = _write(tmp_path, replace(machine("t4-driver515.105.01"), source="live"))
    result = CliRunner().invoke(app, ["setup", "--from", str(path), *argv])
    assert result.exit_code == 2, result.output
    assert message.replace("FILE", str(path)) in result.stderr
