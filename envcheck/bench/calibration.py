"""Reference results (profiles/calibration.toml): lookup, score = measured / reference, verdict and likely reasons.

A reference exists only where someone measured it. For an uncalibrated NVIDIA GPU the expected value is
predicted from spec sheets (profiles/gpus.toml) against the nearest calibrated GPU, and labelled `predicted`.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.bench.result import Calibration, Telemetry
from envcheck.input_files import CONFIG_LIMIT, InputError, load_toml_file
from envcheck.validation import InvalidValue, non_negative_number, positive_number, quoted

AS_EXPECTED = 0.90  # within 10%: the run-to-run spread of a busy machine (see docs/bench.md)
SLOWER = 0.70  # 70-90%: slower than expected; below: much slower
_FIELDS = ("preset", "device", "images_per_s", "spread_cv", "torch", "envcheck", "date", "method")
LOADERS = ("device", "dataloader")
NOT_SCORED = "not scored"


@dataclass(frozen=True, slots=True)
class Reference:
    preset: str
    device: str  # CPU model and threads ("AMD EPYC, 2 threads") or the GPU's NVML name
    images_per_s: float
    spread_cv: float
    torch: str
    envcheck: str
    date: datetime.date
    method: str  # how it was measured: command, runs, conditions
    # the input pipeline (`--loader`): a DataLoader run and a device-loader run measure different things
    loader: str = "device"


def calibration_path() -> Path:
    from envcheck.knowledge import profiles_root

    return profiles_root() / "calibration.toml"


def load_references(path: Path | None = None) -> tuple[Reference, ...]:
    """The references of ``path`` (default: the shipped profiles/calibration.toml, or none if it is absent).

    A ``path`` the user named must exist: a mistyped --calibration would otherwise compare with nothing.
    """
    path = calibration_path() if path is None else path
    rows = load_toml_file(path, CONFIG_LIMIT).get("reference", [])  # a missing or special file is an InputError
    if not isinstance(rows, list):
        raise InputError(f"{path}: reference: expected [[reference]] tables, got {quoted(rows)}")
    return tuple(_reference(row, f"{path}: reference {number}") for number, row in enumerate(rows, 1))


# The range of a believable reference: the slowest CPU trains a few images/s, no GPU a billion. A reference
# of 0 or 1e-320 would make the score a division by zero or infinity; a negative one a negative score.
IMAGES_PER_S_RANGE = (1e-3, 1e9)
MAX_SPREAD_CV = 10.0  # a coefficient of variation of 1000%: nothing measured spreads more


def _reference(row: object, where: str) -> Reference:
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a table, got {quoted(row)}")
    missing = [name for name in _FIELDS if name not in row]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}")
    texts = {}
    for name in ("preset", "device", "torch", "envcheck", "method"):
        if not isinstance(row[name], str):
            raise InputError(f"{where}: field {name!r}: expected a string, got {quoted(row[name])}")
        texts[name] = row[name]
    low, high = IMAGES_PER_S_RANGE
    try:
        images_per_s = positive_number(row["images_per_s"], f"{where}: field 'images_per_s'", minimum=low, maximum=high)
        spread_cv = non_negative_number(row["spread_cv"], f"{where}: field 'spread_cv'", maximum=MAX_SPREAD_CV)
    except InvalidValue as error:
        raise InputError(str(error)) from None
    loader = row.get("loader", _loader_of_method(texts["method"]))
    if loader not in LOADERS:
        raise InputError(f"{where}: field 'loader': expected device or dataloader, got {quoted(loader)}")
    return Reference(
        images_per_s=images_per_s, spread_cv=spread_cv, date=_date(row["date"], where), loader=loader, **texts
    )


def _loader_of_method(method: str) -> str:
    """A row written before the ``loader`` field: its method names ``--loader X`` (--save-reference wrote it);
    without one it ran with the default, the device loader."""
    return "dataloader" if "--loader dataloader" in method else "device"


def _date(value: object, where: str) -> datetime.date:
    # a TOML date-time is a date subclass too, but it cannot be compared with dates: the newest would be a TypeError
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(f"{where}: field 'date': expected a date such as 2026-11-28, got {quoted(value)}")


def reference_toml(reference: Reference) -> str:
    """One `[[reference]]` table, in the format load_references reads (what --save-reference appends)."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return (
        "\n[[reference]]\n"
        f"preset = {quoted(reference.preset)}\n"
        f"device = {quoted(reference.device)}\n"
        f"loader = {quoted(reference.loader)}\n"
        f"images_per_s = {reference.images_per_s:.1f}\n"
        f"spread_cv = {reference.spread_cv:.4f}\n"
        f"torch = {quoted(reference.torch)}\n"
        f"envcheck = {quoted(reference.envcheck)}\n"
        f"date = {reference.date.isoformat()}\n"
        f"method = {quoted(reference.method)}\n"
    )


def verdict_of(score: float) -> str:
    if score >= AS_EXPECTED:
        return "as expected"
    return "slower than expected" if score >= SLOWER else "much slower"


def _spec_ratio(gpu: Any, other: Any, is_bf16: bool) -> float | None:
    """Geometric mean of the compute ratio (bf16 or fp32 TFLOP/s) and the memory bandwidth ratio."""
    compute = "bf16_tflops" if is_bf16 else "fp32_tflops"
    pairs = [(getattr(gpu, compute), getattr(other, compute)), (gpu.memory_bandwidth_gb_s, other.memory_bandwidth_gb_s)]
    if not all(isinstance(a, float | int) and isinstance(b, float | int) and b > 0 for a, b in pairs):
        return None
    return math.sqrt((pairs[0][0] / pairs[0][1]) * (pairs[1][0] / pairs[1][1]))


