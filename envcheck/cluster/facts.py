"""What one rank tells rank 0, and what rank 0 measured: frozen facts with a JSON form, no I/O.

A rank's facts travel as JSON text in one versioned envelope, encoded and decoded by the same codec as a saved
snapshot (envcheck/codec.py), so a rank running another envcheck version fails loudly with the path of the field
that does not fit, not oddly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envcheck.codec import DecodeError, decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu
from envcheck.snapshot import Snapshot

RANK_SCHEMA = "envcheck.cluster.rank/1"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a rank runs, as the launcher's environment says (torchrun sets all of these)."""

    rank: int  # RANK
    local_rank: int  # LOCAL_RANK
    world_size: int  # WORLD_SIZE
    local_world_size: int  # LOCAL_WORLD_SIZE: ranks per node (torchrun numbers them node by node)
    node_rank: int  # GROUP_RANK (torchrun) or NODE_RANK; 0 when neither is set
    hostname: str


@dataclass(frozen=True, slots=True)
class AllReduceCheck:
    """Each rank contributed rank + 1: the sum must be n(n+1)/2 exactly, in an int64 and a float32 tensor."""

    expected: int
    int_result: int
    float_result: float
    is_correct: bool


@dataclass(frozen=True, slots=True)
class GpuTelemetry:
    """What NVML said of a rank's GPU right after its GEMM and copy (the NVML child probe, bounded): while the
    GPU is still warm, so a clock held down by heat or power shows. The field names are those of facts/gpu.py's Gpu."""

    sm_clock_mhz: int | Unavailable
    sm_clock_max_mhz: int | Unavailable
    clock_event_reasons: tuple[str, ...] | Unavailable
    temperature_c: int | Unavailable
    power_draw_watts: float | Unavailable
    pcie_generation: int | Unavailable
    pcie_generation_max: int | Unavailable
    pcie_width: int | Unavailable
    pcie_width_max: int | Unavailable


def telemetry_of(gpu: Gpu) -> GpuTelemetry:
    return GpuTelemetry(
        gpu.sm_clock_mhz, gpu.sm_clock_max_mhz, gpu.clock_event_reasons, gpu.temperature_c, gpu.power_draw_watts,
        gpu.pcie_generation, gpu.pcie_generation_max, gpu.pcie_width, gpu.pcie_width_max,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MatmulTiming:
    """The same short GEMM and a device-memory copy on every rank at once; medians of a few runs after a warm-up."""

    device: str  # "cpu" or the CUDA device name: only identical devices are compared
    size: int  # the matrices are size x size, float32
    median_s: float  # the GEMM
    copy_gb_s: float = 0.0  # the quick bench step: bytes read + written per second by a device-to-device copy
    gpu_uuid: str | None = None  # CUDA: the device's UUID as NVML writes it ("GPU-..."); None on the CPU
    # CUDA: NVML's reading of this GPU right after the GEMM and copy, or why there is none; None on the CPU
    telemetry: GpuTelemetry | Unavailable | None = None


@dataclass(frozen=True, slots=True)
class NcclTransport:
    """What this rank's NCCL said it uses (NCCL_DEBUG=INFO lines, parsed by cluster/nccl_log.py)."""

    network: str | None  # "IB", "Socket", a plugin's name ("IBext"); None when no line said
    interfaces: tuple[str, ...]  # "mlx5_0:1/IB", "eth0:10.0.0.2": the devices the network transport uses
    is_ib_missing: bool  # "NET/IB : No device found."
    channels: tuple[str, ...]  # the distinct paths of its channels: "P2P/IPC/read", "SHM/direct/direct", ...
    lines: tuple[str, ...]  # the lines these came from, verbatim (at most a few dozen)


@dataclass(frozen=True, slots=True)
class RankFacts:
    place: Place
    snapshot: Snapshot
    snapshot_source: str  # "live", or the file a test seam named (ENVCHECK_CLUSTER_SNAPSHOT_<RANK>)
    clock_s: float  # time.time() as the rank left a barrier all ranks entered together
    all_reduce: AllReduceCheck
    matmul: MatmulTiming
    # NCCL jobs: the transport lines of the communicator's start; None on gloo or when NCCL_DEBUG went elsewhere
    transport: NcclTransport | None = None


@dataclass(frozen=True, slots=True)
class BandwidthRow:
    """One size of a sweep, as nccl-tests reports it (docs: ../shared/reference/collective_bandwidth.md)."""

    collective: str  # all_reduce, all_gather
    size_bytes: int  # the buffer each rank holds after the collective (all_gather: the gathered whole)
    median_s: float
    algbw_gb_s: float  # size_bytes / median_s, in GB/s (1e9)
    busbw_gb_s: float  # algbw x the collective's factor for n ranks


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the largest all-reduce's busbw should reach on this fabric (cluster/fabric.py)."""

    busbw_gb_s: float  # the link's rate per direction, GB/s
    link: str  # "NVLink 900 GB/s (450 per direction)", "PCIe 4.0 x16": what the figure is
    source: str  # where the figure comes from: the snapshot's fields, profiles/gpus.toml, a test seam


@dataclass(frozen=True, slots=True)
class Rerun:
    """The largest all-reduce run again after a shortfall: once as it was, then in fresh processes with one NCCL
    transport switched off, to name the transport at fault."""

    label: str  # "repeat", "NCCL_P2P_DISABLE=1", "NCCL_SHM_DISABLE=1"
    busbw_gb_s: float | None  # None when it failed
    error: str | None  # why it failed (a timeout, a crash), else None


@dataclass(frozen=True, slots=True)
class Sweep:
    backend: str
    device: str
    iterations: int
    rows: tuple[BandwidthRow, ...]
    expectation: str  # what the largest size is compared with, or why nothing is
    expected: Expectation | None = None
    reruns: tuple[Rerun, ...] = ()


def rank_facts_to_json(facts: RankFacts) -> str:
    return json.dumps({"schema": RANK_SCHEMA, **encode(facts)}, allow_nan=False)


def rank_facts_from_json(text: str) -> RankFacts:
    """The facts a rank sent; ValueError (with what is wrong) for anything else."""
    data: Any = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != RANK_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"a rank sent {found!r}, not {RANK_SCHEMA!r} (another envcheck version on that node?)")
    try:
        return decode(RankFacts, {key: value for key, value in data.items() if key != "schema"})
    except DecodeError as error:
        raise ValueError(f"a rank sent facts envcheck cannot read: {error}") from None


@dataclass(frozen=True, slots=True)
class NodeChecks:
    """doctor's checks on one node's snapshot (the one its local rank 0 took with the host sections)."""

    node_rank: int
    hostname: str
    rank: int  # the rank whose snapshot it is
    findings: tuple[Any, ...]  # envcheck.finding.Finding


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """What rank 0 reports: every rank's facts that arrived, the sweep, the findings and the exit code."""

    world_size: int
    backend: str
    timeout_s: float
    ranks: tuple[RankFacts, ...]
    sweep: Sweep | None  # None when a phase before it failed
    findings: tuple[Any, ...]  # envcheck.finding.Finding: the cross-node ones
    exit_code: int
    nodes: tuple[NodeChecks, ...] = ()
