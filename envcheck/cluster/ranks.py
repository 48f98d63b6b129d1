"""Who this rank is, from the launcher's environment, and which ranks a failed rendezvous or barrier left out.

The parsers read torch's own error texts (torch 2.x, real lines quoted in tests/test_cluster_checks.py).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping

from envcheck.cluster.facts import Place

# gloo's monitored_barrier: "[Rank 0]: Ranks 1, 3 failed to pass monitoredBarrier in 5000 ms"
_BARRIER_MISSING = re.compile(r"Ranks? ([0-9][0-9, ]*) failed to pass monitoredBarrier")
# the store wait in init_process_group under torchrun: "wait timeout after 5000ms, keys: /default_pg/0//cpu//0/1"
_STORE_KEYS = re.compile(r"keys: (.+)$")


class LaunchError(Exception):
    """The environment does not describe a rank of a distributed launch."""


def place_from_environment(environ: Mapping[str, str]) -> Place:
    """This rank's place, from RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE and GROUP_RANK (or NODE_RANK)."""

    def number(name: str, default: int | None = None) -> int:
        text = environ.get(name)
        if text is None:
            if default is None:
                raise LaunchError(
                    f"{name} is not set: start this under torchrun (torchrun --nproc-per-node 2 -m envcheck.cluster),"
                    " srun or a PyTorchJob, which set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT"
                )
            return default
        try:
            return int(text)
        except ValueError:
            raise LaunchError(f"{name}={text!r}: not an integer") from None

    world_size = number("WORLD_SIZE")
    rank = number("RANK")
    if world_size < 1 or not 0 <= rank < world_size:
        raise LaunchError(f"RANK={rank} WORLD_SIZE={world_size}: the rank must lie in 0..WORLD_SIZE-1")
    local_rank = number("LOCAL_RANK", 0)
    local_world_size = number("LOCAL_WORLD_SIZE", 1 if "LOCAL_RANK" not in environ else world_size)
    node_rank = number("GROUP_RANK", number("NODE_RANK", 0))
    return Place(rank, local_rank, world_size, max(1, local_world_size), node_rank, socket.gethostname())


def missing_ranks(error_text: str, world_size: int, present: tuple[int, ...] = (0,)) -> tuple[int, ...]:
    """The ranks a torch timeout says did not arrive; every rank not known present when the text names none."""
    barrier = _BARRIER_MISSING.search(error_text)
    if barrier:
        return tuple(sorted(int(part) for part in re.findall(r"\d+", barrier.group(1))))
    keys = _STORE_KEYS.search(error_text)
    if keys:
        # each key ends with the rank it waits for: /default_pg/0//cpu//0/1 is rank 1's address
        found = {int(match) for match in re.findall(r"/(\d+)(?=,|\s|$)", keys.group(1))}
        found = {rank for rank in found if 0 <= rank < world_size and rank not in present}
        if found:
            return tuple(sorted(found))
    return tuple(rank for rank in range(world_size) if rank not in present)


def describe_rank(rank: int, me: Place) -> str:
    """'rank 1 (node 0, local rank 1, host gpu-a)': torchrun numbers ranks node by node, so a rank's node and local
    rank follow from the ranks per node; its host is known only when it is this rank's node."""
    node, local = divmod(rank, me.local_world_size)
    host = f"host {me.hostname}" if node == me.node_rank else "host unknown: it never reported"
    return f"rank {rank} (node {node}, local rank {local}, {host})"
