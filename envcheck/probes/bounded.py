"""Runs a command in its own session under a deadline, killing its whole process group on overrun.

Shared by every probe that shells out (the torch probe, nvidia-smi): a hung CUDA init or a GPU that
fell off the bus blocks in the kernel, and the command may have started children of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_DRAIN_S = 2.0  # how long to collect output after killing the group; the pipes close as its members die
_started_pids: set[int] = set()  # kept after exit too: NVML may list a process a moment after it ended


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int | None  # None when the command itself was still running at the deadline
    stdout: bytes
    stderr: bytes

    @property
    def has_timed_out(self) -> bool:
        return self.returncode is None


def run_bounded(argv: Sequence[str], timeout_s: float, environ: Mapping[str, str]) -> Finished:
    """Run `argv` with no stdin; raises OSError when it cannot be started at all."""
    return finish_bounded(start_bounded(argv, environ), timeout_s)


def start_bounded(argv: Sequence[str], environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, output captured; raises OSError when it cannot be started."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(environ),
        start_new_session=True,
    )
    _started_pids.add(process.pid)
    return process


def started_pids() -> frozenset[int]:
    """Every process this envcheck started, for telling its own GPU use from another job's."""
    return frozenset(_started_pids)


def finish_bounded(process: subprocess.Popen[bytes], timeout_s: float) -> Finished:
    """Wait up to `timeout_s` for a started command, then kill its group; what it wrote either way."""
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        # A child that kept our pipes open also gets here after the command itself finished: keep its result.
        has_exited = process.poll() is not None
        stdout, stderr = _kill_group(process)
        return Finished(process.returncode if has_exited else None, stdout, stderr)
    return Finished(process.returncode, stdout, stderr)


def kill_bounded(process: subprocess.Popen[bytes]) -> None:
    """Kill a started command's whole group and reap it, discarding its output."""
    _kill_group(process)


def one_line_tail(output: bytes, limit: int) -> str:
    """The end of a command's output on one line, at most `limit` characters, for a reason."""
    text = " ".join(output.decode("utf-8", "replace").split())
    return text if len(text) <= limit else "..." + text[-limit:]


def _kill_group(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Kill the process group and return what it had written."""
    # ProcessLookupError: the group is already gone; PermissionError: on macOS, a group of only zombies
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        return process.communicate(timeout=_DRAIN_S)
    except subprocess.TimeoutExpired:
        # a process that left the group (setsid) still holds the pipes: give up on the output, not on the wait
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
        return b"", b""
