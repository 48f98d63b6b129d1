"""The recording backend: wraps another backend and keeps every call's answer, anonymised, for a fixture.

UUIDs and serial numbers are replaced by salted hashes (the salt is random and never written, so a
recording cannot be matched back to a serial by brute force); process names likewise unless asked not to.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from envcheck import __version__
from envcheck.facts.gpu import GpuFacts
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.nvml.backend import Argument, NvmlBackend, NvmlError, call_key
from envcheck.probes.nvml.replay import Recording

_SOURCE = "recorded by envcheck info --record-nvml"


def _plain(value: object) -> Any:
    """Tuples as lists, for JSON."""
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


class RecordingNvml(NvmlBackend):
    """Passes every call to `inner` and keeps its answer (or error) under the call's key.

    Answers are anonymised before the probe sees them, so the facts returned and the file written agree.
    """

    def __init__(
        self,
        inner: NvmlBackend,
        *,
        is_anonymising: bool = True,
        is_anonymising_processes: bool = True,
        salt: bytes | None = None,
    ) -> None:
        self.inner = inner
        self.is_anonymising = is_anonymising
        self.is_anonymising_processes = is_anonymising_processes
        self._salt = secrets.token_bytes(16) if salt is None else salt
        self.calls: dict[str, dict[str, Any]] = {}

    def call(self, method: str, *args: Argument) -> object:
        key = call_key(method, args)
        try:
            value = self._anonymise(method, self.inner.call(method, *args))
        except NvmlError as error:
            self.calls[key] = {"error": error.name}
            raise
        self.calls[key] = {"value": _plain(value)}
        return value

    def shutdown(self) -> None:
        self.inner.shutdown()

    def _hash(self, text: str) -> str:
        return hashlib.sha256(self._salt + text.encode()).hexdigest()

    def _anonymise(self, method: str, value: object) -> object:
        if not isinstance(value, str):
            return value
        if self.is_anonymising and method == "uuid":
            digest = self._hash(value)
            # keep the GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx shape that checks and users recognise
            return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        if self.is_anonymising and method == "serial":
            return "anon-" + self._hash(value)[:12]
        if self.is_anonymising_processes and method == "process_name":
            return "process-" + self._hash(value)[:8]
        return value

    def recording(self, **meta: Any) -> Recording:
        anonymised = [name for name, on in (("uuid", self.is_anonymising), ("serial", self.is_anonymising),
                                             ("process_name", self.is_anonymising_processes)) if on]  # fmt: skip
        return Recording(dict(self.calls), {"envcheck_version": __version__, "anonymised": anonymised, **meta})

    def save(self, path: Path, **meta: Any) -> None:
        from envcheck.outfile import write_output_file

        write_output_file(path, self.recording(**meta).dumps())


def record_nvml(path: Path, context: ProbeContext, backend: NvmlBackend | None = None) -> GpuFacts:
    """Probe the GPUs through a recording backend and write the anonymised recording to `path`.

    `envcheck info --record-nvml FILE`. `backend` defaults to live NVML, recorded in the NVML child
    (isolated.py) so a crashing library is a finding here too; tests pass a replay. Raises OSError when
    the file cannot be written, ProbeError when the child crashes or hangs (nothing is written then).
    Without a usable NVML the file holds the failed nvmlInit and the facts say why.
    """
    from envcheck.outfile import write_output_file
    from envcheck.probes.nvml.probe import init_failed, probe_gpu, without_own_processes

    if backend is None:
        from envcheck.probes.nvml.isolated import ask_nvml

        answer = ask_nvml(context, is_recording=True)
        if answer.recording is None:
            raise ProbeError("the NVML probe returned no recording")
        recording = Recording(answer.recording.calls, {**answer.recording.meta, "source": _SOURCE})
        write_output_file(path, recording.dumps())
        # no nvidia-smi fallback: the file says what NVML answered
        result = answer.result
        return without_own_processes(result if isinstance(result, GpuFacts) else init_failed(context, result))
    recorder = RecordingNvml(backend)
    facts = probe_gpu(context, recorder)
    recorder.save(path, source=_SOURCE)
    return facts
