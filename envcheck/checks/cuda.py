"""CUDA checks of the driver, the wheel and the GPUs: driver floor, compiled archs, dtypes, and why CUDA sees no GPU.

The rules (minor-version compatibility, SASS/PTX) live in envcheck.knowledge.rules; docs/compatibility.md explains them.
"""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import (
    NO_KNOWLEDGE,
    GpuModel,
    Wheel,
    driver_os,
    gpu_models,
    is_pre_release,
    knowledge_of,
    platform_of,
    variant_of,
    wheel_arch_of,
    wheel_for_driver_cuda,
    wheels,
)
from envcheck.facts.common import Unavailable, known
from envcheck.facts.framework import TorchFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.messages import DriverTooOld, quoted
from envcheck.finding import Finding, Severity
from envcheck.knowledge.model import DriverCeiling, Knowledge
from envcheck.knowledge.rules import arch_support, driver_below_floor, driver_satisfies, required_driver


def _cuda_inputs(given: CheckInput, check_id: str, what: str) -> tuple[TorchFacts, GpuFacts] | Finding:
    """The CUDA torch build and the GPUs, or the finding that says why the check cannot judge them."""
    framework, gpu = given.snapshot.framework, given.snapshot.gpu
    if isinstance(framework, Unavailable):
        return skipped(check_id, what, framework)
    if isinstance(gpu, Unavailable):
        return skipped(check_id, what, gpu)
    torch = framework.torch
    if torch is None:
        return Finding(
            check_id, Severity.SKIP, f"{what} not checked", detail="torch is not installed or did not import"
        )
    if not gpu.gpus:
        return Finding(check_id, Severity.SKIP, f"{what} not checked", detail=f"no NVIDIA GPU: {gpu.no_gpu_reason}")
    if torch.cuda_version is None:
        build = f"ROCm {torch.hip_version}" if torch.hip_version else "CPU-only"
        return Finding(
            check_id, Severity.SKIP, f"{what} not checked", detail=f"torch {torch.version} is a {build} build"
        )
    return torch, gpu


def _newest_runnable(given: CheckInput, knowledge: Knowledge, models: tuple[GpuModel, ...]) -> Wheel | None:
    """The newest official wheel this machine's driver, Python and GPUs can all run."""
    gpu, python = known(given.snapshot.gpu), known(given.snapshot.python)
    return next(
        wheels(
            knowledge,
            driver=known(gpu.driver_version) if gpu else None,
            os=driver_os(given.snapshot.system),
            platform=platform_of(given.snapshot.system),
            python_version=python.version if python else None,
            compute_capabilities=tuple(m.compute_capability for m in models if m.compute_capability),
        ),
        None,
    )


def _for_python(given: CheckInput) -> str:
    python = known(given.snapshot.python)
    version = known(python.version) if python else None
    return f" for Python {version}" if version else ""


def _python(given: CheckInput) -> str:
    framework = known(given.snapshot.framework)
    return framework.interpreter if framework else "python"


