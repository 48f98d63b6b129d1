"""Judges of the CUDA, driver and GPU signatures: the build against the GPU's capability, the driver against the
wheel's CUDA, out-of-memory numbers against the processes on the GPU, CUDA's error codes against the machine."""

from __future__ import annotations

from envcheck.checks.cuda import arch_fix
from envcheck.checks.cuda_access import LIVE_GPU_SOURCES
from envcheck.checks.wheels import GpuModel, gpu_models, platform_of, variant_of, wheel_arch_of
from envcheck.explain import decode
from envcheck.explain.context import Context
from envcheck.explain.judges import (
    error_code_words,
    judge,
    processes_on,
    system_value,
    torch_of,
    version_of,
)
from envcheck.explain.model import Verdict
from envcheck.facts.common import known
from envcheck.knowledge.rules import arch_support, required_driver
from envcheck.units import GIB, format_bytes


@judge("install.torch_not_compiled_with_cuda")
def _not_compiled(context: Context) -> Verdict:
    if system_value(context, "os_name") == "Darwin":
        return Verdict("macos", ("this machine runs macOS",), evidence=("system.os_name",))
    torch = torch_of(context)
    if torch is None:
        return Verdict()
    if torch.cuda_version is None and torch.hip_version is None:
        because = [f"torch {torch.version} here is a CPU-only build (torch.version.cuda is None)"]
        problem = context.problem("install.cpu_wheel_on_gpu")
        fix = problem.fix if problem else None
        gpu = known(context.snapshot.gpu)
        if gpu is not None and not gpu.gpus and gpu.source in LIVE_GPU_SOURCES:
            # a CUDA build would not help: this machine has nothing for CUDA to run on
            because.append(f"and this machine has no NVIDIA GPU ({gpu.no_gpu_reason})")
            fix = "Run on a machine with an NVIDIA GPU (then install the CUDA build), or keep the CPU: device='cpu'."
        return Verdict("cpu_wheel", tuple(because), fix, evidence=("framework.torch.cuda_version", "gpu.gpus"))
    framework = known(context.snapshot.framework)
    interpreter = framework.interpreter if framework else "the inspected interpreter"
    return Verdict(
        because=(
            f"the torch of {interpreter} ({torch.version}) is a CUDA {torch.cuda_version} build: the failing "
            "program ran under another interpreter (give it with --python PATH, or check `which python`)",
        ),
        evidence=("framework.torch.cuda_version", "framework.interpreter"),
    )


