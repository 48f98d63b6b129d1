"""The collector runs probes concurrently and turns hangs, errors and crashes into recorded failures."""

from __future__ import annotations

import threading
import time

from envcheck.collect import Probe, collect
from envcheck.facts.common import Unavailable
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from tests import factories

STOP = threading.Event()


def quick(seconds: float = 1.0):  # type: ignore[no-untyped-def]
    return lambda _context: seconds


def hangs(_context: ProbeContext) -> None:
    STOP.wait(30)


def refuses(_context: ProbeContext) -> None:
    raise ProbeError("no NVIDIA driver: libnvidia-ml.so.1 not found")


def crashes(_context: ProbeContext) -> None:
    raise KeyError("model name")


def test_each_failure_is_recorded_with_its_reason_and_the_rest_is_kept() -> None:
    probes = [
        Probe("system", lambda _c: factories.system(), quick()),
        Probe("cpu", hangs, quick(0.3)),
        Probe("memory", refuses, quick()),
        Probe("storage", crashes, quick()),
    ]
    started = time.perf_counter()
    collected = collect(ProbeContext(), probes=probes)
    elapsed = time.perf_counter() - started
    STOP.set()
    snapshot = collected.snapshot

    assert snapshot.system == factories.system()
    assert snapshot.probe("cpu").status == "timeout"  # type: ignore[union-attr]
    assert isinstance(snapshot.cpu, Unavailable) and "timed out after 0.3 s" in snapshot.cpu.reason
    assert snapshot.probe("memory").error == "no NVIDIA driver: libnvidia-ml.so.1 not found"  # type: ignore[union-attr]
    assert "KeyError" in snapshot.probe("storage").error  # type: ignore[union-attr, operator]
    assert "KeyError" in collected.tracebacks["storage"]
    assert snapshot.probe("framework").status == "skipped"  # type: ignore[union-attr]
    assert elapsed < 5.0  # the hung probe did not hold the others up


def test_probes_run_concurrently() -> None:
    # Four probes that each wait for all four to arrive: run one after another, they would all fail.
    barrier = threading.Barrier(4, timeout=5)

    def meet(_context: ProbeContext) -> object:
        barrier.wait()
        return factories.cpu()

    probes = [Probe(name, meet, quick(10)) for name in ("cpu", "memory", "storage", "system")]
    snapshot = collect(ProbeContext(), probes=probes).snapshot
    assert [run.status for run in snapshot.probes[:4]] == ["ok"] * 4


def test_skip_records_the_probe_as_skipped() -> None:
    snapshot = collect(
        ProbeContext(), probes=[Probe("cpu", lambda _c: factories.cpu(), quick())], skip=["cpu"]
    ).snapshot
    assert snapshot.probe("cpu").status == "skipped"  # type: ignore[union-attr]
    assert snapshot.cpu == Unavailable("skipped on request")
