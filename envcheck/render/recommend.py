"""`envcheck recommend` output: memory breakdown, then the ranked options (terminal, Markdown, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from envcheck.advise.architecture import kv_cache_bytes_per_token
from envcheck.advise.assumptions import assumptions_line, assumptions_of
from envcheck.advise.buy import PurchaseOption
from envcheck.advise.here import HereResult
from envcheck.advise.memory_model import STRATEGY_TITLES, MemoryEstimate
from envcheck.advise.recommend import Option, Recommendation
from envcheck.advise.time_model import BenchMeasurement, JobTime
from envcheck.advise.workload_spec import WorkloadSpec

RECOMMEND_SCHEMA = "envcheck.recommend/1"
MEMORY_TERMS = ("weights", "gradients", "optimizer", "activations", "kv_cache", "overhead")


@dataclass(frozen=True, slots=True)
class RecommendReport:
    recommendation: Recommendation
    purchases: tuple[PurchaseOption, ...] | None  # None: --buy not asked
    power_price_usd_kwh: float
    here: HereResult | None
    emitted_path: str | None  # where --emit wrote the SkyPilot task


def _gb(value: float) -> str:
    return f"{value / 1e9:.1f} GB"


def _hours(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value * 60 < 1:  # a short job is seconds, not "0 min"
        return f"{max(1, round(value * 3600))} s"
    return f"{value * 60:.0f} min" if value < 1 else f"{value:,.1f} h"


def _parameters(count: int) -> str:
    """7.24 B, 11.2 M: a CNN's 11 million parameters are not "0.01 B"."""
    return f"{count / 1e9:.2f} B" if count >= 10**9 else f"{count / 1e6:.1f} M"


def _shape_note(spec: WorkloadSpec) -> str | None:
    """A shape guessed from the parameter count has no grouped-query attention: say so where it matters."""
    shape = spec.shape
    if not spec.is_shape_assumed or shape is None:
        return None
    guessed = f"{shape.layers} layers, hidden {shape.hidden}, {shape.heads} heads"
    if spec.task == "infer":
        per_token = kv_cache_bytes_per_token(shape)
        return (
            f"shape assumed from the parameter count ({guessed}, no grouped-query attention: "
            f"{per_token / 1e6:.2f} MB of KV cache per token, an upper bound); "
            "--hf-config or --layers/--hidden/--heads/--kv-heads give the model's own"
        )
    return f"shape assumed from the parameter count ({guessed}): activations are approximate"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def memory_to_dict(memory: MemoryEstimate) -> dict[str, Any]:
    terms = {f"{term}_bytes": getattr(memory, f"{term}_bytes") for term in MEMORY_TERMS}
    return {"strategy": memory.strategy, "gpu_count": memory.gpu_count, **terms, "total_bytes": memory.total_bytes}


def option_to_dict(option: Option) -> dict[str, Any]:
    instance = option.instance
    return {
        "cloud": instance.cloud,
        "instance_type": instance.instance_type,
        "region": instance.region,
        "gpu": instance.gpu,
        "gpu_count": instance.gpu_count,
        "gpu_memory_gb": instance.gpu_memory_gb,
        "strategy": option.memory.strategy,
        "memory_per_gpu_bytes": option.memory.total_bytes,
        "headroom_fraction": round(option.headroom_fraction, 3),
        "is_spot": option.is_spot,
        "price_per_hour": option.price_per_hour,
        "job_hours": option.job_hours,
        "job_cost": option.job_cost,
        "time_basis": None if option.job_time is None else option.job_time.basis,
        **_communication(option.job_time),
        "measured_from": None
        if option.job_time is None or option.job_time.measurement is None
        else option.job_time.measurement.source,
        "as_of": instance.as_of,
        "source": instance.source,
        "data_quality": instance.data_quality,
    }


def _communication(timing: JobTime | None) -> dict[str, Any]:
    """The GPU-to-GPU communication inside ``job_hours`` (0 on one GPU), and the link it was priced on."""
    if timing is None:
        return {"communication_hours": None, "communication_share": None, "interconnect": None}
    return {
        "communication_hours": timing.communication_hours,
        "communication_share": round(timing.communication_share, 4),
        "interconnect": timing.interconnect,
    }


