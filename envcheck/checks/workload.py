"""Checks of a workload profile (`doctor --profile`) against the machine: one finding per requirement.

They yield nothing without a profile. Sizes in profiles are GB (10^9 bytes), the unit GPU and RAM
sizes are sold in: a "24 GB" RTX 4090 reports 25,757,220,864 bytes (24 GiB), which meets 24 GB.
"""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu, GpuFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge.capability import gpu_capability
from envcheck.knowledge.model import WorkloadProfile

GB = 10**9

# The oldest compute capability whose hardware computes each dtype at full rate in PyTorch.
# fp32/fp16 run on every GPU a PyTorch wheel supports (fp16 tensor cores from 7.0 make it fast);
# tf32 and bf16 tensor cores arrive with Ampere (8.0) — torch.cuda.is_bf16_supported() — fp8 with
# Ada/Hopper (8.9, 9.0; torch._scaled_mm requires sm_89+); int8/int4 tensor cores with Turing (7.5,
# NVIDIA Turing architecture whitepaper).
DTYPE_MIN_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "fp32": (0, 0),
    "fp16": (0, 0),
    "tf32": (8, 0),
    "bf16": (8, 0),
    "fp8": (8, 9),
    "int8": (7, 5),
    "int4": (7, 5),
}


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


def _usable_memory(gpu: Gpu) -> int | Unavailable:
    """What one process can allocate: the largest MIG device's memory when MIG is on, else the GPU's."""
    if gpu.is_mig_enabled is True and isinstance(gpu.mig_devices, tuple) and gpu.mig_devices:
        sizes = [device.memory_total_bytes for device in gpu.mig_devices if isinstance(device.memory_total_bytes, int)]
        return max(sizes) if sizes else Unavailable("MIG device memory not reported")
    return gpu.memory_total_bytes


def _name(gpu: Gpu) -> str:
    return f"GPU {gpu.index} ({gpu.name})" if isinstance(gpu.name, str) else f"GPU {gpu.index}"


@check("workload.gpu_memory", "Each GPU the profile runs on has the profile's minimum memory (--profile).")
def check_gpu_memory(given: CheckInput) -> Iterator[Finding]:
    profile, check_id = _profile(given), "workload.gpu_memory"
    if profile is None:
        return
    gpus = _gpus(given, check_id, "GPU memory for the workload", absent_fails=True)
    if isinstance(gpus, Finding):
        yield gpus
        return
    need = profile.min_gpu_memory_gb * GB
    sizes = {gpu.index: _usable_memory(gpu) for gpu in gpus.gpus}
    known = {index: size for index, size in sizes.items() if isinstance(size, int)}
    if not known:
        yield skipped(
            check_id, "GPU memory for the workload", next(s for s in sizes.values() if isinstance(s, Unavailable))
        )
        return
    short = [gpu for gpu in gpus.gpus if gpu.index in known and known[gpu.index] < need]
    enough = [gpu for gpu in gpus.gpus if gpu.index in known and known[gpu.index] >= need]
    listing = ", ".join(f"{_name(gpu)} {_gb(known[gpu.index])}" for gpu in short)
    # A one-GPU job needs one GPU that fits; a sharded job runs a shard on every GPU it is given.
    fails = not enough if not _is_sharded(profile) else bool(short)
    if fails:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name} needs {profile.min_gpu_memory_gb:g} GB per GPU: {listing}",
            detail=f"{profile.description}. Below this the job stops with 'CUDA out of memory'.",
            fix="Use a GPU with more memory, or reduce the footprint (smaller batch, gradient checkpointing, "
            "quantised weights, sharding across more GPUs).",
            evidence=("gpu.gpus[*].memory_total_bytes",),
        )
    else:
        note = f"; not {listing}: exclude it with CUDA_VISIBLE_DEVICES" if short else ""
        best = max(enough, key=lambda gpu: known[gpu.index])
        yield Finding(
            check_id,
            Severity.OK,
            f"{len(enough)} GPU(s) with >= {profile.min_gpu_memory_gb:g} GB (largest {_name(best)} "
            f"{_gb(known[best.index])}){note}",
        )


