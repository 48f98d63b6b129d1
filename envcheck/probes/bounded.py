"""Runs every command envcheck starts: in its own session, under a deadline and an output cap, group killed.

Shared by every probe that shells out (the torch probe, nvidia-smi) and by `setup` running pip: a hung CUDA
init or a GPU that fell off the bus blocks in the kernel, a broken tool can print without end, and the command
may have started children of its own. Each command's whole process group is killed when it ends, at its
deadline, when it prints past the cap, and, through stop_all, on every way envcheck itself exits.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# What one stream of a probe may print before it is stopped. nvidia-smi -q -x on 8 GPUs prints 100-200 KB
# (a 64-GPU node would be a few MiB), the torch probe one JSON line, `pip list --format=json` of a large
# environment a few hundred KB: 8 MiB is far above all of them and still keeps envcheck's memory small.
OUTPUT_LIMIT_BYTES = 8 * 1024 * 1024
LINE_LIMIT_BYTES = 64 * 1024  # a streamed line longer than this (pip prints none) is passed on in pieces
_DRAIN_S = 2.0  # how long to collect output after killing the group; the pipes close as its members die
_CHUNK_BYTES = 64 * 1024
_started_pids: set[int] = set()  # kept after exit too: NVML may list a process a moment after it ended
_lock = threading.Lock()
_live: dict[int, subprocess.Popen[bytes]] = {}  # started and not yet reaped: what stop_all kills
_is_stopping = False  # set by stop_all: envcheck is exiting, and a probe thread must not start anything new


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int | None  # None when the command was still running at the deadline or was stopped for its output
    stdout: bytes  # at most limit_bytes
    stderr: bytes
    over_limit: str | None = None  # "stdout" or "stderr" when that stream passed limit_bytes and the group was killed
    limit_bytes: int = OUTPUT_LIMIT_BYTES

    @property
    def has_timed_out(self) -> bool:
        return self.returncode is None and self.over_limit is None

    def over_limit_reason(self, command: str) -> str:
        """One line for a command stopped for its output: 'nvidia-smi printed more than 8 MiB on stdout; stopped'."""
        return f"{command} printed more than {_mib(self.limit_bytes)} on {self.over_limit}; stopped"


def run_bounded(
    argv: Sequence[str], timeout_s: float, environ: Mapping[str, str], output_limit_bytes: int = OUTPUT_LIMIT_BYTES
) -> Finished:
    """Run `argv` with no stdin; raises OSError when it cannot be started at all."""
    return finish_bounded(start_bounded(argv, environ), timeout_s, output_limit_bytes)


def start_bounded(
    argv: Sequence[str], environ: Mapping[str, str], merge_stderr: bool = False
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, output captured, registered for stop_all; OSError when it cannot start."""
    with _lock:
        if _is_stopping:
            raise OSError(f"envcheck is exiting; not starting {argv[0]}")
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            env=dict(environ),
            start_new_session=True,
        )
        _started_pids.add(process.pid)
        _live[process.pid] = process
    return process


def started_pids() -> frozenset[int]:
    """Every process this envcheck started, for telling its own GPU use from another job's."""
    return frozenset(_started_pids)


def finish_bounded(
    process: subprocess.Popen[bytes], timeout_s: float, output_limit_bytes: int = OUTPUT_LIMIT_BYTES
) -> Finished:
    """Read a started command's output until it ends, the deadline passes or a stream passes the limit; then
    kill its group (children it left behind too) and reap it. Read with a selector, not communicate(),
    which keeps everything a child prints."""
    pipes = _Pipes(process, output_limit_bytes)
    try:
        end = pipes.read_until(time.monotonic() + max(0.0, timeout_s))
        # Both pipes closed: the command is exiting; its status is still due by the deadline.
        has_exited = _has_exited(process, time.monotonic() + max(0.0, timeout_s) if end == "eof" else 0.0)
        _signal_group(process)
        if end == "deadline":  # what it wrote while dying: the reason a hang gives often comes last
            pipes.read_until(time.monotonic() + _DRAIN_S)
    finally:  # an interrupt while reading lands here too: the group must not outlive it
        kill_bounded(process)
    over_limit = end if end in ("stdout", "stderr") else None
    returncode = process.returncode if has_exited and over_limit is None else None
    return Finished(returncode, pipes.stdout, pipes.stderr, over_limit, output_limit_bytes)