def measurement_to_dict(measurement: BenchMeasurement) -> dict[str, Any]:
    return {
        "device": measurement.device,
        "images_per_s": measurement.images_per_s,
        "date": measurement.date,
        "file": measurement.source,
    }


def _name(option: Option | None) -> str | None:
    return None if option is None else f"{option.instance.cloud} {option.instance.instance_type}"


def recommend_to_dict(report: RecommendReport) -> dict[str, Any]:
    rec = report.recommendation
    spec = rec.spec
    data: dict[str, Any] = {
        "schema": RECOMMEND_SCHEMA,
        "workload": {
            "name": spec.name,
            "parameters": spec.parameters,
            "task": spec.task,
            "precision": spec.precision,
            "seq_len": spec.seq_len,
            "batch": spec.batch,
            "job_tokens": rec.job_units,
            "is_job_size_assumed": rec.is_job_size_assumed,
            "source": spec.source,
            "is_shape_assumed": spec.is_shape_assumed,
            "active_parameters": spec.compute_parameters,
            "transformers_parameters": spec.transformers_parameters,
        },
        "assumptions": [{"name": a.name, "value": a.value, "option": a.option} for a in assumptions_of(spec)],
        "memory": memory_to_dict(rec.memory),
        "options": [option_to_dict(o) for o in rec.options],
        "fitting_count": rec.fitting_count,
        "considered_count": rec.considered_count,
        "cheapest": _name(rec.cheapest),
        "fastest": _name(rec.fastest),
        "best_value": _name(rec.best_value),
        "suggestions": list(rec.suggestions),
        "catalog": {"origin": rec.catalog.origin, "dropped": list(rec.catalog.dropped)},
        "measured": [measurement_to_dict(m) for m in rec.measured],
    }
    if report.purchases is not None:
        data["buy"] = {
            "power_price_usd_kwh": report.power_price_usd_kwh,
            "options": [
                {
                    "gpu": f"{p.price.gpu.name} {p.price.gpu.variant}",
                    "gpu_count": p.gpu_count,
                    "purchase_usd": p.purchase_usd,
                    "price_source": p.price.source,
                    "price_as_of": p.price.as_of.isoformat(),
                    "strategy": p.memory.strategy,
                    "job_hours": None if p.job_time is None else p.job_time.hours,
                    "power_usd_per_hour": p.power_usd_per_hour,
                    "break_even_hours": p.break_even_hours,
                }
                for p in report.purchases
            ],
        }
    if report.here is not None:
        here = report.here
        data["here"] = {
            "gpu": here.gpu_name,
            "gpu_count": here.gpu_count,
            "gpu_memory_bytes": here.gpu_memory_bytes,
            "fits": here.memory is not None,
            "fits_as_given": here.as_given is not None and here.as_given.fits,
            "settings": here.settings or None,
            "memory": None if here.memory is None else memory_to_dict(here.memory),
            "job_hours": None if here.job_time is None else here.job_time.hours,
            "used_by_other_processes_bytes": here.used_bytes,
            "reason": here.no_gpu_reason or (here.as_given.reason if here.as_given is not None else None),
        }
    if report.emitted_path is not None:
        data["emitted"] = report.emitted_path
    return data


def render_recommend_json(report: RecommendReport) -> str:
    return json.dumps(recommend_to_dict(report), indent=2, allow_nan=False)


def _flagged_lines(rec: Recommendation, verbose: bool) -> list[str]:
    """Rows the catalog itself marks DATA-QUALITY: counted, and with -v each with the catalog's words."""
    flagged = [o for o in rec.options if o.instance.data_quality]
    if not flagged:
        return []
    hint = "" if verbose else " (-v says why)"
    lines = [f"{len(flagged)} option(s) marked (verify): the catalog flags their data as doubtful{hint}"]
    if verbose:
        lines += [f"  {o.instance.cloud} {o.instance.instance_type}: {o.instance.data_quality}" for o in flagged]
    return lines


