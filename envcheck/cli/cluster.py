"""`envcheck cluster`: how to start the job-wide pre-flight under a launcher, or a one-node launch of it here.

The pre-flight itself runs on every rank as `python -m envcheck.cluster` (envcheck/cluster/); this command only
prints the launch lines, or with --nproc-per-node replaces itself with torchrun running them on this machine.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from envcheck.cli.app import app

LAUNCH_LINES = """\
Run `envcheck cluster` inside the job's launcher, one process per GPU (docs/cluster.md):
  one node:   torchrun --standalone --nproc-per-node 8 -m envcheck.cluster
  N nodes:    torchrun --nnodes N --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HEAD:29500 -m envcheck.cluster
  Slurm:      srun --ntasks-per-node 1 torchrun --nnodes $SLURM_NNODES --nproc-per-node 8 --rdzv-backend c10d \\
                --rdzv-endpoint $(scontrol show hostnames $SLURM_NODELIST | head -1):29500 -m envcheck.cluster
  CPU only:   torchrun --standalone --nproc-per-node 2 -m envcheck.cluster --backend gloo
Or here, on this machine: envcheck cluster --nproc-per-node 2 --backend gloo
Rank 0 prints the report (--json, --markdown); python -m envcheck.cluster --help lists the options."""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def cluster(
    context: typer.Context,
    nproc_per_node: Annotated[
        int | None,
        typer.Option(
            "--nproc-per-node", min=1, help="Launch N ranks on this machine with torchrun --standalone and report."
        ),
    ] = None,
) -> None:
    """Pre-flight of a distributed job: doctor on every node, every rank's versions, GPUs and NCCL variables
    compared, the all-reduce checked, busbw as % of NVLink / PCIe, NCCL transports, stragglers by GPU. Prints the
    launch lines; other options go to the ranks (--backend, --timeout, --json, --markdown, --max-size-mib,
    --iterations). On a CPU: torchrun --standalone --nproc-per-node 2 -m envcheck.cluster --backend gloo.
    Exit 1 on failures."""
    if nproc_per_node is None:
        typer.echo(LAUNCH_LINES)
        raise typer.Exit(0)
    argv = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc_per_node}",
        "-m", "envcheck.cluster", *context.args,
    ]  # fmt: skip
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, without its warning
    os.execv(sys.executable, argv)  # torchrun's exit status (rank 0's) becomes ours  # noqa: S606
