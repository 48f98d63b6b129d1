"""The snapshot: every fact envcheck gathered about one machine, and its versioned JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envcheck.codec import DecodeError, decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.cpu import CpuFacts
from envcheck.facts.environment import EnvironmentFacts
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.memory import MemoryFacts
from envcheck.facts.messages import NO_MESSAGES, RuntimeMessages
from envcheck.facts.network import NOT_COLLECTED, NetworkFacts
from envcheck.facts.python import PythonFacts
from envcheck.facts.storage import StorageFacts
from envcheck.facts.system import SystemFacts
from envcheck.facts.toolchain import TOOLCHAIN_NOT_RECORDED, ToolchainFacts

SCHEMA = "envcheck.snapshot/1"

# The fact sections of a Snapshot, each collected by its own probe, in the order the probes are listed.
SECTIONS = ("system", "cpu", "memory", "storage", "python", "environment", "network", "framework", "gpu", "toolchain")


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """How one probe went: every section of a snapshot says whether it was collected and how fast."""

    name: str
    status: str  # ok, failed, timeout, skipped
    duration_s: float
    error: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    envcheck_version: str
    created_at: str  # ISO 8601, UTC
    source: str  # "live", or what it was imported from (e.g. "nvidia-smi-xml:FILE")
    is_redacted: bool
    probes: tuple[ProbeRun, ...]
    system: SystemFacts | Unavailable
    cpu: CpuFacts | Unavailable
    memory: MemoryFacts | Unavailable
    storage: StorageFacts | Unavailable
    python: PythonFacts | Unavailable
    environment: EnvironmentFacts | Unavailable
    framework: FrameworkFacts | Unavailable
    gpu: GpuFacts | Unavailable
    # the warnings and errors a pasted report printed, decoded (empty for a live snapshot); last, with a default,
    # so snapshots from before the field still decode
    messages: RuntimeMessages = NO_MESSAGES
    # nvcc, the toolkit folders, the host compilers and ninja; with a default, so snapshots from before it decode
    toolchain: ToolchainFacts | Unavailable = TOOLCHAIN_NOT_RECORDED
    # interfaces, InfiniBand / RoCE ports and the NCCL variables' choice of them; with a default, so snapshots from
    # before the section still decode (as not collected)
    network: NetworkFacts | Unavailable = NOT_COLLECTED

    def probe(self, name: str) -> ProbeRun | None:
        return next((run for run in self.probes if run.name == name), None)


class SnapshotFormatError(ValueError):
    """The text is not an envcheck snapshot this version can read."""


def snapshot_to_dict(snapshot: Snapshot) -> dict[str, Any]:
    return {"schema": SCHEMA, **encode(snapshot)}


def snapshot_from_dict(data: Any) -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotFormatError("not an envcheck snapshot: the top level is not a JSON object")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise SnapshotFormatError(f"unsupported snapshot schema {schema!r} (this envcheck reads {SCHEMA!r})")
    try:
        return decode(Snapshot, {key: value for key, value in data.items() if key != "schema"})
    except DecodeError as error:
        raise SnapshotFormatError(f"invalid snapshot: {error}") from None


def to_json(snapshot: Snapshot, indent: int | None = 2) -> str:
    return json.dumps(snapshot_to_dict(snapshot), indent=indent, sort_keys=False, allow_nan=False)


def from_json(text: str) -> Snapshot:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:  # ValueError: JSONDecodeError, or a 5,000-digit integer
        raise SnapshotFormatError(f"not valid JSON: {error}") from None
    return snapshot_from_dict(data)
