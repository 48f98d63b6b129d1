"""Cloud GPU instances with prices: the shipped profiles/clouds/*.toml, or a user's TOML or SkyPilot vms.csv.

Every row is checked against the GPU spec table on load; rows that cannot be right are dropped with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.input_files import CONFIG_LIMIT, load_toml_file
from envcheck.knowledge import GpuSpec, Knowledge, KnowledgeError, profiles_root
from envcheck.validation import InvalidValue, finite_number, quoted

# No real GPU instance costs this much per GPU-hour (the dearest in the shipped data is ~$18);
# SkyPilot's GCP TPU rows carry 700.0 as a placeholder in some regions.
PLACEHOLDER_USD_PER_GPU_HOUR = 100.0
# Catalog memory is nominal (24 GB) or what the driver shows (22888 MiB = 24.0 GB); a per-GPU figure further
# than this from the spec table's means the row's GPU count or memory field is wrong.
MEMORY_TOLERANCE = 0.25
# No instance carries more GPUs than this (the largest have 16); a larger count is a broken row.
MAX_GPUS_PER_INSTANCE = 1024
# Catalog accelerator names that differ from the spec table's (SkyPilot spelling -> spec name prefix).
NAME_ALIASES = {"t4g": "t4", "a6000": "rtx a6000", "h100-mega": "h100", "a100-80gb-sxm": "a100 80gb"}


@dataclass(frozen=True, slots=True)
class Instance:
    """One rentable machine: ``gpu_count`` x ``gpu`` at a price in one region."""

    cloud: str
    instance_type: str
    gpu: str  # as the catalog names it
    gpu_spec: GpuSpec
    gpu_count: int
    gpu_memory_gb: float  # per GPU
    vcpus: float | None
    ram_gb: float | None
    price_on_demand_usd_h: float
    price_spot_usd_h: float | None
    region: str
    source: str
    as_of: str
    # what the catalog's own note flags as doubtful ("DATA-QUALITY: ... verify"); None: nothing flagged
    data_quality: str | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    instances: tuple[Instance, ...]
    dropped: tuple[str, ...]  # "where: why" for every row left out
    origin: str


def match_gpu(knowledge: Knowledge, name: str, memory_gb: float, instance_type: str = "") -> GpuSpec | None:
    """The spec of a catalog GPU name (``A100-80GB``, ``H100``, ``V100-32GB``), choosing the variant by memory."""
    key = " ".join(name.casefold().replace("_", " ").split())
    key = NAME_ALIASES.get(key, key)
    is_pcie = "pcie" in instance_type.casefold()
    table = _match_table(knowledge.gpus)
    question = (key, memory_gb, is_pcie)
    if question not in table.answers:
        table.answers[question] = _closest(table.families, key, memory_gb, is_pcie)
    return table.answers[question]


@dataclass(slots=True)
class _MatchTable:
    """The GPU table's family names, folded once, and the answers given so far: a cloud catalog has tens of
    thousands of rows naming a few dozen GPUs, and folding every spec's name for every row took minutes."""

    gpus: tuple[GpuSpec, ...]
    families: tuple[tuple[str, GpuSpec], ...]
    answers: dict[tuple[str, float, bool], GpuSpec | None]


_match_tables: list[_MatchTable] = []


def _match_table(gpus: tuple[GpuSpec, ...]) -> _MatchTable:
    for table in _match_tables:
        if table.gpus is gpus:
            return table
    table = _MatchTable(gpus, tuple((_family(spec), spec) for spec in gpus), {})
    _match_tables[:] = [*_match_tables[-3:], table]  # a few knowledge bases at most (tests load several)
    return table


def _family(spec: GpuSpec) -> str:
    folded = spec.name.casefold()
    for prefix in ("tesla ", "geforce ", "nvidia "):
        folded = folded.removeprefix(prefix)
    return folded


