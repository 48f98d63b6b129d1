"""The options every rank is started with (argparse: each rank parses them before torch.distributed starts)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

DESCRIPTION = """\
Pre-flight of a distributed job, run on every rank by the launcher:
  torchrun --standalone --nproc-per-node 2 -m envcheck.cluster --backend gloo
  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m envcheck.cluster
Rank 0 prints one report (the others print nothing but errors): versions, GPUs and NCCL/CUDA variables compared
across ranks, doctor's checks per node, clock skew, an all-reduce checked, the all-reduce and all-gather bandwidth
(algbw, busbw; the largest as % of the NVLink / PCIe rate on NCCL, re-run without P2P / SHM when short),
stragglers named with host, GPU index and UUID, each rank's NCCL transport (NCCL_DEBUG=INFO lines).
Exit codes: 0 healthy, 1 a failure (a missing rank, a mismatch, a wrong all-reduce, doctor's on a node), 2 usage.
See docs/cluster.md."""


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    backend: str  # gloo, nccl, or auto (nccl when CUDA is available)
    timeout_s: float
    as_json: bool
    as_markdown: bool
    max_size_mib: int | None  # None: the default for the device
    iterations: int


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a positive number")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be 1 or more")
    return value


def parse_options(argv: list[str]) -> ClusterOptions:
    """The options; argparse writes the usage error and exits 2 on a bad one."""
    parser = argparse.ArgumentParser(
        prog="python -m envcheck.cluster", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto", help="default: nccl with CUDA")
    parser.add_argument(
        "--timeout", type=_positive, default=120.0, metavar="SECONDS", help="per phase (default 120, not torch's 600)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the report as JSON (schema envcheck.cluster/1)")
    output.add_argument("--markdown", action="store_true", help="the report as Markdown, to paste into an issue")
    parser.add_argument(
        "--max-size-mib", type=_count, default=None, metavar="N", help="largest sweep size (default 64 CPU, 1024 GPU)"
    )
    parser.add_argument("--iterations", type=_count, default=5, metavar="N", help="timed runs per size (default 5)")
    parsed = parser.parse_args(argv)
    return ClusterOptions(
        parsed.backend, parsed.timeout, parsed.json, parsed.markdown, parsed.max_size_mib, parsed.iterations
    )
