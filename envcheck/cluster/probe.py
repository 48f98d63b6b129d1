"""This rank's snapshot: the ordinary probes, with torch's facts read in process (the rank has imported torch
already, so the out-of-process probe that protects doctor from a broken torch would only cost seconds here).

One rank per node (local rank 0) probes the host: system, CPU, memory, storage, network, GPUs and the build
toolchain. The others probe only what is their own: the interpreter, the environment and torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envcheck.cluster.facts import GpuTelemetry, Place, telemetry_of
from envcheck.collect import Probe, collect, default_probes
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.probes.context import ProbeContext
from envcheck.snapshot import Snapshot

HOST_SECTIONS = ("system", "cpu", "memory", "storage", "network", "gpu", "toolchain")
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


# The NVML child's own deadline is 12 s (a lost GPU hangs nvmlInit); right after the GEMM the driver is loaded and
# warm, so a healthy answer takes well under a second, and a rank waits no longer than this for it.
TELEMETRY_TIMEOUT_S = 10.0


def sample_gpu_telemetry(uuid: str, environ: Mapping[str, str]) -> GpuTelemetry | Unavailable:
    """NVML's reading of the GPU with UUID, through the NVML child probe (its own process, bounded): a crash or a
    hang is the reason, never this rank's end."""
    from envcheck.probes.errors import ProbeError
    from envcheck.probes.nvml.isolated import ask_nvml

    try:
        answer = ask_nvml(ProbeContext(environ=dict(environ)), timeout_s=TELEMETRY_TIMEOUT_S)
    except ProbeError as error:
        return Unavailable(f"NVML after the GEMM: {error}", error.fix)
    if not isinstance(answer.result, GpuFacts):
        return Unavailable(f"NVML after the GEMM: {answer.result}")
    gpu = next((device for device in answer.result.gpus if device.uuid == uuid), None)
    if gpu is None:
        return Unavailable(f"NVML after the GEMM listed no GPU {uuid} (a MIG instance, or one NVML cannot see)")
    return telemetry_of(gpu)
