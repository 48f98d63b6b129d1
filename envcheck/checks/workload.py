"""Checks of a workload profile (`doctor --profile`) against the machine: one finding per requirement.

They yield nothing without a profile. Sizes in profiles are GB (10^9 bytes), the unit GPU and RAM
sizes are sold in: a "24 GB" RTX 4090 reports 25,757,220,864 bytes (24 GiB), which meets 24 GB.
"""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.advise.fit import FitJudgement, Seat, judge_fit, meets, seats_of
from envcheck.advise.memory_model import STRATEGY_TITLES
from envcheck.advise.workload_spec import DTYPE_MIN_COMPUTE_CAPABILITY, spec_from_profile
from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu, GpuFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge.model import WorkloadProfile

GB = 10**9


def _gb(count: float) -> str:
    return f"{count / GB:.1f} GB ({count / 1024**3:.1f} GiB)"


def _profile(given: CheckInput) -> WorkloadProfile | None:
    return given.workload if isinstance(given.workload, WorkloadProfile) else None


def _is_sharded(profile: WorkloadProfile) -> bool:
    return profile.min_total_gpu_memory_gb is not None


def _gpus(given: CheckInput, check_id: str, what: str, absent_fails: bool = False) -> GpuFacts | Finding:
    """The GPU facts; without GPUs, one failure (from the memory check) and skips from the others."""
    gpu = given.snapshot.gpu
    if isinstance(gpu, Unavailable):
        return skipped(check_id, what, gpu)
    if not gpu.gpus and not absent_fails:
        return Finding(check_id, Severity.SKIP, f"{what} not checked", detail=f"no NVIDIA GPU: {gpu.no_gpu_reason}")
    if not gpu.gpus:
        return Finding(
            check_id,
            Severity.FAIL,
            f"the workload needs an NVIDIA GPU; none here ({gpu.no_gpu_reason})",
            evidence=("gpu.gpus",),
        )
    return gpu


def _name(gpu: Gpu) -> str:
    return f"GPU {gpu.index} ({gpu.name})" if isinstance(gpu.name, str) else f"GPU {gpu.index}"


def _judgement(given: CheckInput, profile: WorkloadProfile) -> FitJudgement:
    """The one judgement `recommend --here` makes too (envcheck/advise/fit.py)."""
    return judge_fit(spec_from_profile(profile), seats_of(given.snapshot, given.knowledge))


def _free(seat: Seat) -> str:
    held = f" ({_gb(seat.used_bytes)} held by other processes)" if seat.used_bytes else ""
    return f"{seat.label} has {_gb(seat.free_bytes)} free{held}"


@check("workload.gpu_memory", "The profile's memory (memory model, after other processes) fits the GPUs (--profile).")
def check_gpu_memory(given: CheckInput) -> Iterator[Finding]:
    profile, check_id = _profile(given), "workload.gpu_memory"
    if profile is None:
        return
    gpus = _gpus(given, check_id, "GPU memory for the workload", absent_fails=True)
    if isinstance(gpus, Finding):
        yield gpus
        return
    judgement = _judgement(given, profile)
    if not judgement.seats:
        sizes = [gpu.memory_total_bytes for gpu in gpus.gpus]
        reason = next((s for s in sizes if isinstance(s, Unavailable)), Unavailable("GPU memory not reported"))
        yield skipped(check_id, "GPU memory for the workload", reason)
        return
    pool = judgement.capable or judgement.seats
    memory = judgement.memory
    if memory is None:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name} needs {_gb(judgement.smallest_need_bytes)} per GPU; "
            + "; ".join(_free(seat) for seat in pool),
            detail=f"{profile.description}. Sized by envcheck's memory model (docs/recommend.md) against the "
            "memory other processes leave free; below it the job stops with 'CUDA out of memory'.",
            fix="Stop the processes holding GPU memory (nvidia-smi lists them), use GPUs with more memory, or "
            "reduce the footprint (smaller batch, gradient checkpointing, quantised weights, more GPUs); "
            "`envcheck recommend --workload " + profile.name + " --here` shows the settings that would fit.",
            evidence=("gpu.gpus[*].memory_total_bytes", "gpu.gpus[*].processes"),
        )
        return
    used = judgement.used
    yield Finding(
        check_id,
        Severity.OK,
        f"fits {STRATEGY_TITLES[memory.strategy]} on {len(used)} GPU(s): {_gb(memory.total_bytes)} per GPU, "
        f"least free {_gb(judgement.free_bytes)} ({used[0].label if len(used) == 1 else 'of ' + str(len(used))})",
    )


