"""`envcheck bench` output: the summary table (terminal, Markdown), JSON, and rich progress bars per phase."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from envcheck.bench.ceiling import Ceiling
from envcheck.bench.loop import ESTIMATE
from envcheck.bench.result import BenchResult, SiblingFlag, multi_to_json, result_to_json


def render_bench_json(results: Sequence[BenchResult], flags: Sequence[SiblingFlag]) -> str:
    """One run: its object; `--device all`: {"runs": [...], "slow_siblings": [...]}."""
    if len(results) == 1:
        return json.dumps(result_to_json(results[0]), indent=2, allow_nan=False)
    return json.dumps(multi_to_json(tuple(results), tuple(flags)), indent=2, allow_nan=False)


def bench_rows(result: BenchResult) -> list[tuple[str, str]]:
    timing, check, calibration = result.timing, result.correctness, result.calibration
    data = "synthetic (no CIFAR-10 found; see docs/bench.md)" if result.data == "synthetic" else result.data
    if result.data_checksums == "unverified":
        data += " (your copy: not the official files)"
    rows = [
        ("preset", f"{result.preset} ({result.mode}, batch {timing.batch_size})"),
        ("device", f"{result.device}: {result.device_name}"),
        ("data", f"{data}, {result.loader} loader" + (f", {result.workers} workers" if result.workers else "")),
        ("throughput", f"{timing.images_per_s:,.0f} images/s (median of {len(timing.window_images_per_s)} windows)"),
        ("spread", f"CV {timing.cv:.1%}; step p50 {timing.step_p50_ms:.2f} ms, p95 {timing.step_p95_ms:.2f} ms"),
        (
            "correctness",
            f"{'passed' if check.passed else 'FAILED'}: max deviation {check.max_rel_deviation:.1e} from float64"
            f" over {check.steps} steps (tolerance {check.tolerance:.0e}, {check.precision})",
        ),
    ]
    if calibration.score is None:
        rows.append(("calibration", f"speed {calibration.verdict}: {calibration.basis}"))
    else:
        rows.append(
            (
                "calibration",
                f"{calibration.score:.0%} of {calibration.reference_images_per_s:,.0f} images/s"
                f" ({calibration.kind}): {calibration.verdict}",
            )
        )
        rows.append(("reference", calibration.basis))
    rows += [("likely cause", reason) for reason in calibration.reasons]
    telemetry = result.telemetry
    if telemetry is not None:
        rows.append(("telemetry", telemetry.unavailable or _telemetry_line(telemetry)))
    if result.ceiling is not None:
        rows.append(("ceiling", result.ceiling.unavailable or _ceiling_line(result.ceiling)))
    if result.recipe is not None:
        recipe = result.recipe
        accuracies = ", ".join(f"{a:.1%}" for a in recipe.epoch_accuracies)
        if recipe.time_to_target_s is None:
            reached = f"NOT reached after {recipe.epochs} epochs: FAILED"
        else:
            reached = f"reached in {recipe.time_to_target_s:.0f} s of training"
        rows.append(("accuracy", f"per epoch {accuracies}; target {recipe.target_accuracy:.0%} {reached}"))
        rows.append(
            ("total time", f"{_duration(recipe.total_s)} ({_duration(recipe.training_s)} training, the rest testing)")
        )
    versions = dict(result.versions)
    rows.append(
        ("versions", f"torch {versions.get('torch')}, CUDA {versions.get('cuda')}, envcheck {versions.get('envcheck')}")
    )
    return rows


def _telemetry_line(telemetry: Any) -> str:
    parts = [f"{telemetry.samples} samples"]
    if telemetry.sm_clock_median_mhz is not None:
        parts.append(f"SM clock median {telemetry.sm_clock_median_mhz:.0f} MHz of {telemetry.sm_clock_max_mhz} max")
    if telemetry.thermal_slowdown_fraction is not None:
        parts.append(f"thermal slowdown {telemetry.thermal_slowdown_fraction:.0%} of the time")
    if telemetry.power_cap_fraction is not None:
        parts.append(f"power cap {telemetry.power_cap_fraction:.0%}")
    if telemetry.temperature_max_c is not None:
        parts.append(f"max {telemetry.temperature_max_c} C")
    if telemetry.power_median_w is not None:
        parts.append(f"median {telemetry.power_median_w:.0f} W")
    return ", ".join(parts)


def render_bench(results: Sequence[BenchResult], flags: Sequence[SiblingFlag], console: Console) -> None:
    for result in results:
        table = Table(
            title=f"envcheck bench: {result.preset} on {result.device}", show_header=False, title_justify="left"
        )
        table.add_column(style="bold")
        table.add_column()
        for name, value in bench_rows(result):
            table.add_row(name, value)
        console.print(table)
    for flag in flags:
        console.print(
            f"[bold yellow]warning[/]: {flag.device} ({flag.device_name}) is {flag.slower_fraction:.0%} slower than"
            f" its identical siblings ({flag.images_per_s:,.0f} vs {flag.siblings_median_images_per_s:,.0f} images/s)"
        )


def render_bench_markdown(results: Sequence[BenchResult], flags: Sequence[SiblingFlag]) -> str:
    lines = []
    for result in results:
        lines += [f"### envcheck bench: {result.preset} on {result.device}", "", "| | |", "|---|---|"]
        lines += [f"| {name} | {value.replace('|', '/')} |" for name, value in bench_rows(result)]
        lines.append("")
    lines += [
        f"- **warning**: {f.device} ({f.device_name}) is {f.slower_fraction:.0%} slower than its identical siblings"
        for f in flags
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def progress_bars(console: Console | None) -> Iterator[Callable[[str, int, int], None]]:
    """A callback for bench's on_progress: one bar per phase; silent when `console` is None (JSON, pipes)."""
    if console is None:
        yield lambda phase, done, total: None
        return
    bars = Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase.startswith(ESTIMATE):
            line = estimate_line(phase, done, total)
            if line is not None:
                bars.console.print(line)
            return
        if phase not in tasks:
            tasks[phase] = bars.add_task(phase, total=total)
        bars.update(tasks[phase], completed=done, total=total)

    with bars:
        yield update


LONG_RUN_S = 60  # a forecast is shown for runs longer than this: a quick tutorial-cnn run needs no warning


def estimate_line(phase: str, seconds: int, steps: int) -> str | None:
    """``this run should take about 6 min 20 s more (1,180 steps, estimate from the first 3 steps)``."""
    if seconds < LONG_RUN_S:
        return None
    return f"this run should take about {_duration(seconds)} more ({steps:,} steps, {phase})"


def _ceiling_line(ceiling: Ceiling) -> str:
    """matmul bf16 812 TFLOP/s (82% of 989) · copy 4,120 GB/s (86% of 4,800)."""
    parts = []
    for measure in ceiling.measures:
        label = f"matmul {measure.dtype}" if measure.kind == "matmul" else "copy"
        value = f"{measure.achieved:,.1f}" if measure.achieved < 100 else f"{measure.achieved:,.0f}"
        share = (
            ""
            if measure.fraction is None or measure.spec is None
            else f" ({measure.fraction:.0%} of {measure.spec:,g})"
        )
        parts.append(f"{label} {value} {measure.unit}{share}")
    if ceiling.spec_source is None:
        parts.append("no spec sheet to compare with")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    """``42 s``, ``6 min 20 s``, ``2 h 05 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
