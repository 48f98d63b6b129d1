"""The python probe: in process for this venv, in a subprocess for another interpreter or environment,
over distribution metadata the tests write (two installs of one package, odd names, broken metadata)."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

import pytest

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.python import InstalledPackage, PythonFacts
from envcheck.probes import target_script
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.python import is_running_interpreter, probe_python
from envcheck.probes.target import decode_result, run_target_script

SYSTEM_PYTHON = Path("/usr/bin/python3")


def context(python: str = sys.executable, **variables: str) -> ProbeContext:
    return ProbeContext(python=python, environ={**os.environ, **variables})


def write_distribution(site: Path, name: str, version: str | None, folder: str | None = None) -> None:
    """A minimal installed distribution: a dist-info folder with its METADATA, as pip leaves it."""
    info = site / (folder or f"{name}-{version}.dist-info")
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}"] + ([f"Version: {version}"] if version else [])
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def versions(facts: PythonFacts) -> dict[str, str]:
    return {package.name: package.version for package in facts.packages}


def test_this_venv_in_process() -> None:
    assert is_running_interpreter(context())
    facts = probe_python(context())
    assert facts.executable == sys.executable
    assert facts.version == ".".join(map(str, sys.version_info[:3]))
    assert facts.implementation == "CPython"
    assert facts.prefix == sys.prefix
    assert facts.virtualenv == sys.prefix  # the test venv
    assert facts.pip_version == importlib.metadata.version("pip")
    found = versions(facts)
    for name in ("torch", "torchvision", "numpy"):
        assert found[name] == importlib.metadata.version(name)
    assert "pip" not in found  # only ML packages are listed
    assert all(not name.startswith(("pytest", "ruff", "typer")) for name in found)
    assert decode(PythonFacts, encode(facts)) == facts


def test_subprocess_answers_like_in_process() -> None:
    in_process = probe_python(context())
    data = run_target_script(sys.executable, "interpreter", 30, os.environ)
    out_of_process = decode_result(PythonFacts, data, sys.executable, "interpreter")
    assert out_of_process.packages == in_process.packages
    assert out_of_process.virtualenv == in_process.virtualenv
    assert out_of_process.pip_version == in_process.pip_version


def test_bare_name_resolved_on_the_path_is_still_this_interpreter() -> None:
    assert is_running_interpreter(context("python", PATH=str(Path(sys.executable).parent)))


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3")
def test_another_interpreter_runs_out_of_process() -> None:
    ours = context(str(SYSTEM_PYTHON))
    assert not is_running_interpreter(ours)
    facts = probe_python(ours)
    assert facts.executable == str(SYSTEM_PYTHON)
    assert facts.virtualenv is None
    assert facts.prefix != sys.prefix
    assert decode(PythonFacts, encode(facts)) == facts


def test_two_installs_of_torch_are_both_listed_in_import_order(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_distribution(site, "torch", "1.13.1+cu117")
    write_distribution(site, "Flash_Attn", "2.5.8")  # listed under its PEP 503 name
    write_distribution(site, "nvidia_cudnn_cu12", "9.1.0.70")
    write_distribution(site, "requests", "2.32.0")  # not an ML package
    write_distribution(site, "torchvision", None)  # broken metadata without a version: skipped
    (tmp_path / "link").symlink_to(site)  # the same folder twice on sys.path is one install, not two
    ours = context(PYTHONPATH=os.pathsep.join([str(site), str(site), str(tmp_path / "link")]))
    assert not is_running_interpreter(ours)  # our sys.path is not the target's
    facts = probe_python(ours)
    torches = [package for package in facts.packages if package.name == "torch"]
    assert torches[0] == InstalledPackage("torch", "1.13.1+cu117", str(site))  # first on sys.path
    assert [package.version for package in torches[1:]] == [importlib.metadata.version("torch")]
    from_site = [package.name for package in facts.packages if package.location == str(site)]
    assert from_site == ["flash-attn", "nvidia-cudnn-cu12", "torch"]
    assert not [package for package in facts.packages if "link" in package.location]


def test_missing_interpreter() -> None:
    with pytest.raises(ProbeError, match=r"^interpreter not found: /nonexistent/python$"):
        probe_python(context("/nonexistent/python"))


def test_pip_missing_is_unavailable_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.distributions

    def without_pip() -> list[importlib.metadata.Distribution]:
        return [dist for dist in real() if dist.metadata["Name"] != "pip"]

    monkeypatch.setattr(importlib.metadata, "distributions", without_pip)
    facts = decode(PythonFacts, target_script.collect_interpreter({}))
    assert isinstance(facts.pip_version, Unavailable)
    assert facts.pip_version.fix == f"{sys.executable} -m ensurepip --upgrade"


def test_conda_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, env = tmp_path / "miniconda3", tmp_path / "miniconda3" / "envs" / "ml"
    for folder in (root / "conda-meta", root / "condabin", env / "conda-meta"):
        folder.mkdir(parents=True)
    monkeypatch.setattr(sys, "base_prefix", str(root))
    monkeypatch.setattr(sys, "prefix", str(root))
    assert target_script.conda_env({}) == "base"
    monkeypatch.setattr(sys, "prefix", str(env))
    assert target_script.conda_env({}) == "ml"
    assert target_script.conda_env({"CONDA_PREFIX": str(env), "CONDA_DEFAULT_ENV": "my-ml"}) == "my-ml"
    # another environment is active: its name is not this interpreter's
    assert target_script.conda_env({"CONDA_PREFIX": str(root), "CONDA_DEFAULT_ENV": "base"}) == "ml"
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))  # a venv made from the conda base Python
    assert target_script.conda_env({}) == "base"
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path / "usr"))
    assert target_script.conda_env({}) is None


def test_virtualenv_is_the_interpreters_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/usr")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert target_script.virtualenv() is None
    monkeypatch.setattr(sys, "real_prefix", "/opt/python", raising=False)  # virtualenv < 20
    assert target_script.virtualenv() == "/usr"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("torch", "torch"), ("Flash_Attn", "flash-attn"), ("nvidia.ml__py", "nvidia-ml-py"), ("PyNVML", "pynvml")],
)
def test_names_are_normalised_per_pep_503(name: str, expected: str) -> None:
    assert target_script.normalise(name) == expected
