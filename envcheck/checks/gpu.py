"""Checks of how the machine's NVIDIA GPUs are set up: seen at all, models, modes and who else uses them.

Health of the hardware itself (ECC, retired memory, PCIe link, throttling, power, heat) is in gpu_health.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from envcheck.checks.common import format_bytes, skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import gpu_models, knowledge_of, missing_of
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu, GpuFacts
from envcheck.facts.messages import quoted
from envcheck.finding import Finding, Severity
from envcheck.knowledge.rules import driver_below_floor

# What a per-GPU judge returns: a finding about a problem, Unavailable when the GPU did not report the
# fact, or None when the GPU is fine.
Verdict = Finding | Unavailable | None


@check("gpu.present", "NVIDIA GPUs are visible to the driver; when none are, the reason is named.")
def check_gpu_present(given: CheckInput) -> Iterator[Finding]:
    gpu = given.snapshot.gpu
    check_id = "gpu.present"
    if isinstance(gpu, Unavailable):
        run = given.snapshot.probe("gpu")
        status = run.status if run is not None else "skipped"
        if status == "timeout":
            yield Finding(
                check_id,
                Severity.FAIL,
                "the GPU probe timed out: a GPU may have fallen off the bus",
                detail=gpu.reason,
                fix=gpu.fix
                or "Look for Xid errors with `dmesg | grep -i xid`; a GPU that fell off the bus needs a reset "
                "(`nvidia-smi -r`) or a reboot.",
                evidence=("gpu",),
            )
        elif status == "failed":  # e.g. the NVML library crashed: the GPUs may be fine, envcheck could not look
            yield Finding(
                check_id,
                Severity.WARN,
                "the GPU probe failed: GPUs not checked",
                detail=gpu.reason,
                fix=gpu.fix,
                evidence=("gpu",),
            )
        else:
            yield Finding(
                check_id, Severity.SKIP, "GPUs not checked", detail=gpu.reason, fix=gpu.fix, evidence=("gpu",)
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


_LOST_FIX = (
    "Look for Xid 79 with `sudo dmesg | grep -i xid`; reset the GPU (`sudo nvidia-smi -r -i INDEX`) or reboot. "
    "If it falls off again, reseat the card and check its power cables and cooling."
)


@check("gpu.lost", "No GPU has fallen off the bus (listed by the driver but not answering it; Xid 79).")
def check_lost(given: CheckInput) -> Iterator[Finding]:
    check_id = "gpu.lost"
    facts = given.snapshot.gpu
    if isinstance(facts, Unavailable):
        yield skipped(check_id, "lost GPUs", facts)
        return
    for lost in facts.lost_gpus:
        which = f"GPU {lost.index} at {lost.pci_bus_id}" if lost.index is not None else f"the GPU at {lost.pci_bus_id}"
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{which} has fallen off the bus: the driver cannot open it ({lost.error})",
            detail="nvidia-smi lists the GPU but NVML cannot get a handle to it, so no process can use it and "
            f"CUDA counts one GPU fewer. {quoted(lost.source_line)}",
            fix=_LOST_FIX.replace("-i INDEX", f"-i {lost.pci_bus_id}"),
            evidence=("gpu.lost_gpus",),
        )
    for gpu in facts.gpus:
        if gpu.is_lost:
            bus = f" at {gpu.pci_bus_id}" if isinstance(gpu.pci_bus_id, str) else ""
            yield Finding(
                check_id,
                Severity.FAIL,
                f"{label(gpu)}{bus} has fallen off the bus: NVML answered GPU_IS_LOST",
                detail="The GPU stopped answering while envcheck read it; every call to it fails or hangs.",
                fix=_LOST_FIX.replace("INDEX", str(gpu.index)),
                evidence=(f"gpu.gpus[{gpu.index}]",),
            )
    if facts.lost_gpus or any(gpu.is_lost for gpu in facts.gpus):
        return
    if facts.gpus:
        yield Finding(check_id, Severity.OK, "every GPU answers the driver")
    else:
        yield Finding(check_id, Severity.SKIP, "lost GPUs not checked", detail=f"no NVIDIA GPU: {facts.no_gpu_reason}")


def known_fix(value: object) -> str | None:
    return value.fix if isinstance(value, Unavailable) else None


def label(gpu: Gpu) -> str:
    """How findings name a GPU: its index (as `nvidia-smi -i` counts) and model."""
    return f"GPU {gpu.index} ({gpu.name})" if isinstance(gpu.name, str) else f"GPU {gpu.index}"


def first_missing(*values: object) -> Unavailable | None:
    """The first of `values` that was not collected, so a judge can return it as its reason to skip."""
    return next((value for value in values if isinstance(value, Unavailable)), None)


def gpus_of(given: CheckInput, check_id: str, what: str) -> GpuFacts | Finding:
    """The GPU facts, or the skip finding when there are none to judge."""
    facts = given.snapshot.gpu
    if isinstance(facts, Unavailable):
        return skipped(check_id, what, facts)
    if not facts.gpus:
        return Finding(check_id, Severity.SKIP, f"{what} not checked", detail=f"no NVIDIA GPU: {facts.no_gpu_reason}")
    return facts


def per_gpu(
    given: CheckInput, check_id: str, what: str, judge: Callable[[Gpu], Verdict], ok_title: str
) -> Iterator[Finding]:
    """Run `judge` on every GPU: one finding per affected GPU, else one ok (or skip when none reported it)."""
    facts = gpus_of(given, check_id, what)
    if isinstance(facts, Finding):
        yield facts
        return
    problems: list[Finding] = []
    unreported: list[tuple[Gpu, Unavailable]] = []
    for gpu in facts.gpus:
        verdict = judge(gpu)
        if isinstance(verdict, Finding):
            problems.append(verdict)
        elif isinstance(verdict, Unavailable):
            unreported.append((gpu, verdict))
    if problems:
        yield from problems
    elif len(unreported) == len(facts.gpus):
        yield skipped(check_id, what, unreported[0][1])
    else:
        missing = f" (not reported by {', '.join(f'GPU {gpu.index}' for gpu, _ in unreported)})" if unreported else ""
        yield Finding(check_id, Severity.OK, ok_title + missing)


@check("gpu.mixed_models", "All GPUs in the machine are the same model (DDP runs at the pace of the slowest).")
def check_mixed_models(given: CheckInput) -> Iterator[Finding]:
    check_id = "gpu.mixed_models"
    facts = gpus_of(given, check_id, "GPU models")
    if isinstance(facts, Finding):
        yield facts
        return
    models: dict[str, list[int]] = {}
    for gpu in facts.gpus:
        if isinstance(gpu.name, str):
            models.setdefault(gpu.name, []).append(gpu.index)
    if len(models) > 1:
        listing = "; ".join(f"{name} (GPU {', '.join(map(str, indices))})" for name, indices in models.items())
        yield Finding(
            check_id,
            Severity.WARN,
            f"{len(models)} different GPU models: {listing}",
            detail="Data-parallel training (DDP, FSDP) synchronises every step, so all GPUs wait for the slowest; "
            "a smaller GPU also caps the per-GPU batch size for all of them.",
            fix="Train on one model only, e.g. CUDA_VISIBLE_DEVICES="
            f"{','.join(map(str, max(models.items(), key=lambda model: len(model[1]))[1]))}",
            evidence=("gpu.gpus[*].name",),
        )
    else:
        yield Finding(check_id, Severity.OK, f"one GPU model: {next(iter(models), 'unnamed')}")


def _persistence(gpu: Gpu) -> Verdict:
    """Only what per_gpu needs for the OK and skip cases; GPUs with it off are reported together below."""
    return gpu.is_persistence_mode if isinstance(gpu.is_persistence_mode, Unavailable) else None


@check("gpu.persistence_mode", "Persistence mode is on, so the driver stays initialised between jobs (info).")
def check_persistence_mode(given: CheckInput) -> Iterator[Finding]:
    check_id = "gpu.persistence_mode"
    facts = gpus_of(given, check_id, "persistence mode")
    if isinstance(facts, Finding):
        yield facts
        return
    off = [gpu for gpu in facts.gpus if gpu.is_persistence_mode is False]
    if not off:
        yield from per_gpu(given, check_id, "persistence mode", _persistence, "persistence mode on")
        return
    # One finding for every GPU it is off on: a machine set up without it has it off everywhere, and eight
    # identical paragraphs would bury the findings that differ per GPU.
    indices = [str(gpu.index) for gpu in off]
    models = sorted({gpu.name for gpu in off if isinstance(gpu.name, str)})
    which = (f"GPU {indices[0]}" if len(off) == 1 else f"GPUs {', '.join(indices)}") + (
        f" ({', '.join(models)})" if models else ""
    )
    if len(off) == len(facts.gpus) and len(off) > 1:
        command = "sudo nvidia-smi -pm 1"  # without -i it applies to every GPU
    elif len(off) == 1:
        command = f"sudo nvidia-smi -i {indices[0]} -pm 1"
    else:
        command = f"for i in {' '.join(indices)}; do sudo nvidia-smi -i $i -pm 1; done"
    yield Finding(
        check_id,
        Severity.INFO,
        f"{which}: persistence mode is off",
        detail="Without it the driver tears the GPU down when the last client exits, so every new process "
        "pays a second or more of initialisation and the GPU's settings (clocks, power limit) can reset.",
        fix=f"{command} (or enable the nvidia-persistenced service)",
        evidence=tuple(f"gpu.gpus[{gpu.index}].is_persistence_mode" for gpu in off),
    )


_COMPUTE_MODE_EFFECT = {
    "Prohibited": "no process may create a CUDA context on it: torch sees the GPU but every CUDA call fails "
    "with 'all CUDA-capable devices are busy or unavailable'",
    "Exclusive_Process": "only one process at a time may use it: DataLoader workers or a second job touching "
    "CUDA fail with 'all CUDA-capable devices are busy or unavailable'",
    "Exclusive_Thread": "only one thread of one process may use it (a deprecated mode)",
}


def _compute_mode(gpu: Gpu) -> Verdict:
    mode = gpu.compute_mode
    if isinstance(mode, Unavailable) or mode not in _COMPUTE_MODE_EFFECT:
        return mode if isinstance(mode, Unavailable) else None
    return Finding(
        "gpu.compute_mode",
        Severity.WARN,
        f"{label(gpu)}: compute mode is {mode}",
        detail=f"In {mode} mode {_COMPUTE_MODE_EFFECT[mode]}. Cluster schedulers set this on purpose; "
        "on a workstation it is usually left over.",
        fix=f"sudo nvidia-smi -i {gpu.index} -c DEFAULT",
        evidence=(f"gpu.gpus[{gpu.index}].compute_mode",),
    )


@check("gpu.compute_mode", "No GPU is in the Prohibited or an Exclusive compute mode.")
def check_compute_mode(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.compute_mode", "compute mode", _compute_mode, "compute mode Default")


def _mig(gpu: Gpu) -> Verdict:
    if isinstance(gpu.is_mig_enabled, Unavailable):
        # Only A100/A30/H100-class GPUs have MIG; the others report "not supported", which is no gap.
        return None
    if not gpu.is_mig_enabled:
        return None
    devices = gpu.mig_devices if isinstance(gpu.mig_devices, tuple) else ()
    sizes = ", ".join(
        format_bytes(device.memory_total_bytes) for device in devices if isinstance(device.memory_total_bytes, int)
    )
    if not devices:
        return Finding(
            "gpu.mig",
            Severity.WARN,
            f"{label(gpu)}: MIG is enabled but no MIG device exists, so CUDA can use none of this GPU",
            fix=f"List the profiles (sudo nvidia-smi mig -i {gpu.index} -lgip) and create instances "
            f"(sudo nvidia-smi mig -i {gpu.index} -cgi <profile> -C), or disable MIG "
            f"(sudo nvidia-smi -i {gpu.index} -mig 0, then reset the GPU).",
            evidence=(f"gpu.gpus[{gpu.index}].is_mig_enabled", f"gpu.gpus[{gpu.index}].mig_devices"),
        )
    return Finding(
        "gpu.mig",
        Severity.INFO,
        f"{label(gpu)}: MIG is enabled with {len(devices)} MIG device(s)" + (f" ({sizes})" if sizes else ""),
        detail="torch does not see the whole GPU: a process sees one MIG device (torch.cuda.device_count() == 1, "
        "memory that of the instance), the first one unless CUDA_VISIBLE_DEVICES=MIG-<uuid> names another; "
        "CUDA enumerates a single MIG device per process (NVIDIA MIG user guide, 'CUDA Device Enumeration').",
        fix="List the MIG UUIDs with `nvidia-smi -L` and start one process per device with "
        f"CUDA_VISIBLE_DEVICES=MIG-<uuid>; to use the whole GPU: sudo nvidia-smi -i {gpu.index} -mig 0",
        evidence=(f"gpu.gpus[{gpu.index}].is_mig_enabled", f"gpu.gpus[{gpu.index}].mig_devices"),
    )


@check("gpu.mig", "Says what torch will see on a GPU with MIG enabled (one MIG device per process).")
def check_mig(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.mig", "MIG mode", _mig, "MIG is off")


def _processes(gpu: Gpu) -> Verdict:
    if isinstance(gpu.processes, Unavailable):
        return gpu.processes
    # Graphics-only clients (Xorg, a compositor) hold a few MiB on desktops and do not compete for compute.
    compute = [process for process in gpu.processes if "C" in process.type]
    if not compute:
        return None
    described = []
    held = 0
    for process in compute:
        name = process.name if isinstance(process.name, str) else "unknown name"
        memory = process.used_memory_bytes
        held += memory if isinstance(memory, int) else 0
        described.append(f"{name} (pid {process.pid}, {format_bytes(memory) if isinstance(memory, int) else '? B'})")
    return Finding(
        "gpu.other_processes",
        Severity.WARN,
        f"{label(gpu)}: {len(compute)} process(es) hold {format_bytes(held)} of GPU memory",
        detail=f"{'; '.join(described)}. Their memory is not available to your job and they share the GPU's "
        "compute. PIDs are in the driver's namespace: inside a container they may not match `ps`.",
        fix=f"Check them with `nvidia-smi -i {gpu.index}`; stop the ones that are yours (kill <pid>), or pick "
        "an idle GPU with CUDA_VISIBLE_DEVICES.",
        evidence=(f"gpu.gpus[{gpu.index}].processes",),
    )


@check("gpu.other_processes", "No other compute process holds memory on a GPU (names, PIDs and memory held).")
def check_other_processes(given: CheckInput) -> Iterator[Finding]:
    yield from per_gpu(given, "gpu.other_processes", "processes on the GPUs", _processes, "no other compute process")


@check(
    "gpu.driver_too_old",
    "The NVIDIA driver is of a branch that drives the GPUs' architecture (a GeForce RTX 5090 needs R570 or newer).",
)
def check_driver_drives_gpus(given: CheckInput) -> Iterator[Finding]:
    """The GPUs' own first driver branch (profiles/compat/driver_floors.toml), judged by the same function that
    makes `setup` plan nothing below it (knowledge.rules.driver_below_floor); needs no torch, so an imported
    `nvidia-smi -q -x` is judged too."""
    check_id, what = "gpu.driver_too_old", "driver against the GPUs' architecture"
    gpu, knowledge = given.snapshot.gpu, knowledge_of(given)
    if isinstance(gpu, Unavailable) or knowledge is None:
        yield skipped(check_id, what, missing_of(gpu))
        return
    if not gpu.gpus:
        return  # gpu.present says why there is none
    if isinstance(gpu.driver_version, Unavailable):
        yield skipped(check_id, what, gpu.driver_version)
        return
    framework = given.snapshot.framework
    torch = None if isinstance(framework, Unavailable) else framework.torch
    models = gpu_models(gpu, torch, knowledge)
    pairs = tuple((model.name, model.compute_capability) for model in models)
    evidence = ("gpu.driver_version", "gpu.gpus")
    below = driver_below_floor(knowledge, gpu.driver_version, pairs)
    if below is not None:
        yield Finding(
            check_id,
            Severity.FAIL,
            below.summary,
            detail="A driver older than the first branch with support for a GPU does not drive it at all, so no "
            "CUDA program runs on it, whatever CUDA version a PyTorch wheel asks for "
            f"(source: {below.floor.provenance.source}).",
            fix=f"Install an NVIDIA driver of branch R{below.to_install} or newer (>= {below.to_install}); "
            "`envcheck setup` then names the newest PyTorch wheel it runs.",
            evidence=evidence,
        )
        return
    floor = knowledge.driver_floor(tuple(cc for _, cc in pairs if cc is not None))
    if floor is None:
        # the driver lists them, which it does only for GPUs it supports; no floor of ours is needed
        names = ", ".join(dict.fromkeys(model.label for model in models))
        title = f"driver {gpu.driver_version} lists {names} (no first driver branch recorded for them)"
        yield Finding(check_id, Severity.OK, title, evidence=evidence)
        return
    if floor.allows(gpu.driver_version) is None:
        detail = f"driver version {gpu.driver_version!r} is not a version number"
        yield Finding(check_id, Severity.SKIP, f"{what} not checked", detail=detail, evidence=evidence)
        return
    yield Finding(
        check_id,
        Severity.OK,
        f"driver {gpu.driver_version} drives every GPU ({floor.summary})",
        evidence=evidence,
    )
