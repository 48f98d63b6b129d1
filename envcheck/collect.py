"""Runs the probes concurrently, each under a deadline, and assembles their facts into a Snapshot.

This is the one place that catches every exception: a bug or surprise inside a probe becomes a
recorded probe failure with its reason, never an envcheck crash.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from envcheck import __version__
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.messages import NO_MESSAGES, RuntimeMessages
from envcheck.importers.runtime_messages import read_messages
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError, ProbeTimeout
from envcheck.snapshot import SECTIONS, ProbeRun, Snapshot


@dataclass(frozen=True, slots=True)
class Probe:
    section: str  # the Snapshot field it fills
    run: Callable[[ProbeContext], Any]
    timeout_s: Callable[[ProbeContext], float]  # some deadlines depend on the context (framework)


@dataclass(frozen=True, slots=True)
class Collected:
    snapshot: Snapshot
    tracebacks: dict[str, str]  # section -> traceback of a probe that crashed, for `--debug`; not facts


@dataclass(slots=True)
class _Outcome:
    facts: Any = None
    error: str | None = None
    fix: str | None = None
    status: str = "timeout"
    duration_s: float = 0.0
    traceback: str | None = None


def default_probes() -> tuple[Probe, ...]:
    # Imported here so `import envcheck.collect` stays cheap for commands that only read files.
    from envcheck.probes.cpu import probe_cpu
    from envcheck.probes.environment import probe_environment
    from envcheck.probes.framework import probe_framework
    from envcheck.probes.memory import probe_memory
    from envcheck.probes.network import probe_network
    from envcheck.probes.nvml import probe_gpu
    from envcheck.probes.python import probe_python
    from envcheck.probes.storage import probe_storage
    from envcheck.probes.system import probe_system
    from envcheck.probes.toolchain import probe_toolchain

    def host(_: ProbeContext) -> float:
        return 10.0

    def framework(context: ProbeContext) -> float:
        # the probe kills its own subprocess at framework_timeout_s; this margin lets it report that itself
        return context.framework_timeout_s + 5.0

    return (
        Probe("system", probe_system, host),
        Probe("cpu", probe_cpu, host),
        Probe("memory", probe_memory, host),
        Probe("storage", probe_storage, host),
        Probe("python", probe_python, lambda context: context.framework_timeout_s),
        Probe("environment", probe_environment, host),
        Probe("network", probe_network, host),
        Probe("framework", probe_framework, framework),
        # NVML runs in a child with its own 12 s deadline (a GPU that fell off the bus hangs it); nvidia-smi,
        # the fallback when NVML cannot load (which it finds out at once), has its own 10 s timeout
        Probe("gpu", probe_gpu, lambda _context: 15.0),
        # every tool's `--version` at once, each under its own 5 s deadline (probes/toolchain.py)
        Probe("toolchain", probe_toolchain, host),
    )


def _run_one(probe: Probe, context: ProbeContext, outcome: _Outcome) -> None:
    started = time.perf_counter()
    try:
        outcome.facts = probe.run(context)
        outcome.status = "ok"
    except ProbeError as error:
        outcome.error = str(error)
        outcome.fix = error.fix
        outcome.status = "timeout" if isinstance(error, ProbeTimeout) else "failed"
    except Exception as error:  # the one broad catch of the program: see the module docstring
        outcome.error = f"probe crashed: {type(error).__name__}: {error}"
        outcome.traceback = traceback.format_exc()
        outcome.status = "failed"
    outcome.duration_s = time.perf_counter() - started


def runtime_messages_of(framework: object) -> RuntimeMessages:
    """torch's own warnings on this machine, decoded as a pasted report's are, so checks cite them alike."""
    if not isinstance(framework, FrameworkFacts) or not framework.runtime_output:
        return NO_MESSAGES
    return read_messages("\n".join(framework.runtime_output))


def collect(
    context: ProbeContext,
    probes: Iterable[Probe] | None = None,
    skip: Iterable[str] = (),
) -> Collected:
    """Run every probe at once on daemon threads and wait no longer than each one's deadline.

    Daemon threads, not a ThreadPoolExecutor: the executor joins its workers at interpreter exit,
    so one probe stuck in an uninterruptible NVML or filesystem call would hang envcheck forever.
    """
    # The framework probe (a torch import in a subprocess) is the slowest by far: start it first.
    selected = sorted(
        probes if probes is not None else default_probes(), key=lambda probe: probe.section != "framework"
    )
    skipped = set(skip)
    started = time.perf_counter()
    running: list[tuple[Probe, _Outcome, threading.Thread]] = []
    for probe in selected:
        if probe.section in skipped:
            continue
        outcome = _Outcome()
        thread = threading.Thread(
            target=_run_one, args=(probe, context, outcome), name=f"probe-{probe.section}", daemon=True
        )
        thread.start()
        running.append((probe, outcome, thread))

    runs: list[ProbeRun] = []
    tracebacks: dict[str, str] = {}
    sections: dict[str, Any] = {}
    for probe, outcome, thread in running:
        deadline = probe.timeout_s(context)
        thread.join(max(0.0, deadline - (time.perf_counter() - started)))
        if thread.is_alive():
            reason = f"timed out after {deadline:g} s"
            runs.append(ProbeRun(probe.section, "timeout", deadline, reason))
            sections[probe.section] = Unavailable(f"the {probe.section} probe {reason}")
        elif outcome.status == "timeout":  # the probe's own deadline on its source, reported by the probe
            runs.append(ProbeRun(probe.section, "timeout", round(outcome.duration_s, 4), outcome.error))
            sections[probe.section] = Unavailable(f"the {probe.section} probe timed out: {outcome.error}", outcome.fix)
        elif outcome.status == "ok":
            runs.append(ProbeRun(probe.section, "ok", round(outcome.duration_s, 4), None))
            sections[probe.section] = outcome.facts
        else:
            runs.append(ProbeRun(probe.section, "failed", round(outcome.duration_s, 4), outcome.error))
            sections[probe.section] = Unavailable(f"the {probe.section} probe failed: {outcome.error}", outcome.fix)
        if outcome.traceback:
            tracebacks[probe.section] = outcome.traceback

    for section in SECTIONS:
        if section not in sections:
            reason = "skipped on request" if section in skipped else "no probe collects it here"
            runs.append(ProbeRun(section, "skipped", 0.0, reason))
            sections[section] = Unavailable(reason)

    snapshot = Snapshot(
        envcheck_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source="live",
        is_redacted=context.is_redacting,
        probes=tuple(runs),
        **sections,
        messages=runtime_messages_of(sections.get("framework")),
    )
    return Collected(snapshot, tracebacks)
