"""Runs target_script.py in the target interpreter, bounded and isolated, and returns the JSON it printed.

Shared by the python and framework probes. Every way the run can go wrong (no interpreter, a hang, a
crash, a non-zero exit, output without the result) becomes one ProbeError with a one-line reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from envcheck.codec import DecodeError, decode
from envcheck.probes import head_start, target_script
from envcheck.probes.bounded import finish_bounded, one_line_tail, run_bounded
from envcheck.probes.errors import ProbeError

T = TypeVar("T")

_TAIL_CHARS = 400  # how much of a failing run's stderr a reason quotes


def resolve_interpreter(python: str, environ: Mapping[str, str]) -> str:
    """The interpreter's path: a bare name (`python3`) is looked up on the target's PATH, as a shell would."""
    found = shutil.which(python, path=environ.get("PATH", os.defpath)) if os.sep not in python else python
    if found is None or not Path(found).is_file():
        raise ProbeError(f"interpreter not found: {python}")
    if not os.access(found, os.X_OK):
        raise ProbeError(f"interpreter not found: {python} (not an executable file)")
    return found


def run_target_script(python: str, mode: str, timeout_s: float, environ: Mapping[str, str]) -> dict[str, Any]:
    """Run `PYTHON target_script.py MODE` and return the JSON object it printed after its marker.

    No interpreter flags: -I and -E would drop PYTHONPATH and -s the user site, which the user's own
    runs have, and a second torch in the user site is one of the things we look for. The working
    directory is inherited, so relative PYTHONPATH entries resolve as they do for the user (see
    target_script.main for what that means for sys.path).

    The run gets its own session and the whole process group is killed on timeout: torch may have
    started helper processes, and a hung CUDA init blocks in the kernel. A run that `envcheck.launch`
    started ahead with this exact command, environment and working directory is adopted instead.
    """
    executable = resolve_interpreter(python, environ)
    argv = head_start.script_argv(executable, mode)
    try:
        adopted = head_start.claim(argv, environ)
        if adopted is None:
            finished = run_bounded(argv, timeout_s, environ)
        else:  # started before the command line was parsed (envcheck.launch); the deadline counts from then
            finished = finish_bounded(adopted.process, max(0.0, timeout_s - adopted.elapsed_s()))
    except OSError as error:
        raise ProbeError(f"cannot run {executable}: {error.strerror or error}") from None
    if finished.over_limit is not None:  # a broken interpreter printing without end
        raise ProbeError(finished.over_limit_reason(f"{executable} {mode} probe"))
    if finished.returncode is None:
        raise ProbeError(
            f"{executable} {mode} probe did not finish within {timeout_s:g} s and was killed"
            f" (importing torch or initialising CUDA hung?){_stderr_note(finished.stderr)}"
        )
    return parse_output(executable, mode, finished.returncode, finished.stdout, finished.stderr)


def parse_output(executable: str, mode: str, returncode: int, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    """The result object from a finished run, or a ProbeError saying why there is none."""
    where = f"{executable} {mode} probe"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        raise ProbeError(f"{where} crashed with {name}{_stderr_note(stderr)}")
    if returncode != 0:
        raise ProbeError(f"{where} exited with status {returncode}{_stderr_note(stderr) or ' and no error output'}")
    lines = [line for line in stdout.decode("utf-8", "replace").splitlines() if line.startswith(target_script.MARKER)]
    if not lines:
        raise ProbeError(f"{where} printed no result (is it Python 3.8 or newer?){_stderr_note(stderr)}")
    try:
        result = json.loads(lines[-1][len(target_script.MARKER) :])
    except json.JSONDecodeError as error:
        raise ProbeError(f"{where} printed an unreadable result: {error}") from None
    if not isinstance(result, dict):
        raise ProbeError(f"{where} printed {type(result).__name__} JSON, not an object")
    return result


def _stderr_note(stderr: bytes) -> str:
    """The end of stderr, on one line, for a reason: ': ...last words' or ''."""
    text = one_line_tail(stderr, _TAIL_CHARS)
    return f": {text}" if text else ""


def decode_result(cls: type[T], data: dict[str, Any], python: str, mode: str) -> T:
    """The facts in a result object; fields the script got wrong become a ProbeError naming the field."""
    try:
        return decode(cls, data)
    except DecodeError as error:
        raise ProbeError(f"{python} {mode} probe printed facts envcheck cannot read: {error}") from None
