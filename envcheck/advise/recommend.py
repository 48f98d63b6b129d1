"""Which cloud instances run a workload, with what sharding, how long the whole job takes and what it costs.

Ranked by whole-job cost (a cheap instance that takes three times as long costs more); see docs/recommend.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from envcheck.advise.catalog import Catalog, Instance
from envcheck.advise.fit import required_compute_capability
from envcheck.advise.memory_model import MemoryEstimate, estimate, fitting_estimate, is_tensor_parallel_possible
from envcheck.advise.time_model import BenchMeasurement, JobTime, Measured, job_units, serving_time, training_time
from envcheck.advise.workload_spec import WorkloadSpec, on_gpu
from envcheck.facts.common import Unavailable
from envcheck.knowledge import GpuSpec, KnowledgeError
from envcheck.validation import quoted

SORTS = ("cost", "hourly", "time")
# "Best value": the fastest option whose whole-job cost is within this factor of the cheapest one.
BEST_VALUE_COST_FACTOR = 1.25
GB = 10**9


@dataclass(frozen=True, slots=True)
class Filters:
    cloud: str | None = None
    region: str | None = None
    is_spot: bool = False
    max_price_per_hour: float | None = None
    min_gpus: int | None = None
    sort: str = "cost"
    top: int | None = None


@dataclass(frozen=True, slots=True)
class Option:
    instance: Instance
    is_spot: bool
    price_per_hour: float
    memory: MemoryEstimate  # per GPU
    headroom_fraction: float  # of each GPU's memory left free
    job_time: JobTime | None

    @property
    def job_hours(self) -> float | None:
        return None if self.job_time is None else self.job_time.hours

    @property
    def job_cost(self) -> float | None:
        return None if self.job_time is None else self.job_time.hours * self.price_per_hour


@dataclass(frozen=True, slots=True)
class Recommendation:
    spec: WorkloadSpec
    memory: MemoryEstimate  # on one GPU, unsharded: the breakdown shown above the table
    options: tuple[Option, ...]  # sorted and cut to --top
    fitting_count: int  # before --top
    considered_count: int  # instances left after the filters
    cheapest: Option | None
    fastest: Option | None
    best_value: Option | None
    job_units: float
    is_job_size_assumed: bool
    suggestions: tuple[str, ...]  # when nothing fits: what would, with numbers
    catalog: Catalog
    measured: tuple[BenchMeasurement, ...]  # the benches given or found; each applies to its own GPU model

    @property
    def measurements_used(self) -> tuple[BenchMeasurement, ...]:
        """The benches that set the time of at least one option, in the order given."""
        used = {o.job_time.measurement for o in self.options if o.job_time and o.job_time.measurement}
        return tuple(m for m in self.measured if m in used)


def job_time(spec: WorkloadSpec, gpu: GpuSpec, memory: MemoryEstimate, measured: Measured) -> JobTime | None:
    """Training is compute-bound over every GPU used, plus the communication its sharding needs; serving is
    bandwidth-bound per decode step, plus the activation all-reduces of tensor parallelism."""
    if spec.task != "infer":
        used = 1 if memory.strategy == "single" else memory.gpu_count
        return training_time(spec, gpu, used, measured, memory.strategy)
    streams = memory.gpu_count if memory.strategy == "replicas" else 1
    tensor_parallel = memory.gpu_count if memory.strategy == "tp" else 1
    return serving_time(spec, gpu, memory.weights_bytes + memory.kv_cache_bytes, streams, tensor_parallel)


def is_capable(spec: WorkloadSpec, gpu: GpuSpec) -> bool:
    """The GPU has the units the workload's precision needs (e.g. bf16 from compute capability 8.0)."""
    return gpu.compute_capability >= required_compute_capability(spec)


def _selected(catalog: Catalog, filters: Filters) -> list[tuple[Instance, float, bool]]:
    chosen = []
    for instance in catalog.instances:
        if filters.cloud and instance.cloud.casefold() != filters.cloud.casefold():
            continue
        if filters.region and not instance.region.casefold().startswith(filters.region.casefold()):
            continue
        if filters.min_gpus and instance.gpu_count < filters.min_gpus:
            continue
        price = instance.price_spot_usd_h if filters.is_spot else instance.price_on_demand_usd_h
        if price is None:
            continue
        if filters.max_price_per_hour is not None and price > filters.max_price_per_hour:
            continue
        chosen.append((instance, price, filters.is_spot))
    return chosen