@judge("cuda.out_of_memory")
def _out_of_memory(context: Context) -> Verdict:
    oom = decode.read_oom(context.match.context)
    decoded = []
    if oom.requested_bytes is not None:
        decoded.append(f"tried to allocate {format_bytes(oom.requested_bytes)}")
    if oom.total_bytes is not None and oom.free_bytes is not None:
        gpu = f"GPU {oom.gpu_index}" if oom.gpu_index is not None else "the GPU"
        decoded.append(f"{gpu}: {format_bytes(oom.free_bytes)} free of {format_bytes(oom.total_bytes)}")
    if oom.this_process_bytes is not None:
        decoded.append(f"this process held {format_bytes(oom.this_process_bytes)}")
    if oom.reserved_unallocated_bytes is not None:
        decoded.append(f"{format_bytes(oom.reserved_unallocated_bytes)} reserved by PyTorch but unallocated")
    decoded_words = tuple(decoded)
    if oom.other_processes:
        listed = ", ".join(f"pid {pid} ({format_bytes(size)})" for pid, size in oom.other_processes)
        return Verdict(
            "other_process", (f"the message lists other processes on the GPU: {listed}",), None, decoded_words
        )
    problem = processes_on(context, oom.gpu_index)
    if problem is not None:
        return Verdict("other_process", (problem.title, problem.detail), problem.fix, decoded_words, problem.evidence)
    outside = oom.held_elsewhere_bytes
    if outside is not None and oom.total_bytes:
        # torch < 2.1 counts only its cache, so the CUDA context (up to ~1 GiB) is part of `outside` there
        margin = GIB if oom.this_process_bytes is not None else 2 * GIB
        if outside > max(margin, oom.total_bytes // 10):
            return Verdict(
                "other_process",
                (f"{format_bytes(outside)} of the GPU is held outside this process (total - free - this process's)",),
                "Find who holds it with nvidia-smi (on the host if this is a container); stop it or use another GPU.",
                decoded_words,
            )
    unallocated, requested = oom.reserved_unallocated_bytes, oom.requested_bytes
    if unallocated is not None and requested is not None and unallocated >= requested and unallocated >= 256 * 2**20:
        because = (
            f"PyTorch's cache held {format_bytes(unallocated)} unused, more than the {format_bytes(requested)} "
            "asked for, yet no block was large enough: fragmentation",
        )
        return Verdict("fragmentation", because, None, decoded_words)
    if oom.this_process_bytes is not None and oom.total_bytes:
        share = oom.this_process_bytes / oom.total_bytes
        if share > 0.8:
            because = (f"this process itself held {share:.0%} of the GPU's memory",)
            return Verdict("too_large", because, None, decoded_words)
    return Verdict(decoded=decoded_words)


def _gpu_and_arch(context: Context) -> tuple[list[GpuModel], tuple[str, ...], str]:
    """The GPUs and the wheel's arch list: torch's own warning first, else the Snapshot's GPUs and torch."""
    messages = context.messages
    named = [(0, m.gpu_name or "the GPU", m.compute_capability) for m in messages.unsupported_archs] + [
        (m.gpu_index, m.gpu_name, m.compute_capability) for m in messages.gpus_too_old
    ]
    models = [
        GpuModel(index, name, capability)
        for index, name, written in named
        if (capability := decode.capability_of_sm(written.replace(".", ""))) is not None
    ]
    archs = next((m.arch_list for m in messages.unsupported_archs if m.arch_list), ())
    source = "torch's warning in the text"
    torch, gpu = torch_of(context), known(context.snapshot.gpu)
    if not models and gpu is not None and gpu.gpus:
        models = [m for m in gpu_models(gpu, torch, context.knowledge) if m.compute_capability]
        source = "this machine's GPUs"
    if not archs and torch is not None:
        table = wheel_arch_of(torch, context.knowledge, platform_of(context.snapshot.system))
        archs = (table.sass + table.ptx) if table else ()
    return models, archs, source


@judge("cuda.no_kernel_image")
def _no_kernel_image(context: Context) -> Verdict:
    models, archs, source = _gpu_and_arch(context)
    sass = [capability for a in archs if a.startswith("sm_") and (capability := decode.capability_of_sm(a))]
    decoded = tuple(f"{m.label} (from {source})" for m in models)
    if archs:
        decoded += (f"the wheel's arch list: {' '.join(archs)}",)
    if not models:
        return Verdict(decoded=decoded)
    fix = arch_fix(context.given(with_text=True), context.knowledge, models) if context.knowledge else None
    too_old = [m for m in models if m.compute_capability and sass and m.compute_capability < min(sass)]
    too_new = [m for m in models if m.compute_capability and sass and m.compute_capability > max(sass)]
    if context.messages.gpus_too_old or too_old:
        lowest = f"sm_{min(sass)[0]}{min(sass)[1]}" if sass else "its minimum"
        names = ", ".join(m.label for m in too_old) or context.messages.gpus_too_old[0].gpu_name
        return Verdict(
            "gpu_too_old", (f"{names} is older than the oldest arch the wheel has ({lowest})",), fix, decoded
        )
    if too_new:
        highest = f"sm_{max(sass)[0]}{max(sass)[1]}"
        names = ", ".join(m.label for m in too_new)
        return Verdict(
            "gpu_too_new", (f"{names} is newer than the newest arch the wheel has ({highest})",), fix, decoded
        )
    torch = torch_of(context)
    if torch is not None and archs and not context.messages.unsupported_archs:
        table = wheel_arch_of(torch, context.knowledge, platform_of(context.snapshot.system))
        served = [
            m
            for m in models
            if table and m.compute_capability and arch_support(table, m.compute_capability).kind != "none"
        ]
        if served and len(served) == len(models):
            because = (f"torch {torch.version} has code for {', '.join(m.label for m in served)}",)
            return Verdict("extension_arch", because, None, decoded)
    return Verdict(decoded=decoded, fix=fix)


@judge("cuda.driver_too_old")
def _driver_too_old(context: Context) -> Verdict:
    message = context.messages.driver_too_old
    decoded: tuple[str, ...] = ()
    if message is not None:
        decoded = (f'the driver serves CUDA {message.driver_cuda_version} at most ("found version" decoded)',)
    problem = context.problem("cuda.driver_too_old", with_text=True)
    torch, gpu = torch_of(context), known(context.snapshot.gpu)
    if context.knowledge is not None and torch is not None and gpu is not None and gpu.gpus:
        variant = variant_of(torch)
        requirement = required_driver(context.knowledge, variant or "") if variant else None
        minimum = known(requirement.minimum) if requirement else None
        capabilities = tuple(
            m.compute_capability for m in gpu_models(gpu, torch, context.knowledge) if m.compute_capability
        )
        ceiling = context.knowledge.driver_ceiling(capabilities)
        if minimum and ceiling is not None and ceiling.allows(minimum) is False:
            because = (f"{ceiling.summary}, older than the {minimum} torch {torch.version} needs",)
            return Verdict("driver_capped_by_gpu", because, problem.fix if problem else None, decoded)
    if problem is not None:
        return Verdict("driver_behind_wheel", (problem.title,), problem.fix, decoded, problem.evidence)
    return Verdict("driver_behind_wheel" if message else None, decoded=decoded)


@judge("cuda.insufficient_driver")
def _insufficient_driver(context: Context) -> Verdict:
    decoded = error_code_words(context)
    container = system_value(context, "container")
    problem = context.problem("cuda.driver_too_old")
    gpu = known(context.snapshot.gpu)
    if container:
        driver_cuda = known(gpu.cuda_driver_version) if gpu else None
        serves = f"; the host driver serves CUDA {driver_cuda} at most" if driver_cuda else ""
        return Verdict(
            "container_newer_than_host",
            (f"this runs in a {container} container{serves}",),
            problem.fix if problem else None,
            decoded,
        )
    if problem is not None:
        return Verdict("driver_behind_runtime", (problem.title,), problem.fix, decoded, problem.evidence)
    return Verdict(decoded=decoded)


# the signatures whose line, in the same text, shows the index bug that cuBLAS's error only echoes (CUDA reports a
# kernel's failure asynchronously, at the next call: often cuBLAS creating its handle)
INDEX_EVIDENCE = ("code.index_out_of_range", "code.device_side_assert")
# a GPU this full leaves cuBLAS no room for its workspace
NEARLY_FULL = 0.9


@judge("cuda.cublas_not_initialized")
def _cublas(context: Context) -> Verdict:
    index = next((m for m in context.others if m.signature.id in INDEX_EVIDENCE), None)
    if index is not None:
        return Verdict(
            "index_out_of_range",
            (f"line {index.line_number} shows an earlier kernel failed on its data: {index.quoted_line}",),
        )
    oom = next((m for m in context.others if m.signature.id == "cuda.out_of_memory"), None)
    if oom is not None:
        return Verdict("near_oom", (f"line {oom.line_number} reports CUDA out of memory: {oom.quoted_line}",))
    problem = processes_on(context, None)
    if problem is not None:
        return Verdict("near_oom", (problem.title,), problem.fix, (), problem.evidence)
    full = nearly_full(context)
    if full:
        return Verdict("near_oom", full, evidence=("gpu.gpus.memory_used_bytes",))
    return Verdict()


def nearly_full(context: Context) -> tuple[str, ...]:
    """The GPUs whose memory was at least NEARLY_FULL used when the Snapshot was taken, in words."""
    gpu = known(context.snapshot.gpu)
    if gpu is None:
        return ()
    found = []
    for device in gpu.gpus:
        used, total = known(device.memory_used_bytes), known(device.memory_total_bytes)
        if used is not None and total and used >= NEARLY_FULL * total:
            found.append(f"GPU {device.index} had {format_bytes(used)} of {format_bytes(total)} in use")
    return tuple(found)


@judge("cuda.no_driver")
def _no_driver(context: Context) -> Verdict:
    decoded = error_code_words(context)
    if context.variable("CUDA_VISIBLE_DEVICES") is not None:
        problem = context.problem("cuda.visible_devices")
        if problem is not None or context.variable("CUDA_VISIBLE_DEVICES") in ("", "-1"):
            value = context.variable("CUDA_VISIBLE_DEVICES")
            return Verdict(
                "devices_hidden", (f"CUDA_VISIBLE_DEVICES={value!r}",), problem.fix if problem else None, decoded
            )
    container = system_value(context, "container")
    if container:
        problem = context.problem("cuda.container_gpus")
        because = f"this runs in a {container} container" + (f": {problem.title}" if problem else "")
        return Verdict(
            "container_without_gpus", (because,), problem.fix if problem else None, decoded, ("system.container",)
        )
    problem = context.problem("cuda.driver_loaded")
    if problem is not None:
        return Verdict("driver_not_installed", (problem.title,), problem.fix, decoded, problem.evidence)
    gpu = known(context.snapshot.gpu)
    if gpu is not None and gpu.gpus:
        driver = known(gpu.driver_version) or "?"
        elsewhere = (
            f"here driver {driver} sees {len(gpu.gpus)} GPU(s): the failing program ran elsewhere "
            "(a container started without --gpus?)",
        )
        return Verdict("container_without_gpus", elsewhere, None, decoded, ("gpu.gpus",))
    return Verdict(decoded=decoded)


@judge("nvml.driver_library_mismatch")
def _nvml_mismatch(context: Context) -> Verdict:
    message = context.messages.nvml_mismatch
    decoded = (f"the NVML library is {message.library_version}",) if message and message.library_version else ()
    return Verdict("upgrade_without_reboot", decoded=decoded)


@judge("cuda.error_802_fabric_manager")
def _error_802(context: Context) -> Verdict:
    decoded = error_code_words(context)
    problem = context.problem("cuda.fabric_manager")
    if problem is not None:
        return Verdict("fabric_manager_not_running", (problem.title,), problem.fix, decoded, problem.evidence)
    environment = known(context.snapshot.environment)
    fabric = known(environment.fabric) if environment else None
    if fabric is not None:
        switches, running = known(fabric.nvswitch_count), known(fabric.is_fabric_manager_running)
        if switches and running is False:
            because = (f"{switches} NVSwitch(es) on the PCI bus and no nv-fabricmanager process running",)
            fix = "sudo systemctl enable --now nvidia-fabricmanager (the package nvidia-fabricmanager-<driver branch>)"
            return Verdict("fabric_manager_not_running", because, fix, decoded, ("environment.fabric",))
        if switches and running:
            because = (f"{switches} NVSwitch(es) and nv-fabricmanager is running, yet CUDA reports 802",)
            return Verdict("fabric_manager_version", because, None, decoded, ("environment.fabric",))
        if switches == 0:
            because = ("no NVSwitch on this machine's PCI bus: the error came from an NVSwitch machine elsewhere",)
            return Verdict(because=because, decoded=decoded, evidence=("environment.fabric.nvswitch_count",))
    return Verdict(decoded=decoded)


@judge("cuda.error_803_804_compat")
def _error_803_804(context: Context) -> Verdict:
    codes = decode.error_codes(context.match.context, context.table)
    decoded = error_code_words(context)
    numbers = [c.code for c in codes]
    if 804 in numbers:
        gpu = known(context.snapshot.gpu)
        names = ", ".join(sorted({known(g.name) or "?" for g in gpu.gpus})) if gpu and gpu.gpus else ""
        because = ("error 804: forward compatibility on an unsupported GPU" + (f" ({names})" if names else ""),)
        return Verdict("forward_compat_on_consumer_gpu", because, None, decoded)
    if 803 in numbers:
        return Verdict("libcuda_mismatch", ("error 803: libcuda and the kernel driver differ",), None, decoded)
    return Verdict(decoded=decoded)


@judge("cuda.libcuda_not_found")
def _libcuda(context: Context) -> Verdict:
    if system_value(context, "is_wsl") is True:
        problem = context.problem("cuda.wsl_driver")
        return Verdict("wsl_library_path", ("this is WSL",), problem.fix if problem else None, (), ("system.is_wsl",))
    container = system_value(context, "container")
    if container:
        return Verdict(
            "container_without_driver", (f"this runs in a {container} container",), None, (), ("system.container",)
        )
    problem = context.problem("cuda.driver_loaded")
    if problem is not None:
        return Verdict("driver_missing", (problem.title,), problem.fix, (), problem.evidence)
    return Verdict()


@judge("cuda.unsupported_ptx")
def _unsupported_ptx(context: Context) -> Verdict:
    decoded = error_code_words(context)
    gpu, torch = known(context.snapshot.gpu), torch_of(context)
    driver_cuda = version_of(known(gpu.cuda_driver_version)) if gpu else None
    environment = known(context.snapshot.environment)
    toolkit = known(environment.cuda_toolkit) if environment else None
    builds = [("torch", torch.cuda_version if torch else None)]
    builds.append(("the CUDA_HOME toolkit", known(toolkit.version) if toolkit else None))
    for what, cuda in builds:
        built = version_of(cuda)
        if (
            driver_cuda is not None
            and built is not None
            and (built.major, built.minor) > (driver_cuda.major, driver_cuda.minor)
        ):
            because = (f"{what} is CUDA {cuda}, newer than the CUDA {driver_cuda} the driver serves",)
            return Verdict("driver_older_than_ptx", because, None, decoded, ("gpu.cuda_driver_version",))
    return Verdict("driver_older_than_ptx", decoded=decoded)


@judge("rocm.invalid_device_function")
def _hip(context: Context) -> Verdict:
    torch = torch_of(context)
    targets = [a for a in torch.arch_list if a.startswith("gfx")] if torch else []
    because = (f"the ROCm wheel has kernels for {' '.join(targets)}",) if targets else ()
    return Verdict("gfx_not_in_wheel", because, evidence=("framework.torch.arch_list",) if targets else ())
