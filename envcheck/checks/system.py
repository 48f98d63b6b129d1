"""Checks of the operating system limits a training job runs into: shared memory, CPUs, open files."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import GIB, format_bytes, skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.finding import Finding, Severity

# DataLoader workers hand batches to the main process through /dev/shm; Docker's default is 64 MB,
# which fails with "bus error" / "No space left on device" as soon as a few workers run.
SHM_WARN_BYTES = 1 * GIB
# PyTorch's DataLoader shares tensors through file descriptors; many workers exhaust a 1024 limit
# ("received 0 items of ancdata", "Too many open files").
OPEN_FILES_WARN = 4096


@check("system.shm_size", "/dev/shm is large enough for DataLoader worker processes (at least 1 GiB).")
def check_shm_size(given: CheckInput) -> Iterator[Finding]:
    storage = given.snapshot.storage
    check_id = "system.shm_size"
    if isinstance(storage, Unavailable):
        yield skipped(check_id, "/dev/shm size", storage)
        return
    if isinstance(storage.shm_total_bytes, Unavailable):
        yield skipped(check_id, "/dev/shm size", storage.shm_total_bytes)
        return
    size = storage.shm_total_bytes
    if size < SHM_WARN_BYTES:
        yield Finding(
            check_id,
            Severity.WARN,
            f"/dev/shm is {format_bytes(size)}: DataLoader workers will crash with a bus error",
            detail="Each worker passes batches through shared memory; Docker's default is 64 MB.",
            fix="docker run --shm-size=16g (or --ipc=host); in Kubernetes mount an emptyDir with "
            "medium: Memory at /dev/shm; or use DataLoader(num_workers=0).",
            evidence=("storage.shm_total_bytes",),
        )
    else:
        yield Finding(check_id, Severity.OK, f"/dev/shm is {format_bytes(size)}")


@check("system.cpu_quota", "Thread counts match the CPUs this process may use (cgroup quota, affinity).")
def check_cpu_quota(given: CheckInput) -> Iterator[Finding]:
    cpu, environment = given.snapshot.cpu, given.snapshot.environment
    check_id = "system.cpu_quota"
    if isinstance(cpu, Unavailable):
        yield skipped(check_id, "CPU quota", cpu)
        return
    omp = None
    if not isinstance(environment, Unavailable):
        omp = next((v.value for v in environment.variables if v.name == "OMP_NUM_THREADS"), None)
    usable = cpu.usable_cpus
    if usable < cpu.logical_cores / 2 and omp is None:
        threads = max(1, int(usable))
        ranks = _gpu_count(given)
        yield Finding(
            check_id,
            Severity.WARN,
            f"only {usable:g} of {cpu.logical_cores} CPUs are usable, but thread pools size to {cpu.logical_cores}",
            detail="torch, OpenMP and MKL start one thread per core they see; oversubscribed threads on a "
            "CPU quota are throttled and run far slower.",
            fix=_thread_fix(threads, ranks),
            evidence=("cpu.usable_cpus", "cpu.logical_cores", "environment.OMP_NUM_THREADS"),
        )
    else:
        note = f", OMP_NUM_THREADS={omp}" if omp is not None else ""
        yield Finding(check_id, Severity.OK, f"{usable:g} of {cpu.logical_cores} CPUs usable{note}")


@check("system.open_files", "The open-file limit is high enough for DataLoader workers (at least 4096).")
def check_open_files(given: CheckInput) -> Iterator[Finding]:
    system = given.snapshot.system
    check_id = "system.open_files"
    if isinstance(system, Unavailable):
        yield skipped(check_id, "open-file limit", system)
        return
    limit = system.open_files_limit
    if isinstance(limit, Unavailable):
        yield skipped(check_id, "open-file limit", limit)
    elif limit is not None and limit < OPEN_FILES_WARN:
        yield Finding(
            check_id,
            Severity.WARN,
            f"open-file limit is {limit}: DataLoader workers can fail with 'Too many open files'",
            fix="ulimit -n 65536 (or raise nofile in /etc/security/limits.conf; docker run --ulimit nofile=65536)",
            evidence=("system.open_files_limit",),
        )
    else:
        yield Finding(check_id, Severity.OK, f"open-file limit {'unlimited' if limit is None else limit}")


@check("system.root_in_container", "Notes when the job runs as root inside a container.")
def check_root_in_container(given: CheckInput) -> Iterator[Finding]:
    system = given.snapshot.system
    check_id = "system.root_in_container"
    if isinstance(system, Unavailable):
        yield skipped(check_id, "container user", system)
    elif isinstance(system.is_root, Unavailable):
        yield skipped(check_id, "container user", system.is_root)
    elif isinstance(system.container, Unavailable):
        yield skipped(check_id, "container user", system.container)
    elif system.is_root and system.container:
        yield Finding(
            check_id,
            Severity.INFO,
            f"running as root inside a {system.container} container",
            detail="Files written to mounted volumes will be owned by root on the host.",
            fix="docker run --user $(id -u):$(id -g) to keep file ownership",
            evidence=("system.is_root", "system.container"),
        )
    else:
        yield Finding(check_id, Severity.OK, "not root inside a container")


def _gpu_count(given: CheckInput) -> int:
    gpu = given.snapshot.gpu
    return 1 if isinstance(gpu, Unavailable) else max(1, len(gpu.gpus))


def _thread_fix(usable_cpus: int, ranks: int) -> str:
    """Thread and worker counts that fit the usable CPUs, with one training process per GPU."""
    per_rank = max(1, usable_cpus // ranks)
    # Each rank's main process needs a CPU of its own besides its DataLoader workers, which would
    # otherwise fight it for the quota (PyTorch DataLoader docs, "multi-process data loading").
    workers = max(0, per_rank - 1)
    ranks_note = f" per process ({ranks} GPU processes sharing {usable_cpus} CPUs)" if ranks > 1 else ""
    return (
        f"export OMP_NUM_THREADS={per_rank} and use DataLoader(num_workers={workers}){ranks_note}; "
        "torchrun starting several processes sets OMP_NUM_THREADS=1 unless it is already set."
    )
