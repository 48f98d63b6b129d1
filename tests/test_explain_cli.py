"""`envcheck explain` end to end: real processes reading a file, `-`, a pipe and a terminal; the exit codes, JSON,
Markdown, -o, --from, and the one-line refusals of what is not a log."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_explain import DRIVER_TOO_OLD, NMS, NO_KERNEL

ENVCHECK = [sys.executable, "-m", "envcheck", "explain"]
FIXTURES = Path(__file__).parent / "fixtures"
SHAPE_BUG = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 256x10)\n"


def run(*args: str, stdin: str | None = None, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENVCHECK, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "train.log"
    path.write_text("epoch 1 loss 0.9\n" * 20 + DRIVER_TOO_OLD)
    return path


def test_file_recognised_exits_1_and_quotes_the_line(log: Path) -> None:
    result = run(str(log), "--no-probe", env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 1, result.stderr
    assert "cuda.driver_too_old" in result.stdout
    assert "line 25" in result.stdout and "found version 11040" in result.stdout
    assert "CUDA 11.4" in result.stdout


def test_piped_standard_input_without_an_argument() -> None:
    result = run("--no-probe", stdin=DRIVER_TOO_OLD)
    assert result.returncode == 1, result.stderr
    assert "standard input" in result.stdout


def test_dash_reads_standard_input() -> None:
    result = run("-", "--no-probe", "--json", stdin=SHAPE_BUG)
    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert document["schema"] == "envcheck.explain/1"
    assert document["recognised"] is True
    assert [f["signature"] for f in document["findings"]] == ["code.shape_mismatch"]
    assert document["findings"][0]["blames_environment"] is False


def test_not_recognised_exits_0_and_says_so() -> None:
    result = run("--json", stdin="Epoch 3: loss 0.41, accuracy 0.87\nTraining finished.\n")
    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert document["recognised"] is False and document["findings"] == []
    text = run(stdin="nothing to see\n")
    assert text.returncode == 0 and "Not recognised" in text.stdout


def test_json_envelope(log: Path) -> None:
    document = json.loads(run(str(log), "--no-probe", "--json").stdout)
    assert document["exit_code"] == 1
    assert document["input"]["lines"] == 25
    finding = document["findings"][0]
    assert finding["signature"] == "cuda.driver_too_old" and finding["line"] == 25
    assert finding["cause"] == "driver_behind_wheel"
    assert {"fix", "is_fix_specific", "because", "decoded", "candidates", "links", "quoted_line"} <= set(finding)


def test_markdown_and_output_file(log: Path, tmp_path: Path) -> None:
    saved = tmp_path / "report.md"
    result = run(str(log), "--no-probe", "--markdown", "-o", str(saved))
    assert result.returncode == 1
    assert result.stdout.startswith("**Recognised 1 environment failure(s)**")
    assert "### The NVIDIA driver is too old" in result.stdout
    assert saved.read_text() == result.stdout


def test_from_a_collect_env_paste_judges_against_its_facts(tmp_path: Path) -> None:
    error = tmp_path / "error.txt"
    error.write_text(NO_KERNEL)
    paste = FIXTURES / "collect_env" / "linux-torch2.1-cu121-tesla-k80-sm37.txt"
    document = json.loads(run(str(error), "--from", str(paste), "--json").stdout)
    finding = document["findings"][0]
    assert finding["cause"] == "gpu_too_old", finding
    assert "Tesla K80" in " ".join(finding["decoded"])
    assert "cu1" in finding["fix"]


def test_from_picks_the_torchvision_cause(tmp_path: Path) -> None:
    error = tmp_path / "error.txt"
    error.write_text(NMS)
    paste = FIXTURES / "collect_env" / "linux-torch2.1-cu118-torchvision0.15-mismatch.txt"
    document = json.loads(run(str(error), "--from", str(paste), "--json").stdout)
    assert document["findings"][0]["cause"] == "version_mismatch"


def test_live_probe_with_fast(log: Path) -> None:
    result = run(str(log), "--fast", "--json")
    document = json.loads(result.stdout)
    assert result.returncode == 1
    assert document["snapshot_source"].startswith("this machine")


@pytest.mark.parametrize("kind", ["directory", "fifo", "missing"])
def test_what_is_not_a_log_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "thing"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    result = run(str(target), "--no-probe")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("envcheck: error: "), result.stderr
    assert "Traceback" not in result.stderr


def test_a_log_over_the_limit_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.log"
    with huge.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: refused from its size, never read
    result = run(str(huge), "--no-probe")
    assert result.returncode == 2
    assert "larger than 64 MiB, the limit for a log" in result.stderr


def test_a_terminal_on_standard_input_is_a_usage_error_not_a_wait() -> None:
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(ENVCHECK, stdin=terminal, capture_output=True, text=True, timeout=60, check=False)
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "envcheck: error: no input: give a FILE, or pipe the error in (python train.py 2>&1 | envcheck explain)"
    )


def test_control_characters_in_the_log_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil.log"
    path.write_bytes(b"\x1b]2;owned\x07RuntimeError: Found no NVIDIA driver on your system \x1b[2J\xff\xfe\n")
    result = run(str(path), "--no-probe")
    assert result.returncode == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout


def test_json_and_markdown_together_is_a_usage_error(log: Path) -> None:
    result = run(str(log), "--json", "--markdown")
    assert result.returncode == 2 and "cannot be used together" in result.stderr


def test_tokens_in_the_quoted_line_are_redacted_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "download.log"
    path.write_text(
        "RuntimeError: Found no NVIDIA driver on your system (https://user:s3cretpass@hub.example.com "
        "token=hf_abcdefghijklmnopqrstu)\n"
    )
    shown = run(str(path), "--no-probe", "--json").stdout
    assert "s3cretpass" not in shown and "hf_abcdefghijklmnopqrstu" not in shown and "<redacted>" in shown
    assert "hf_abcdefghijklmnopqrstu" in run(str(path), "--no-probe", "--json", "--no-redact").stdout


def test_a_pasted_issue_is_judged_against_its_own_collect_env_report(tmp_path: Path) -> None:
    issue = tmp_path / "issue.md"
    warning = (FIXTURES / "explain" / "leggedlab-26-rtx5090-sm120.txt").read_text()
    report = (FIXTURES / "collect_env" / "linux-torch2.5-cu124-rtx5090-sm120.txt").read_text()
    issue.write_text(f"### Describe the bug\nTraining fails:\n```\n{warning}```\n### Versions\n{report}")
    document = json.loads(run(str(issue), "--json").stdout)  # no --from, no probe of this machine
    assert document["snapshot_source"].startswith("the collect_env report in the text (line")
    finding = document["findings"][0]
    assert finding["cause"] == "gpu_too_new"
    assert "cu129" in finding["fix"]  # the newest wheel the paste's driver runs, not this machine's


def test_a_log_that_prints_a_torch_version_is_not_taken_for_a_report(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("PyTorch version: 2.3.1\nstarting\n" + DRIVER_TOO_OLD)
    document = json.loads(run(str(log), "--no-probe", "--json").stdout)
    assert document["snapshot_source"] == "the text alone (--no-probe)"