def stream_bounded(argv: Sequence[str], environ: Mapping[str, str], on_line: Callable[[str], None]) -> int:
    """Run `argv` with no deadline (pip downloading a 2 GB wheel takes what it takes), stderr into stdout,
    handing on each line as it comes; its group is killed when it ends or when an interrupt stops envcheck
    here. Returns its exit status; OSError when it cannot start."""
    process = start_bounded(argv, environ, merge_stderr=True)
    assert process.stdout is not None  # stdout=PIPE
    try:
        pending = b""
        while chunk := os.read(process.stdout.fileno(), _CHUNK_BYTES):
            *complete, pending = (pending + chunk).split(b"\n")
            lines = [line[at : at + LINE_LIMIT_BYTES] for line in complete for at in _piece_starts(line)]
            while len(pending) > LINE_LIMIT_BYTES:
                lines.append(pending[:LINE_LIMIT_BYTES])
                pending = pending[LINE_LIMIT_BYTES:]
            for line in lines:
                on_line(line.decode("utf-8", "replace").rstrip("\r"))
        if pending:
            on_line(pending.decode("utf-8", "replace"))
        _has_exited(process, float("inf"))
        _signal_group(process)  # what it left behind
    finally:
        kill_bounded(process)
    return process.returncode


def kill_bounded(process: subprocess.Popen[bytes]) -> None:
    """Kill a started command's whole group and reap it, discarding its output."""
    _signal_group(process)
    _reap(process)


def stop_all() -> None:
    """Kill the group of every command still running, and start no more: for every way envcheck exits.

    Does not wait: a member stuck in the kernel (a GPU off the bus) dies when it leaves the call, and a probe
    thread still reading its pipes reaps it; envcheck exiting must not hang on it.
    """
    global _is_stopping  # noqa: PLW0603 - one process-wide switch, flipped once at exit
    with _lock:
        _is_stopping = True
        live = list(_live.values())
    for process in live:
        _signal_group(process)


def allow_starts() -> None:
    """Undo stop_all for a process that goes on after a command line ended (a test run, the fuzzer's parent)."""
    global _is_stopping  # noqa: PLW0603 - the same switch stop_all flips
    with _lock:
        _is_stopping = False


def one_line_tail(output: bytes, limit: int) -> str:
    """The end of a command's output on one line, at most `limit` characters, for a reason."""
    text = " ".join(output.decode("utf-8", "replace").split())
    return text if len(text) <= limit else "..." + text[-limit:]


class _Pipes:
    """A command's stdout and stderr, read as they come, each kept up to the limit."""

    def __init__(self, process: subprocess.Popen[bytes], limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.names = {
            pipe.fileno(): name
            for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr))
            if pipe is not None
        }
        self.buffers = {fd: bytearray() for fd in self.names}
        self.open = set(self.names)

    @property
    def stdout(self) -> bytes:
        return self._output("stdout")

    @property
    def stderr(self) -> bytes:
        return self._output("stderr")

    def read_until(self, deadline: float) -> str:
        """'eof' when every pipe closed, 'deadline', or the name of the stream that passed the limit."""
        with selectors.DefaultSelector() as selector:
            for fd in self.open:
                selector.register(fd, selectors.EVENT_READ)
            while self.open:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "deadline"
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, _CHUNK_BYTES)
                    if not chunk:
                        selector.unregister(key.fd)
                        self.open.discard(key.fd)
                        continue
                    buffer = self.buffers[key.fd]
                    if len(buffer) + len(chunk) > self.limit_bytes:
                        buffer += chunk[: self.limit_bytes - len(buffer)]
                        return self.names[key.fd]
                    buffer += chunk
        return "eof"

    def _output(self, name: str) -> bytes:
        return next((bytes(self.buffers[fd]) for fd, known in self.names.items() if known == name), b"")


def _has_exited(process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Whether the command exits by `deadline`, polled without reaping it: until it is reaped, its group id
    stays its own and cannot be handed to an unrelated group that killing would then hit."""
    delay = 0.001
    while not _is_exited(process):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


def _is_exited(process: subprocess.Popen[bytes]) -> bool:
    if process.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # macOS before Python 3.13: reaping at once is the only way to ask
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped by another thread already
        return True


def _signal_group(process: subprocess.Popen[bytes]) -> None:
    # ProcessLookupError: the group is already gone; PermissionError: on macOS, a group of only zombies
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Close the pipes (a member that left the group with setsid may still hold them) and wait for the command."""
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    process.wait()
    with _lock:
        _live.pop(process.pid, None)


def _piece_starts(line: bytes) -> range:
    return range(0, max(len(line), 1), LINE_LIMIT_BYTES)  # an empty line is one (empty) piece


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"
