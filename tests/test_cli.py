"""End to end through the command line: real processes for live runs, files for --from, golden text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envcheck.cli import app
from envcheck.facts.common import Unavailable
from envcheck.snapshot import from_json, to_json
from tests import factories
from tests.shared_fixtures import shared_fixture

ENVCHECK = [sys.executable, "-m", "envcheck"]
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENVCHECK, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.json"
    path.write_text(to_json(factories.snapshot()))
    return path


def test_doctor_from_a_healthy_snapshot_exits_0_with_the_summary(saved: Path) -> None:
    result = runner.invoke(app, ["doctor", "--from", str(saved)])
    assert result.exit_code == 0, result.output
    assert "0 failures, 0 warnings" in result.output
    assert "[✓] PyTorch install" in result.output


def test_doctor_json_holds_snapshot_and_findings(saved: Path) -> None:
    result = runner.invoke(app, ["doctor", "--from", str(saved), "--json"])
    document = json.loads(result.stdout)
    assert document["schema"] == "envcheck.doctor/1"
    assert document["snapshot"]["schema"] == "envcheck.snapshot/1"
    assert {"id", "severity", "title", "detail", "fix"} <= set(document["findings"][0])


def test_doctor_exit_codes_follow_failures_and_strict(tmp_path: Path) -> None:
    shm = tmp_path / "small-shm.json"
    shm.write_text(to_json(factories.snapshot(storage=factories.storage(shm_total_bytes=64 * 1024**2))))
    assert runner.invoke(app, ["doctor", "--from", str(shm)]).exit_code == 0
    assert runner.invoke(app, ["doctor", "--from", str(shm), "--strict"]).exit_code == 1
    assert runner.invoke(app, ["doctor", "--from", str(shm), "--strict", "--skip", "system.shm_size"]).exit_code == 0
    broken = tmp_path / "broken.json"
    framework = factories.framework(torch=None, import_error="ImportError: libcudnn.so.9")
    broken.write_text(to_json(factories.snapshot(framework=framework)))
    result = runner.invoke(app, ["doctor", "--from", str(broken)])
    assert result.exit_code == 1
    assert "libcudnn.so.9" in result.output


def test_only_limits_the_areas(saved: Path) -> None:
    document = json.loads(runner.invoke(app, ["doctor", "--from", str(saved), "--json", "--only", "storage"]).stdout)
    assert {finding["id"].split(".")[0] for finding in document["findings"]} == {"storage"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"{", "not valid JSON"),
        (b'{"schema": "envcheck.snapshot/1", "system": 3}', "invalid snapshot"),
        (b"\x00\xff garbage", "unknown format"),
    ],
)
def test_bad_from_files_are_one_line_errors_with_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_bytes(content)
    for command in ("info", "doctor"):
        result = run(command, "--from", str(path))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and str(path) in result.stderr and message in result.stderr
        assert "Traceback" not in result.stderr


def test_unknown_area_and_missing_python_are_usage_errors(saved: Path) -> None:
    result = run("doctor", "--from", str(saved), "--only", "nonsense")
    assert result.returncode == 2 and "unknown area" in result.stderr
    result = run("info", "--python", "/no/such/python")
    assert result.returncode == 2 and "/no/such/python" in result.stderr


def test_markdown_and_output_file(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    result = runner.invoke(app, ["info", "--from", str(saved), "--markdown", "-o", str(out)])
    assert result.exit_code == 0
    assert "### CPU" in result.output and out.read_text() == result.output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_saved_snapshot_reads_back_equal(saved: Path, tmp_path: Path) -> None:
    # --no-redact: the lossless copy; without it the copy is redacted again and its home paths read `~`
    out = tmp_path / "again.json"
    assert runner.invoke(app, ["info", "--from", str(saved), "--no-redact", "-o", str(out)]).exit_code == 0
    assert from_json(out.read_text()) == from_json(saved.read_text())


def test_info_terminal_shows_unavailable_reasons(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(to_json(factories.snapshot(framework=Unavailable("the framework probe timed out after 60 s"))))
    result = runner.invoke(app, ["info", "--from", str(path)])
    assert result.exit_code == 0
    assert "unavailable: the framework probe timed out after 60 s" in result.output


def test_info_says_why_a_tool_or_limit_is_absent_and_json_keeps_null(tmp_path: Path) -> None:
    # STYLE.md rule 5: a bare dash hides whether clang is missing or unknown; JSON keeps null for "not installed"
    toolchain = factories.toolchain(clang=None, gxx=Unavailable("a collect_env paste shows no g++"))
    memory = replace(factories.memory(), cgroup_limit_bytes=None)
    path = tmp_path / "s.json"
    path.write_text(to_json(factories.snapshot(toolchain=toolchain, memory=memory)))
    terminal = runner.invoke(app, ["info", "--from", str(path)], terminal_width=120)
    markdown = runner.invoke(app, ["info", "--from", str(path), "--markdown"])
    as_json = runner.invoke(app, ["info", "--from", str(path), "--json"])
    assert terminal.exit_code == markdown.exit_code == as_json.exit_code == 0
    lines = [line.strip("│ ").split() for line in terminal.output.splitlines()]
    assert ["clang", "not", "on", "PATH"] in lines and ["nvcc", "not", "on", "PATH"] in lines
    assert ["cgroup", "limit", "no", "limit"] in lines
    assert "unavailable: a collect_env paste shows no g++" in terminal.output
    assert "| clang | not on PATH |" in markdown.output and "| cgroup limit | no limit |" in markdown.output
    facts = json.loads(as_json.output)
    assert facts["toolchain"]["clang"] is None and facts["toolchain"]["nvcc"] is None
    assert facts["memory"]["cgroup_limit_bytes"] is None


def test_info_gpu_table_gives_the_reason_for_each_unknown_cell(tmp_path: Path) -> None:
    gpus = factories.nvidia_smi_gpu("a100-sxm4-80gb-driver535.129.03-ecc-remap-failure")
    temperature = Unavailable("nvmlDeviceGetTemperature: Not Supported")
    link = Unavailable("nvmlDeviceGetCurrPcieLinkGeneration: Unknown Error")
    gpu = replace(gpus.gpus[0], temperature_c=temperature, pcie_generation=link)
    path = tmp_path / "s.json"
    path.write_text(to_json(factories.gpu_machine(replace(gpus, gpus=(gpu,)))))
    terminal = runner.invoke(app, ["info", "--from", str(path)], terminal_width=200)
    markdown = runner.invoke(app, ["info", "--from", str(path), "--markdown"])
    assert terminal.exit_code == markdown.exit_code == 0
    because = (
        "? = unknown: temp: nvmlDeviceGetTemperature: Not Supported; "
        "pcie: nvmlDeviceGetCurrPcieLinkGeneration: Unknown Error"
    )
    assert because in " ".join(terminal.output.replace("│", " ").split()) and because in markdown.output
    row = next(line for line in markdown.output.splitlines() if line.startswith("| 0 |"))
    assert "| ? |" in row and "—" not in row.rsplit("|", 2)[0]


# --- live runs on this machine ------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_info() -> dict:  # type: ignore[type-arg]
    env = dict(os.environ, HF_TOKEN="hf_live_secret_value", PIP_INDEX_URL="https://bob:pw1234@example.com/simple")
    result = run("info", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_live_info_json_has_every_section_collected(live_info: dict) -> None:  # type: ignore[type-arg]
    assert live_info["schema"] == "envcheck.snapshot/1"
    assert [run["status"] for run in live_info["probes"]] == ["ok"] * len(live_info["probes"])
    for section in factories.SECTIONS:
        assert "unavailable" not in live_info[section], live_info[section]
    assert from_json(json.dumps(live_info)).source == "live"


def test_live_secrets_are_redacted_unless_asked(live_info: dict) -> None:  # type: ignore[type-arg]
    assert "hf_live_secret_value" not in json.dumps(live_info)
    env = dict(os.environ, HF_TOKEN="hf_live_secret_value")
    markdown = run("info", "--markdown", "--no-redact", env=env).stdout
    assert "hf_live_secret_value" in markdown
    redacted = run("info", "--markdown", env=env).stdout
    assert "hf_live_secret_value" not in redacted


def test_live_doctor_exits_0_on_this_machine() -> None:
    result = run("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failures" in result.stdout


def test_info_from_nvidia_smi_xml_gives_the_gpu_facts_as_json() -> None:
    result = runner.invoke(
        app, ["info", "--from", str(shared_fixture("nvidia-smi/k80x4-driver430.26-ecc-dbe-retired.xml")), "--json"]
    )
    assert result.exit_code == 0, result.output
    gpu = json.loads(result.stdout)["gpu"]
    assert gpu["driver_version"] == "430.26"
    assert gpu["gpu_count"] == 4
    assert {g["name"] for g in gpu["gpus"]} == {"Tesla K80"}


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<nvidia_smi_log>&lol2;</nvidia_smi_log>",
        b"<nvidia_smi_log><gpu>",
        b"<html><body>not it</body></html>",
    ],
)
def test_hostile_or_broken_xml_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    result = run("doctor", "--from", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"envcheck: error: {path}") and result.stderr.count("\n") == 1


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a system Python without torch")
def test_info_on_an_interpreter_without_torch_names_it_and_does_not_crash() -> None:
    result = run("info", "--json", "--python", "/usr/bin/python3")
    assert result.returncode == 0, result.stderr
    framework = json.loads(result.stdout)["framework"]
    assert framework["interpreter"] == "/usr/bin/python3"
    assert framework["is_torch_installed"] is False


def test_doctor_bench_turns_the_benchmark_verdict_into_findings() -> None:
    result = run("doctor", "--bench", "--only", "install", "--json")
    # the speed verdict depends on how loaded this machine is: only the exit code's agreement with it is tested
    assert result.returncode in (0, 1), result.stderr
    findings = {f["id"]: f for f in json.loads(result.stdout)["findings"]}
    assert findings["bench.correctness"]["severity"] == "ok"
    assert "bench.speed" in findings
    any_failed = any(finding["severity"] == "fail" for finding in findings.values())
    assert result.returncode == (1 if any_failed else 0), result.stdout