@check("workload.total_gpu_memory", "The GPUs together hold a sharded profile's total memory (--profile).")
def check_total_gpu_memory(given: CheckInput) -> Iterator[Finding]:
    profile, check_id = _profile(given), "workload.total_gpu_memory"
    if profile is None or profile.min_total_gpu_memory_gb is None:
        return  # a one-GPU workload has no total to meet
    gpus = _gpus(given, check_id, "total GPU memory for the workload")
    if isinstance(gpus, Finding):
        yield gpus
        return
    need_each, need_total = profile.min_gpu_memory_gb * GB, profile.min_total_gpu_memory_gb * GB
    sizes = [_usable_memory(gpu) for gpu in gpus.gpus]
    missing = [size for size in sizes if isinstance(size, Unavailable)]
    if missing and len(missing) == len(sizes):
        yield skipped(check_id, "total GPU memory for the workload", missing[0])
        return
    # Only GPUs that can hold a shard count: a smaller one would run out of memory first.
    usable = [size for size in sizes if isinstance(size, int) and size >= need_each]
    total = sum(usable)
    if total < need_total:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name} needs {profile.min_total_gpu_memory_gb:g} GB across GPUs; {len(usable)} GPU(s) "
            f"with >= {profile.min_gpu_memory_gb:g} GB hold {_gb(total)}",
            detail=f"{profile.description}. Weights, gradients and optimizer state are sharded over the GPUs.",
            fix="Add GPUs, use larger ones, or offload optimizer state to CPU (DeepSpeed ZeRO-Offload, FSDP "
            "cpu_offload) at a cost in speed.",
            evidence=("gpu.gpus[*].memory_total_bytes",),
        )
    else:
        yield Finding(
            check_id, Severity.OK, f"{len(usable)} GPU(s) hold {_gb(total)} >= {profile.min_total_gpu_memory_gb:g} GB"
        )


def _inferred(gpu: Gpu, given: CheckInput) -> str:
    """``inferred from the GeForce RTX 40 family`` when the name's family gave the capability, else empty."""
    if isinstance(gpu.compute_capability, str) or not isinstance(gpu.name, str) or given.knowledge is None:
        return ""
    found = gpu_capability(given.knowledge, gpu.name)
    return found.inferred_from if found else ""


def _capability(gpu: Gpu, given: CheckInput) -> tuple[int, int] | None:
    """The GPU's compute capability: from the driver, else the knowledge base by name, else torch."""
    text = gpu.compute_capability if isinstance(gpu.compute_capability, str) else None
    if text is None and isinstance(gpu.name, str) and given.knowledge is not None:
        found = gpu_capability(given.knowledge, gpu.name)
        if found is not None:
            return found.compute_capability
    framework = given.snapshot.framework
    if text is None and not isinstance(framework, Unavailable) and framework.torch is not None:
        # torch numbers devices in its own order (CUDA_DEVICE_ORDER), so match by name, not index.
        text = next(
            (
                device.compute_capability
                for device in framework.torch.devices
                if device.name == gpu.name and isinstance(device.compute_capability, str)
            ),
            None,
        )
    if text is None:
        return None
    major, _, minor = text.partition(".")
    return (int(major), int(minor or 0)) if major.isdigit() and (minor or "0").isdigit() else None


def _capability_findings(
    given: CheckInput, check_id: str, what: str, need: tuple[int, int], because: str
) -> Iterator[Finding]:
    profile = _profile(given)
    assert profile is not None
    gpus = _gpus(given, check_id, what)
    if isinstance(gpus, Finding):
        yield gpus
        return
    found = {gpu.index: _capability(gpu, given) for gpu in gpus.gpus}
    known = {index: cc for index, cc in found.items() if cc is not None}
    if not known:
        yield Finding(
            check_id,
            Severity.SKIP,
            f"{what} not checked",
            detail="no GPU's compute capability is known (old driver, GPU not in the knowledge base, no torch probe)",
            fix="Run `envcheck doctor` without --fast so the torch probe reads it.",
        )
        return
    short = [gpu for gpu in gpus.gpus if gpu.index in known and known[gpu.index] < need]
    meeting = [gpu for gpu in gpus.gpus if gpu.index in known and known[gpu.index] >= need]
    listing = ", ".join(
        f"{_name(gpu)} is {known[gpu.index][0]}.{known[gpu.index][1]}"
        + (f" ({note})" if (note := _inferred(gpu, given)) else "")
        for gpu in short
    )
    if (not meeting) if not _is_sharded(profile) else bool(short):
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{profile.name}: {what} needs compute capability {need[0]}.{need[1]}+; {listing}",
            detail=because,
            fix="Use a newer GPU, or change the job (e.g. fp16 instead of bf16 on pre-Ampere GPUs).",
            evidence=("gpu.gpus[*].compute_capability",),
        )
    else:
        note = f"; not {listing}" if short else ""
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
