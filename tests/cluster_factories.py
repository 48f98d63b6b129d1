"""Rank facts for the cluster checks, built from the snapshot factories (no torch, no process group)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from envcheck.cluster.facts import AllReduceCheck, MatmulTiming, Place, RankFacts
from envcheck.snapshot import Snapshot
from tests import factories


def rank(
    number: int,
    snapshot: Snapshot | None = None,
    world_size: int = 2,
    host: str = "node-a",
    matmul_s: float = 0.010,
    device: str = "NVIDIA H100 80GB HBM3",
    clock_s: float = 1_800_000_000.0,
    copy_gb_s: float = 0.0,
    gpu_uuid: str | None = None,
    **changes: Any,
) -> RankFacts:
    facts = RankFacts(
        place=Place(number, number % 8, world_size, min(world_size, 8), number // 8, host),
        snapshot=snapshot or factories.snapshot(),
        snapshot_source="live",
        clock_s=clock_s,
        all_reduce=AllReduceCheck(world_size * (world_size + 1) // 2, 0, 0.0, True),
        matmul=MatmulTiming(device, 4096, matmul_s, copy_gb_s, gpu_uuid),
    )
    expected = facts.all_reduce.expected
    facts = replace(facts, all_reduce=AllReduceCheck(expected, expected, float(expected), True))
    return replace(facts, **changes)