def _check_cloud(cloud: str, catalog: Catalog, is_spot: bool) -> None:
    """A --cloud the catalog does not have is a typo or a cloud envcheck has no prices for: say which it has;
    --spot on a cloud whose rows carry no spot price is a cloud without a spot market, not "no instance fits"."""
    known = sorted({instance.cloud.casefold() for instance in catalog.instances})
    if cloud.casefold() not in known:
        raise KnowledgeError(
            f"--cloud {quoted(cloud)}: not in the catalog {catalog.origin} (known: {', '.join(known)})"
        )
    rows = [instance for instance in catalog.instances if instance.cloud.casefold() == cloud.casefold()]
    if is_spot and all(instance.price_spot_usd_h is None for instance in rows):
        with_spot = sorted({i.cloud.casefold() for i in catalog.instances if i.price_spot_usd_h is not None})
        raise KnowledgeError(
            f"--spot: {rows[0].cloud} has no spot market in the catalog {catalog.origin} "
            f"(spot prices: {', '.join(with_spot) or 'none'}); drop --spot or pick another --cloud"
        )


def _sort_key(sort: str, option: Option) -> tuple[float, float, float]:
    missing = float("inf")
    # jobs that cost the same to the cent are a tie: the faster one goes first (2 GPUs at twice the price
    # for half the time is the same job cost, done sooner)
    cost = round(option.job_cost, 2) if option.job_cost is not None else missing
    hours = option.job_hours if option.job_hours is not None else missing
    if sort == "hourly":
        return (option.price_per_hour, cost, hours)
    if sort == "time":
        return (hours, cost, option.price_per_hour)
    return (cost, hours, option.price_per_hour)


def _best_value(options: list[Option]) -> Option | None:
    costed = [o for o in options if o.job_cost is not None and o.job_hours is not None]
    if not costed:
        return None
    cheapest = min(o.job_cost or 0.0 for o in costed)
    affordable = [o for o in costed if (o.job_cost or 0.0) <= cheapest * BEST_VALUE_COST_FACTOR]
    return min(affordable, key=lambda o: (o.job_hours or 0.0, o.job_cost or 0.0))


def _without_filters(
    spec: WorkloadSpec,
    catalog: Catalog,
    filters: Filters,
    measured: Measured,
    selected: list[tuple[Instance, float, bool]],
) -> tuple[str, ...]:
    """When the filters left nothing that fits: say so, and what the catalog has without them."""
    narrowing = _filter_flags(filters)
    if not narrowing:
        return ()
    unfiltered = recommend_instances(spec, catalog, Filters(is_spot=filters.is_spot), measured)
    lines = [] if selected else [f"no instance in the catalog matches {', '.join(narrowing)}"]
    best = unfiltered.cheapest
    if unfiltered.fitting_count and best is not None and best.job_cost is not None:
        lines.append(
            f"without {', '.join(narrowing)}: {unfiltered.fitting_count} instances fit; cheapest job "
            f"{best.instance.cloud} {best.instance.instance_type}, {best.instance.gpu_count} x {best.instance.gpu}, "
            f"${best.price_per_hour:,.2f}/h, ${best.job_cost:,.2f}"
        )
    return tuple(lines)


def _filter_flags(filters: Filters) -> list[str]:
    flags = [
        f"--cloud {filters.cloud}" if filters.cloud else "",
        f"--region {filters.region}" if filters.region else "",
        f"--max-price {filters.max_price_per_hour:g}" if filters.max_price_per_hour is not None else "",
        f"--min-gpus {filters.min_gpus}" if filters.min_gpus else "",
    ]
    return [flag for flag in flags if flag]


