"""The process group, bounded: init with a short timeout, a monitored barrier that names absent ranks, and the
facts gathered to rank 0 over gloo (also on NCCL jobs: objects travel on the CPU, DESIGN.md)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

# Test seam (docs/cluster.md): the rank named here joins the process group, then never arrives at the barrier, as a
# rank stuck in a hung CUDA init would; it waits until the launcher ends it.
ABSENT_RANK_VARIABLE = "ENVCHECK_CLUSTER_TEST_ABSENT_RANK"


class PhaseFailed(Exception):
    """A collective phase did not complete within the timeout; the text is torch's own error."""

    def __init__(self, phase: str, error_text: str) -> None:
        super().__init__(error_text)
        self.phase = phase
        self.error_text = error_text


def resolve_backend(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    return "nccl" if torch.cuda.is_available() else "gloo"


def start_group(backend: str, local_rank: int, timeout_s: float) -> tuple[Any, Any]:
    """init_process_group (from the launcher's env://) and the gloo group the facts and barriers use; (device,
    gloo group). PhaseFailed("rendezvous") when the ranks do not all join within the timeout."""
    import torch
    import torch.distributed as dist

    timeout = timedelta(seconds=timeout_s)
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        # the flight recorder (torch >= 2.5) dumps each rank's last collectives when one times out
        os.environ.setdefault("TORCH_NCCL_TRACE_BUFFER_SIZE", "2000")
        os.environ.setdefault("TORCH_NCCL_DUMP_ON_TIMEOUT", "1")
    try:
        dist.init_process_group(backend=backend, timeout=timeout)
        gloo = None if backend == "gloo" else dist.new_group(backend="gloo", timeout=timeout)
    except RuntimeError as error:  # DistStoreError, DistBackendError: timeouts of the rendezvous
        raise PhaseFailed("rendezvous", str(error)) from None
    return device, gloo


def run_phase(phase: str, work: Any) -> Any:
    """work(), with a torch timeout or a peer's failure turned into PhaseFailed(PHASE)."""
    try:
        return work()
    except RuntimeError as error:  # gloo and NCCL raise RuntimeError subclasses on timeouts and lost peers
        raise PhaseFailed(phase, str(error)) from None


def monitored_barrier(gloo_group: Any, timeout_s: float) -> None:
    """gloo's monitored barrier: rank 0 waits for every rank and its error names all that did not arrive."""
    import torch.distributed as dist

    run_phase(
        "first barrier",
        lambda: dist.monitored_barrier(group=gloo_group, timeout=timedelta(seconds=timeout_s), wait_all_ranks=True),
    )


def gather_to_rank_zero(text: str, rank: int, world_size: int, gloo_group: Any) -> list[str]:
    """Every rank's TEXT on rank 0 (in rank order); [] on the others."""
    import torch.distributed as dist

    received: list[Any] = [None] * world_size if rank == 0 else []
    run_phase(
        "gather of the facts",
        lambda: dist.gather_object(text, received if rank == 0 else None, dst=0, group=gloo_group),
    )
    return [str(item) for item in received]


def end_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
