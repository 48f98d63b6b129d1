"""Recordings of NVML answers (`envcheck.nvml-recording/1`), the backend that replays them, and scenarios.

A call the recording does not hold raises `UnrecordedCall`, never an NvmlError, so a probe that starts
asking something new fails its fixture tests loudly instead of reading "not supported" forever.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envcheck.probes.nvml.backend import ERROR_CODES, Argument, NvmlBackend, NvmlError, call_key

SCHEMA = "envcheck.nvml-recording/1"


class UnrecordedCall(LookupError):
    """The probe asked something the recording never answered: re-record or regenerate the fixture."""


class RecordingFormatError(ValueError):
    """The file is not an envcheck NVML recording; the message is one line."""


def _thaw(value: Any) -> Any:
    """JSON lists back to the tuples the backend interface returns."""
    return tuple(_thaw(item) for item in value) if isinstance(value, list) else value


# The short form of the examples, "power_limit[1]", for "device[1].power_limit".
_SHORT = re.compile(r"([a-z_0-9]+)\[(\d+|\*)\](\(.*\))?")


def _pattern(spec: str) -> re.Pattern[str]:
    short = _SHORT.fullmatch(spec)
    if short:
        spec = f"device[{short.group(2)}].{short.group(1)}{short.group(3) or ''}"
    return re.compile(".*".join(re.escape(part) for part in spec.split("*")))


@dataclass(frozen=True)
class Recording:
    """Every call's answer by key: {"value": ...} or {"error": "NOT_SUPPORTED"}. Scenarios derive new ones."""

    calls: Mapping[str, Mapping[str, Any]]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def with_error(self, spec: str, error: str) -> Recording:
        """A copy where every recorded call matching `spec` answers `error` (`*` matches anything).

        `spec` is a key (`device[1].power_limit`), the short form (`power_limit[1]`), or a pattern
        (`device[1].*` for a GPU that is lost from its first call on). Matching nothing is an error.
        """
        if error not in ERROR_CODES:
            raise ValueError(f"unknown NVML error {error!r}")
        pattern = _pattern(spec)
        matched = [key for key in self.calls if pattern.fullmatch(key)]
        if not matched:
            raise KeyError(f"{spec!r} matches no recorded call")
        calls = dict(self.calls)
        calls.update({key: {"error": error} for key in matched})
        return Recording(calls, {**self.meta, "derived": True})

    def with_value(self, key: str, value: Any) -> Recording:
        """A copy where call `key` (or the short form) answers `value`; the call may be new."""
        short = _SHORT.fullmatch(key)
        if short:
            key = f"device[{short.group(2)}].{short.group(1)}{short.group(3) or ''}"
        return Recording({**self.calls, key: {"value": value}}, {**self.meta, "derived": True})

    def backend(self) -> ReplayNvml:
        return ReplayNvml(self)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **self.meta, "calls": dict(sorted(self.calls.items()))}

    def dumps(self) -> str:
        """The file's text: the header, then one call per line, sorted, so diffs of fixtures stay readable."""
        data = self.to_json()
        calls = data.pop("calls")
        header = json.dumps(data, indent=1)[:-2]  # leave the object open for "calls"
        lines = ",\n".join(f"  {json.dumps(key)}: {json.dumps(answer)}" for key, answer in calls.items())
        return f'{header},\n "calls": {{\n{lines}\n }}\n}}\n'


def load_recording(path: Path) -> Recording:
    """A recording from its JSON file; RecordingFormatError names the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RecordingFormatError(f"{path}: cannot read an NVML recording: {error}") from None
    return recording_from_json(data, str(path))


def recording_from_json(data: Any, where: str) -> Recording:
    """A recording from its JSON value (Recording.to_json); RecordingFormatError names `where` when it is not one."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise RecordingFormatError(f"{where}: not an {SCHEMA} file")
    data = dict(data)
    calls = data.pop("calls", None)
    data.pop("schema")
    if not isinstance(calls, dict) or not all(
        isinstance(answer, dict) and ("value" in answer or answer.get("error") in ERROR_CODES)
        for answer in calls.values()
    ):
        raise RecordingFormatError(f"{where}: 'calls' must map each key to {{'value': ...}} or {{'error': NAME}}")
    return Recording(calls, data)


class ReplayNvml(NvmlBackend):
    """Answers from a Recording, exactly as recorded; `asked` lists the keys the probe used, in order."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.asked: list[str] = []

    def call(self, method: str, *args: Argument) -> object:
        key = call_key(method, args)
        self.asked.append(key)
        answer = self.recording.calls.get(key)
        if answer is None:
            raise UnrecordedCall(f"the recording has no answer for {key}")
        if "error" in answer:
            raise NvmlError.from_name(str(answer["error"]))
        return _thaw(answer["value"])

    def shutdown(self) -> None:
        """Nothing to release."""
