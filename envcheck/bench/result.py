"""What a benchmark run found, as frozen records with a versioned JSON form (`"schema": "envcheck.bench/1"`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from envcheck.bench.ceiling import Ceiling

SCHEMA = "envcheck.bench/1"


@dataclass(frozen=True, slots=True)
class Timing:
    """Throughput over timed windows (warm-up excluded, device synchronised before every clock read)."""

    images_per_s: float  # median over windows
    window_images_per_s: tuple[float, ...]
    cv: float  # coefficient of variation of the windows' images/s (population std / mean)
    step_p50_ms: float
    step_p95_ms: float
    warmup_steps: int
    timed_steps: int
    batch_size: int


@dataclass(frozen=True, slots=True)
class Correctness:
    """The first training steps on the device against the same steps on the CPU in float64."""

    steps: int
    precision: str  # "float32", "tf32" or "bf16-autocast": what the device computed in
    device_losses: tuple[float, ...]
    reference_losses: tuple[float, ...]  # CPU, float64
    max_rel_deviation: float
    tolerance: float
    passed: bool
    device_s: float = 0.0  # wall time of the device's steps (the first run's one-time costs included)


@dataclass(frozen=True, slots=True)
class Calibration:
    """The measurement against what this hardware should do."""

    kind: str  # "measured" (a reference someone ran), "predicted" (from spec sheets) or "none"
    reference_images_per_s: float | None
    reference_spread_cv: float | None
    reference_device: str | None
    basis: str  # how the reference was measured or predicted, or why there is none
    score: float | None  # measured / reference
    verdict: str  # "as expected", "slower than expected", "much slower", "not scored" (basis says why)
    reasons: tuple[str, ...]  # likely causes of a slow result, from telemetry and the run's conditions


@dataclass(frozen=True, slots=True)
class Telemetry:
    """GPU state sampled in the background while training (NVML)."""

    samples: int
    interval_s: float
    sm_clock_median_mhz: float | None
    sm_clock_max_mhz: int | None  # the GPU's maximum SM clock
    temperature_max_c: int | None
    power_median_w: float | None
    thermal_slowdown_fraction: float | None  # of samples with a thermal clocks-event reason active
    power_cap_fraction: float | None  # of samples with the power cap / power brake active
    unavailable: str | None = None  # why there are no samples (no NVML, device not matched)


@dataclass(frozen=True, slots=True)
class RecipeRun:
    """A --full run: the preset's whole recipe, test accuracy after every epoch."""

    epochs: int
    epoch_accuracies: tuple[float, ...]
    target_accuracy: float
    time_to_target_s: float | None  # training time (evaluation excluded) until the target was reached
    training_s: float
    total_s: float = 0.0  # the whole recipe, test evaluations included: what the user waited for

    @property
    def is_target_reached(self) -> bool:
        """A --full run that ends below its target accuracy failed: the stack trains, but not to the result."""
        return self.time_to_target_s is not None


@dataclass(frozen=True, slots=True)
class BenchResult:
    preset: str
    device: str  # as asked for: cpu, cuda:0, mps
    device_name: str  # CPU model or GPU name
    data: str  # "cifar10" or "synthetic"
    data_source: str
    data_checksums: str | None
    loader: str  # "device" or "dataloader"
    workers: int
    mode: str  # "quick" or "full"
    timing: Timing
    correctness: Correctness
    calibration: Calibration
    telemetry: Telemetry | None  # None: not a CUDA device
    recipe: RecipeRun | None  # None: a --quick run
    load_average_before: float | None  # 1-minute load average when the run started (None: not on this OS)
    cpu_count: int
    versions: tuple[tuple[str, str], ...]
    flags: tuple[tuple[str, str], ...]
    date: str  # ISO 8601 UTC
    ceiling: Ceiling | None = None  # None: not measured (--no-ceiling)

    @property
    def is_passed(self) -> bool:
        """Correct numbers, and for a --full run the target accuracy reached: what exit 0 means."""
        return self.correctness.passed and (self.recipe is None or self.recipe.is_target_reached)


def result_to_json(result: BenchResult) -> dict[str, Any]:
    """The JSON form: the issue's keys at the top (preset, device, data, images_per_s, cv, correctness, ...)."""
    timing = result.timing
    return {
        "schema": SCHEMA,
        "preset": result.preset,
        "device": result.device,
        "device_name": result.device_name,
        "data": result.data,
        "data_source": result.data_source,
        "data_checksums": result.data_checksums,
        "loader": result.loader,
        "workers": result.workers,
        "mode": result.mode,
        "images_per_s": round(timing.images_per_s, 1),
        "cv": round(timing.cv, 4),
        "step_time_ms": {"p50": round(timing.step_p50_ms, 3), "p95": round(timing.step_p95_ms, 3)},
        "timing": asdict(timing),
        "correctness": asdict(result.correctness),
        "calibration": asdict(result.calibration),
        "telemetry": None if result.telemetry is None else asdict(result.telemetry),
        "recipe": None
        if result.recipe is None
        else asdict(result.recipe) | {"target_reached": result.recipe.is_target_reached},
        "load_average_before": result.load_average_before,
        "cpu_count": result.cpu_count,
        "versions": dict(result.versions),
        "flags": dict(result.flags),
        "date": result.date,
        "ceiling": None if result.ceiling is None else asdict(result.ceiling),
    }


@dataclass(frozen=True, slots=True)
class SiblingFlag:
    """A GPU more than 10% slower than the median of identical GPUs in the same machine."""

    device: str
    device_name: str
    images_per_s: float
    siblings_median_images_per_s: float
    slower_fraction: float


def multi_to_json(results: tuple[BenchResult, ...], flags: tuple[SiblingFlag, ...]) -> dict[str, Any]:
    """`--device all`: every device's result, and the GPUs flagged against their identical siblings."""
    return {"schema": SCHEMA, "runs": [result_to_json(r) for r in results], "slow_siblings": [asdict(f) for f in flags]}
