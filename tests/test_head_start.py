"""The torch probe's head start: when the launcher starts it early, that the probe adopts only a matching
run, and that nothing started early outlives envcheck. Real subprocesses throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from envcheck.launch import wants_head_start
from envcheck.probes import head_start
from envcheck.probes.target import run_target_script


@pytest.fixture(autouse=True)
def nothing_left_waiting() -> Iterator[None]:
    yield
    head_start.discard()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["doctor"], True),
        (["doctor", "--json", "-v"], True),
        (["info", "--json", "--timeout", "30"], True),
        (["doctor", "--fast"], False),
        (["doctor", "--from", "snapshot.json"], False),
        (["doctor", "--from=snapshot.json"], False),
        (["info", "--python", "/opt/conda/bin/python"], False),
        (["doctor", "--help"], False),
        (["doctor", "-h"], False),
        (["bench"], False),
        (["recommend", "--workload", "llama-7b-lora"], False),
        (["--version"], False),
        ([], False),
    ],
)
def test_which_command_lines_start_the_probe_early(arguments: list[str], expected: bool) -> None:
    assert wants_head_start(arguments) is expected


def test_the_probe_adopts_a_matching_early_run() -> None:
    environ = dict(os.environ)
    assert head_start.start(sys.executable, "interpreter", environ)
    [waiting] = head_start._waiting
    data = run_target_script(sys.executable, "interpreter", 60.0, environ)
    assert data["executable"] == sys.executable
    assert waiting.process.returncode == 0  # the early process produced the result: it was waited for
    assert head_start._waiting == []


def test_an_early_run_with_another_environment_is_killed_not_adopted(tmp_path: Path) -> None:
    sleeper = tmp_path / "python"
    sleeper.write_text("#!/bin/sh\nexec sleep 60\n")
    sleeper.chmod(0o755)
    assert head_start.start(str(sleeper), "framework", {**os.environ, "CUDA_VISIBLE_DEVICES": "1"})
    [waiting] = head_start._waiting
    assert head_start.claim(head_start.script_argv(str(sleeper), "framework"), dict(os.environ)) is None
    assert waiting.process.returncode is not None  # killed and reaped


def test_an_early_run_of_another_interpreter_is_killed(tmp_path: Path) -> None:
    sleeper = tmp_path / "python"
    sleeper.write_text("#!/bin/sh\nexec sleep 60\n")
    sleeper.chmod(0o755)
    assert head_start.start(str(sleeper), "framework", os.environ)
    [waiting] = head_start._waiting
    data = run_target_script(sys.executable, "interpreter", 60.0, dict(os.environ))
    assert data["executable"] == sys.executable
    assert waiting.process.returncode is not None


def test_an_interpreter_that_cannot_start_is_left_to_the_probe(tmp_path: Path) -> None:
    assert head_start.start(str(tmp_path / "missing-python"), "framework", os.environ) is False
    assert head_start._waiting == []


def run_launcher(arguments: list[str]) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    """`envcheck ARGUMENTS` through the real launcher, recording each target_script process it starts."""
    code = textwrap.dedent(
        f"""
        import json, subprocess, sys
        starts = []
        real_init = subprocess.Popen.__init__
        def recording_init(self, args, *rest, **options):
            real_init(self, args, *rest, **options)
            if any(str(part).endswith("target_script.py") for part in args):
                starts.append({{"pid": self.pid, "mode": args[-1]}})
        subprocess.Popen.__init__ = recording_init
        sys.argv = ["envcheck", *{arguments!r}]
        from envcheck.launch import main
        try:
            main()
        finally:
            sys.stderr.write("STARTS:" + json.dumps(starts) + "\\n")
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, cwd=Path.cwd()
    )
    [line] = [line for line in finished.stderr.splitlines() if line.startswith("STARTS:")]
    return finished, json.loads(line.removeprefix("STARTS:"))


def test_info_starts_the_torch_probe_once_and_reports_it() -> None:
    finished, starts = run_launcher(["info", "--json"])
    assert finished.returncode == 0, finished.stderr
    assert [start["mode"] for start in starts] == ["framework"]  # the early run, adopted: no second one
    framework = json.loads(finished.stdout)["framework"]
    assert framework["is_torch_installed"] is True
    assert framework["torch"]["version"]


def test_an_early_run_nobody_adopts_is_killed_at_exit() -> None:
    finished, starts = run_launcher(["doctor", "--no-such-option"])
    assert finished.returncode == 2
    [start] = starts
    with pytest.raises(ProcessLookupError):  # killed and reaped before envcheck exited
        os.kill(int(str(start["pid"])), 0)
