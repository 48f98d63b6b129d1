"""The built wheel ships profiles/ inside the package and envcheck finds them there, not in the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("envcheck_ml-*.whl")
    return built


@pytest.mark.slow
def test_wheel_contains_every_profile(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"envcheck/profiles/{path.relative_to(ROOT / 'profiles')}" for path in (ROOT / "profiles").rglob("*.toml")
    }
    assert shipped and shipped <= names
    assert "envcheck/probes/target_script.py" in names


@pytest.mark.slow
def test_installed_wheel_loads_knowledge_through_importlib_resources(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import envcheck, envcheck.knowledge as k;"
        "print(envcheck.__file__); print(k.profiles_root()); print(len(k.load_knowledge().gpus));"
        "from envcheck.knowledge.signatures import load_signatures; print(len(load_signatures().signatures))"
    )
    # Run from a neutral directory with the wheel's copy first on sys.path, so the checkout cannot be found.
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    module_file, root, gpu_count, signature_count = result.stdout.split("\n")[:4]
    assert module_file.startswith(str(site))
    assert root.startswith(str(site)) and root.endswith("profiles")
    assert int(gpu_count) > 30
    assert int(signature_count) >= 28  # explain's failure signatures ship too
