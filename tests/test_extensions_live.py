"""Compiled extensions in a real venv the tests build: a fake torch 2.6.0+cu126, a fake flash-attn built for torch 2.4
whose import raises the real undefined-symbol error, a fake xformers pinned to torch, and fake nvcc/g++ executables on
PATH; read by the torch probe and judged by `envcheck doctor` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import venv
from pathlib import Path

import pytest

from envcheck.facts.common import Unavailable
from envcheck.probes.context import ProbeContext
from envcheck.probes.framework import probe_framework
from envcheck.probes.target_script import import_bounded
from tests.test_probe_toolchain import NVCC_11_8, fake_tool

ENVCHECK = [sys.executable, "-m", "envcheck"]
# The error line flash-attn gives after a torch upgrade (Dao-AILab/flash-attention issues), verbatim but the path
UNDEFINED_SYMBOL = (
    "{site}/flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: undefined symbol: _ZN3c104cuda9SetDeviceEi"
)
FAKE_TORCH = {
    "torch/__init__.py": """
        __version__ = "2.6.0+cu126"
        from torch import _C, cuda, version
    """,
    "torch/version.py": 'cuda = "12.6"\nhip = None\n',
    "torch/cuda/__init__.py": """
        def is_available():
            return False
        def get_arch_list():
            return ["sm_80", "sm_90"]
    """,
    "torch/_C.py": "_GLIBCXX_USE_CXX11_ABI = False\n",
}


def site_packages(root: Path) -> Path:
    return next(root.glob("lib/python3*/site-packages"))


def write_files(site: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def fake_distribution(
    site: Path, name: str, version: str, requires: tuple[str, ...] = (), tag: str = "cp311-cp311-linux_x86_64"
) -> None:
    """A dist-info as pip leaves it: METADATA with its Requires-Dist lines, and WHEEL with the wheel's tag."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    requirements = [f"Requires-Dist: {requirement}" for requirement in requires]
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *requirements]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    wheel = ["Wheel-Version: 1.0", "Generator: setuptools (75.1.0)", "Root-Is-Purelib: false", f"Tag: {tag}"]
    (info / "WHEEL").write_text("\n".join(wheel) + "\n")
    (info / "INSTALLER").write_text("pip\n")


def make_venv(tmp_path: Path, *, with_flash_attn: bool) -> Path:
    """A real venv with the fake torch, xformers made for it and, when asked, a flash-attn built for torch 2.4."""
    root = tmp_path / "venv"
    venv.create(root, with_pip=False, symlinks=True)
    site = site_packages(root)
    write_files(site, FAKE_TORCH)
    fake_distribution(site, "torch", "2.6.0+cu126", requires=('triton==3.2.0; platform_system == "Linux"',))
    write_files(site, {"xformers/__init__.py": "__version__ = '0.0.29.post2'\n"})
    fake_distribution(site, "xformers", "0.0.29.post2", requires=("torch==2.6.0", "numpy"))
    if with_flash_attn:
        error = UNDEFINED_SYMBOL.format(site=site)
        write_files(site, {"flash_attn/__init__.py": f"import torch\nraise ImportError({error!r})\n"})
        fake_distribution(site, "flash-attn", "2.6.3+cu123torch2.4cxx11abiFALSE")
    return root / "bin" / "python"


def doctor_environ(tmp_path: Path) -> dict[str, str]:
    """PATH with a fake nvcc 11.8 first; no CUDA_HOME, so builds would use that nvcc."""
    fake_tool(tmp_path / "fakebin", "nvcc", NVCC_11_8)
    environ = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "PYTHONPATH")}
    environ["PATH"] = f"{tmp_path / 'fakebin'}:{environ.get('PATH', '')}"
    return environ


