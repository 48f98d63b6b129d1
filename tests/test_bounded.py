"""The one runner for every command envcheck starts: output capped per stream, the whole group killed when the
command ends, at its deadline and at exit. Real tiny executables throughout, no patched subprocess."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from envcheck.probes import bounded
from envcheck.probes.bounded import finish_bounded, run_bounded, start_bounded, stream_bounded
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.framework import probe_framework
from envcheck.probes.nvidia_smi import NvidiaSmiXmlError, parse_nvidia_smi_xml, probe_nvidia_smi
from tests.test_nvidia_smi import fake_nvidia_smi
from tests.test_probe_framework import context, fake_interpreter


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a killed process whose parent has not reaped it yet is gone for our purposes)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not is_running(pid)


def test_output_past_the_limit_stops_the_command_and_says_so() -> None:
    started = time.monotonic()
    finished = run_bounded(["yes"], 30.0, os.environ, output_limit_bytes=1024 * 1024)
    assert time.monotonic() - started < 10
    assert finished.over_limit == "stdout" and finished.returncode is None and not finished.has_timed_out
    assert len(finished.stdout) == 1024 * 1024
    assert finished.over_limit_reason("yes") == "yes printed more than 1 MiB on stdout; stopped"


def test_stderr_has_its_own_limit() -> None:
    finished = run_bounded(["sh", "-c", "echo fine; exec yes >&2"], 30.0, os.environ, output_limit_bytes=4096)
    assert finished.over_limit == "stderr" and finished.stdout == b"fine\n"


def test_children_left_behind_by_a_finished_command_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 600 >/dev/null 2>&1 & echo $! > {pid_file}; echo done"
    finished = run_bounded(["sh", "-c", script], 30.0, os.environ)
    assert finished.returncode == 0 and finished.stdout == b"done\n"
    assert wait_gone(int(pid_file.read_text()))


def test_stop_all_kills_every_live_group_and_starts_nothing_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounded, "_live", {})  # this test's processes only; the switch is reset below
    monkeypatch.setattr(bounded, "_is_stopping", False)
    pid_file = tmp_path / "child.pid"
    process = start_bounded(["sh", "-c", f"sleep 600 & echo $! > {pid_file}; sleep 600"], os.environ)
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.02)
    bounded.stop_all()
    assert wait_gone(int(pid_file.read_text()))
    assert finish_bounded(process, 5.0).returncode == -9  # a probe thread still reading it sees it killed
    with pytest.raises(OSError, match="envcheck is exiting"):
        start_bounded(["true"], os.environ)


def test_streamed_lines_come_as_they_are_printed_and_long_lines_in_pieces() -> None:
    lines: list[str] = []
    script = "print('one'); print('x' * 200000); import sys; print('err', file=sys.stderr); sys.exit(3)"
    code = stream_bounded([sys.executable, "-c", script], os.environ, lines.append)
    assert code == 3
    assert lines[0] == "one" and lines[-1] == "err"
    assert "".join(lines[1:-1]) == "x" * 200000
    assert max(len(line) for line in lines) <= bounded.LINE_LIMIT_BYTES


# --- the probes that use it ---------------------------------------------------------------------------


def test_an_nvidia_smi_printing_without_end_is_stopped(tmp_path: Path) -> None:
    executable = fake_nvidia_smi(tmp_path, 'exec yes "<gpu>"')
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"-q -x printed more than 8 MiB on stdout; stopped$"):
        probe_nvidia_smi(ProbeContext(), executable)
    assert time.monotonic() - started < 10


def test_an_interpreter_printing_without_end_is_stopped(tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "exec yes 'importing torch'\n")
    with pytest.raises(ProbeError, match=r"framework probe printed more than 8 MiB on stdout; stopped$"):
        probe_framework(context(python))


def test_info_with_an_endless_nvidia_smi_ends_quickly_in_little_memory(tmp_path: Path) -> None:
    import json
    import subprocess

    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs /usr/bin/python3")
    fake_nvidia_smi(tmp_path, 'exec yes "<gpu>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</gpu>"')
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    # A Python without torch for the framework probe, so the peak is envcheck's own; measured by a fresh
    # parent, since this test process's RUSAGE_CHILDREN also holds every earlier test's children.
    measure = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stdout.write(done.stdout.decode())\n"
    )
    command = [sys.executable, "-c", measure, sys.executable, "-m", "envcheck", "info", "--json"]
    command += ["--python", "/usr/bin/python3"]
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert time.monotonic() - started < 60
    first, report = result.stdout.split("\n", 1)
    code, peak_kib = map(int, first.split())
    assert code == 0, result.stderr
    assert peak_kib < 300 * 1024, peak_kib
    gpu = json.loads(report)["gpu"]
    if gpu["gpu_count"] == 0:  # on a GPU machine NVML answers and nvidia-smi, the fallback, never runs
        assert gpu["no_gpu_reason"].endswith("nvidia-smi -q -x printed more than 8 MiB on stdout; stopped")


def test_nvidia_smi_xml_with_more_gpus_than_any_node_is_refused_fast() -> None:
    data = b"<nvidia_smi_log>" + b"<gpu><product_name>x</product_name></gpu>" * 100_000 + b"</nvidia_smi_log>"
    started = time.monotonic()
    with pytest.raises(NvidiaSmiXmlError, match=r"more than 64 <gpu> elements; no node has that many GPUs"):
        parse_nvidia_smi_xml(data, "test")
    assert time.monotonic() - started < 2


def test_nvidia_smi_xml_with_too_many_elements_is_refused_fast() -> None:
    data = b"<nvidia_smi_log><gpu>" + b"<x/>" * 600_000 + b"</gpu></nvidia_smi_log>"
    started = time.monotonic()
    with pytest.raises(NvidiaSmiXmlError, match=r"more than 500,000 elements"):
        parse_nvidia_smi_xml(data, "test")
    assert time.monotonic() - started < 5
