"""The largest all-reduce run again after a shortfall: once more as it was, in a fresh subgroup, then in fresh
processes with NCCL_P2P_DISABLE=1, then NCCL_SHM_DISABLE=1, to name the transport at fault.

Fresh processes, because NCCL reads its NCCL_* parameters once per process (the first communicator caches them):
a new subgroup in the same process would run with the transports it already chose. Each rank starts one child
through probes/bounded.py (its own session, the timeout, the group killed on timeout); the children form their own
process group at MASTER_ADDR on a port rank 0 chose, run the all-reduce and print its time. On gloo the children run
too, but gloo reads no NCCL_* variable: the report says so and names no transport.

`python -m envcheck.cluster.rerun` is the child; it is started only by a rank.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from envcheck.cluster.bandwidth import bus_factor, elements_for
from envcheck.cluster.facts import Place, Rerun

TRANSPORT_VARIABLES = ("NCCL_P2P_DISABLE", "NCCL_SHM_DISABLE")
# torchrun's workers may share the agent's store; the child must start its own at the port rank 0 chose
_LAUNCHER_STORE_VARIABLES = ("TORCHELASTIC_USE_AGENT_STORE",)


def repeat_in_subgroup(backend: str, world_size: int, device: Any, size_bytes: int, iterations: int) -> Rerun:
    """The largest all-reduce again, in a subgroup of all ranks created for it (a new communicator)."""
    import torch
    import torch.distributed as dist

    from envcheck.cluster.collectives import time_all_reduce

    subgroup = dist.new_group(backend=backend)
    tensor = torch.ones(elements_for(size_bytes, world_size), dtype=torch.float32, device=device)
    median_s = time_all_reduce(tensor, iterations, subgroup)
    dist.destroy_process_group(subgroup)
    return Rerun("repeat", _busbw(tensor.numel() * 4, median_s, world_size), None)


def free_ports(count: int) -> list[int]:
    """Ports the kernel gives as free now, on rank 0's host, for the children's stores."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def rerun_in_fresh_process(
    variable: str, port: int, place: Place, backend: str, size_bytes: int, iterations: int, timeout_s: float,
    environ: Mapping[str, str],
) -> Rerun:  # fmt: skip
    """This rank's child, with VARIABLE=1, in a process group of the children at MASTER_ADDR:PORT."""
    from envcheck.probes.bounded import one_line_tail, run_bounded

    label = f"{variable}=1"
    child_environ = {key: value for key, value in environ.items() if key not in _LAUNCHER_STORE_VARIABLES}
    child_environ.update(
        {variable: "1", "MASTER_PORT": str(port), "RANK": str(place.rank), "WORLD_SIZE": str(place.world_size)}
    )
    child_environ.setdefault("MASTER_ADDR", "127.0.0.1")
    argv = [
        sys.executable, "-m", "envcheck.cluster.rerun", "--backend", backend, "--size-bytes", str(size_bytes),
        "--iterations", str(iterations), "--timeout", f"{timeout_s:g}", "--local-rank", str(place.local_rank),
    ]  # fmt: skip
    finished = run_bounded(argv, timeout_s + 30, child_environ)  # + the child's own start: importing torch
    if finished.has_timed_out:
        return Rerun(label, None, f"timed out after {timeout_s + 30:g} s")
    if finished.returncode != 0:
        return Rerun(label, None, f"exit {finished.returncode}: {one_line_tail(finished.stderr, 300)}")
    try:
        return Rerun(label, float(json.loads(finished.stdout)["busbw_gb_s"]), None)
    except (ValueError, KeyError, TypeError):
        return Rerun(label, None, f"unreadable output: {one_line_tail(finished.stdout, 300)}")


def _busbw(size_bytes: int, median_s: float, world_size: int) -> float:
    return size_bytes / median_s / 1e9 * bus_factor("all_reduce", world_size) if median_s > 0 else 0.0


def main(argv: list[str]) -> int:
    """The child: join the children's group (env://), time the all-reduce, print {"busbw_gb_s": ...}."""
    import torch
    import torch.distributed as dist

    from envcheck.cluster.collectives import time_all_reduce

    parser = argparse.ArgumentParser(prog="python -m envcheck.cluster.rerun")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--size-bytes", type=int, required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--local-rank", type=int, required=True)
    options = parser.parse_args(argv)
    device = torch.device("cpu")
    if options.backend == "nccl":
        device = torch.device("cuda", options.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend=options.backend, timeout=timedelta(seconds=options.timeout))
    try:
        world_size = dist.get_world_size()
        tensor = torch.ones(elements_for(options.size_bytes, world_size), dtype=torch.float32, device=device)
        median_s = time_all_reduce(tensor, options.iterations)
    finally:
        dist.destroy_process_group()
    sys.stdout.write(json.dumps({"busbw_gb_s": _busbw(tensor.numel() * 4, median_s, world_size)}) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main(sys.argv[1:]))