def _job_line(rec: Recommendation) -> str:
    unit = "samples" if rec.spec.shape is None else "tokens"
    assumed = " (assumed: set --tokens)" if rec.is_job_size_assumed else ""
    return f"job: {rec.job_units:,.0f} {unit}{assumed}"


def _measured_lines(rec: Recommendation) -> list[str]:
    """Which saved or given bench each measured time comes from, and the benches no option could use."""
    used = rec.measurements_used
    lines = [f"time scaled from your bench of {m.device}{_on_date(m)} ({m.source})" for m in used]
    lines += [
        f"bench of {m.device}{_on_date(m)} not used: no option listed has that GPU ({m.source})"
        for m in rec.measured
        if m not in used
    ]
    return lines


def _on_date(measurement: BenchMeasurement) -> str:
    return "" if not measurement.date else f" on {measurement.date[:10]}"


def _memory_rows(memory: MemoryEstimate) -> list[tuple[str, str]]:
    rows = [(term.replace("_", " "), _gb(getattr(memory, f"{term}_bytes"))) for term in MEMORY_TERMS]
    return [*rows, ("total", _gb(memory.total_bytes))]


# short names for the table; STRATEGY_TITLES spell them out elsewhere
SHORT_STRATEGY = {"single": "1 GPU", "ddp": "DDP", "zero1": "ZeRO-1", "zero2": "ZeRO-2", "zero3": "ZeRO-3"}
SHORT_STRATEGY |= {"replicas": "copies", "tp": "TP"}


def _option_cells(option: Option) -> list[str]:
    i = option.instance
    return [
        f"{i.cloud} {i.instance_type} ({i.region})",
        f"{i.gpu_count}x {i.gpu} {i.gpu_memory_gb:g}G",
        SHORT_STRATEGY[option.memory.strategy],
        f"{_gb(option.memory.total_bytes)}, {option.headroom_fraction:.0%} free",
        f"${option.price_per_hour:,.2f}{' spot' if option.is_spot else ''} ({i.as_of})"
        + (" (verify)" if i.data_quality else ""),
        _hours(option.job_hours) + _communication_note(option.job_time),
        _money(option.job_cost),
    ]


def _communication_note(timing: JobTime | None) -> str:
    """The share of the job spent on GPU-to-GPU communication, where there is any worth a percent."""
    if timing is None or timing.communication_share < 0.005:
        return ""
    return f" ({timing.communication_share:.0%} comms)"


HEADERS = ("instance (region)", "GPUs", "sharding", "per GPU", "$/h (as of)", "job time", "job cost")


def _verdicts(rec: Recommendation) -> list[str]:
    lines = []
    for label, option in (("cheapest", rec.cheapest), ("fastest", rec.fastest), ("best value", rec.best_value)):
        if option is not None:
            flag = " (the catalog flags this row's data: verify)" if option.instance.data_quality else ""
            lines.append(f"{label}: {_name(option)} — {_money(option.job_cost)}, {_hours(option.job_hours)}{flag}")
    return lines


def _buy_rows(report: RecommendReport) -> list[list[str]]:
    rows = []
    for p in report.purchases or ():
        even = "never" if p.break_even_hours is None else f"{p.break_even_hours:,.0f} h"
        rows.append(
            [
                f"{p.gpu_count} x {p.price.gpu.name}",
                f"${p.purchase_usd:,.0f} ({p.price.as_of.isoformat()})",
                STRATEGY_TITLES[p.memory.strategy],
                _hours(None if p.job_time is None else p.job_time.hours),
                f"${p.power_usd_per_hour:.2f}/h",
                even,
            ]
        )
    return rows


BUY_HEADERS = ("GPUs", "purchase (price date)", "sharding", "job time", "power", "break-even vs best value")


