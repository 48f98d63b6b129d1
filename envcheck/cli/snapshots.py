"""Where a command's snapshot comes from: this machine's probes, or a file given with --from."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import typer


def load_or_collect(
    source: Path | None,
    python: str | None,
    paths: list[Path] | None,
    no_redact: bool,
    timeout: float,
    debug: bool,
    skip: tuple[str, ...] = (),
    record_nvml: Path | None = None,
) -> Any:
    if source is not None:
        from envcheck.loaders import load_snapshot_file
        from envcheck.redaction import redact_snapshot

        loaded = load_snapshot_file(source)
        return loaded if no_redact else redact_snapshot(loaded)
    from envcheck.collect import collect, default_probes
    from envcheck.loaders import InputError
    from envcheck.probes.context import ProbeContext
    from envcheck.validation import quoted

    for path in paths or ():
        if not path.exists():  # a typo would otherwise inspect nothing and say nothing
            raise InputError(f"--path {quoted(str(path))}: no such file or directory")
    if python is not None:
        resolved = shutil.which(python)
        if resolved is None:
            raise InputError(f"--python {quoted(python)}: no such executable")
        python = resolved
    context = ProbeContext(
        python=python or sys.executable,
        paths=tuple(str(path) for path in paths or ()),
        is_redacting=not no_redact,
        framework_timeout_s=timeout,
    )
    probes = default_probes()
    if record_nvml is not None:
        probes = recording_gpu_probe(probes, record_nvml)
    collected = collect(context, probes, skip=skip)
    if debug:
        for section, text in collected.tracebacks.items():
            typer.echo(f"--- traceback of the {section} probe ---\n{text}", err=True)
    return collected.snapshot


def recording_gpu_probe(probes: Any, path: Path) -> Any:
    """The probes with the GPU one replaced by one that also writes every NVML answer to PATH."""
    from envcheck.collect import Probe
    from envcheck.loaders import InputError
    from envcheck.probes.nvml import record_nvml

    if path.is_dir():  # the recording would fail inside the probe, and the run end with exit 0 and no file
        raise InputError(f"--record-nvml {path}: is a directory, expected a file to write")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise InputError(f"--record-nvml {path}: the directory does not exist or is not writable")
    return tuple(
        Probe("gpu", lambda context: record_nvml(path, context), probe.timeout_s) if probe.section == "gpu" else probe
        for probe in probes
    )


def shareable(text: str, no_redact: bool) -> str:
    """Text meant to be shared (JSON, Markdown, an -o file) with the home directory shown as `~`."""
    from envcheck.redaction import anonymise_home

    return text if no_redact else anonymise_home(text)