def _closest(families: tuple[tuple[str, GpuSpec], ...], key: str, memory_gb: float, is_pcie: bool) -> GpuSpec | None:
    base = key.split("-", maxsplit=1)[0]
    candidates = [spec for family, spec in families if family in (key, base) or family.startswith(base + " ")]
    if not candidates:
        return None

    def distance(spec: GpuSpec) -> tuple[float, int]:
        memory = spec.memory_gb if not isinstance(spec.memory_gb, Unavailable) else 0.0
        return (abs(memory - memory_gb), 0 if ("pcie" in spec.variant.casefold()) == is_pcie else 1)

    return min(candidates, key=distance)


def validate(candidate: Mapping[str, object], knowledge: Knowledge, total_gpu_memory_gb: float | None = None) -> str:
    """Why a row cannot be right, or "" when it can. ``candidate`` holds the Instance fields except gpu_spec."""
    gpu, count = str(candidate["gpu"]), int(candidate["gpu_count"])  # type: ignore[call-overload]
    per_gpu = float(candidate["gpu_memory_gb"])  # type: ignore[arg-type]
    if count <= 0:  # before any division by it
        return f"GPU count {count} is not positive"
    if count > MAX_GPUS_PER_INSTANCE:
        return f"GPU count {count} is more than any instance has ({MAX_GPUS_PER_INSTANCE})"
    if total_gpu_memory_gb is not None:
        per_gpu = total_gpu_memory_gb / count
    on_demand, spot = candidate["price_on_demand_usd_h"], candidate["price_spot_usd_h"]
    if not isinstance(on_demand, float) or on_demand <= 0:
        return "no on-demand price"
    if isinstance(spot, float) and spot <= 0:  # a negative job cost would rank first and break best-value
        return f"spot price ${spot:g}/h is not positive"
    if on_demand / count > PLACEHOLDER_USD_PER_GPU_HOUR:
        return f"${on_demand:g}/h for {count} GPU(s) is a placeholder price, not a real one"
    if isinstance(spot, float) and spot > on_demand:
        return f"spot ${spot:g}/h is above on-demand ${on_demand:g}/h"
    spec = match_gpu(knowledge, gpu, per_gpu, str(candidate["instance_type"]))
    if spec is None:
        return f'GPU "{gpu}" is not an NVIDIA GPU of the spec table (profiles/gpus.toml)'
    if (
        per_gpu > 0  # a catalog without memory figures takes the spec table's
        and not isinstance(spec.memory_gb, Unavailable)
        and abs(per_gpu - spec.memory_gb) > MEMORY_TOLERANCE * spec.memory_gb
    ):
        shown = (
            f"{total_gpu_memory_gb:g} GB over {count} GPUs" if total_gpu_memory_gb is not None else f"{per_gpu:g} GB"
        )
        return f"{shown} contradicts the {spec.memory_gb:g} GB of a {spec.name}: GPU count or memory is wrong"
    return ""


def build(
    candidate: dict[str, object], knowledge: Knowledge, where: str, total_gpu_memory_gb: float | None = None
) -> tuple[Instance | None, str | None]:
    """An Instance, or None and the line saying why the row was dropped (or a warning for a kept row)."""
    reason = validate(candidate, knowledge, total_gpu_memory_gb)
    if reason:
        return None, f"{where}: dropped: {reason}"
    per_gpu = float(candidate["gpu_memory_gb"])  # type: ignore[arg-type]
    if total_gpu_memory_gb is not None:
        per_gpu = total_gpu_memory_gb / int(candidate["gpu_count"])  # type: ignore[call-overload]
    spec = match_gpu(knowledge, str(candidate["gpu"]), per_gpu, str(candidate["instance_type"]))
    assert spec is not None  # validate() found it
    if per_gpu <= 0 and not isinstance(spec.memory_gb, Unavailable):
        per_gpu = spec.memory_gb
    instance = Instance(gpu_spec=spec, **{**candidate, "gpu_memory_gb": round(per_gpu, 1)})  # type: ignore[arg-type]
    if instance.price_spot_usd_h is not None and instance.price_spot_usd_h == instance.price_on_demand_usd_h:
        note = f"{where}: spot price ignored: equal to on-demand (the catalog records no spot market)"
        return replace(instance, price_spot_usd_h=None), note
    return instance, None


