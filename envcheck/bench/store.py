"""Saved bench results: one JSON file per run (schema envcheck.bench/1) in ``<user data dir>/bench/``.

`envcheck bench` writes them; `envcheck recommend` reads the newest per GPU model to scale job times from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envcheck.datadir import user_data_dir
from envcheck.input_files import CONFIG_LIMIT, InputError, load_json_file

BENCH_SUBDIR = "bench"


def bench_results_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    return user_data_dir(environ, platform) / BENCH_SUBDIR


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "unknown"


def result_file_name(document: Mapping[str, Any]) -> str:
    """``20261129T025300Z-nvidia-h200-cuda0-resnet18.json``: the run's UTC time, GPU (or CPU), device, preset.

    The time comes first so that names sort by date; the device index keeps identical GPUs apart.
    """
    stamp = re.sub(r"[^0-9T]", "", str(document.get("date", ""))[:19]) or "undated"
    parts = (f"{stamp}Z", _slug(str(document.get("device_name", ""))), _slug(str(document.get("device", ""))))
    return "-".join((*parts, _slug(str(document.get("preset", ""))))) + ".json"


def free_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name`` with ``-2``, ``-3`` ... before the suffix when it is taken.

    The name is claimed with an exclusive create (O_CREAT|O_EXCL), so two runs at once never pick the same one;
    the caller then writes the (empty) file.
    """
    path, count = directory / name, 1
    while True:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            count += 1
            path = directory / f"{Path(name).stem}-{count}{Path(name).suffix}"
            continue
        return path


def read_saved_results(directory: Path) -> tuple[tuple[tuple[Path, Any], ...], tuple[str, ...]]:
    """Every ``*.json`` in ``directory`` as (path, parsed JSON), oldest name first, and one warning per file that
    cannot be read or is not JSON. A missing directory is no results and no warning (nothing was saved yet)."""
    if not directory.is_dir():
        return (), ()
    documents, warnings = [], []
    for path in sorted(directory.glob("*.json")):
        try:  # a FIFO or device named *.json is refused, not waited on
            documents.append((path, load_json_file(path, CONFIG_LIMIT)))
        except InputError as error:
            warnings.append(f"skipped saved bench result {error}")
    return tuple(documents), tuple(warnings)
