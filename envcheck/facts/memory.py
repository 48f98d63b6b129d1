"""Facts about RAM, swap and the cgroup memory limit."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class MemoryFacts:
    total_bytes: int
    available_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int
    cgroup_limit_bytes: int | Unavailable | None  # None = no limit set
    cgroup_usage_bytes: int | Unavailable | None
