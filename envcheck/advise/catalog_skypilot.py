"""A SkyPilot ``vms.csv`` (skypilot-org/skypilot-catalog, schema v5+) as a Catalog: columns found by header name.

GCP lists GPUs as their own rows (no InstanceType), priced without a host: they are joined to the VM that
carries the same accelerator, or to SkyPilot's default n1 host for attachable GPUs (T4, V100, P100, ...).
"""

from __future__ import annotations

import csv
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from envcheck.advise.catalog import Catalog, Instance, build
from envcheck.input_files import CATALOG_CSV_LIMIT, InputError, read_text_file
from envcheck.knowledge import Knowledge, KnowledgeError
from envcheck.validation import finite_number

REQUIRED = ("instancetype", "acceleratorname", "acceleratorcount", "price", "region")
# SkyPilot launches attachable GCP GPUs on an n1-highmem-8 host by default (skypilot PR #3083).
GCP_DEFAULT_HOST = "n1-highmem-8"
MIB_TO_GB = 2**20 / 1e9


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    instance_type: str
    accelerator: str
    count: int
    vcpus: float | None
    ram_gb: float | None
    total_gpu_memory_gb: float | None
    price: float | None
    spot: float | None
    region: str
    zone: str


def _optional_float(text: str, column: str) -> float | None:
    """The column's number; "nan", "inf" and 1e999 are refused (InvalidValue, a ValueError: the row is dropped)."""
    text = text.strip()
    return finite_number(float(text), column) if text else None


def _total_memory_gb(text: str) -> float | None:
    """TotalGpuMemoryInMiB from the GpuInfo column (JSON, or a Python dict repr in older catalogs)."""
    text = text.strip()
    if not text:
        return None
    for candidate in (text, text.replace("'", '"')):
        try:
            info = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        total = info.get("TotalGpuMemoryInMiB") if isinstance(info, dict) else None
        if isinstance(total, bool) or not isinstance(total, int | float) or total <= 0:
            return None
        return finite_number(total, "GpuInfo: TotalGpuMemoryInMiB") * MIB_TO_GB
    return None


def _parse(raw: dict[str, str], line: int) -> _Row:
    def get(key: str) -> str:
        return (raw.get(key) or "").strip()

    count = round(_optional_float(get("acceleratorcount"), "AcceleratorCount") or 0.0)
    return _Row(
        line=line,
        instance_type=get("instancetype"),
        accelerator=get("acceleratorname"),
        count=count,
        vcpus=_optional_float(get("vcpus"), "vCPUs"),
        ram_gb=_optional_float(get("memorygib"), "MemoryGiB"),
        total_gpu_memory_gb=_total_memory_gb(get("gpuinfo")),
        price=_optional_float(get("price"), "Price"),
        spot=_optional_float(get("spotprice"), "SpotPrice"),
        region=get("region"),
        zone=get("availabilityzone"),
    )


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _join_gpu_only_rows(rows: list[_Row], label: str, dropped: list[str]) -> list[_Row]:
    """GCP: fold each GPU-only row into its host VM row (same accelerator and count, region and zone)."""
    vms = [r for r in rows if r.instance_type]
    gpu_only = [r for r in rows if not r.instance_type and r.accelerator]
    built_in = {r.accelerator for r in vms if r.accelerator}
    by_place = {(r.instance_type, r.region, r.zone): r for r in vms}
    joined: dict[tuple[str, str, str], _Row] = {}
    for gpu in gpu_only:
        if gpu.accelerator in built_in:
            hosts = [
                v
                for v in vms
                if (v.accelerator, v.count, v.region, v.zone) == (gpu.accelerator, gpu.count, gpu.region, gpu.zone)
            ]
        else:
            host = by_place.get((GCP_DEFAULT_HOST, gpu.region, gpu.zone))
            hosts = [] if host is None else [host]
        if not hosts:
            dropped.append(
                f"{label}: line {gpu.line}: dropped: GPU-only row ({gpu.count}x {gpu.accelerator})"
                " has no host VM to join"
            )
            continue
        for host in hosts:
            name = host.instance_type if host.accelerator else f"{host.instance_type}+{gpu.count}x{gpu.accelerator}"
            joined[(name, gpu.region, gpu.zone)] = _Row(
                gpu.line, name, gpu.accelerator, gpu.count, host.vcpus, host.ram_gb,
                gpu.total_gpu_memory_gb or host.total_gpu_memory_gb, _add(host.price, gpu.price),
                _add(host.spot, gpu.spot), gpu.region, gpu.zone,
            )  # fmt: skip
    kept = []
    for vm in vms:
        if not vm.accelerator or (vm.instance_type, vm.region, vm.zone) in joined:
            continue
        if gpu_only:  # a GCP file: its VM rows are priced without their GPUs
            dropped.append(
                f"{label}: line {vm.line}: dropped: {vm.instance_type} has no GPU-only row to price its GPUs"
            )
            continue
        kept.append(vm)
    return kept + list(joined.values())


def load_skypilot_csv(path: Path, knowledge: Knowledge) -> Catalog:
    """Rows that cannot be parsed or validated are listed in ``dropped`` with their line; the rest load."""
    label = str(path)
    reader = csv.DictReader(read_text_file(path, CATALOG_CSV_LIMIT, label).splitlines())
    try:
        header = [h.strip().casefold() for h in reader.fieldnames or ()]
        reader.fieldnames = header
        records = list(reader)
    except csv.Error as error:  # a field over csv.field_size_limit() (128 KiB)
        raise InputError(f"{label}: line {reader.line_num + 1}: not CSV: {error}") from None
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise KnowledgeError(f"{label}: not a SkyPilot vms.csv: no column {', '.join(missing)} in the header")
    dropped: list[str] = []
    rows: list[_Row] = []
    for line, raw in enumerate(records, start=2):
        try:
            rows.append(_parse(raw, line))
        except (ValueError, TypeError) as error:
            dropped.append(f"{label}: line {line}: dropped: {error}")
    rows = _join_gpu_only_rows(rows, label, dropped)
    cloud = path.parent.name.casefold() or path.stem
    as_of = f"file date {datetime.date.fromtimestamp(path.stat().st_mtime).isoformat()}"
    cheapest: dict[tuple[str, str], Instance] = {}
    for row in rows:
        where = f"{label}: line {row.line} ({row.instance_type})"
        candidate: dict[str, object] = {
            "cloud": cloud,
            "instance_type": row.instance_type,
            "gpu": row.accelerator,
            "gpu_count": row.count,
            "gpu_memory_gb": (row.total_gpu_memory_gb or 0.0) / max(row.count, 1),
            "vcpus": row.vcpus,
            "ram_gb": row.ram_gb,
            "price_on_demand_usd_h": row.price,
            "price_spot_usd_h": row.spot,
            "region": row.region or "unknown",
            "source": label,
            "as_of": as_of,
        }
        instance, message = build(candidate, knowledge, where, row.total_gpu_memory_gb)
        if message:
            dropped.append(message)
        if instance is None:
            continue
        # one row per zone in the file; keep the cheapest zone of each region
        key = (instance.instance_type, instance.region)
        if key not in cheapest or instance.price_on_demand_usd_h < cheapest[key].price_on_demand_usd_h:
            cheapest[key] = instance
    return Catalog(tuple(cheapest.values()), tuple(dropped), label)