def doctor(python: Path, environ: dict[str, str]) -> tuple[int, dict[str, dict[str, object]]]:
    result = subprocess.run(
        [*ENVCHECK, "doctor", "--json", "--python", str(python), "--only", "install", "--only", "toolchain"],
        capture_output=True, text=True, env=environ, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    findings: dict[str, dict[str, object]] = {}
    for finding in document["findings"]:  # the worst finding of each check
        ranks = ("ok", "skip", "info", "warn", "fail")
        held = findings.get(finding["id"])
        if held is None or ranks.index(finding["severity"]) > ranks.index(str(held["severity"])):
            findings[finding["id"]] = finding
    return result.returncode, findings


def test_the_torch_probe_reads_each_extension_and_imports_it(tmp_path: Path) -> None:
    python = make_venv(tmp_path, with_flash_attn=True)
    facts = probe_framework(ProbeContext(python=str(python), environ=doctor_environ(tmp_path)))
    assert facts.torch is not None
    assert facts.torch.cxx11_abi is False
    assert not isinstance(facts.extensions, Unavailable)
    by_name = {extension.name: extension for extension in facts.extensions}
    assert set(by_name) == {"flash-attn", "xformers"}
    flash = by_name["flash-attn"]
    assert flash.version == "2.6.3+cu123torch2.4cxx11abiFALSE"
    assert flash.wheel_tags == ("cp311-cp311-linux_x86_64",)
    assert isinstance(flash.import_error, str)
    assert flash.import_error.startswith("ImportError: ")
    assert flash.import_error.endswith("undefined symbol: _ZN3c104cuda9SetDeviceEi")
    xformers = by_name["xformers"]
    assert xformers.requires_torch == ("torch==2.6.0",)
    assert xformers.import_error is None
    assert isinstance(xformers.import_duration_s, float)


def test_doctor_names_flash_attn_built_for_another_torch_and_warns_about_nvcc(tmp_path: Path) -> None:
    code, findings = doctor(make_venv(tmp_path, with_flash_attn=True), doctor_environ(tmp_path))
    assert code == 1
    build = findings["install.extension_build"]
    assert build["severity"] == "fail"
    assert build["title"] == (
        "flash-attn 2.6.3+cu123torch2.4cxx11abiFALSE was built for another torch build than 2.6.0+cu126: "
        "its version tag says torch 2.4"
    )
    assert "--no-build-isolation" in str(build["fix"])
    assert "cu12torch2.6cxx11abiFALSE" in str(build["fix"])
    imported = findings["install.extension_import"]
    assert imported["severity"] == "fail"
    assert "compiled against another torch release or C++ ABI" in str(imported["detail"])
    nvcc = findings["toolchain.nvcc_cuda_major"]
    assert nvcc["severity"] == "warn"
    assert str(nvcc["title"]).startswith(f"nvcc 11.8.89 ({tmp_path / 'fakebin' / 'nvcc'} on PATH) is CUDA 11")


def test_the_same_nvcc_gives_no_warning_when_nothing_needs_building(tmp_path: Path) -> None:
    _, findings = doctor(make_venv(tmp_path, with_flash_attn=False), doctor_environ(tmp_path))
    assert findings["install.extension_build"]["severity"] == "ok"
    assert findings["install.extension_import"]["severity"] == "ok"
    assert findings["toolchain.nvcc_cuda_major"]["severity"] == "info"
    toolchain = [f for f in findings.values() if str(f["id"]).startswith("toolchain.")]
    assert toolchain
    assert not [f for f in toolchain if f["severity"] in ("warn", "fail")], toolchain


def test_info_lists_the_toolchain(tmp_path: Path) -> None:
    result = subprocess.run(
        [*ENVCHECK, "info", "--json", "--python", str(make_venv(tmp_path, with_flash_attn=False))],
        capture_output=True, text=True, env=doctor_environ(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    toolchain = json.loads(result.stdout)["toolchain"]
    assert toolchain["nvcc"] == {
        "path": str(tmp_path / "fakebin" / "nvcc"),
        "resolved_path": str(tmp_path / "fakebin" / "nvcc"),
        "version": "11.8.89",
    }


def test_a_hanging_import_is_recorded_and_left_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hangs_on_import.py").write_text("import time\ntime.sleep(5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    started = time.monotonic()
    error, duration_s, _printed = import_bounded("hangs_on_import", timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert error == "TimeoutError: import hangs_on_import did not finish within 0.3 s"
    assert duration_s >= 0.3


# bitsandbytes' warning when it loaded no CUDA library, verbatim (cextension.py; bitsandbytes-foundation/bitsandbytes
# #719, hyperonym/basaran #3): a UserWarning up to 0.42, a logging warning from 0.43. The import goes on.
BNB_NO_GPU = (
    "The installed version of bitsandbytes was compiled without GPU support. "
    "8-bit optimizers, 8-bit multiplication, and GPU quantization are unavailable."
)
FAKE_BITSANDBYTES = {
    # 0.41: prints the library it chose on stdout, then warns
    "warns": f"""
        from warnings import warn
        print("bin " + __file__.replace("__init__.py", "libbitsandbytes_cpu.so"))
        warn({BNB_NO_GPU!r})
    """,
    # 0.43 and later: a logging warning, which logging's fallback handler writes to stderr
    "logs": f"""
        import logging
        logging.getLogger("bitsandbytes.cextension").warning({BNB_NO_GPU!r})
    """,
    # a healthy old release says which CUDA library it loads; that line names libbitsandbytes_cuda118 too
    "clean": """
        print("CUDA SETUP: Loading binary " + __file__.replace("__init__.py", "libbitsandbytes_cuda118.so") + "...")
    """,
}


def make_bitsandbytes_venv(tmp_path: Path, kind: str, *, is_cuda_available: bool = True) -> Path:
    python = make_venv(tmp_path, with_flash_attn=False)
    site = site_packages(tmp_path / "venv")
    cuda = (site / "torch/cuda/__init__.py").read_text()
    (site / "torch/cuda/__init__.py").write_text(cuda.replace("return False", f"return {is_cuda_available}"))
    write_files(site, {"bitsandbytes/__init__.py": FAKE_BITSANDBYTES[kind]})
    fake_distribution(site, "bitsandbytes", "0.41.1", tag="py3-none-any")
    return python


@pytest.mark.parametrize("kind", ["warns", "logs"])
def test_a_bitsandbytes_that_only_warns_it_has_no_gpu_library_fails_the_import_check(tmp_path: Path, kind: str) -> None:
    python = make_bitsandbytes_venv(tmp_path, kind)
    facts = probe_framework(ProbeContext(python=str(python), environ=doctor_environ(tmp_path)))
    assert not isinstance(facts.extensions, Unavailable)
    bnb = next(extension for extension in facts.extensions if extension.name == "bitsandbytes")
    assert bnb.import_error is None
    assert not isinstance(bnb.import_output, Unavailable)
    assert any(line.endswith(BNB_NO_GPU) for line in bnb.import_output), bnb.import_output
    _, findings = doctor(python, doctor_environ(tmp_path))
    imported = findings["install.extension_import"]
    assert imported["severity"] == "fail"
    assert str(imported["title"]).startswith("bitsandbytes 0.41.1 imports beside torch 2.6.0+cu126 but says it cannot")
    assert BNB_NO_GPU in str(imported["title"])
    assert "loaded no CUDA library" in str(imported["detail"])
    assert "pip install -U --force-reinstall --no-deps bitsandbytes" in str(imported["fix"])


def test_the_same_warning_without_a_usable_gpu_is_a_warning(tmp_path: Path) -> None:
    python = make_bitsandbytes_venv(tmp_path, "warns", is_cuda_available=False)
    imported = doctor(python, doctor_environ(tmp_path))[1]["install.extension_import"]
    assert imported["severity"] == "warn"
    assert "torch sees no usable GPU here" in str(imported["detail"])


def test_a_bitsandbytes_that_imports_cleanly_passes_and_its_stdout_stays_out_of_the_json(tmp_path: Path) -> None:
    python = make_bitsandbytes_venv(tmp_path, "clean")
    facts = probe_framework(ProbeContext(python=str(python), environ=doctor_environ(tmp_path)))
    assert not isinstance(facts.extensions, Unavailable)
    by_name = {extension.name: extension for extension in facts.extensions}
    assert by_name["bitsandbytes"].import_output == (
        f"CUDA SETUP: Loading binary {site_packages(tmp_path / 'venv')}/bitsandbytes/libbitsandbytes_cuda118.so...",
    )
    assert by_name["xformers"].import_output == ()
    imported = doctor(python, doctor_environ(tmp_path))[1]["install.extension_import"]
    assert imported["severity"] == "ok"
    assert "bitsandbytes" in str(imported["title"])
