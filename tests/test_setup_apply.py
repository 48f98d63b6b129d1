"""`envcheck setup --apply` and `--check` end to end: a throwaway venv, a local directory of fake wheels, no network.

The wheels are written by hand (METADATA, WHEEL, RECORD in a zip), named and versioned as the plan asks,
so pip installs them exactly as it would PyTorch's; a version missing from the directory makes pip fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envcheck.advise.setup_apply import Change, changes, install_argv, parse_pip_list
from envcheck.advise.setup_formats import format_plan
from envcheck.advise.setup_plan import plan_setup
from envcheck.advise.target import hypothetical_target
from envcheck.cli import app
from envcheck.knowledge import load_knowledge
from envcheck.loaders import InputError

KNOWLEDGE = load_knowledge()
# a fake torch just real enough for the framework probe: a version, no CUDA
TORCH_MODULE = {
    "torch/__init__.py": "from torch import cuda, version\n__version__ = {version!r}\n",
    "torch/version.py": "cuda = None\nhip = None\n",
    "torch/cuda.py": "def is_available():\n    return False\n\ndef device_count():\n    return 0\n",
}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_wheel(directory: Path, name: str, version: str) -> Path:
    """A pure-Python wheel of distribution ``name`` at ``version`` (PEP 427), with no dependencies."""
    dist_info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
    if name == "torch":
        files = {path: text.format(version=version) for path, text in TORCH_MODULE.items()}
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: envcheck-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(path, text.encode()) for path, text in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


@pytest.fixture(autouse=True)
def isolated_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip without this machine's config (find-links, extra indexes, constraints): only the test's directory."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip reads no config file at all when it is devnull
    for name in [name for name in os.environ if name.startswith("PIP_") and name != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")


@pytest.fixture(scope="module")
def env_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv without pip (like uv's): setup drives it with this interpreter's pip and --python."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=False)
    return root / "bin" / "python"


def _live_plan(python: Path) -> dict[str, object]:
    """The plan `envcheck setup` makes for this machine and that interpreter, as its JSON."""
    result = CliRunner().invoke(app, ["setup", "--python", str(python), "--format", "json"])
    assert result.exit_code == 0, result.output
    plan: dict[str, object] = json.loads(result.stdout)
    return plan


def _wheels_for(plan: dict[str, object], directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    for name in ("torch", "torchvision", "torchaudio"):
        if plan[name] is not None:
            write_wheel(directory, name, f"{plan[name]}+{plan['variant']}")


def _pip_list(python: Path) -> dict[str, str]:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_pip_list(listed.stdout)


def test_apply_installs_verifies_and_check_passes(env_python: Path, tmp_path: Path) -> None:
    plan = _live_plan(env_python)
    wheels = tmp_path / "wheels"
    _wheels_for(plan, wheels)
    command = ["setup", "--apply", "--yes", "--python", str(env_python), "--find-links", str(wheels)]
    result = CliRunner().invoke(app, command)
    assert "--no-index --find-links" in result.output
    assert f"installed torch {plan['torch']}+{plan['variant']}" in result.output, result.output
    assert "verifying with the doctor's install and CUDA checks" in result.output
    # the doctor then imports the installed (fake) torch in that interpreter: its smoke test cannot pass
    verification = result.output.split("verifying with the doctor's install and CUDA checks", 1)[1]
    assert f"torch {plan['torch']}+{plan['variant']}" in verification
    assert "PyTorch install" in verification
    assert result.exit_code == 1
    installed = _pip_list(env_python)
    assert installed["torch"] == f"{plan['torch']}+{plan['variant']}"
    # --check against the environment just installed: no drift, exit 0
    check = CliRunner().invoke(app, ["setup", "--check", "--python", str(env_python)])
    assert check.exit_code == 0, check.output
    assert "installed packages match the plan" in check.output


def test_failed_install_reports_pip_error_and_changes_nothing(env_python: Path, tmp_path: Path) -> None:
    before = _pip_list(env_python)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "torch", "2.4.1+cpu")  # torch only: torchvision 0.19.1 is missing, so pip resolves nothing
    command = ["setup", "--apply", "--yes", "--python", str(env_python), "--find-links", str(wheels), "--torch", "2.4"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert "pip failed (exit 1)" in result.stderr
    assert "ERROR: Could not find a version that satisfies the requirement torchvision==0.19.1" in result.stderr
    assert "what changed in" in result.stderr and ": nothing" in result.stderr
    assert _pip_list(env_python) == before


def test_apply_without_yes_asks_and_aborts(env_python: Path, tmp_path: Path) -> None:
    before = _pip_list(env_python)
    result = CliRunner().invoke(
        app, ["setup", "--apply", "--python", str(env_python), "--find-links", str(tmp_path)], input="n\n"
    )
    assert result.exit_code == 1
    assert "Install these packages?" in result.output and "aborted: nothing was installed" in result.output
    assert _pip_list(env_python) == before


def test_requirements_file_installs_from_a_local_directory(tmp_path: Path) -> None:
    # a Kepler plan has all three packages (torchaudio too) and a cu118 index line that --no-index must override
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = hypothetical_target(
        KNOWLEDGE, gpus=("Tesla K80",), driver="470.82.01", python=python, os="linux", arch="x86_64"
    )
    plan = plan_setup(KNOWLEDGE, target)
    assert plan.torchaudio is not None and plan.index_url is not None
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(format_plan(plan, "requirements", KNOWLEDGE))
    for name, version in plan.packages:
        write_wheel(tmp_path, name, f"{version}+{plan.variant}")
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index"]
    argv += ["--find-links", str(tmp_path), "--report", str(report), "-r", str(requirements)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "download.pytorch.org" not in result.stdout  # --no-index overrides the file's --index-url line
    would_install = {
        item["metadata"]["name"]: item["metadata"]["version"] for item in json.loads(report.read_text())["install"]
    }
    assert would_install == {name: f"{version}+{plan.variant}" for name, version in plan.packages}


def test_install_argv_replaces_the_index_with_the_directory() -> None:
    target = hypothetical_target(KNOWLEDGE, gpus=(), driver=None, python="3.11", os="linux", arch="x86_64")
    plan = plan_setup(KNOWLEDGE, target)
    argv = install_argv(("py", "-m", "pip"), plan, "/wheels")
    assert argv == ("py", "-m", "pip", "install", f"torch=={plan.torch}", f"torchvision=={plan.torchvision}",
                    "--no-index", "--find-links", "/wheels")  # fmt: skip
    assert "--index-url" in install_argv(("pip",), plan)


def test_changes_between_two_listings() -> None:
    before = {"torch": "2.3.1+cpu", "numpy": "1.26.4", "old": "1"}
    after = {"torch": "2.5.1+cu124", "numpy": "1.26.4", "torchvision": "0.20.1"}
    assert changes(before, after) == (
        Change("old", "1", None),
        Change("torch", "2.3.1+cpu", "2.5.1+cu124"),
        Change("torchvision", None, "0.20.1"),
    )
    assert str(changes(before, after)[1]) == "changed torch 2.3.1+cpu -> 2.5.1+cu124"


def test_parse_pip_list_rejects_garbage() -> None:
    assert parse_pip_list('[{"name": "Torch_Audio", "version": "2.5.1"}]') == {"torch-audio": "2.5.1"}
    with pytest.raises(InputError, match="pip list: not JSON"):
        parse_pip_list("Package Version\n")


def test_a_pip_that_hangs_or_is_missing_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envcheck.cli import setup as setup_command

    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(setup_command, "_PIP_QUERY_TIMEOUT_S", 0.5)
    with pytest.raises(InputError, match=r"pip list --format=json: no answer within 0.5 s"):
        setup_command._installed((str(hanging), "-m", "pip"))
    with pytest.raises(InputError, match=r"cannot run"):
        setup_command._installed((str(tmp_path / "missing"), "-m", "pip"))
