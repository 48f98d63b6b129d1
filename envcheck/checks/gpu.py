"""Checks that NVIDIA GPUs were seen, and say why not when they were not (health checks join here)."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.finding import Finding, Severity


@check("gpu.present", "NVIDIA GPUs are visible to the driver; when none are, the reason is named.")
def check_gpu_present(given: CheckInput) -> Iterator[Finding]:
    gpu = given.snapshot.gpu
    check_id = "gpu.present"
    if isinstance(gpu, Unavailable):
        run = given.snapshot.probe("gpu")
        severity = Severity.FAIL if run is not None and run.status == "timeout" else Severity.SKIP
        yield Finding(
            check_id,
            severity,
            "the GPU probe timed out: a GPU may have fallen off the bus"
            if severity is Severity.FAIL
            else "GPUs not checked",
            detail=gpu.reason,
            fix="Look for Xid errors with `dmesg | grep -i xid`; a GPU that fell off the bus needs a reset "
            "(`nvidia-smi -r`) or a reboot."
            if severity is Severity.FAIL
            else gpu.fix,
            evidence=("gpu",),
        )
    elif not gpu.gpus:
        yield Finding(
            check_id,
            Severity.INFO,
            f"no NVIDIA GPU: {gpu.no_gpu_reason}",
            detail="Training runs on the CPU here.",
            fix=known_fix(gpu.driver_version),
            evidence=("gpu.no_gpu_reason",),
        )
    else:
        names = sorted({gpu_.name for gpu_ in gpu.gpus if isinstance(gpu_.name, str)})
        yield Finding(check_id, Severity.OK, f"{len(gpu.gpus)} NVIDIA GPU(s): {', '.join(names)}")


def known_fix(value: object) -> str | None:
    return value.fix if isinstance(value, Unavailable) else None