@check("cuda.driver_too_old", "The NVIDIA driver is new enough for the CUDA version the torch wheel was built with.")
def check_driver_too_old(given: CheckInput) -> Iterator[Finding]:
    check_id = "cuda.driver_too_old"
    message = given.snapshot.messages.driver_too_old
    gpu_facts = known(given.snapshot.gpu)
    if message is not None and (gpu_facts is None or isinstance(gpu_facts.driver_version, Unavailable)):
        # no driver line (a paste cut off above it): torch's own warning says the driver is too old, and its number
        yield _driver_too_old_from_message(given, check_id, message)
        return
    inputs = _cuda_inputs(given, check_id, "driver against the wheel's CUDA")
    if isinstance(inputs, Finding):
        yield inputs
        return
    torch, gpu = inputs
    knowledge, variant = knowledge_of(given), variant_of(torch)
    if knowledge is None or isinstance(gpu.driver_version, Unavailable):
        yield skipped(check_id, "driver against the wheel's CUDA", known_missing(gpu.driver_version))
        return
    driver = gpu.driver_version
    models = gpu_models(gpu, torch, knowledge)
    table = wheel_arch_of(torch, knowledge, platform_of(given.snapshot.system))
    is_ptx_jit = table is not None and any(
        arch_support(table, m.compute_capability).kind == "ptx" for m in models if m.compute_capability
    )
    os = driver_os(given.snapshot.system)
    requirement = required_driver(
        knowledge, variant or "", "windows" if os == "windows" else "linux", is_ptx_jit=is_ptx_jit
    )
    minimum = known(requirement.minimum) if requirement else None
    if requirement is None or minimum is None:
        reason = (
            requirement.minimum.reason
            if requirement and isinstance(requirement.minimum, Unavailable)
            else (f"CUDA {torch.cuda_version} is not in the knowledge base's toolkit table")
        )
        yield Finding(check_id, Severity.SKIP, "driver against the wheel's CUDA not checked", detail=reason)
        return
    is_enough = driver_satisfies(driver, minimum)
    ambiguity = _os_ambiguity(given, knowledge, variant or "", driver, is_ptx_jit=is_ptx_jit)
    if ambiguity is not None:
        yield Finding(check_id, Severity.SKIP, "driver against the wheel's CUDA not checked", detail=ambiguity)
    elif is_enough is None:
        detail = f"driver version {driver!r} is not a version number"
        yield Finding(check_id, Severity.SKIP, "driver against the wheel's CUDA not checked", detail=detail)
    elif is_enough and (below := driver_below_floor(knowledge, driver, _pairs(models))) is not None:
        # the wheel's CUDA would be served, but the driver does not drive the GPUs at all: gpu.driver_too_old fails
        yield Finding(check_id, Severity.SKIP, "driver against the wheel's CUDA not checked", detail=below.summary)
    elif is_enough:
        yield Finding(
            check_id,
            Severity.OK,
            f"driver {driver} runs torch {torch.version} (CUDA {torch.cuda_version} needs >= {minimum})",
            evidence=("gpu.driver_version", "framework.torch.cuda_version"),
        )
    else:
        ceiling = knowledge.driver_ceiling(_capabilities(models))
        is_out_of_reach = ceiling is not None and ceiling.allows(minimum, os) is False
        detail = requirement.reason
        if ceiling is not None and is_out_of_reach:
            detail += f". {ceiling.summary}"
        if torch.is_cuda_available is True and message is None:
            yield _forward_compatible(given, knowledge, models, torch, driver, minimum)
            return
        yield Finding(
            check_id,
            Severity.FAIL,
            f"driver {driver} is older than {minimum}, required by torch {torch.version} (CUDA {torch.cuda_version})",
            detail=detail + _torch_said(torch, message),
            fix=_ceiling_fix(given, knowledge, models, ceiling, minimum)
            if ceiling is not None and is_out_of_reach
            else _upgrade_fix(given, knowledge, models, minimum),
            evidence=("gpu.driver_version", "framework.torch.cuda_version"),
        )


def _forward_compatible(
    given: CheckInput, knowledge: Knowledge, models: tuple[GpuModel, ...], torch: TorchFacts, driver: str, minimum: str
) -> Finding:
    """The driver is older than the wheel's CUDA needs, yet torch initialised CUDA: only NVIDIA's forward-compatibility
    package (cuda-compat, a newer user-space libcuda; data-centre GPUs only) does that, as in NGC containers on an
    older host driver. It works, so not a failure, but it holds only while that package is on the library path."""
    return Finding(
        "cuda.driver_too_old",
        Severity.WARN,
        f"driver {driver} is older than {minimum}, required by torch {torch.version} (CUDA {torch.cuda_version}), "
        "but torch initialised CUDA: forward compatibility is in use",
        detail="CUDA starts on an older kernel driver only through NVIDIA's forward-compatibility package "
        "(cuda-compat: a newer libcuda from the container or LD_LIBRARY_PATH), which data-centre GPUs support and "
        "consumer GPUs do not (CUDA error 804). The install breaks if that package is removed or the job moves "
        "to a GeForce GPU.",
        fix=_upgrade_fix(given, knowledge, models, minimum),
        evidence=("gpu.driver_version", "framework.torch.cuda_version", "framework.torch.is_cuda_available"),
    )


def _torch_said(torch: TorchFacts, message: DriverTooOld | None) -> str:
    """torch's own words on the driver: its warning's line decoded when the paste has one, else its CUDA error."""
    if message is not None:
        return f". The driver serves CUDA {message.driver_cuda_version}, decoded {quoted(message.source_line)}"
    return f". torch says: {torch.cuda_error}" if torch.cuda_error else ""