def _number(row: Mapping[str, object], key: str, *, required: bool) -> float | None:
    """A finite number (NaN, inf and 400-digit integers are refused: the row is dropped with the field named)."""
    value = row.get(key)
    if value is None and not required:
        return None
    return finite_number(value, key)


def gpu_count(value: float, where: str) -> int:
    """A whole GPU count; 8.0 is 8, a fraction (or a denormal such as 1e-320) is not a count."""
    if not value.is_integer():
        raise InvalidValue(f"{where}: expected a whole number of GPUs, got {quoted(value)}")
    return int(value)


def _text(row: Mapping[str, object], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected text, got {quoted(value)}")
    return value.strip()


DATA_QUALITY_MARK = "DATA-QUALITY"


def data_quality(note: object) -> str | None:
    """The doubt a row's note records after "DATA-QUALITY:" (the shipped catalogs mark prices to verify)."""
    if not isinstance(note, str) or DATA_QUALITY_MARK not in note:
        return None
    return note.split(DATA_QUALITY_MARK, 1)[1].lstrip(": ").strip() or "flagged"


def load_toml_catalog(path: Path, knowledge: Knowledge, label: str | None = None) -> Catalog:
    """An envcheck TOML catalog: ``[[instance]]`` tables with the Instance fields (see profiles/clouds/)."""
    label = label or str(path)
    data = load_toml_file(path, CONFIG_LIMIT, label)
    rows = data.get("instance")
    if not isinstance(rows, list):
        raise KnowledgeError(f"{label}: expected [[instance]] tables")
    instances, dropped = [], []
    for index, row in enumerate(rows):
        where = f"{label}: instance[{index}]"
        try:
            if not isinstance(row, dict):
                raise ValueError("expected a table")
            candidate: dict[str, object] = {
                "cloud": _text(row, "cloud"),
                "instance_type": _text(row, "instance_type"),
                "gpu": _text(row, "gpu"),
                "gpu_count": gpu_count(_number(row, "gpu_count", required=True) or 0.0, "gpu_count"),
                "gpu_memory_gb": _number(row, "gpu_memory_gb", required=True),
                "vcpus": _number(row, "vcpus", required=False),
                "ram_gb": _number(row, "ram_gb", required=False),
                "price_on_demand_usd_h": _number(row, "price_on_demand_usd_h", required=False),
                "price_spot_usd_h": _number(row, "price_spot_usd_h", required=False),
                "region": _text(row, "region"),
                "source": _text(row, "source"),
                "as_of": str(row.get("as_of", "")).strip() or "unknown date",
                "data_quality": data_quality(row.get("note")),
            }
        except ValueError as error:
            dropped.append(f"{where}: dropped: {error}")
            continue
        where = f"{where} ({candidate['cloud']} {candidate['instance_type']})"
        instance, message = build(candidate, knowledge, where)
        if instance is not None:
            instances.append(instance)
        if message:
            dropped.append(message)
    return Catalog(tuple(instances), tuple(dropped), label)


def load_shipped_catalog(knowledge: Knowledge, root: Path | None = None) -> Catalog:
    """Every profiles/clouds/*.toml, merged."""
    folder = profiles_root(root) / "clouds"
    parts = [
        load_toml_catalog(path, knowledge, f"{folder.parent.name}/clouds/{path.name}")
        for path in sorted(folder.glob("*.toml"))
    ]
    if not parts:
        raise KnowledgeError(f"{folder}: no cloud catalogs (*.toml)")
    instances = tuple(i for part in parts for i in part.instances)
    dropped = tuple(d for part in parts for d in part.dropped)
    return Catalog(instances, dropped, f"{folder.parent.name}/clouds")


def load_catalog(path: Path | None, knowledge: Knowledge) -> Catalog:
    """The shipped catalog, or ``path``: an envcheck TOML catalog or a SkyPilot ``vms.csv``."""
    if path is None:
        return load_shipped_catalog(knowledge)
    if path.suffix.casefold() == ".csv":
        from envcheck.advise.catalog_skypilot import load_skypilot_csv

        return load_skypilot_csv(path, knowledge)
    return load_toml_catalog(path, knowledge)
