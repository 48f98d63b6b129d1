"""GPU clocks, temperature, power and throttle reasons sampled in a background thread while the benchmark trains.

NVML comes through envcheck's own backend (envcheck/probes/nvml), imported lazily; tests replay recordings.
"""

from __future__ import annotations

import os
import statistics
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from envcheck.bench.result import Telemetry

# nvmlClocksEventReason* bits (nvml.h): which ones mean "slowed by heat" and "slowed by the power budget"
THERMAL_BITS = 0x20 | 0x40 | 0x08  # SW thermal slowdown, HW thermal slowdown, HW slowdown (thermal or power brake)
POWER_BITS = 0x04 | 0x80  # SW power cap, HW power brake slowdown
SAMPLE_INTERVAL_S = 0.2


def unavailable(reason: str) -> Telemetry:
    return Telemetry(0, SAMPLE_INTERVAL_S, None, None, None, None, None, None, unavailable=reason)


@dataclass(slots=True)
class Sample:
    sm_clock_mhz: int | None
    temperature_c: int | None
    power_w: float | None
    reasons: int | None


def _read(call: Callable[[], Any]) -> Any:
    from envcheck.probes.nvml.backend import NvmlError

    try:
        return call()
    except NvmlError:  # NOT_SUPPORTED on this GPU, or a GPU that went away: that field stays unknown
        return None


def take_sample(backend: Any, index: int) -> Sample:
    power_mw = _read(lambda: backend.power_usage(index))
    return Sample(
        sm_clock_mhz=_read(lambda: backend.clock(index, "sm")),
        temperature_c=_read(lambda: backend.temperature(index)),
        power_w=None if power_mw is None else power_mw / 1000,
        reasons=_read(lambda: backend.clocks_event_reasons(index)),
    )


def summarise_samples(samples: list[Sample], max_sm_clock_mhz: int | None, interval_s: float) -> Telemetry:
    if not samples:
        return unavailable("the run ended before the first sample")
    clocks = [s.sm_clock_mhz for s in samples if s.sm_clock_mhz is not None]
    temperatures = [s.temperature_c for s in samples if s.temperature_c is not None]
    powers = [s.power_w for s in samples if s.power_w is not None]
    reasons = [s.reasons for s in samples if s.reasons is not None]
    return Telemetry(
        samples=len(samples),
        interval_s=interval_s,
        sm_clock_median_mhz=statistics.median(clocks) if clocks else None,
        sm_clock_max_mhz=max_sm_clock_mhz,
        temperature_max_c=max(temperatures) if temperatures else None,
        power_median_w=statistics.median(powers) if powers else None,
        thermal_slowdown_fraction=sum(1 for r in reasons if r & THERMAL_BITS) / len(reasons) if reasons else None,
        power_cap_fraction=sum(1 for r in reasons if r & POWER_BITS) / len(reasons) if reasons else None,
    )


@dataclass(slots=True)
class TelemetrySampler:
    """`with TelemetrySampler(backend, index) as sampler: train()`, then `sampler.result()`."""

    backend: Any
    index: int
    interval_s: float = SAMPLE_INTERVAL_S
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TelemetrySampler:
        self._thread = threading.Thread(target=self._run, name="envcheck-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.interval_s + 1)

    def _run(self) -> None:
        while True:
            self.samples.append(take_sample(self.backend, self.index))
            if self._stop.wait(self.interval_s):
                return

    def result(self) -> Telemetry:
        max_clock = _read(lambda: self.backend.max_clock(self.index, "sm"))
        return summarise_samples(list(self.samples), max_clock, self.interval_s)


def open_nvml_for(torch_uuid: str, environ: Mapping[str, str] | None = None) -> tuple[Any, int] | str:
    """The live NVML backend and the NVML index of the CUDA device with `torch_uuid`, or why there is none.

    torch's CUDA order (CUDA_DEVICE_ORDER, CUDA_VISIBLE_DEVICES) need not match NVML's PCI order: match by UUID.
    Sampling every 0.2 s needs NVML in this process, so the library is first tried in a child (the doctor's
    isolated probe): one that crashes or hangs there costs the telemetry, not the benchmark.
    """
    from envcheck.probes.context import ProbeContext
    from envcheck.probes.errors import ProbeError
    from envcheck.probes.nvml.backend import NvmlError
    from envcheck.probes.nvml.isolated import ask_nvml
    from envcheck.probes.nvml.live import LiveNvml

    try:
        ask_nvml(ProbeContext(environ=dict(os.environ) if environ is None else environ))
    except ProbeError as error:
        return f"NVML is not usable: {error}"

    backend = LiveNvml()
    try:
        backend.init()
        for index in range(backend.device_count()):
            if backend.uuid(index).removeprefix("GPU-").lower() == torch_uuid.removeprefix("GPU-").lower():
                return backend, index
    except NvmlError as error:
        backend.shutdown()
        return f"NVML is not usable: {error}"
    backend.shutdown()
    return f"no NVML device has the UUID torch reports ({torch_uuid})"
