"""This rank's snapshot: the ordinary probes, with torch's facts read in process (the rank has imported torch
already, so the out-of-process probe that protects doctor from a broken torch would only cost seconds here).

One rank per node (local rank 0) probes the host: system, CPU, memory, storage, network and GPUs. The others probe only
what is their own: the interpreter, the environment and torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envcheck.cluster.facts import Place
from envcheck.collect import Probe, collect, default_probes
from envcheck.facts.framework import FrameworkFacts
from envcheck.probes.context import ProbeContext
from envcheck.snapshot import Snapshot

HOST_SECTIONS = ("system", "cpu", "memory", "storage", "network", "gpu")
# Test seam (docs/cluster.md): rank N reports the snapshot in this file instead of probing, so a test can give two
# ranks of one machine different facts without touching the checks.
SNAPSHOT_VARIABLE = "ENVCHECK_CLUSTER_SNAPSHOT_{rank}"


def probe_rank(place: Place, environ: Mapping[str, str]) -> tuple[Snapshot, str]:
    """The snapshot of this rank and where it came from ("live", or the seam's file)."""
    from envcheck.loaders import load_snapshot_file

    injected = environ.get(SNAPSHOT_VARIABLE.format(rank=place.rank))
    if injected:
        return load_snapshot_file(Path(injected)), injected
    skip = () if place.local_rank == 0 else HOST_SECTIONS
    probes = tuple(
        Probe("framework", probe_framework_in_process, lambda _context: 30.0) if probe.section == "framework" else probe
        for probe in default_probes()
    )
    return collect(ProbeContext(environ=dict(environ)), probes, skip=skip).snapshot, "live"


def probe_framework_in_process(context: ProbeContext) -> FrameworkFacts:
    """FrameworkFacts of the torch this process runs, built by the same code the out-of-process probe runs."""
    import platform
    import sys

    import torch

    from envcheck.probes import target_script
    from envcheck.probes.target import decode_result

    data: dict[str, Any] = {
        "interpreter": sys.executable,
        "python_version": platform.python_version(),
        "is_torch_installed": True,
        "torch": target_script.torch_facts(torch, target_script.module_location(torch), 0.0),
        "import_error": None,
        "import_traceback_tail": None,
    }
    data["torch"]["import_duration_s"] = target_script.unavailable("torch was imported by the rank, before the probe")
    return decode_result(FrameworkFacts, data, context.python, "framework")