def _driver_too_old_from_message(given: CheckInput, check_id: str, message: DriverTooOld) -> Finding:
    """torch's "driver on your system is too old (found version NNNNN)": a failure whatever else the paste lacks."""
    framework, knowledge = known(given.snapshot.framework), knowledge_of(given)
    torch = framework.torch if framework else None
    serves = f"the NVIDIA driver serves CUDA {message.driver_cuda_version}"
    evidence = ("messages.driver_too_old",)
    if torch is None or torch.cuda_version is None:
        return Finding(
            check_id,
            Severity.FAIL,
            f"torch says the NVIDIA driver is too old: {serves}",
            detail=f"Decoded {quoted(message.source_line)}",
            fix="Upgrade the NVIDIA driver (https://www.nvidia.com/Download/index.aspx), or install a torch build for "
            f"CUDA {message.driver_cuda_version} or older",
            evidence=evidence,
        )
    is_windows = driver_os(given.snapshot.system) == "windows"
    requirement = (
        required_driver(knowledge, variant_of(torch) or "", "windows" if is_windows else "linux") if knowledge else None
    )
    minimum = known(requirement.minimum) if requirement else None
    needs = f" (CUDA {torch.cuda_version} needs driver >= {minimum})" if minimum else ""
    wheel = wheel_for_driver_cuda(knowledge, torch.version, message.driver_cuda_version) if knowledge else None
    python = framework.interpreter if framework else "python"
    other = (
        f"{wheel.install_command(python)} --force-reinstall  ({wheel.label} runs on this driver)"
        if wheel is not None and variant_of(torch) != wheel.variant
        else f"install a torch build for CUDA {message.driver_cuda_version} or older"
    )
    return Finding(
        check_id,
        Severity.FAIL,
        f"{serves}, older than the CUDA {torch.cuda_version} torch {torch.version} was built with{needs}",
        detail=f"Decoded {quoted(message.source_line)}",
        fix=f"Upgrade the NVIDIA driver to {minimum or 'one for CUDA ' + torch.cuda_version} or newer "
        f"(https://www.nvidia.com/Download/index.aspx), or {other}",
        evidence=(*evidence, "framework.torch.cuda_version"),
    )


def _os_ambiguity(
    given: CheckInput, knowledge: Knowledge, variant: str, driver: str, *, is_ptx_jit: bool
) -> str | None:
    """No verdict when the OS is unknown (a paste without an OS line) and the Linux and Windows minimums disagree."""
    if not isinstance(given.snapshot.system, Unavailable):
        return None
    verdicts = {}
    for os in ("linux", "windows"):
        requirement = required_driver(knowledge, variant, os, is_ptx_jit=is_ptx_jit)
        minimum = known(requirement.minimum) if requirement else None
        verdicts[os] = (minimum, driver_satisfies(driver, minimum) if minimum else None)
    if verdicts["linux"][1] == verdicts["windows"][1]:
        return None
    return (
        f"driver {driver} meets {'the Linux' if verdicts['linux'][1] else 'the Windows'} minimum but not the other "
        f"(Linux {verdicts['linux'][0]}, Windows {verdicts['windows'][0]}), and the OS is unknown "
        f"({given.snapshot.system.reason})"
    )


def _pairs(models: tuple[GpuModel, ...]) -> tuple[tuple[str, tuple[int, int] | None], ...]:
    return tuple((model.name, model.compute_capability) for model in models)