@check("workload.total_gpu_memory", "The GPUs together hold a sharded profile's memory (--profile).")
def check_total_gpu_memory(given: CheckInput) -> Iterator[Finding]:
    profile, check_id = _profile(given), "workload.total_gpu_memory"
    if profile is None or profile.min_total_gpu_memory_gb is None:
        return  # a one-GPU workload has no total to meet
    gpus = _gpus(given, check_id, "total GPU memory for the workload")
    if isinstance(gpus, Finding):
        yield gpus
        return
    judgement = _judgement(given, profile)
    if not judgement.seats:
        yield Finding(
            check_id, Severity.SKIP, "total GPU memory for the workload not checked", detail="GPU memory not reported"
        )
        return
    pool = judgement.capable or judgement.seats
    total_free = sum(seat.free_bytes for seat in pool)
    if judgement.memory is None:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name} does not fit the {len(pool)} GPU(s) together ({_gb(total_free)} free), even sharded",
            detail=f"{profile.description}. Weights, gradients and optimizer state are sharded over the GPUs "
            "(ZeRO-3 / FSDP) and each still needs its share plus activations.",
            fix="Add GPUs, use larger ones, or offload optimizer state to CPU (DeepSpeed ZeRO-Offload, FSDP "
            "cpu_offload) at a cost in speed.",
            evidence=("gpu.gpus[*].memory_total_bytes", "gpu.gpus[*].processes"),
        )
    else:
        yield Finding(check_id, Severity.OK, f"{len(pool)} GPU(s) with {_gb(total_free)} free hold the job")


def _capability_findings(
    given: CheckInput, check_id: str, what: str, need: tuple[int, int], because: str
) -> Iterator[Finding]:
    profile = _profile(given)
    assert profile is not None
    gpus = _gpus(given, check_id, what)
    if isinstance(gpus, Finding):
        yield gpus
        return
    seats = seats_of(given.snapshot, given.knowledge)
    known = [seat for seat in seats if seat.compute_capability is not None]
    if not known:
        yield Finding(
            check_id,
            Severity.SKIP,
            f"{what} not checked",
            detail="no GPU's compute capability is known (old driver, GPU not in the knowledge base, no torch probe)",
            fix="Run `envcheck doctor` without --fast so the torch probe reads it.",
        )
        return
    short = [seat for seat in seats if not meets(seat, need)]
    meeting = [seat for seat in seats if meets(seat, need)]
    listing = ", ".join(
        f"{seat.label} is {seat.compute_capability[0]}.{seat.compute_capability[1]}"
        + (f" ({seat.capability_note})" if seat.capability_note else "")
        for seat in short
        if seat.compute_capability is not None
    )
    # the same rule as advise/fit.py's judgement: the job runs on the GPUs that meet it, so it fails only when none does
    if not meeting:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name}: {what} needs compute capability {need[0]}.{need[1]}+; {listing}",
            detail=because,
            fix="Use a newer GPU, or change the job (e.g. fp16 instead of bf16 on pre-Ampere GPUs).",
            evidence=("gpu.gpus[*].compute_capability",),
        )
    else:
        note = f"; not {listing}: exclude it with CUDA_VISIBLE_DEVICES" if short else ""
        yield Finding(check_id, Severity.OK, f"{what}: {len(meeting)} GPU(s) at {need[0]}.{need[1]}+{note}")


@check("workload.dtypes", "The GPUs compute the profile's dtypes (bf16/tf32 need cc 8.0, fp8 8.9) (--profile).")
def check_dtypes(given: CheckInput) -> Iterator[Finding]:
    profile = _profile(given)
    if profile is None:
        return
    for dtype in profile.dtypes_required:
        need = DTYPE_MIN_COMPUTE_CAPABILITY.get(dtype, (0, 0))
        because = (
            f"{dtype} units appear with compute capability {need[0]}.{need[1]}; older GPUs emulate it slowly or fail."
        )
        yield from _capability_findings(given, "workload.dtypes", dtype, need, because)


@check("workload.compute_capability", "The GPUs meet the profile's minimum compute capability (--profile).")
def check_compute_capability(given: CheckInput) -> Iterator[Finding]:
    profile = _profile(given)
    if profile is None:
        return
    yield from _capability_findings(
        given,
        "workload.compute_capability",
        "the GPU architecture",
        profile.min_compute_capability,
        f"{profile.name}'s kernels are not built for older architectures.",
    )


