"""The process group, bounded: init with a short timeout, a monitored barrier that names absent ranks, and the
facts gathered to rank 0 over gloo (also on NCCL jobs: objects travel on the CPU, DESIGN.md)."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from envcheck.cluster.facts import NcclTransport
from envcheck.cluster.nccl_log import parse_nccl_lines
from envcheck.cluster.ranks import LaunchError

# Test seam (docs/cluster.md): the rank named here joins the process group, then never arrives at the barrier, as a
# rank stuck in a hung CUDA init would; it waits until the launcher ends it.
ABSENT_RANK_VARIABLE = "ENVCHECK_CLUSTER_TEST_ABSENT_RANK"


# the flight recorder's ring of collectives per rank: torch's documented example size
TRACE_BUFFER_ENTRIES = 2000


@dataclass(frozen=True, slots=True)
class NcclFiles:
    debug_file: str | None  # where this rank's NCCL INFO lines go; None when the user sent them elsewhere
    trace_prefix: str  # TORCH_NCCL_DEBUG_INFO_TEMP_FILE: each rank's flight-recorder dump is this + its rank


class PhaseFailed(Exception):
    """A collective phase did not complete within the timeout; the text is torch's own error."""

    def __init__(self, phase: str, error_text: str) -> None:
        super().__init__(error_text)
        self.phase = phase
        self.error_text = error_text


def resolve_backend(requested: str) -> str:
    """gloo or nccl; LaunchError for NCCL without a CUDA device (a usage error, not a traceback)."""
    import torch

    if requested == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if requested == "nccl" and not torch.cuda.is_available():
        raise LaunchError("--backend nccl needs a CUDA device and torch sees none here: use --backend gloo")
    return requested


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
    try:
        dist.init_process_group(backend=backend, timeout=timeout)
        gloo = None if backend == "gloo" else dist.new_group(backend="gloo", timeout=timeout)
    except RuntimeError as error:  # DistStoreError, DistBackendError: timeouts of the rendezvous
        raise PhaseFailed("rendezvous", str(error)) from None
    return device, gloo


def prepare_nccl(environ: MutableMapping[str, str], rank: int, directory: str) -> NcclFiles:
    """Before NCCL starts: its INFO lines into a file of this rank's (parsed for the transports, WARN lines copied
    to stderr), and the flight recorder (torch >= 2.5) switched on, dumping each rank's last collectives on a
    timeout. A variable the user set is left as it is (then the lines go where the user sent them)."""
    debug_file = None
    if "NCCL_DEBUG" not in environ and "NCCL_DEBUG_FILE" not in environ:
        debug_file = str(Path(directory) / f"envcheck-nccl-debug-rank{rank}.log")
        environ.update(NCCL_DEBUG="INFO", NCCL_DEBUG_FILE=debug_file)
        environ.setdefault("NCCL_DEBUG_SUBSYS", "INIT,NET")
    environ.setdefault("TORCH_NCCL_TRACE_BUFFER_SIZE", str(TRACE_BUFFER_ENTRIES))
    environ.setdefault("TORCH_NCCL_DUMP_ON_TIMEOUT", "1")
    environ.setdefault("TORCH_NCCL_DEBUG_INFO_TEMP_FILE", str(Path(directory) / "envcheck_nccl_trace_rank_"))
    return NcclFiles(debug_file, environ["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"])


def read_nccl_transport(files: NcclFiles) -> NcclTransport | None:
    """This rank's transport lines, parsed; NCCL's WARN lines go on to stderr, where they would have gone."""
    if files.debug_file is None or not Path(files.debug_file).exists():
        return None
    lines = Path(files.debug_file).read_text(encoding="utf-8", errors="replace").splitlines()
    for line in lines:
        if " NCCL WARN " in line:
            sys.stderr.write(line + "\n")
    return parse_nccl_lines(lines)


def broadcast_from_rank_zero(value: Any, gloo_group: Any, phase: str) -> Any:
    """Rank 0's VALUE on every rank (a decision only rank 0 can take: it alone holds every rank's facts)."""
    import torch.distributed as dist

    objects = [value]
    run_phase(phase, lambda: dist.broadcast_object_list(objects, src=0, group=gloo_group))
    return objects[0]


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