def _capabilities(models: tuple[GpuModel, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(m.compute_capability for m in models if m.compute_capability)


def _upgrade_fix(given: CheckInput, knowledge: Knowledge, models: tuple[GpuModel, ...], minimum: str) -> str:
    newest = _newest_runnable(given, knowledge, models)
    alternative = (
        f"or keep this driver and install {newest.label}, the newest wheel it runs: "
        f"{newest.install_command(_python(given))}"
        if newest
        else f"envcheck's tables name no official wheel{_for_python(given)} that runs on this driver and these GPUs"
    )
    how = (
        "from https://www.nvidia.com/Download/index.aspx"
        if driver_os(given.snapshot.system) == "windows"
        else "(e.g. `sudo ubuntu-drivers install`)"
    )
    return f"Upgrade the NVIDIA driver to {minimum} or newer {how}, {alternative}"


def _ceiling_fix(
    given: CheckInput, knowledge: Knowledge, models: tuple[GpuModel, ...], ceiling: DriverCeiling, minimum: str
) -> str:
    """The GPU's last driver branch is older than the wheel needs: name the newest wheel that branch runs."""
    system = given.snapshot.system
    os, platform, ccs = driver_os(system), platform_of(system), _capabilities(models)
    python = known(given.snapshot.python)
    newest = next(
        wheels(
            knowledge,
            os=os,
            platform=platform,
            python_version=python.version if python else None,
            compute_capabilities=ccs,
            ceiling=ceiling,
        ),
        None,
    )
    text = (
        f"No driver upgrade helps: {ceiling.architecture}'s last driver branch R{ceiling.last_branch} "
        f"is older than {minimum}. "
    )
    if newest is None:
        return text + (
            f"No official wheel{_for_python(given)} runs on {ceiling.architecture} GPUs with an "
            f"R{ceiling.last_branch} driver: build PyTorch from source or use a newer GPU."
        )
    command = newest.install_command(_python(given))
    gpu = known(given.snapshot.gpu)
    driver = known(gpu.driver_version) if gpu else None
    needed = _wheel_minimum_driver(knowledge, newest, os, platform, ccs)
    if driver is not None and needed is not None and driver_satisfies(driver, needed) is False:
        return text + (
            f"Install {newest.label}, the newest official wheel {ceiling.architecture} GPUs run, after upgrading "
            f"the driver to {needed} or newer (within R{ceiling.last_branch}): {command}"
        )
    return text + f"Install {newest.label}, the newest official wheel these GPUs and this driver run: {command}"


def _wheel_minimum_driver(
    knowledge: Knowledge, wheel: Wheel, os: str, platform: str, ccs: tuple[tuple[int, int], ...]
) -> str | None:
    table = knowledge.arch_list(wheel.release.version, wheel.variant, platform)
    is_ptx_jit = table is not None and any(arch_support(table, cc).kind == "ptx" for cc in ccs)
    requirement = required_driver(
        knowledge, wheel.variant, "windows" if os == "windows" else "linux", is_ptx_jit=is_ptx_jit
    )
    return known(requirement.minimum) if requirement else None


def known_missing(value: object) -> Unavailable:
    return value if isinstance(value, Unavailable) else NO_KNOWLEDGE


@check(
    "cuda.arch_support",
    "Every GPU's compute capability has machine code (or usable PTX) in the torch wheel, and its CUDA knows the GPU.",
)
def check_arch_support(given: CheckInput) -> Iterator[Finding]:
    check_id = "cuda.arch_support"
    inputs = _cuda_inputs(given, check_id, "GPU architecture in the wheel")
    if isinstance(inputs, Finding):
        # a paste cut off above its GPU lines still has torch's own warning naming the GPU and the wheel's archs
        yield _arch_from_messages(given, check_id) or inputs
        return
    torch, gpu = inputs
    knowledge = knowledge_of(given)
    table = wheel_arch_of(torch, knowledge, platform_of(given.snapshot.system))
    if table is None:
        detail = f"torch reported no arch list and torch {torch.version} is not in the wheel arch tables" + (
            " (a nightly or source build: the tables describe official releases only)"
            if is_pre_release(torch.version)
            else ""
        )
        yield Finding(check_id, Severity.SKIP, "GPU architecture in the wheel not checked", detail=detail)
        return
    models = gpu_models(gpu, torch, knowledge)
    compiled = ", ".join(table.sass + table.ptx)
    unsupported, jit, predates = [], [], []
    for model in {m.name: m for m in models if m.compute_capability}.values():
        assert model.compute_capability is not None  # filtered above; for mypy
        support = arch_support(table, model.compute_capability)
        if support.kind == "none":
            unsupported.append(model)
            if table.newest_known is not None and model.compute_capability[0] > table.newest_known[0]:
                predates.append(f"{model.label}: {support.detail}")
        elif support.kind == "ptx":
            jit.append(f"{model.label}: {support.detail}")
    unknown = [m.name for m in models if m.compute_capability is None]
    if unsupported:
        yield Finding(
            check_id,
            Severity.FAIL,
            "no kernel image for " + ", ".join(m.label for m in unsupported) + f" in torch {torch.version}",
            detail=f"The wheel has code for {compiled} only: CUDA fails with 'no kernel image is available for "
            "execution on the device'." + "".join(f" {line}." for line in predates) + _arch_lines(given, unsupported),
            fix=arch_fix(given, knowledge, unsupported),
            evidence=("framework.torch.arch_list", "gpu.gpus"),
        )
    elif jit:
        yield Finding(
            check_id,
            Severity.INFO,
            "GPU runs torch only through PTX JIT (slow first launch)",
            detail="; ".join(jit),
            evidence=("framework.torch.arch_list",),
        )
    elif unknown:
        detail = f"compute capability unknown for {', '.join(unknown)} (no torch device, driver field or table row)"
        yield Finding(check_id, Severity.SKIP, "GPU architecture in the wheel not checked", detail=detail)
    else:
        names = ", ".join(sorted({m.label for m in models}))
        yield Finding(check_id, Severity.OK, f"torch {torch.version} has kernels for {names}")


def _arch_lines(given: CheckInput, unsupported: list[GpuModel]) -> str:
    """The lines of torch's capability warnings about these GPUs, as the source of their capability."""
    messages = given.snapshot.messages
    names = {model.name for model in unsupported}
    stated = [(m.gpu_name, m.source_line) for m in messages.unsupported_archs]
    stated += [(m.gpu_name, m.source_line) for m in messages.gpus_too_old]
    lines = [line for name, line in stated if name in names]
    return "".join(f" Capability {quoted(line)}" for line in lines)


def _arch_from_messages(given: CheckInput, check_id: str) -> Finding | None:
    messages = given.snapshot.messages
    said = [(m.gpu_name, m.compute_capability, m.source_line) for m in messages.unsupported_archs]
    said += [(m.gpu_name, m.compute_capability, m.source_line) for m in messages.gpus_too_old]
    if not said:
        return None
    framework = known(given.snapshot.framework)
    torch = framework.torch if framework else None
    build = f" torch {torch.version}" if torch else " the installed torch"
    gpus = ", ".join(f"{name} (sm_{capability.replace('.', '')})" for name, capability, _ in said)
    return Finding(
        check_id,
        Severity.FAIL,
        f"no kernel image for {gpus} in{build}",
        detail="torch's own warning says so; " + "; ".join(quoted(line) for *_, line in said),
        fix="Install a torch build whose `torch.cuda.get_arch_list()` includes this GPU's sm_XY "
        "(https://pytorch.org/get-started/locally/).",
        evidence=("messages.unsupported_archs", "messages.gpus_too_old"),
    )


def _sm(model: GpuModel) -> str:
    major, minor = model.compute_capability or (0, 0)
    return f"{major}{minor}"


def arch_fix(given: CheckInput, knowledge: Knowledge | None, unsupported: list[GpuModel]) -> str:
    """Name the official wheels that have this GPU's arch: the oldest and newest, and the newest this driver runs."""
    generic = "Install a torch build whose `torch.cuda.get_arch_list()` includes this GPU's sm_XY."
    if knowledge is None:
        return generic
    platform = platform_of(given.snapshot.system)
    ccs = tuple(m.compute_capability for m in unsupported if m.compute_capability)
    # machine code first: PTX of an old arch JIT-compiles on any newer GPU, but naming torch 1.0 for a Blackwell
    # card helps nobody; PTX-only wheels are named only when no wheel has native code.
    # a retired architecture's last driver branch caps the range: wheels needing a newer driver never run there
    ceiling = knowledge.driver_ceiling(ccs)
    os = driver_os(given.snapshot.system)
    serving = list(
        wheels(knowledge, os=os, platform=platform, compute_capabilities=ccs, is_native_only=True, ceiling=ceiling)
    )
    serving = serving or list(wheels(knowledge, os=os, platform=platform, compute_capabilities=ccs, ceiling=ceiling))
    if not serving:
        return f"No official wheel in the tables has code for sm_{_sm(unsupported[0])}; build torch from source."
    newest, oldest = serving[0], serving[-1]
    text = f"Official wheels with code for this GPU range from {oldest.label} to {newest.label}."
    runnable = _newest_runnable(given, knowledge, tuple(unsupported))
    gpu = known(given.snapshot.gpu)
    if runnable is not None and (gpu is None or isinstance(gpu.driver_version, Unavailable)):
        # no driver version to judge by (a paste without one, explain --no-probe): the newest wheel, said as such
        text += f" The newest (the driver's version is not known): {runnable.install_command(_python(given))}"
    elif runnable is not None:
        text += f" The newest this driver runs: {runnable.install_command(_python(given))}"
    else:
        within = f" (within R{ceiling.last_branch}, {ceiling.architecture}'s last branch)" if ceiling else ""
        text += (
            f" None of them{_for_python(given)} runs on this driver: "
            f"upgrade the driver{within} (or change Python) first."
        )
    return text


# bf16 and TF32 tensor cores arrived with Ampere (8.0); FP8 with Ada (8.9) and Hopper (9.0)
# (NVIDIA Ampere/Ada/Hopper architecture whitepapers; CUDA C Programming Guide, compute capabilities).
_DTYPE_MINIMUM_CC = (("bf16", (8, 0)), ("TF32", (8, 0)), ("FP8", (8, 9)))
# fp16 tensor cores arrived with Volta (7.0, Volta whitepaper): below it fp16 autocast saves memory, not time.
_TENSOR_CORE_MINIMUM_CC = (7, 0)


@check("cuda.dtype_support", "Which fast dtypes (bf16, TF32, FP8) the GPUs' tensor cores have.")
def check_dtype_support(given: CheckInput) -> Iterator[Finding]:
    gpu = given.snapshot.gpu
    check_id = "cuda.dtype_support"
    if isinstance(gpu, Unavailable):
        yield skipped(check_id, "dtype support", gpu)
        return
    if not gpu.gpus:
        yield Finding(
            check_id, Severity.SKIP, "dtype support not checked", detail=f"no NVIDIA GPU: {gpu.no_gpu_reason}"
        )
        return
    framework = known(given.snapshot.framework)
    models = gpu_models(gpu, framework.torch if framework else None, knowledge_of(given))
    lacking = []
    for model in {m.name: m for m in models}.values():
        if model.compute_capability is None:
            continue
        missing = [dtype for dtype, minimum in _DTYPE_MINIMUM_CC if model.compute_capability < minimum]
        if missing:
            capability = model.inferred or f"compute capability {'.'.join(map(str, model.compute_capability))}"
            lacking.append(f"{model.name} ({capability}): no {'/'.join(missing)}")
    capabilities = [m.compute_capability for m in models if m.compute_capability]
    if not capabilities:
        yield Finding(check_id, Severity.SKIP, "dtype support not checked", detail="compute capability unknown")
    elif lacking:
        detail, fix = _dtype_advice(min(capabilities))
        yield Finding(check_id, Severity.INFO, "; ".join(lacking), detail=detail, fix=fix, evidence=("gpu.gpus",))
    else:
        yield Finding(check_id, Severity.OK, "bf16, TF32 and FP8 tensor cores available on every GPU")


def _dtype_advice(oldest: tuple[int, int]) -> tuple[str, str]:
    """What the oldest GPU lacks and the precision to train in: bf16 on Ampere, fp16 on Volta/Turing, else fp32."""
    rule = "bf16 and TF32 need compute capability 8.0 (Ampere), FP8 needs 8.9 (Ada/Hopper)"
    if oldest >= _DTYPE_MINIMUM_CC[0][1]:
        return (
            f"{rule}: these GPUs have bf16 and TF32 tensor cores, but FP8 matmuls (torch._scaled_mm, Transformer "
            "Engine, torchao float8) do not run on them.",
            "Train in bf16 with torch.autocast('cuda', dtype=torch.bfloat16) (and "
            "torch.backends.cuda.matmul.allow_tf32 = True for fp32 matmuls); FP8 recipes need an Ada or Hopper GPU.",
        )
    if oldest >= _TENSOR_CORE_MINIMUM_CC:
        return (
            f"{rule}; without them torch emulates bf16 slowly and ignores allow_tf32.",
            "Train in fp16 with torch.autocast('cuda', dtype=torch.float16) and a GradScaler on these GPUs.",
        )
    return (
        f"{rule}; tensor cores need 7.0 (Volta), so these GPUs have none: fp16 autocast saves memory but speeds "
        "up only cards with fast fp16 arithmetic (P100, compute capability 6.0), and bf16 is emulated slowly.",
        "Train in fp32 (the default) on these GPUs; fp16 autocast with a GradScaler saves memory.",
    )
