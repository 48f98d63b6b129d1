"""Buying instead of renting: which GPUs with a known price fit, how many, and after how many hours they pay off.

Prices: profiles/gpu_prices.toml (launch MSRPs with source and date). Break-even formula: docs/recommend.md#buy.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from envcheck.advise.fit import required_compute_capability
from envcheck.advise.memory_model import MemoryEstimate, fitting_estimate
from envcheck.advise.recommend import Option, job_time
from envcheck.advise.time_model import JobTime, Measured
from envcheck.advise.workload_spec import WorkloadSpec, on_gpu
from envcheck.facts.common import Unavailable
from envcheck.input_files import CONFIG_LIMIT, load_toml_file
from envcheck.knowledge import GpuSpec, Knowledge, KnowledgeError, profiles_root
from envcheck.validation import InvalidValue, positive_number, quoted

# USD per kWh when --power-price is not given: between the 2024 US average commercial (~13 cents) and
# residential (~16 cents) electricity prices of the EIA Electric Power Monthly (recalled). An assumption.
DEFAULT_POWER_PRICE_USD_KWH = 0.15
MAX_POWER_PRICE_USD_KWH = 100.0  # 100x the dearest retail electricity anywhere
GPU_COUNTS = (1, 2, 4, 8)  # what fits in one workstation or server chassis


@dataclass(frozen=True, slots=True)
class GpuPrice:
    gpu: GpuSpec
    price_usd: float
    source: str
    as_of: datetime.date
    confidence: str


@dataclass(frozen=True, slots=True)
class PurchaseOption:
    price: GpuPrice
    gpu_count: int
    memory: MemoryEstimate
    job_time: JobTime | None
    purchase_usd: float
    power_usd_per_hour: float  # GPUs at their TDP; the host is not counted
    break_even_hours: float | None  # None: never (or no cloud option to compare with)


def load_gpu_prices(knowledge: Knowledge, root: Path | None = None) -> tuple[GpuPrice, ...]:
    path = profiles_root(root) / "gpu_prices.toml"
    label = f"{path.parent.name}/{path.name}"
    rows = load_toml_file(path, CONFIG_LIMIT, label).get("price", [])
    if not isinstance(rows, list):
        raise KnowledgeError(f"{label}: price: expected [[price]] tables, got {quoted(rows)}")
    prices = []
    for index, row in enumerate(rows):
        where = f"{label}: price[{index}]"
        if not isinstance(row, dict):
            raise KnowledgeError(f"{where}: expected a table")
        gpu = next((g for g in knowledge.gpus if (g.name, g.variant) == (row.get("name"), row.get("variant"))), None)
        if gpu is None:
            raise KnowledgeError(
                f"{where}: {quoted(row.get('name'))} {quoted(row.get('variant'))} is not in profiles/gpus.toml"
            )
        as_of = row.get("as_of")
        try:
            price = positive_number(row.get("price_usd"), f"{where}: price_usd", minimum=1.0)  # no GPU sells for cents
        except InvalidValue as error:
            raise KnowledgeError(str(error)) from None
        if not isinstance(as_of, datetime.date):
            raise KnowledgeError(f"{where}: as_of: expected a date, got {quoted(as_of)}")
        prices.append(GpuPrice(gpu, price, str(row.get("source", "")), as_of, str(row.get("confidence", ""))))
    return tuple(prices)


def break_even_hours(
    purchase_usd: float, own_hours_per_job: float, cloud: Option, power_usd_per_hour: float
) -> float | None:
    """Hours of owning after which buying was cheaper: purchase + h x power = (h / own job hours) x cloud job cost."""
    if cloud.job_cost is None or own_hours_per_job <= 0:
        return None
    rent_per_owned_hour = cloud.job_cost / own_hours_per_job
    if rent_per_owned_hour <= power_usd_per_hour:
        return None
    return purchase_usd / (rent_per_owned_hour - power_usd_per_hour)


def recommend_purchases(
    spec: WorkloadSpec,
    prices: tuple[GpuPrice, ...],
    best_cloud: Option | None,
    power_price_usd_kwh: float = DEFAULT_POWER_PRICE_USD_KWH,
    measured: Measured = None,
) -> tuple[PurchaseOption, ...]:
    """Each priced GPU in the fewest count (of 1, 2, 4, 8) that fits, cheapest purchase first."""
    if not 0 <= power_price_usd_kwh <= MAX_POWER_PRICE_USD_KWH:  # also refuses nan and inf
        raise KnowledgeError(
            f"--power-price: expected 0 to {MAX_POWER_PRICE_USD_KWH:g} $/kWh, got {power_price_usd_kwh}"
        )
    options = []
    for price in prices:
        gpu = price.gpu
        if isinstance(gpu.memory_gb, Unavailable) or gpu.compute_capability < required_compute_capability(spec):
            continue
        for count in GPU_COUNTS:
            memory = fitting_estimate(on_gpu(spec, gpu.compute_capability), count, gpu.memory_gb * 1e9)
            if memory is None:
                continue
            timing = job_time(spec, gpu, memory, measured)
            watts = 0.0 if isinstance(gpu.tdp_watts, Unavailable) else gpu.tdp_watts
            power = count * watts / 1000 * power_price_usd_kwh
            purchase = count * price.price_usd
            even = None
            if best_cloud is not None and timing is not None:
                even = break_even_hours(purchase, timing.hours, best_cloud, power)
            options.append(PurchaseOption(price, count, memory, timing, purchase, power, even))
            break
    return tuple(sorted(options, key=lambda o: o.purchase_usd))
