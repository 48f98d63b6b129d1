"""Secrets, home paths and control characters out of what envcheck shows and shares: through the real CLI, on a
snapshot written by `envcheck info --json --no-redact -o` and read back with --from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envcheck.cli import app
from envcheck.redaction import REDACTED, anonymise_home, redact_value
from envcheck.render.values import code_span

ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
SECRETS = {
    "HF_ENDPOINT": ("https://bob:pa/ss@host", "pa/ss"),
    "NCCL_IB_PASS": ("hunter2", "hunter2"),
    "TORCH_X": ("sk-abc123def456ghi789", "sk-abc123"),
    "TORCH_JWT_CFG": (JWT, "eyJhbGci"),
    "HF_HUB_MIRROR": ("hf_abcdefghijklmnopqrstuvwx", "hf_abcdef"),
    "MASTER_ADDR": ("user:pw@10.0.0.1", "user:pw"),
}


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=ENV)
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A snapshot saved with --no-redact, its secrets put in as a leaked file would hold them."""
    path = tmp_path / "snapshot.json"
    invoke("info", "--json", "--no-redact", "-o", str(path))
    data = json.loads(path.read_text())
    data["environment"]["variables"] = [
        {"name": name, "value": value, "is_redacted": False} for name, (value, _) in SECRETS.items()
    ] + [{"name": "HF_TOKEN", "value": "hf_plainsecretvalue123", "is_redacted": False}]
    data["environment"]["variables"].append({"name": "CUDA_HOME", "value": "/home/alice/cuda", "is_redacted": False})
    data["system"]["hostname"] = "host\x1b[2J\x1b]0;T\x07"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("form", [["--json"], ["--markdown"], []])
def test_secrets_are_redacted_by_value_on_every_render_of_a_loaded_file(saved: Path, form: list[str]) -> None:
    text = invoke("info", "--from", str(saved), *form)
    for name, (_, secret) in SECRETS.items():
        assert secret not in text, name
    assert "hf_plainsecretvalue123" not in text
    assert "host" in text


def test_no_redact_on_the_render_keeps_the_secrets(saved: Path) -> None:
    text = invoke("info", "--from", str(saved), "--markdown", "--no-redact")
    assert "hf_plainsecretvalue123" in text and "pa/ss" in text


def test_password_with_slash_and_at_is_redacted_whole() -> None:
    assert redact_value("HF_ENDPOINT", "https://bob:pa/ss@host") == (f"https://{REDACTED}@host", True)
    assert redact_value("HF_ENDPOINT", "https://bob:p@ss@host:8080/x") == (f"https://{REDACTED}@host:8080/x", True)
    assert redact_value("MASTER_ADDR", "user:pw@10.0.0.1") == (f"{REDACTED}@10.0.0.1", True)
    assert redact_value("HF_HOME", "/data/hf") == ("/data/hf", False)


def test_home_is_anonymised_in_shared_output(saved: Path, tmp_path: Path) -> None:
    for form in (["--json"], ["--markdown"]):
        assert "/home/alice" not in invoke("info", "--from", str(saved), *form)
    report = tmp_path / "report.md"
    invoke("doctor", "--from", str(saved), "--markdown", "-o", str(report))
    assert "/home/alice" not in report.read_text()
    home = str(Path("~").expanduser())
    assert anonymise_home(f"{home}/x /Users/bob/y /root/z /rootfs", home=home) == "~/x ~/y ~/z /rootfs"


def test_control_characters_are_shown_not_sent(saved: Path) -> None:
    for form in (["--markdown"], []):
        text = invoke("info", "--from", str(saved), *form)
        assert "\x1b" not in text and "\x07" not in text
        assert "host\\x1b[2J\\x1b]0;T\\x07" in text


def test_code_span_outlasts_backticks_inside() -> None:
    assert code_span("run `pip install x`") == "`` run `pip install x` ``"
    assert code_span("`x`") == "`` `x` ``"
