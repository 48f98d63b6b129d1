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
from dataclasses import replace
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
    "torch/__init__.py": (
        "from torch import cuda, version\nfrom torch.tensors import float32, tensor\n__version__ = {version!r}\n"
    ),
    # torch.tensor(...).to(device): enough for the install probe to reach torchvision.ops.nms
    "torch/tensors.py": (
        "float32 = 'float32'\n\n"
        "class Tensor(list):\n"
        "    def to(self, device):\n        return self\n\n"
        "def tensor(data, dtype=None):\n    return Tensor(data)\n"
    ),
    "torch/version.py": "cuda = None\nhip = None\n",
    "torch/cuda.py": "def is_available():\n    return False\n\ndef device_count():\n    return 0\n",
}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


# a torchvision built for another torch: it imports, and its compiled operator is missing, with the real error
TORCHVISION_FOREIGN = {
    "torchvision/__init__.py": "from torchvision import ops\n__version__ = {version!r}\n",
    "torchvision/ops.py": (
        "def nms(boxes, scores, iou_threshold):\n    raise RuntimeError('operator torchvision::nms does not exist')\n"
    ),
}


def write_wheel(directory: Path, name: str, version: str, modules: dict[str, str] | None = None) -> Path:
    """A pure-Python wheel of distribution ``name`` at ``version`` (PEP 427), with no dependencies."""
    dist_info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
    if name == "torch":
        files = {path: text.format(version=version) for path, text in TORCH_MODULE.items()}
    if modules is not None:
        files = {path: text.replace("{version!r}", repr(version)) for path, text in modules.items()}
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


def test_apply_installs_verifies_and_check_finds_no_drift(env_python: Path, tmp_path: Path) -> None:
    plan = _live_plan(env_python)
    wheels = tmp_path / "wheels"
    _wheels_for(plan, wheels)
    command = ["setup", "--apply", "--yes", "--python", str(env_python), "--find-links", str(wheels)]
    result = CliRunner().invoke(app, command)
    assert "--no-index --find-links" in result.output
    assert plan["commands"][0].startswith(f"{env_python} -m pip install torch==")  # the target's own pip
    assert f"installed torch {plan['torch']}+{plan['variant']}" in result.output, result.output
    assert "verifying with the doctor's install and CUDA checks" in result.output
    # the doctor then imports the installed (fake) torch in that interpreter: its smoke test cannot pass
    verification = result.output.split("verifying with the doctor's install and CUDA checks", 1)[1]
    assert f"torch {plan['torch']}+{plan['variant']}" in verification
    assert "PyTorch install" in verification
    assert result.exit_code == 1
    # the install probe then finds no torchvision.ops in the fake torchvision: not verified
    assert "not verified" in verification
    installed = _pip_list(env_python)
    assert installed["torch"] == f"{plan['torch']}+{plan['variant']}"
    # --check against the environment just installed: no drift, but the fake torch does not compute: exit 1
    check = CliRunner().invoke(app, ["setup", "--check", "--python", str(env_python)])
    assert "installed packages match the plan" in check.output
    assert "not verified" in check.output and check.exit_code == 1


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
    assert argv == ("py", "-m", "pip", "install", f"torch=={plan.torch}+cpu", f"torchvision=={plan.torchvision}+cpu",
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


# issue 13: torch 2.13.0+cpu with torchvision 0.28.0+cu126, the pair an untagged plan let pip install
MISMATCH = (("torch", "2.13.0+cpu", None), ("torchvision", "0.28.0+cu126", TORCHVISION_FOREIGN))


def _mismatched_wheels(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    for name, version, modules in MISMATCH:
        write_wheel(directory, name, version, modules)
    return directory


@pytest.mark.slow
def test_pinned_plan_refuses_a_cuda_torchvision_beside_a_cpu_torch(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    wheels = _mismatched_wheels(tmp_path / "wheels")
    command = ["setup", "--apply", "--yes", "--python", str(python), "--find-links", str(wheels), "--torch", "2.13"]
    result = CliRunner().invoke(app, command)
    # the plan pins torchvision==0.28.0+cpu: pip finds only +cu126 and installs nothing
    assert "torch==2.13.0+cpu torchvision==0.28.0+cpu" in result.output
    assert result.exit_code == 1
    assert "No matching distribution found for torchvision==0.28.0+cpu" in result.stderr
    assert ": nothing" in result.stderr and "torchvision" not in _pip_list(python)


@pytest.mark.slow
def test_check_and_apply_never_call_the_mismatched_pair_verified(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    wheels = _mismatched_wheels(tmp_path / "wheels")
    # installed as an unpinned plan would have it (torch==2.13.0 torchvision==0.28.0 from mixed sources)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--find-links"]
    subprocess.run([*install, str(wheels), "torch==2.13.0", "torchvision==0.28.0"], check=True, capture_output=True)
    check = CliRunner().invoke(app, ["setup", "--check", "--python", str(python), "--torch", "2.13", "--json"])
    assert check.exit_code == 1, check.output
    document = json.loads(check.stdout)
    assert document["verified"] is False
    assert "torchvision 0.28.0+cu126 installed; plan says 0.28.0+cpu" in document["drift"]
    titles = {finding["title"] for finding in document["verification"]}
    assert "torchvision 0.28.0+cu126 is a cu126 build; the plan installs 0.28.0+cpu" in titles
    assert "torch 2.13.0+cpu and torchvision 0.28.0+cu126 are different builds (cpu and cu126)" in titles
    nms = next(f for f in document["verification"] if f["id"] == "setup.torchvision_ops")
    assert nms["severity"] == "fail" and nms["detail"] == "RuntimeError: operator torchvision::nms does not exist"
    # --apply with a directory whose torchvision is tagged +cpu but is still the foreign build: pip installs it,
    # the verification runs nms and refuses it
    relabelled = tmp_path / "relabelled"
    relabelled.mkdir()
    write_wheel(relabelled, "torch", "2.13.0+cpu")
    write_wheel(relabelled, "torchvision", "0.28.0+cpu", TORCHVISION_FOREIGN)
    command = ["setup", "--apply", "--yes", "--python", str(python), "--find-links", str(relabelled), "--torch", "2.13"]
    result = CliRunner().invoke(app, command)
    assert "changed torchvision 0.28.0+cu126 -> 0.28.0+cpu" in result.output, result.output
    assert "torchvision.ops.nms fails on cpu" in result.output
    assert "operator torchvision::nms does not exist" in result.output
    assert "not verified" in result.output and "✓ verified" not in result.output
    assert result.exit_code == 1


def test_install_probe_on_this_interpreters_real_torch() -> None:
    torch = pytest.importorskip("torch")
    from envcheck.advise.setup_verify import is_verified, verify_plan
    from envcheck.probes.install import probe_install

    facts = probe_install(sys.executable, "cpu", 300.0, os.environ)
    assert facts.torch.version == torch.__version__ and facts.torchvision.import_error is None
    assert facts.matmul is not None and facts.matmul.passed
    assert facts.nms is not None and facts.nms.passed, facts.nms
    # against a plan for exactly these builds it is verified; against another variant it is not
    base, _, tag = torch.__version__.partition("+")
    target = hypothetical_target(KNOWLEDGE, gpus=(), driver=None, python="3.11", os="linux", arch="x86_64")
    plan = plan_setup(KNOWLEDGE, target, base)
    same = verify_plan(replace(plan, variant=tag or "cpu"), facts)
    assert is_verified(same), same
    other = verify_plan(replace(plan, variant="cu999"), facts)
    assert not is_verified(other)
    assert any(f.title.startswith(f"torch {torch.__version__} is a") for f in other)
