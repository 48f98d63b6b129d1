"""The toolchain probe over fake nvcc, gcc, g++, clang and ninja executables the tests write (each prints the real
`--version` text of its tool), over broken ones, and over a replayed /usr/local tree of CUDA toolkits."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.toolchain import Tool, ToolchainFacts
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.toolchain import parse_gcc_version, parse_nvcc_version, probe_toolchain, tool_version

# Verbatim `--version` output of real installs.
NVCC_11_8 = """nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2022 NVIDIA Corporation
Built on Wed_Sep_21_10:33:58_PDT_2022
Cuda compilation tools, release 11.8, V11.8.89
Build cuda_11.8.r11.8/compiler.31833905_0
"""
GCC_11 = """{name} (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0
Copyright (C) 2021 Free Software Foundation, Inc.
This is free software; see the source for copying conditions.  There is NO
warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.

"""
GCC_FEDORA = "gcc (GCC) 13.2.1 20231011 (Red Hat 13.2.1-4)\nCopyright (C) 2023 Free Software Foundation, Inc.\n"
CLANG_14 = """Ubuntu clang version 14.0.0-1ubuntu1.1
Target: x86_64-pc-linux-gnu
Thread model: posix
InstalledDir: /usr/bin
"""
NINJA = "1.11.1.git.kitware.jobserver-1\n"


def fake_tool(folder: Path, name: str, output: str, status: int = 0) -> Path:
    """A real executable printing `output` on stdout, as the tool does for --version (printf is a shell builtin:
    the tests' PATH holds nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    quoted = output.replace("'", "'\\''")
    path.write_text(f"#!/bin/sh\nprintf '%s' '{quoted}'\nexit {status}\n")
    path.chmod(0o755)
    return path


def context(bin_folder: Path, root: Path | None = None, **variables: str) -> ProbeContext:
    roots = HostRoots(root=root) if root is not None else HostRoots(root=bin_folder / "no-root")
    return ProbeContext(environ={"PATH": str(bin_folder), **variables}, roots=roots)


def test_every_tool_read_from_its_version_text(tmp_path: Path) -> None:
    bin_folder = tmp_path / "bin"
    fake_tool(bin_folder, "nvcc", NVCC_11_8)
    fake_tool(bin_folder, "gcc", GCC_11.format(name="gcc"))
    fake_tool(bin_folder, "g++", GCC_11.format(name="g++"))
    fake_tool(bin_folder, "clang", CLANG_14)
    fake_tool(bin_folder, "ninja", NINJA)
    facts = probe_toolchain(context(bin_folder))
    assert facts.nvcc == Tool(str(bin_folder / "nvcc"), str(bin_folder / "nvcc"), "11.8.89")
    assert isinstance(facts.gcc, Tool)
    assert facts.gcc.version == "11.4.0"
    assert isinstance(facts.gxx, Tool)
    assert facts.gxx.version == "11.4.0"
    assert isinstance(facts.clang, Tool)
    assert facts.clang.version == "14.0.0"
    assert isinstance(facts.ninja, Tool)
    assert facts.ninja.version == "1.11.1"
    assert facts.toolkits == ()
    assert decode(ToolchainFacts, json.loads(json.dumps(encode(facts)))) == facts


def test_tools_missing_from_path_are_none(tmp_path: Path) -> None:
    facts = probe_toolchain(context(tmp_path / "empty"))
    assert (facts.nvcc, facts.gcc, facts.gxx, facts.clang, facts.ninja) == (None, None, None, None, None)


def test_symlinked_tool_records_where_it_leads(tmp_path: Path) -> None:
    real = fake_tool(tmp_path / "opt", "x86_64-linux-gnu-gcc-12", GCC_11.format(name="gcc"))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gcc").symlink_to(real)
    facts = probe_toolchain(context(tmp_path / "bin"))
    assert isinstance(facts.gcc, Tool)
    assert facts.gcc.path == str(tmp_path / "bin" / "gcc")
    assert facts.gcc.resolved_path == str(real)


def test_broken_tools_are_unavailable_with_their_words(tmp_path: Path) -> None:
    bin_folder = tmp_path / "bin"
    fake_tool(bin_folder, "nvcc", "nvcc: error while loading shared libraries: libnvvm.so.4\n", status=127)
    fake_tool(bin_folder, "gcc", "garbage\n")
    facts = probe_toolchain(context(bin_folder))
    assert isinstance(facts.nvcc, Tool)
    assert isinstance(facts.nvcc.version, Unavailable)
    assert "status 127" in facts.nvcc.version.reason
    assert "libnvvm.so.4" in facts.nvcc.version.reason
    assert isinstance(facts.gcc, Tool)
    assert isinstance(facts.gcc.version, Unavailable)
    assert facts.gcc.version.fix == f"{bin_folder / 'gcc'} --version"


def test_a_hanging_tool_is_killed_at_its_deadline(tmp_path: Path) -> None:
    hanging = tmp_path / "nvcc"
    hanging.write_text("#!/bin/sh\nsleep 30\n")
    hanging.chmod(0o755)
    started = time.monotonic()
    version = tool_version(str(hanging), parse_nvcc_version, ProbeContext(environ=dict(os.environ)), timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert isinstance(version, Unavailable)
    assert "did not finish within 0.5 s" in version.reason


def test_version_parsers_take_the_version_not_the_date() -> None:
    assert parse_gcc_version(GCC_FEDORA) == "13.2.1"
    assert parse_gcc_version("Apple clang version 15.0.0 (clang-1500.3.9.4)\n") == "15.0.0"  # macOS's gcc is clang
    assert parse_nvcc_version("Cuda compilation tools, release 9.2\n") == "9.2"


def test_toolkits_under_usr_local_with_the_default_symlink(tmp_path: Path) -> None:
    local = tmp_path / "usr" / "local"
    for name, version in (("cuda-11.8", "11.8.20220929"), ("cuda-12.6", "12.6.3")):
        (local / name / "bin").mkdir(parents=True)
        (local / name / "version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK", "version": version}}))
        fake_tool(local / name / "bin", "nvcc", NVCC_11_8)
    (local / "cuda-12.6-runtime").mkdir()  # a name the installer never uses is not a toolkit folder
    (local / "cuda").symlink_to("cuda-12.6")
    (local / "cuda-13.0").mkdir()  # a runtime-only install: no bin/nvcc, no version file
    facts = probe_toolchain(context(tmp_path / "empty", root=tmp_path))
    assert isinstance(facts.toolkits, tuple)
    by_path = {t.path: t for t in facts.toolkits}
    assert list(by_path) == ["/usr/local/cuda", "/usr/local/cuda-11.8", "/usr/local/cuda-12.6", "/usr/local/cuda-13.0"]
    assert by_path["/usr/local/cuda"].resolved_path == "/usr/local/cuda-12.6"
    assert by_path["/usr/local/cuda"].version == "12.6.3"
    assert by_path["/usr/local/cuda-11.8"].version == "11.8.20220929"
    assert by_path["/usr/local/cuda-11.8"].has_nvcc
    assert not by_path["/usr/local/cuda-13.0"].has_nvcc
    assert isinstance(by_path["/usr/local/cuda-13.0"].version, Unavailable)


