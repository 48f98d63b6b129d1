"""The bench results `envcheck bench` saved in the user's data directory, as measurements for the time model.

Only resnet18 runs on a CUDA device count (BENCH_PRESET: the model whose FLOPs per image are known); of those,
the newest per GPU model. Other presets and CPU runs are skipped quietly; broken files with a warning.
"""

from __future__ import annotations

from pathlib import Path

from envcheck.advise.time_model import BENCH_PRESET, BenchMeasurement, measurement_from_json
from envcheck.bench.result import SCHEMA as BENCH_SCHEMA
from envcheck.bench.store import read_saved_results
from envcheck.knowledge import KnowledgeError, normalise_gpu_name


def newest_saved_measurements(directory: Path) -> tuple[tuple[BenchMeasurement, ...], tuple[str, ...]]:
    """The newest usable measurement per GPU model (newest first), and one warning per file that was skipped."""
    documents, warnings = read_saved_results(directory)
    newest: dict[str, BenchMeasurement] = {}
    skipped = list(warnings)
    for path, document in documents:
        if not isinstance(document, dict) or document.get("schema") != BENCH_SCHEMA:
            skipped.append(f"skipped saved bench result {path}: not an {BENCH_SCHEMA} result")
            continue
        if not _is_gpu_run(document):
            continue
        try:
            measurement = measurement_from_json(document, path)
        except KnowledgeError as error:
            skipped.append(f"skipped saved bench result {error}")
            continue
        key = normalise_gpu_name(measurement.device)
        if key not in newest or _when(measurement) >= _when(newest[key]):
            newest[key] = measurement
    ordered = sorted(newest.values(), key=_when, reverse=True)
    return tuple(ordered), tuple(skipped)


def _is_gpu_run(document: dict[str, object]) -> bool:
    """A run of the preset with known FLOPs on an NVIDIA GPU (``device`` as asked: cuda, cuda:N)."""
    device = document.get("device")
    return document.get("preset") == BENCH_PRESET and isinstance(device, str) and device.startswith("cuda")


def _when(measurement: BenchMeasurement) -> tuple[str, str]:
    # ISO 8601 UTC dates of one format sort as text; the file name (which starts with the time) breaks ties
    return (measurement.date or "", Path(measurement.source).name)
