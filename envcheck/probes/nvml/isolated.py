"""Runs the live NVML probe in a child process (child.py) and reads its answer, so a crashing NVML is a finding.

NVML is a vendor library loaded into the asking process: one that segfaults (a wrong libnvidia-ml.so.1 on
LD_LIBRARY_PATH, a binding that does not match the driver) or hangs (a GPU that fell off the bus) would
take envcheck with it. The child's signal, exit status, silence or garbage becomes one ProbeError whose
reason says what failed, in which NVML call, and which library was loaded.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.codec import DecodeError, decode
from envcheck.facts.gpu import GpuFacts
from envcheck.probes.bounded import Finished, one_line_tail, run_bounded
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError, ProbeTimeout
from envcheck.probes.nvml.absence import LIBRARY, library_from_ld_library_path
from envcheck.probes.nvml.backend import NvmlError
from envcheck.probes.nvml.child import CALL_MARKER, RECORD, RESULT_MARKER
from envcheck.probes.nvml.replay import Recording, RecordingFormatError, recording_from_json

# nvmlInit on eight GPUs without the persistence daemon takes seconds; a lost GPU hangs it for good.
NVML_TIMEOUT_S = 12.0
_TAIL_CHARS = 300
# The folder that holds the envcheck package, put first on the child's path: the child must run this
# envcheck, whatever PYTHONPATH the probed environment has; the working directory is left off the path.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
_BOOTSTRAP = (
    "import sys; sys.path[:] = [{root!r}] + [p for p in sys.path if p]; "
    "from envcheck.probes.nvml.child import main; main(sys.argv[1:])"
)
_XID_FIX = (
    "look for Xid errors with `dmesg | grep -i xid`; a GPU that fell off the bus needs `nvidia-smi -r` or a reboot"
)


@dataclass(frozen=True, slots=True)
class NvmlAnswer:
    """What the child's NVML said: the facts, or the error nvmlInit (or the device count) answered."""

    result: GpuFacts | NvmlError
    recording: Recording | None  # record mode only


def child_argv(context: ProbeContext, *, is_recording: bool = False) -> list[str]:
    """The command that runs child.py with envcheck's own interpreter (it needs envcheck and nvidia-ml-py)."""
    mode = RECORD if is_recording else "probe"
    return [sys.executable, "-c", _BOOTSTRAP.format(root=_PACKAGE_ROOT), str(context.roots.proc), mode]


def ask_nvml(context: ProbeContext, *, is_recording: bool = False, timeout_s: float = NVML_TIMEOUT_S) -> NvmlAnswer:
    """Run the NVML child in the probed environment (LD_LIBRARY_PATH and all) under `timeout_s`.

    Command line equivalent: `nvidia-smi -q`, which loads the same libnvidia-ml.so.1.
    Raises ProbeError (ProbeTimeout for a hang) when the child crashes, hangs or answers nothing readable.
    """
    argv = child_argv(context, is_recording=is_recording)
    try:
        finished = run_bounded(argv, timeout_s, context.environ)
    except OSError as error:
        raise ProbeError(f"cannot start the NVML probe with {sys.executable}: {error.strerror or error}") from None
    return read_answer(finished, context, timeout_s)


def read_answer(finished: Finished, context: ProbeContext, timeout_s: float) -> NvmlAnswer:
    """The child's answer, or the ProbeError that says how it failed (signal, status, timeout, garbage)."""
    stdout = finished.stdout.decode("utf-8", "replace").splitlines()
    calls = [line[len(CALL_MARKER) :] for line in stdout if line.startswith(CALL_MARKER)]
    during = _during(calls[-1] if calls else None)
    library = library_from_ld_library_path(context)
    loaded = f"; {LIBRARY} from LD_LIBRARY_PATH: {library}" if library else ""
    if finished.returncode is None:
        raise ProbeTimeout(
            f"NVML hung{during}: no answer within {timeout_s:g} s, so the probe was killed{loaded}",
            _without(library, _XID_FIX),
        )
    if finished.returncode < 0:
        raise ProbeError(
            f"the NVML library crashed ({_signal_name(-finished.returncode)}){during}{loaded}",
            _crash_fix(library, calls[-1] if calls else None),
        )
    if finished.returncode != 0:
        tail = one_line_tail(finished.stderr, _TAIL_CHARS) or "no error output"
        raise ProbeError(f"the NVML probe exited with status {finished.returncode}{during}: {tail}")
    results = [line[len(RESULT_MARKER) :] for line in stdout if line.startswith(RESULT_MARKER)]
    if not results:
        tail = one_line_tail(finished.stderr, _TAIL_CHARS)
        raise ProbeError(f"the NVML probe printed no result{during}" + (f": {tail}" if tail else ""))
    try:
        return _decode(json.loads(results[-1]))
    except (ValueError, DecodeError, RecordingFormatError) as error:  # JSONDecodeError is a ValueError
        raise ProbeError(f"the NVML probe printed a result envcheck cannot read: {error}") from None


def _decode(result: Any) -> NvmlAnswer:
    if not isinstance(result, dict):
        raise DecodeError(f"$: expected an object, got {type(result).__name__}")
    raw = result.get("recording")
    recording = None if raw is None else recording_from_json(raw, "the recording")
    error = result.get("nvml_error")
    if error is not None:
        if not (
            isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("detail"), str)
        ):
            raise DecodeError("$.nvml_error: expected an object with an integer code and a detail string")
        return NvmlAnswer(NvmlError(error["code"], error["detail"]), recording)
    if "facts" not in result:
        raise DecodeError("$.facts: missing")
    return NvmlAnswer(decode(GpuFacts, result["facts"], "$.facts"), recording)


def _during(key: str | None) -> str:
    """Where the child was: ' in nvmlInit', ' in the NVML call for device[0].memory_info', or ''."""
    if key is None:
        return " before its first NVML call"
    if key == "init":
        return " in nvmlInit"
    return f" in the NVML call for {key}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _crash_fix(library: str | None, last_call: str | None) -> str:
    fix = (
        "reinstall the NVIDIA driver's user-space libraries so they match the kernel module"
        " (`cat /proc/driver/nvidia/version`); `nvidia-smi` loads the same library and shows whether it crashes too"
    )
    if last_call not in (None, "init"):  # the library loaded and started: the binding may not match it
        fix += "; or update the binding: `pip install -U nvidia-ml-py`"
    return _without(library, fix)


def _without(library: str | None, fix: str) -> str:
    """The fix, led by taking the LD_LIBRARY_PATH library out of the way when that is where it came from."""
    if library is None:
        return fix
    folder = library.rsplit("/", 1)[0] or "/"
    return f"remove {folder} from LD_LIBRARY_PATH (its {LIBRARY} is not the driver's) and run envcheck again; or {fix}"