@check("workload.ram", "RAM (or the container's memory limit) meets the profile's minimum (--profile).")
def check_ram(given: CheckInput) -> Iterator[Finding]:
    profile, check_id, memory = _profile(given), "workload.ram", given.snapshot.memory
    if profile is None:
        return
    if isinstance(memory, Unavailable):
        yield skipped(check_id, "RAM for the workload", memory)
        return
    ram, what = memory.total_bytes, "RAM"
    if isinstance(memory.cgroup_limit_bytes, int) and memory.cgroup_limit_bytes < ram:
        ram, what = memory.cgroup_limit_bytes, "the container's memory limit"
    if ram < profile.min_ram_gb * GB:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name} needs {profile.min_ram_gb:g} GB of RAM; {what} is {_gb(ram)}",
            detail="Checkpoints and datasets pass through host memory; past the limit the OOM killer ends the job.",
            fix="Use a larger machine or raise the container's memory limit (docker run --memory, "
            "Kubernetes resources.limits.memory).",
            evidence=("memory.total_bytes", "memory.cgroup_limit_bytes"),
        )
    else:
        yield Finding(check_id, Severity.OK, f"{what} {_gb(ram)} >= {profile.min_ram_gb:g} GB")


@check("workload.disk", "Working and cache directories have the profile's free disk space (--profile).")
def check_disk(given: CheckInput) -> Iterator[Finding]:
    profile, check_id, storage = _profile(given), "workload.disk", given.snapshot.storage
    if profile is None:
        return
    if isinstance(storage, Unavailable):
        yield skipped(check_id, "free disk for the workload", storage)
        return
    need = profile.min_free_disk_gb * GB
    seen: set[str] = set()
    flagged = checked = False
    for location in storage.locations:
        if not {location.role, *location.also_roles} & {"cwd", "torch_cache", "hf_cache"}:
            continue
        mount = location.mount_point if isinstance(location.mount_point, str) else location.measured_path
        if mount in seen or isinstance(location.free_bytes, Unavailable):
            continue
        seen.add(mount)
        checked = True
        if location.free_bytes < need:
            flagged = True
            yield Finding(
                check_id,
                Severity.WARN,
                f"{profile.name} needs {profile.min_free_disk_gb:g} GB free; {location.role} ({location.path}) "
                f"has {_gb(location.free_bytes)}",
                detail="Model downloads go to the cache (HF_HOME, TORCH_HOME), checkpoints to the working "
                "directory; a full disk ends the run with 'No space left on device'.",
                fix=f"Free space on {mount}, or point the caches and outputs at a larger disk "
                "(export HF_HOME=/big/hf TORCH_HOME=/big/torch).",
                evidence=(f"storage.locations[{location.role}].free_bytes",),
            )
    if not checked:
        yield Finding(
            check_id, Severity.SKIP, "free disk for the workload not checked", detail="free space not measured"
        )
    elif not flagged:
        yield Finding(
            check_id, Severity.OK, f">= {profile.min_free_disk_gb:g} GB free at the working and cache directories"
        )


@check("workload.cpu_cores", "The usable CPUs (quota, affinity) meet the profile's minimum (--profile).")
def check_cpu_cores(given: CheckInput) -> Iterator[Finding]:
    profile, check_id, cpu = _profile(given), "workload.cpu_cores", given.snapshot.cpu
    if profile is None:
        return
    if isinstance(cpu, Unavailable):
        yield skipped(check_id, "CPUs for the workload", cpu)
        return
    if cpu.usable_cpus < profile.min_cpu_cores:
        yield Finding(
            check_id,
            Severity.WARN,
            f"{profile.name} wants {profile.min_cpu_cores} CPUs; {cpu.usable_cpus:g} of {cpu.logical_cores} usable",
            detail="Data loading and augmentation run on the CPU; too few CPUs leave the GPU waiting.",
            fix="Raise the CPU quota (docker run --cpus, Kubernetes resources.limits.cpu) or pre-process data offline.",
            evidence=("cpu.usable_cpus", "cpu.logical_cores"),
        )
    else:
        yield Finding(check_id, Severity.OK, f"{cpu.usable_cpus:g} usable CPUs >= {profile.min_cpu_cores}")