def _here_line(here: HereResult) -> str:
    if here.gpu_name is None:
        return f"this machine: no usable GPU ({here.no_gpu_reason})"
    held = f", up to {_gb(here.used_bytes)} held by other processes" if here.used_bytes else ""
    where = f"this machine: {here.gpu_count} x {here.gpu_name} ({_gb(here.gpu_memory_bytes)}{held})"
    reason = here.as_given.reason if here.as_given is not None else None
    if here.memory is None:
        return f"{where}: does not fit ({reason}), even with checkpointing, batch 1 or QLoRA"
    verdict = (
        f"fits {here.settings}" if reason is None else f"does not fit as given ({reason}); fits with {here.settings}"
    )
    return (
        f"{where}: {verdict}, {STRATEGY_TITLES[here.memory.strategy]}, "
        f"{_gb(here.memory.total_bytes)} per GPU, job {_hours(None if here.job_time is None else here.job_time.hours)}"
    )


def render_recommend(report: RecommendReport, console: Console, verbose: bool = False) -> None:
    rec = report.recommendation
    spec = rec.spec
    active = f" ({_parameters(spec.compute_parameters)} active per token)" if spec.active_parameters else ""
    console.print(
        f"[bold]{spec.name}[/]: {_parameters(spec.parameters)} parameters{active}, {spec.task}, {spec.precision}"
    )
    console.print(_job_line(rec))
    if spec.transformers_parameters is not None:
        console.print(
            f"transformers counts {_parameters(spec.transformers_parameters)} (model built on the meta device)"
        )
    console.print(assumptions_line(spec), markup=False, highlight=False)
    note = _shape_note(spec)
    if note:
        console.print(note, markup=False, highlight=False)
    breakdown = Table(title="memory on one GPU (unsharded)", show_header=False, title_justify="left")
    for name, value in _memory_rows(rec.memory):
        breakdown.add_row(name, value)
    console.print(breakdown)
    if report.here is not None:
        console.print(_here_line(report.here))
    if rec.options:
        table = Table(*HEADERS, title=f"{rec.fitting_count} of {rec.considered_count} instances fit")
        for option in rec.options:
            table.add_row(*_option_cells(option))
        console.print(table)
        for line in _verdicts(rec):
            console.print(line)
        for line in (*_measured_lines(rec), *_flagged_lines(rec, verbose)):
            console.print(line, markup=False, highlight=False)
    else:
        console.print(f"[bold red]nothing fits[/] among {rec.considered_count} instances")
        for line in rec.suggestions:
            console.print(f"  {line}")
    if report.purchases is not None:
        buy = Table(*BUY_HEADERS, title=f"buy (electricity ${report.power_price_usd_kwh}/kWh, GPUs only)")
        for row in _buy_rows(report):
            buy.add_row(*row)
        console.print(buy)
    if report.emitted_path:
        console.print(f"wrote SkyPilot task {report.emitted_path}")
    if rec.catalog.dropped:
        hint = "" if verbose else " (-v lists them)"
        console.print(f"{len(rec.catalog.dropped)} catalog rows dropped or corrected on load{hint}")
        for line in rec.catalog.dropped if verbose else ():
            console.print(f"  {line}", markup=False, highlight=False)


def _md_table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def render_recommend_markdown(report: RecommendReport) -> str:
    rec = report.recommendation
    spec = rec.spec
    note = _shape_note(spec)
    lines = [f"## envcheck recommend: {spec.name}", "", _job_line(rec), "", assumptions_line(spec)]
    lines += [*(["", note] if note else []), ""]
    lines += [*_md_table(("memory term", "one GPU"), [list(row) for row in _memory_rows(rec.memory)]), ""]
    if report.here is not None:
        lines += [_here_line(report.here), ""]
    if rec.options:
        lines += [*_md_table(HEADERS, [_option_cells(o) for o in rec.options]), ""]
        lines += [f"* {line}" for line in (*_verdicts(rec), *_measured_lines(rec), *_flagged_lines(rec, True))]
        lines += [""]
    else:
        lines += [f"Nothing fits among {rec.considered_count} instances.", ""] + [f"* {s}" for s in rec.suggestions]
    if report.purchases is not None:
        lines += ["", *_md_table(BUY_HEADERS, _buy_rows(report))]
    return "\n".join(lines) + "\n"