def predict(
    preset: str,
    device_name: str,
    references: tuple[Reference, ...],
    knowledge: Any,
    is_bf16: bool,
    loader: str = "device",
) -> tuple[Reference, float, str] | str:
    """(nearest calibrated GPU, predicted images/s, basis) for an uncalibrated GPU, or why there is no prediction.

    Only references of the same preset and loader count: a DataLoader run is bound by other things than the GPU.
    """
    gpu = knowledge.gpu_by_name(device_name)
    if gpu is None:
        return f"{device_name} is not in the GPU specifications (profiles/gpus.toml)"
    candidates = []
    for reference in references:
        is_same_run = reference.preset == preset and reference.loader == loader
        other = knowledge.gpu_by_name(reference.device) if is_same_run else None
        ratio = None if other is None else _spec_ratio(gpu, other, is_bf16)
        if ratio is not None:
            candidates.append((abs(math.log(ratio)), ratio, reference))
    if not candidates:
        return f"no calibrated GPU with known specifications for preset {preset} with the {loader} loader"
    _, ratio, nearest = min(candidates, key=lambda candidate: candidate[0])
    basis = (
        f"predicted from {nearest.device} ({nearest.images_per_s:.0f} images/s measured) x {ratio:.2f}, the geometric"
        f" mean of the {'bf16' if is_bf16 else 'fp32'} TFLOP/s and memory bandwidth ratios of the spec sheets"
    )
    return nearest, nearest.images_per_s * ratio, basis


def likely_reasons(
    telemetry: Telemetry | None, loader: str, load_average: float | None, cpu_count: int, threads: int
) -> tuple[str, ...]:
    reasons = []
    if telemetry is not None and telemetry.samples:
        if telemetry.thermal_slowdown_fraction:
            reasons.append(f"thermal slowdown active {telemetry.thermal_slowdown_fraction:.0%} of the time")
        if telemetry.power_cap_fraction:
            reasons.append(f"power cap active {telemetry.power_cap_fraction:.0%} of the time")
        median, top = telemetry.sm_clock_median_mhz, telemetry.sm_clock_max_mhz
        if median is not None and top and median < AS_EXPECTED * top:
            reasons.append(f"SM clock median {median:.0f} MHz of {top} max")
    if loader == "dataloader":
        reasons.append("the DataLoader pipeline may be CPU-bound: compare with --loader device")
    if load_average is not None and load_average > 0.5 * cpu_count:  # half the CPUs busy already
        reasons.append(f"other processes were using the CPU: load average {load_average:.2f} on {cpu_count} CPUs")
    if threads < cpu_count:
        reasons.append(f"torch uses {threads} threads of {cpu_count} CPUs")
    return tuple(reasons)


def calibrate(
    preset: str,
    device_name: str,
    is_gpu: bool,
    measured_images_per_s: float,
    references: tuple[Reference, ...],
    knowledge: Any,
    is_bf16: bool,
    reasons: tuple[str, ...],
    loader: str = "device",
) -> Calibration:
    """The run against the reference of the same preset, loader and device; without one, against a prediction
    (GPUs), else "not scored" with the reason: a score against another combination would be a wrong score."""
    same_device = [r for r in references if r.preset == preset and r.device.lower() == device_name.lower()]
    exact = [r for r in same_device if r.loader == loader]
    if exact:
        reference = max(exact, key=lambda r: r.date)
        kind, expected, spread, basis = (
            "measured",
            reference.images_per_s,
            reference.spread_cv,
            f"measured {reference.date.isoformat()} with torch {reference.torch}, {reference.loader} loader:"
            f" {reference.method}",
        )
    else:
        predicted = predict(preset, device_name, references, knowledge, is_bf16, loader) if is_gpu else None
        if predicted is None or isinstance(predicted, str):
            why = predicted or f"no reference for {preset} with the {loader} loader on {device_name}"
            others = sorted({r.loader for r in same_device})
            if others:
                why += f" (this device has one for the {' and '.join(others)} loader only)"
            why += (
                f"; record one with `envcheck bench --preset {preset} --loader {loader} --save-reference FILE` on an"
                " idle machine, then copy its row into profiles/calibration.toml or pass --calibration FILE"
            )
            return Calibration("none", None, None, None, why, None, NOT_SCORED, reasons)
        reference, expected, basis = predicted
        kind, spread = "predicted", None
    score = measured_images_per_s / expected
    verdict = verdict_of(score)
    return Calibration(
        kind,
        expected,
        spread,
        device_name if kind == "measured" else reference.device,
        basis,
        score,
        verdict,
        reasons if verdict != "as expected" else (),
    )


SIBLING_SLOWER = 0.10  # the line: a GPU more than 10% slower than identical GPUs beside it


def slow_siblings(results: tuple[Any, ...]) -> tuple[Any, ...]:
    """GPUs more than 10% below the median images/s of the other runs on the same device name."""
    import statistics

    from envcheck.bench.result import SiblingFlag

    flags = []
    for result in results:
        others = [r.timing.images_per_s for r in results if r.device_name == result.device_name and r is not result]
        if not others:
            continue
        median = statistics.median(others)
        slower = 1 - result.timing.images_per_s / median
        if slower > SIBLING_SLOWER:
            flags.append(SiblingFlag(result.device, result.device_name, result.timing.images_per_s, median, slower))
    return tuple(flags)
