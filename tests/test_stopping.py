"""How envcheck stops early, through the real command line: SIGTERM and Ctrl-C end in one line and 143 / 130
with no child left behind (a hanging probe's session, pip during `setup --apply`), and a reader closing
stdout ends envcheck quietly with 0."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.test_bounded import wait_gone
from tests.test_probe_framework import fake_interpreter


def envcheck(*arguments: str, stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "envcheck", *arguments], stdout=stdout, stderr=subprocess.PIPE, text=True
    )


def wait_for_pid(pid_file: Path, process: subprocess.Popen[str], within_s: float = 30.0) -> int:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip():
            return int(pid_file.read_text())
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{pid_file} never written")


@pytest.mark.parametrize(
    ("signal_number", "code", "message"),
    [(signal.SIGTERM, 143, "envcheck: terminated"), (signal.SIGINT, 130, "envcheck: interrupted")],
)
def test_a_signal_during_a_hanging_probe_kills_its_children_too(
    tmp_path: Path, signal_number: int, code: int, message: str
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    python = fake_interpreter(tmp_path, f"sleep 600 &\necho $! > {pid_file}\nsleep 600\n")
    process = envcheck("setup", "--python", python)
    grandchild = wait_for_pid(pid_file, process)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert stderr.strip() == message
    assert wait_gone(grandchild)


def test_sigterm_during_setup_apply_stops_pip_and_its_children(tmp_path: Path) -> None:
    """A fake interpreter: a real Python for the probe, a pip that hangs in `install` after starting a child."""
    pid_file = tmp_path / "pip-child.pid"
    python = tmp_path / "python"
    python.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(f"""\
        import runpy, subprocess, sys, time
        if sys.argv[1:3] == ["-m", "pip"]:
            command = sys.argv[3]
            if command == "--version":
                print("pip 24.0 from {tmp_path} (python 3)")
            elif command == "list":
                print("[]")
            elif command == "install":
                print("Collecting torch", flush=True)
                child = subprocess.Popen(["sleep", "600"])
                with open({str(pid_file)!r}, "w") as file:
                    file.write(str(child.pid))
                time.sleep(600)
            sys.exit(0)
        sys.executable = {str(python)!r}  # the probe reports this interpreter, so setup runs this pip
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
        """)
    )
    python.chmod(0o755)
    process = envcheck("setup", "--apply", "--yes", "--python", str(python))
    pip_child = wait_for_pid(pid_file, process, within_s=60)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert stderr.strip() == f"envcheck: terminated: pip was stopped; the packages of {python} may be partly changed"
    assert "Collecting torch" in stdout
    assert wait_gone(pip_child)


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipes of a chosen size")
def test_a_reader_that_closes_stdout_ends_envcheck_quietly_with_0(tmp_path: Path) -> None:
    # A pipe smaller than the report makes envcheck block writing until the reader has gone: a sure EPIPE.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    python = fake_interpreter(tmp_path, "exit 3\n")  # no torch probe: fast, and the report is still long
    process = envcheck("info", "--python", python, stdout=write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert reader.readline()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == ""


def test_a_command_line_run_in_process_leaves_the_process_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests and the fuzzer run several command lines in one process: SIGTERM's handler comes back, and starts
    stay refused after the run (a probe thread must not start a child while envcheck exits) until the next
    command line, or allow_starts(), says otherwise."""
    from envcheck.cli import main
    from envcheck.probes.bounded import allow_starts, run_bounded

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(sys, "argv", ["envcheck", "recommend", "--params", "1B", "--json"])
    with pytest.raises(SystemExit):
        main()
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(OSError, match="envcheck is exiting"):
        run_bounded(["true"], 5.0, os.environ)
    allow_starts()
    assert run_bounded(["true"], 5.0, os.environ).returncode == 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch (the bench extra)")
@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_bench_stops_its_dataloader_workers(signal_number: int, code: int) -> None:
    """Persistent DataLoader workers are forked children that hold /dev/shm: none may outlive a stopped bench."""
    process = envcheck(
        *("bench", "--synthetic", "--loader", "dataloader", "--workers", "2", "--device", "cpu"),
        *("--steps", "100000", "--no-ceiling", "--no-save"),
    )
    workers = wait_for_children(process, count=2, within_s=120)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert all(wait_gone(worker) for worker in workers), "a DataLoader worker outlived the bench"


def wait_for_children(process: subprocess.Popen[str], count: int, within_s: float) -> list[int]:
    """The pids of the process's children once it has `count` of them (the DataLoader workers have started)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        parent = psutil.Process(process.pid)
        # Forked workers keep the parent's command line; the short-lived NVML and probe children do not.
        workers = [child.pid for child in parent.children() if child.cmdline() == parent.cmdline()]
        if len(workers) >= count:
            return workers
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError(f"the bench never started {count} worker processes")