def test_a_toolkit_without_a_version_file_is_asked_through_its_nvcc(tmp_path: Path) -> None:
    local = tmp_path / "usr" / "local"
    fake_tool(local / "cuda-11.8" / "bin", "nvcc", NVCC_11_8)
    (local / "cuda").symlink_to("cuda-11.8")
    (local / "cuda-12.0" / "bin").mkdir(parents=True)
    fake_tool(local / "cuda-12.0" / "bin", "nvcc", "Segmentation fault\n", status=139)
    facts = probe_toolchain(context(tmp_path / "empty", root=tmp_path))
    assert isinstance(facts.toolkits, tuple)
    by_path = {t.path: t for t in facts.toolkits}
    assert by_path["/usr/local/cuda"].version == by_path["/usr/local/cuda-11.8"].version == "11.8.89"
    broken = by_path["/usr/local/cuda-12.0"].version
    assert isinstance(broken, Unavailable)
    assert "neither version.json nor version.txt" in broken.reason
    assert "status 139" in broken.reason


def test_cuda_home_elsewhere_is_listed_and_asked_through_its_nvcc(tmp_path: Path) -> None:
    conda = tmp_path / "opt" / "conda" / "envs" / "train"
    fake_tool(conda / "bin", "nvcc", NVCC_11_8)  # conda's cuda-nvcc: no version.json
    facts = probe_toolchain(context(tmp_path / "empty", root=tmp_path, CUDA_HOME="/opt/conda/envs/train"))
    assert isinstance(facts.toolkits, tuple)
    (folder,) = facts.toolkits
    assert (folder.path, folder.version, folder.has_nvcc) == ("/opt/conda/envs/train", "11.8.89", True)
