"""A head start for the torch probe: spawned before envcheck imports its command line, adopted by the probe.

`import torch` in the probe's subprocess is the critical path of `envcheck doctor` (1.4 s on a 2-core box).
Started first thing, it runs while envcheck imports Typer, rich, its checks and its knowledge, instead of
after them. The probe adopts the process only when it was started exactly as the probe would start it
(same command, environment and working directory); otherwise, and at exit when nobody adopted it, its
process group is killed. Imports stay minimal: this runs before anything else.
"""

from __future__ import annotations

import atexit
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envcheck.probes.bounded import kill_bounded, start_bounded

SCRIPT = Path(__file__).with_name("target_script.py")


def script_argv(executable: str, mode: str) -> list[str]:
    """The command that runs target_script.py in MODE: the one place both starts build it."""
    return [executable, str(SCRIPT), mode]


@dataclass(frozen=True, slots=True)
class HeadStart:
    argv: tuple[str, ...]
    environ: dict[str, str]
    cwd: str
    process: subprocess.Popen[bytes]
    started: float  # time.monotonic() at the start

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


_lock = threading.Lock()
_waiting: list[HeadStart] = []


def start(executable: str, mode: str, environ: Mapping[str, str]) -> bool:
    """Start the probe of `executable` now; False when it cannot start (the probe will then say why)."""
    argv = script_argv(executable, mode)
    try:
        cwd = str(Path.cwd())
        process = start_bounded(argv, environ)
    except OSError:
        return False
    with _lock:
        if not _waiting:
            atexit.register(discard)
        _waiting.append(HeadStart(tuple(argv), dict(environ), cwd, process, time.monotonic()))
    return True


def claim(argv: list[str], environ: Mapping[str, str]) -> HeadStart | None:
    """The waiting process started with exactly this command, environment and working directory, or None.

    A process started differently cannot stand in for this run and would only compete for the CPU:
    it is killed.
    """
    with _lock:
        waiting = list(_waiting)
        _waiting.clear()
    try:
        cwd = str(Path.cwd())
    except OSError:  # the working directory was removed: nothing can be proven the same
        cwd = ""
    adopted = None
    for head_start in waiting:
        if (
            adopted is None
            and head_start.argv == tuple(argv)
            and head_start.environ == environ
            and head_start.cwd == cwd
        ):
            adopted = head_start
        else:
            kill_bounded(head_start.process)
    return adopted


def discard() -> None:
    """Kill every process nobody adopted (the command failed to parse, asked for --help, ...)."""
    with _lock:
        waiting = list(_waiting)
        _waiting.clear()
    for head_start in waiting:
        kill_bounded(head_start.process)
