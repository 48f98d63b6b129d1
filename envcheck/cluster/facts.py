"""What one rank tells rank 0, and what rank 0 measured: frozen facts with a JSON form, no I/O.

A rank's facts travel as JSON text (the snapshot in its own versioned form inside), so rank 0 decodes them with
the same code that reads a saved snapshot, and a rank running another envcheck version fails loudly, not oddly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envcheck.snapshot import Snapshot, snapshot_from_dict, snapshot_to_dict

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
class MatmulTiming:
    """The same short GEMM on every rank at once; the median of a few runs after a warm-up."""

    device: str  # "cpu" or the CUDA device name: only identical devices are compared
    size: int  # the matrices are size x size, float32
    median_s: float


@dataclass(frozen=True, slots=True)
class RankFacts:
    place: Place
    snapshot: Snapshot
    snapshot_source: str  # "live", or the file a test seam named (ENVCHECK_CLUSTER_SNAPSHOT_<RANK>)
    clock_s: float  # time.time() as the rank left a barrier all ranks entered together
    all_reduce: AllReduceCheck
    matmul: MatmulTiming


@dataclass(frozen=True, slots=True)
class BandwidthRow:
    """One size of a sweep, as nccl-tests reports it (docs: ../shared/reference/collective_bandwidth.md)."""

    collective: str  # all_reduce, all_gather
    size_bytes: int  # the buffer each rank holds after the collective (all_gather: the gathered whole)
    median_s: float
    algbw_gb_s: float  # size_bytes / median_s, in GB/s (1e9)
    busbw_gb_s: float  # algbw x the collective's factor for n ranks


@dataclass(frozen=True, slots=True)
class Sweep:
    backend: str
    device: str
    iterations: int
    rows: tuple[BandwidthRow, ...]
    expectation: str  # what the largest size is compared with, or why nothing is


def rank_facts_to_json(facts: RankFacts) -> str:
    place = facts.place
    data = {
        "schema": RANK_SCHEMA,
        "place": {
            "rank": place.rank,
            "local_rank": place.local_rank,
            "world_size": place.world_size,
            "local_world_size": place.local_world_size,
            "node_rank": place.node_rank,
            "hostname": place.hostname,
        },
        "snapshot": snapshot_to_dict(facts.snapshot),
        "snapshot_source": facts.snapshot_source,
        "clock_s": facts.clock_s,
        "all_reduce": {
            "expected": facts.all_reduce.expected,
            "int_result": facts.all_reduce.int_result,
            "float_result": facts.all_reduce.float_result,
            "is_correct": facts.all_reduce.is_correct,
        },
        "matmul": {"device": facts.matmul.device, "size": facts.matmul.size, "median_s": facts.matmul.median_s},
    }
    return json.dumps(data, allow_nan=False)


def rank_facts_from_json(text: str) -> RankFacts:
    """The facts a rank sent; ValueError (with what is wrong) for anything else."""
    data: Any = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != RANK_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"a rank sent {found!r}, not {RANK_SCHEMA!r} (another envcheck version on that node?)")
    try:
        return RankFacts(
            place=Place(**data["place"]),
            snapshot=snapshot_from_dict(data["snapshot"]),
            snapshot_source=str(data["snapshot_source"]),
            clock_s=float(data["clock_s"]),
            all_reduce=AllReduceCheck(**data["all_reduce"]),
            matmul=MatmulTiming(**data["matmul"]),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"a rank sent facts envcheck cannot read: {type(error).__name__}: {error}") from None


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """What rank 0 reports: every rank's facts that arrived, the sweep, the findings and the exit code."""

    world_size: int
    backend: str
    timeout_s: float
    ranks: tuple[RankFacts, ...]
    sweep: Sweep | None  # None when a phase before it failed
    findings: tuple[Any, ...]  # envcheck.finding.Finding
    exit_code: int
