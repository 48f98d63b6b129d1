"""The CUDA toolkit at CUDA_HOME / CUDA_PATH: its version read from the toolkit's own files in a tree the test writes
(version.json since CUDA 11.1, version.txt before), and cuda.cuda_home judged from that version."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.environment import NOT_RECORDED, CudaToolkit, EnvironmentFacts
from envcheck.finding import Finding, Severity
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.cuda_toolkit import parse_version_json, parse_version_txt, probe_cuda_toolkit
from envcheck.probes.environment import probe_environment
from tests import factories
from tests.test_checks_cuda import only

# The head of a real CUDA 12.4 version.json (the file lists every component; only "cuda" names the toolkit).
VERSION_JSON = {
    "cuda": {"name": "CUDA SDK", "version": "12.4.1"},
    "cuda_cccl": {"name": "CUDA C++ Core Compute Libraries", "version": "12.4.127"},
    "cuda_nvcc": {"name": "CUDA NVCC", "version": "12.4.131"},
}


def toolkit(tmp_path: Path, path: str, files: dict[str, str], variable: str = "CUDA_HOME") -> CudaToolkit | None:
    home = tmp_path / path.lstrip("/")
    home.mkdir(parents=True)
    for name, text in files.items():
        (home / name).write_text(text)
    return probe_cuda_toolkit(ProbeContext(environ={variable: path}, roots=HostRoots(root=tmp_path)))


def test_version_json_of_cuda_11_1_and_later(tmp_path: Path) -> None:
    found = toolkit(tmp_path, "/usr/local/cuda", {"version.json": json.dumps(VERSION_JSON, indent=3)})
    assert found == CudaToolkit("CUDA_HOME", "/usr/local/cuda", True, "12.4.1")


def test_version_txt_of_older_toolkits_and_cuda_path(tmp_path: Path) -> None:
    found = toolkit(tmp_path, "/opt/cuda", {"version.txt": "CUDA Version 10.2.89\n"}, variable="CUDA_PATH")
    assert found == CudaToolkit("CUDA_PATH", "/opt/cuda", True, "10.2.89")


def test_version_json_wins_over_a_stale_version_txt(tmp_path: Path) -> None:
    # an in-place upgrade leaves the old version.txt behind
    files = {"version.json": json.dumps(VERSION_JSON), "version.txt": "CUDA Version 11.0.228"}
    found = toolkit(tmp_path, "/usr/local/cuda", files)
    assert found is not None and found.version == "12.4.1"


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({}, "/usr/local/cuda has neither version.json nor version.txt"),
        ({"version.json": '{"cuda": {"name": "CUDA SDK"'}, "/usr/local/cuda/version.json names no CUDA version"),
        ({"version.json": '{"cuda_nvcc": {"version": "12.4.131"}}'}, "/usr/local/cuda/version.json names no CUDA"),
        ({"version.txt": "CUDA Version unknown"}, "/usr/local/cuda/version.txt names no CUDA version"),
    ],
)
def test_a_toolkit_without_a_readable_version_says_why(tmp_path: Path, files: dict[str, str], reason: str) -> None:
    found = toolkit(tmp_path, "/usr/local/cuda", files)
    assert found is not None and found.is_directory
    assert isinstance(found.version, Unavailable) and found.version.reason.startswith(reason)
    assert found.version.fix == "/usr/local/cuda/bin/nvcc --version"


def test_a_missing_directory_and_no_variable(tmp_path: Path) -> None:
    context = ProbeContext(environ={"CUDA_HOME": "/usr/local/cuda-11.8"}, roots=HostRoots(root=tmp_path))
    missing = probe_cuda_toolkit(context)
    assert missing is not None and not missing.is_directory
    assert missing.version == Unavailable("CUDA_HOME=/usr/local/cuda-11.8 is not a directory")
    assert probe_cuda_toolkit(ProbeContext(environ={}, roots=HostRoots(root=tmp_path))) is None


def test_parsers_on_odd_input() -> None:
    assert parse_version_json("[]") is None
    assert parse_version_json('{"cuda": {"version": 12}}') is None
    assert parse_version_json('{"cuda": {"version": "11.8.20220929"}}') == "11.8.20220929"  # 11.8's date-stamped form
    assert parse_version_txt("CUDA Version 9.0.176\nCUDA Patch Version 9.0.176.1") == "9.0.176"


def test_the_environment_probe_records_it_and_old_snapshots_still_load(tmp_path: Path) -> None:
    (tmp_path / "usr/local/cuda-12.1").mkdir(parents=True)
    (tmp_path / "usr/local/cuda-12.1/version.json").write_text('{"cuda": {"version": "12.1.1"}}')
    context = ProbeContext(environ={"CUDA_HOME": "/usr/local/cuda-12.1"}, roots=HostRoots(root=tmp_path))
    facts = probe_environment(context)
    assert facts.cuda_toolkit == CudaToolkit("CUDA_HOME", "/usr/local/cuda-12.1", True, "12.1.1")
    assert decode(EnvironmentFacts, encode(facts)) == facts
    old = encode(facts)
    del old["cuda_toolkit"], old["fabric"]
    assert decode(EnvironmentFacts, old) == replace(facts, cuda_toolkit=NOT_RECORDED, fabric=NOT_RECORDED)


# --- the check ---------------------------------------------------------------------------------------------


def cuda_home_check(path: str, recorded: CudaToolkit | Unavailable | None) -> Finding:
    environment = replace(factories.environment(CUDA_HOME=path), cuda_toolkit=recorded)
    return only("cuda.cuda_home", factories.snapshot(environment=environment))


@pytest.mark.parametrize(
    ("version", "severity"),
    [("12.1.105", Severity.OK), ("12.4.1", Severity.INFO), ("11.8.20220929", Severity.WARN), ("13.0.0", Severity.WARN)],
)
def test_a_path_without_a_version_is_judged_by_the_toolkits_file(version: str, severity: Severity) -> None:
    # /usr/local/cuda says nothing by its name; before the toolkit's version was recorded this was a skip
    finding = cuda_home_check("/usr/local/cuda", CudaToolkit("CUDA_HOME", "/usr/local/cuda", True, version))
    assert finding.severity is severity
    assert f"version {version} in its version file" in finding.title
    assert "environment.cuda_toolkit" in finding.evidence or severity is Severity.OK


def test_the_file_beats_a_misleading_path() -> None:
    # /usr/local/cuda-12.1 replaced in place by a 12.4 toolkit
    recorded = CudaToolkit("CUDA_HOME", "/usr/local/cuda-12.1", True, "12.4.1")
    assert cuda_home_check("/usr/local/cuda-12.1", recorded).severity is Severity.INFO


def test_a_missing_toolkit_directory_warns() -> None:
    recorded = CudaToolkit("CUDA_HOME", "/usr/local/cuda-11.8", False, Unavailable("not a directory"))
    finding = cuda_home_check("/usr/local/cuda-11.8", recorded)
    assert finding.severity is Severity.WARN and "does not exist" in finding.title
    assert finding.fix is not None and "/usr/local/cuda-12.1" in finding.fix


def test_without_the_record_the_path_name_decides_as_before() -> None:
    assert cuda_home_check("/usr/local/cuda-11.8", NOT_RECORDED).severity is Severity.WARN
    unreadable = CudaToolkit("CUDA_HOME", "/usr/local/cuda", True, Unavailable("cannot read /usr/local/cuda/x"))
    finding = cuda_home_check("/usr/local/cuda", unreadable)
    assert finding.severity is Severity.SKIP and finding.detail == "cannot read /usr/local/cuda/x"
    assert cuda_home_check("/usr/local/cuda", NOT_RECORDED).severity is Severity.SKIP


def test_a_relative_cuda_home_is_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "work"
    (project / "toolkits/cuda").mkdir(parents=True)
    (project / "toolkits/cuda/version.json").write_text(json.dumps(VERSION_JSON))
    monkeypatch.chdir(project)
    found = probe_cuda_toolkit(ProbeContext(environ={"CUDA_HOME": "toolkits/cuda"}))
    assert found == CudaToolkit("CUDA_HOME", "toolkits/cuda", True, "12.4.1")
