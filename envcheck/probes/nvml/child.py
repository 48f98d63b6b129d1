"""The NVML child: the live NVML probe in a process of its own, printing the GPU facts as JSON.

A libnvidia-ml.so.1 that segfaults, aborts or hangs takes down this process instead of envcheck; the
parent (isolated.py) turns that into a finding. Before every NVML call the child prints the call's key,
flushed, so the parent can name the call that crashed. The last line holds the result: the facts in the
snapshot codec's form, or the error nvmlInit answered, and in record mode the recording too.

Run by isolated.child_argv as `PYTHON -c BOOTSTRAP PROC_ROOT MODE`; MODE is "probe" or "record".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from envcheck.codec import encode
from envcheck.probes.nvml.backend import Argument, NvmlBackend, NvmlError, call_key
from envcheck.probes.nvml.live import LiveNvml
from envcheck.probes.nvml.probe import probe_nvml
from envcheck.probes.nvml.recording import RecordingNvml

CALL_MARKER = "envcheck-nvml-call: "
RESULT_MARKER = "envcheck-nvml-result: "
RECORD = "record"


class AnnouncingNvml(NvmlBackend):
    """Prints each call's key before asking `inner`, so the last key printed names a call that crashed."""

    def __init__(self, inner: NvmlBackend) -> None:
        self.inner = inner

    def call(self, method: str, *args: Argument) -> object:
        _announce(call_key(method, args))
        return self.inner.call(method, *args)

    def shutdown(self) -> None:
        _announce("shutdown")
        self.inner.shutdown()


def _announce(key: str) -> None:
    _line(CALL_MARKER + key)


def _line(text: str) -> None:
    """One line to the parent, flushed at once: the process may die in the very next call."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _no_core_files() -> None:
    """A crashing NVML must not leave a core file in the user's working directory."""
    try:
        import resource
    except ImportError:  # Windows
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    _no_core_files()
    proc, mode = Path(argv[0]), argv[1]
    live = LiveNvml(proc)
    recorder = RecordingNvml(live) if mode == RECORD else None
    result: dict[str, Any] = {}
    try:
        result["facts"] = encode(probe_nvml(AnnouncingNvml(recorder or live)))
    except NvmlError as error:
        result["nvml_error"] = {"code": error.code, "detail": error.detail}
    if recorder is not None:
        result["recording"] = recorder.recording().to_json()
    _line(RESULT_MARKER + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
