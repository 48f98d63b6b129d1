"""`envcheck info --json` on this machine agrees with the tools people would otherwise run.

lscpu, free, df and `python -m torch.utils.collect_env` are run here, side by side with envcheck;
each comparison is skipped where the tool is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "envcheck", "info", "--json"], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def tool(*command: str) -> str:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed here")
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def lscpu_field(text: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}:\s*(.+)$", text, re.MULTILINE)
    assert match, f"lscpu printed no {name!r}"
    return match.group(1).strip()


def test_cpu_matches_lscpu(snapshot: dict[str, Any]) -> None:
    text = tool("lscpu")
    cpu = snapshot["cpu"]
    assert cpu["logical_cores"] == int(lscpu_field(text, "CPU(s)"))
    assert cpu["architecture"] == lscpu_field(text, "Architecture")
    if "Model name" in text:
        assert cpu["model"] == lscpu_field(text, "Model name")
    flags = set(lscpu_field(text, "Flags").split()) if "Flags:" in text else set()
    for flag in cpu["isa_flags"]:
        assert flag in flags, f"{flag} reported by envcheck but not by lscpu"


def test_memory_matches_free(snapshot: dict[str, Any]) -> None:
    mem_line = next(line for line in tool("free", "-b").splitlines() if line.startswith("Mem:"))
    total = int(mem_line.split()[1])
    assert snapshot["memory"]["total_bytes"] == total


def test_working_directory_matches_df(snapshot: dict[str, Any]) -> None:
    cwd = next(location for location in snapshot["storage"]["locations"] if location["role"] == "cwd")
    lines = tool("df", "-B1", "--output=target,size,avail", str(Path.cwd())).splitlines()
    mount, size, available = lines[-1].split()
    assert cwd["mount_point"] == mount
    assert cwd["total_bytes"] == int(size)
    # free space moves while the suite writes files: allow 1 GiB of drift between the two reads
    assert abs(cwd["free_bytes"] - int(available)) < 1024**3


def test_torch_matches_collect_env(snapshot: dict[str, Any]) -> None:
    torch = snapshot["framework"]["torch"]
    if torch is None:
        pytest.skip("torch is not installed in this interpreter")
    text = subprocess.run(
        [sys.executable, "-m", "torch.utils.collect_env"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert lscpu_field(text, "PyTorch version") == torch["version"]
    assert lscpu_field(text, "Is CUDA available") == ("True" if torch["is_cuda_available"] else "False")
    built_with = lscpu_field(text, "CUDA used to build PyTorch")
    assert built_with == (torch["cuda_version"] or "None")


def test_toolchain_matches_collect_env(snapshot: dict[str, Any]) -> None:
    """collect_env's "CUDA runtime version" is `nvcc --version` and its "GCC version" `gcc --version`."""
    text = subprocess.run(
        [sys.executable, "-m", "torch.utils.collect_env"], capture_output=True, text=True, check=False, timeout=120
    ).stdout
    if "GCC version" not in text:
        pytest.skip("torch.utils.collect_env did not run here")
    toolchain = snapshot["toolchain"]
    nvcc, gcc = lscpu_field(text, "CUDA runtime version"), lscpu_field(text, "GCC version")
    if toolchain["nvcc"] is None:
        assert nvcc in ("Could not collect", "No CUDA")
    else:
        assert nvcc == toolchain["nvcc"]["version"]
    if toolchain["gcc"] is None:
        assert gcc == "Could not collect"
    else:
        assert gcc.endswith(f" {toolchain['gcc']['version']}")
