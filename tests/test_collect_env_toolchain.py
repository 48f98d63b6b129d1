"""What a pasted collect_env output shows of the build toolchain and the compiled extensions: nvcc (its "CUDA
runtime version" line runs `nvcc --version`), gcc, clang and the extensions in its package list."""

from __future__ import annotations

from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.facts.toolchain import Tool
from envcheck.loaders import load_snapshot_file
from envcheck.snapshot import from_json, to_json

FIXTURES = Path(__file__).parent / "fixtures" / "collect_env"


def test_nvcc_gcc_and_clang_from_the_paste() -> None:
    snapshot = load_snapshot_file(FIXTURES / "linux-torch2.1-cu121-a100x8-conda.txt")
    toolchain = snapshot.toolchain
    assert not isinstance(toolchain, Unavailable)
    assert isinstance(toolchain.nvcc, Tool)
    assert toolchain.nvcc.version == "12.1.105"
    assert isinstance(toolchain.nvcc.path, Unavailable)  # collect_env prints no path
    assert isinstance(toolchain.gcc, Tool)
    assert toolchain.gcc.version == "11.4.0"
    assert toolchain.clang is None  # "Could not collect"
    assert isinstance(toolchain.gxx, Unavailable)
    assert isinstance(toolchain.toolkits, Unavailable)
    assert from_json(to_json(snapshot)) == snapshot


def test_no_cuda_means_no_nvcc(tmp_path: Path) -> None:
    text = (FIXTURES / "linux-torch2.1-cu121-a100x8-conda.txt").read_text()
    lines = [
        "CUDA runtime version: No CUDA" if line.startswith("CUDA runtime version:") else line
        for line in text.splitlines()
    ]
    paste = tmp_path / "collect_env.txt"
    paste.write_text("\n".join(lines) + "\n")
    toolchain = load_snapshot_file(paste).toolchain
    assert not isinstance(toolchain, Unavailable)
    assert toolchain.nvcc is None


def test_extensions_in_the_package_list() -> None:
    snapshot = load_snapshot_file(FIXTURES / "linux-torch2.1-cu121-a100x8-conda.txt")
    framework = snapshot.framework
    assert not isinstance(framework, Unavailable)
    assert not isinstance(framework.extensions, Unavailable)
    (triton,) = framework.extensions
    assert (triton.name, triton.version) == ("triton", "2.1.0")
    assert isinstance(triton.import_error, Unavailable)  # collect_env imports none of them


def test_macos_clang_from_the_paste() -> None:
    toolchain = load_snapshot_file(FIXTURES / "macos-torch2.2-arm64-m2pro.txt").toolchain
    assert not isinstance(toolchain, Unavailable)
    assert isinstance(toolchain.clang, Tool)
    assert toolchain.clang.version == "15.0.0"