def what_would_fit(spec: WorkloadSpec, largest_gpu_gb: float, biggest_count: int) -> tuple[str, ...]:
    """Concrete changes under which the workload fits the largest GPUs of the catalog, with the numbers."""
    capacity = largest_gpu_gb * GB
    single = estimate(spec).total_bytes
    lines = [f"needs {single / GB:.1f} GB on one GPU; the largest GPU available here has {largest_gpu_gb:g} GB"]
    if spec.task != "infer":
        for count in (2, 4, 8, 16, 32, 64):
            sharded = estimate(spec, "zero3", count)
            if sharded.total_bytes <= capacity:
                where = "" if count <= biggest_count else " (several instances)"
                lines.append(
                    f"ZeRO-3 / FSDP over {count} x {largest_gpu_gb:g} GB GPUs{where}: "
                    f"{sharded.total_bytes / GB:.1f} GB per GPU"
                )
                break
        if not spec.is_checkpointing:
            checkpointed = estimate(replace(spec, is_checkpointing=True)).total_bytes
            lines.append(f"--checkpointing: {checkpointed / GB:.1f} GB on one GPU")
        if spec.task in ("train", "finetune", "lora") and spec.shape is not None:
            qlora = estimate(replace(spec, task="qlora", precision="int4", lora_rank=64)).total_bytes
            lines.append(f"--task qlora (4-bit base, rank-64 adapters): {qlora / GB:.1f} GB on one GPU")
        if spec.shape is not None and spec.seq_len > 512:
            shorter = estimate(replace(spec, seq_len=spec.seq_len // 2)).total_bytes
            lines.append(f"--seq-len {spec.seq_len // 2}: {shorter / GB:.1f} GB on one GPU")
    else:
        for count in (count for count in (2, 4, 8) if is_tensor_parallel_possible(spec, count)):
            parallel = estimate(spec, "tp", count)
            if parallel.total_bytes <= capacity:
                lines.append(f"tensor parallel over {count} GPUs: {parallel.total_bytes / GB:.1f} GB per GPU")
                break
        if spec.concurrency > 1:
            fewer = estimate(replace(spec, concurrency=max(1, spec.concurrency // 2))).total_bytes
            lines.append(f"--concurrency {max(1, spec.concurrency // 2)}: {fewer / GB:.1f} GB on one GPU")
    return tuple(lines)


def recommend_instances(
    spec: WorkloadSpec, catalog: Catalog, filters: Filters, measured: Measured = None
) -> Recommendation:
    """Every selected instance the workload fits on, priced for the whole job and ranked."""
    if filters.sort not in SORTS:
        raise KnowledgeError(f"--sort: {quoted(filters.sort)} is not one of {', '.join(SORTS)}")
    if filters.max_price_per_hour is not None and not math.isfinite(filters.max_price_per_hour):
        raise KnowledgeError(f"--max-price: expected a finite number, got {filters.max_price_per_hour}")
    if filters.cloud:
        _check_cloud(filters.cloud, catalog, filters.is_spot)
    selected = _selected(catalog, filters)
    options = []
    for instance, price, is_spot in selected:
        if not is_capable(spec, instance.gpu_spec):
            continue
        capacity = instance.gpu_memory_gb * GB
        memory = fitting_estimate(on_gpu(spec, instance.gpu_spec.compute_capability), instance.gpu_count, capacity)
        if memory is None:
            continue
        headroom = 1 - memory.total_bytes / capacity
        timing = job_time(spec, instance.gpu_spec, memory, measured)
        options.append(Option(instance, is_spot, price, memory, headroom, timing))
    options.sort(key=lambda o: _sort_key(filters.sort, o))
    costed = [o for o in options if o.job_cost is not None]
    timed = [o for o in options if o.job_hours is not None]
    suggestions: tuple[str, ...] = ()
    if not options and selected:
        largest = max(selected, key=lambda s: s[0].gpu_memory_gb)[0]
        suggestions = what_would_fit(spec, largest.gpu_memory_gb, max(s[0].gpu_count for s in selected))
    if not options:
        suggestions = (*_without_filters(spec, catalog, filters, measured, selected), *suggestions)
    units, is_assumed = job_units(spec)
    return Recommendation(
        spec=spec,
        memory=estimate(spec),
        options=tuple(options[: filters.top] if filters.top else options),
        fitting_count=len(options),
        considered_count=len(selected),
        cheapest=min(costed, key=lambda o: _sort_key("cost", o)) if costed else None,
        fastest=min(timed, key=lambda o: (o.job_hours or 0.0, o.job_cost or 0.0)) if timed else None,
        best_value=_best_value(options),
        job_units=units,
        is_job_size_assumed=is_assumed,
        suggestions=suggestions,
        catalog=catalog,
        measured=(measured,) if isinstance(measured, BenchMeasurement) else tuple(measured or ()),
    )


def gpu_memory_gb(gpu: GpuSpec) -> float | None:
    return None if isinstance(gpu.memory_gb, Unavailable) else gpu.memory_gb
