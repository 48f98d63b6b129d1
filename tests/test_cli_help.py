"""`--help` shows flags as flags: no `<bool>` after `--json` (`--json true` is a usage error), no Python types."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

COMMANDS = ["info", "doctor", "bench", "recommend", "setup", "cluster", "explain"]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_no_python_types(command: str) -> None:
    output = _help(*([command] if command else []))
    assert not re.search(r"<(bool|str|path|int|float|list\[[A-Za-z]+\])[^>]*>", output), output


def test_flags_show_no_value_and_options_show_a_plain_metavar() -> None:
    output = _help("doctor")
    json_row = next(line for line in output.splitlines() if "--json" in line)
    assert re.search(r"--json\s+Print JSON", json_row), json_row
    from_row = next(line for line in output.splitlines() if "--from" in line)
    assert "PATH" in from_row


def _help(*command: str) -> str:
    """The help the installed script prints (the real entry point, not the bare Typer app)."""
    environ = {**os.environ, "COLUMNS": "160"}
    result = subprocess.run(
        [sys.executable, "-m", "envcheck", *command, "--help"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
