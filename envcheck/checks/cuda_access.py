"""CUDA checks for a GPU that is there but unreachable: no kernel driver, a container without GPUs, an NVSwitch
fabric manager that is not running, a Linux driver inside WSL. Read from the GPU probe's recorded reason, torch's CUDA
error and the environment's NVSwitch facts.
"""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import missing_of
from envcheck.facts.common import Unavailable, known
from envcheck.facts.environment import NvSwitchFabric
from envcheck.facts.messages import quoted
from envcheck.finding import Finding, Severity

# Phrases of envcheck.probes.nvml.absence.explain_no_gpu: the probe's reason is the only record of these
# causes (a structured `gpu.no_gpu_cause` field would make these checks independent of the wording).
_ON_BUS_NO_DRIVER = "but the NVIDIA kernel driver is not loaded"
_NO_DEVICE_NODES = "no /dev/nvidia* device nodes"
_LIBRARY_MISMATCH = "different versions"
# GPU facts probed on this machine, where the absence probe looked at the PCI bus (envcheck.probes.nvml)
LIVE_GPU_SOURCES = ("nvml", "nvidia-smi")


@check("cuda.driver_loaded", "An NVIDIA GPU on the PCI bus has its kernel driver loaded, matching its library.")
def check_driver_loaded(given: CheckInput) -> Iterator[Finding]:
    gpu, messages = given.snapshot.gpu, given.snapshot.messages
    check_id = "cuda.driver_loaded"
    if messages.nvml_mismatch is not None:
        library = messages.nvml_mismatch.library_version
        yield Finding(
            check_id,
            Severity.WARN,
            "the NVIDIA kernel driver and its user-space library are different versions"
            + (f" (NVML library {library})" if library else ""),
            detail="nvidia-smi, NVML and CUDA all fail until they match: usually a driver upgrade without a reboot. "
            + quoted(messages.nvml_mismatch.source_line),
            fix="Reboot (or unload and reload the nvidia kernel modules) after the driver upgrade; if it persists, "
            "reinstall one driver version (`cat /proc/driver/nvidia/version` shows the loaded one).",
            evidence=("messages.nvml_mismatch",),
        )
        return
    if messages.no_driver is not None and (isinstance(gpu, Unavailable) or not gpu.gpus):
        # torch's own words: CUDA found no driver. A paste cannot show whether a GPU is there, so a warning.
        yield Finding(
            check_id,
            Severity.WARN,
            "torch found no NVIDIA driver on this system: CUDA cannot start",
            detail="If the machine has an NVIDIA GPU, its driver is not installed or not loaded (or this is a "
            f"container started without the GPUs). {quoted(messages.no_driver.source_line)}",
            fix="Install the NVIDIA driver (https://www.nvidia.com/Download/index.aspx, or `sudo ubuntu-drivers "
            "install`) until `nvidia-smi` lists the GPU; in a container, start it with `--gpus all`.",
            evidence=("messages.no_driver",),
        )
        return
    if isinstance(gpu, Unavailable):
        yield skipped(check_id, "NVIDIA driver", gpu)
        return
    reason = gpu.no_gpu_reason or ""
    if _ON_BUS_NO_DRIVER in reason or _LIBRARY_MISMATCH in reason:
        yield Finding(
            check_id,
            Severity.WARN,
            reason,
            detail="The GPU is installed but nothing can use it: CUDA and torch see no device.",
            fix=known_fix(gpu.driver_version),
            evidence=("gpu.no_gpu_reason",),
        )
    elif gpu.gpus:
        yield Finding(
            check_id, Severity.OK, f"NVIDIA driver {known(gpu.driver_version) or ''} loaded".replace("  ", " ")
        )
    elif gpu.source not in LIVE_GPU_SOURCES:
        # a pasted collect_env or an imported file says no GPU was seen, not what is on the PCI bus
        detail = f"the GPU facts come from {gpu.source}, which does not show the PCI bus: {reason or 'no GPU listed'}"
        yield Finding(check_id, Severity.SKIP, "NVIDIA GPUs without a driver not checked", detail=detail)
    else:
        yield Finding(check_id, Severity.OK, "no NVIDIA GPU on the PCI bus left without a driver")


def known_fix(value: object) -> str | None:
    return value.fix if isinstance(value, Unavailable) else None


@check("cuda.container_gpus", "A container was started with the host's GPUs (the NVIDIA device nodes are present).")
def check_container_gpus(given: CheckInput) -> Iterator[Finding]:
    gpu, system = given.snapshot.gpu, given.snapshot.system
    check_id = "cuda.container_gpus"
    if isinstance(gpu, Unavailable):
        yield skipped(check_id, "container GPU access", gpu)
        return
    facts = known(system)
    container = known(facts.container) if facts is not None else None
    if _NO_DEVICE_NODES in (gpu.no_gpu_reason or ""):
        where = f"this {container} container" if container else "this environment"
        yield Finding(
            check_id,
            Severity.WARN,
            f"{where} was started without GPUs: the driver is loaded but /dev/nvidia* is missing",
            detail=gpu.no_gpu_reason or "",
            fix=known_fix(gpu.driver_version)
            or "docker run --gpus all ...  (NVIDIA Container Toolkit), or request nvidia.com/gpu in Kubernetes",
            evidence=("gpu.no_gpu_reason", "system.container"),
        )
    elif facts is not None and facts.os_name == "Windows":
        # native Windows reaches the GPUs through the WDDM/TCC driver: there are no /dev/nvidia* nodes to miss
        yield Finding(check_id, Severity.OK, "not a Linux container: no device nodes to check on Windows")
    else:
        yield Finding(
            check_id, Severity.OK, "GPU device nodes present" if gpu.gpus else "no container GPU problem seen"
        )


# CUDA error 802 (cudaErrorSystemNotReady, "system not yet initialized"): on NVSwitch systems (HGX/DGX A100, H100)
# CUDA refuses to start until nvidia-fabricmanager has configured the switches (NVIDIA Fabric Manager user guide).
_FABRIC_SYMPTOMS = ("system not yet initialized", "error 802", "cudaErrorSystemNotReady")


@check(
    "cuda.gpu_access",
    "A CUDA build of torch in a pasted report reaches a GPU (no GPU, no driver and no CUDA: a container without GPUs).",
)
def check_gpu_access(given: CheckInput) -> Iterator[Finding]:
    snapshot, check_id = given.snapshot, "cuda.gpu_access"
    if isinstance(snapshot.framework, Unavailable):
        yield skipped(check_id, "GPU access of the torch build", snapshot.framework)
        return
    framework, gpu, messages = snapshot.framework, snapshot.gpu, snapshot.messages
    torch = framework.torch
    if snapshot.source == "live" or (not isinstance(gpu, Unavailable) and gpu.source in LIVE_GPU_SOURCES):
        # on this machine the GPU probe looked at the PCI bus: gpu.present and cuda.driver_loaded judge it
        yield Finding(check_id, Severity.OK, "GPU access judged from this machine's own GPU probe")
        return
    if torch is None or torch.cuda_version is None:
        yield Finding(check_id, Severity.OK, "no CUDA build of torch to reach a GPU")
        return
    shows_gpu = not isinstance(gpu, Unavailable) and bool(gpu.gpus)
    shows_driver = not isinstance(gpu, Unavailable) and not isinstance(gpu.driver_version, Unavailable)
    if torch.is_cuda_available or shows_gpu or shows_driver:
        yield Finding(check_id, Severity.OK, "the report shows a GPU or a driver")
        return
    if messages.is_cuda_init_failure or messages.nvml_mismatch is not None:
        yield Finding(check_id, Severity.OK, "torch's message in the report names the cause (see cuda.driver_*)")
        return
    yield Finding(
        check_id,
        Severity.WARN,
        f"torch {torch.version} is a CUDA {torch.cuda_version} build, but the report shows no NVIDIA GPU, no driver "
        "and CUDA not available",
        detail="That is a container started without GPU access (docker without `--gpus`, a pod without an "
        "nvidia.com/gpu limit), or a machine without an NVIDIA GPU; the report cannot tell which."
        + (f" GPUs: {gpu.reason}." if isinstance(gpu, Unavailable) else ""),
        fix="Check `nvidia-smi` on the host; start the container with `docker run --gpus all ...` (NVIDIA Container "
        "Toolkit) or request nvidia.com/gpu in Kubernetes. Without an NVIDIA GPU, the CPU wheel is the smaller "
        "install: pip install torch --index-url https://download.pytorch.org/whl/cpu",
        evidence=("framework.torch.cuda_version", "framework.torch.is_cuda_available", "gpu"),
    )


@check("cuda.fabric_manager", "On NVSwitch systems the fabric manager is running (CUDA is not stuck in error 802).")
def check_fabric_manager(given: CheckInput) -> Iterator[Finding]:
    framework, gpu, environment = given.snapshot.framework, given.snapshot.gpu, given.snapshot.environment
    check_id = "cuda.fabric_manager"
    facts = known(framework)
    torch = facts.torch if facts is not None else None
    fabric = known(environment.fabric) if not isinstance(environment, Unavailable) else None
    error = (torch.cuda_error or "") if torch else ""
    gpus = f"{len(gpu.gpus)} GPU(s)" if not isinstance(gpu, Unavailable) and gpu.gpus else "the GPUs"
    driver = known(gpu.driver_version) if not isinstance(gpu, Unavailable) else None
    detail = (
        "NVSwitch-based HGX/DGX boards need nvidia-fabricmanager, of the same version as the driver "
        f"{driver or ''}, running before any CUDA program starts."
    ).replace("  ", " ")
    fix = (
        "sudo systemctl enable --now nvidia-fabricmanager  (install nvidia-fabricmanager-<driver branch> "
        "if missing; `systemctl status nvidia-fabricmanager` shows why it stopped)"
    )
    nvswitches = known(fabric.nvswitch_count) if fabric is not None else None
    is_running = fabric.is_fabric_manager_running if fabric is not None else None
    if any(symptom.lower() in error.lower() for symptom in _FABRIC_SYMPTOMS):
        title = f"CUDA cannot start on {gpus}: '{error}' (an NVSwitch system without its fabric manager)"
        evidence = ("framework.torch.cuda_error", "gpu.gpus")
        yield Finding(check_id, Severity.FAIL, title, detail=detail, fix=fix, evidence=evidence)
    elif torch is not None and torch.is_cuda_available and torch.cuda_version is not None:
        # a ROCm torch reports torch.cuda.is_available() too, but says nothing of an NVIDIA fabric
        yield Finding(check_id, Severity.OK, "CUDA initialised: no fabric manager problem")
    elif nvswitches and is_running is False:
        # Even without a CUDA result (--fast, a CPU-only wheel): every CUDA program will fail with error 802.
        title = f"{nvswitches} NVSwitch(es) on the PCI bus but no nv-fabricmanager process is running"
        detail += " Without it CUDA fails with error 802, 'system not yet initialized'."
        evidence = ("environment.fabric.nvswitch_count", "environment.fabric.is_fabric_manager_running")
        yield Finding(check_id, Severity.FAIL, title, detail=detail, fix=fix, evidence=evidence)
    elif nvswitches and is_running is True:
        yield Finding(check_id, Severity.OK, f"nv-fabricmanager running for {nvswitches} NVSwitch(es)")
    elif nvswitches == 0:
        yield Finding(check_id, Severity.OK, "no NVSwitch on the PCI bus: no fabric manager needed")
    elif not isinstance(gpu, Unavailable) and not gpu.gpus:
        yield Finding(check_id, Severity.OK, "no NVIDIA GPU, no NVSwitch fabric")
    else:
        why = _unknown_fabric(fabric, environment, framework, gpu)
        yield Finding(check_id, Severity.SKIP, "NVSwitch fabric manager not checked", detail=why)


def _unknown_fabric(fabric: NvSwitchFabric | None, *sections: object) -> str:
    """Why neither a CUDA start nor the fabric facts settle the question."""
    if fabric is not None:
        unknown = fabric.nvswitch_count if isinstance(fabric.nvswitch_count, Unavailable) else None
        unknown = unknown or (
            fabric.is_fabric_manager_running if isinstance(fabric.is_fabric_manager_running, Unavailable) else None
        )
        if unknown is not None:
            return f"CUDA was not initialised by the torch probe, and {unknown.reason}"
    missing = next((section for section in sections if isinstance(section, Unavailable)), None)
    if missing is not None:
        return missing.reason
    return "CUDA was not initialised by the torch probe and the fabric manager's state is not recorded"


@check(
    "cuda.wsl_driver", "Under WSL the GPU is reached through the Windows driver, not a Linux driver installed inside."
)
def check_wsl_driver(given: CheckInput) -> Iterator[Finding]:
    system, gpu = given.snapshot.system, given.snapshot.gpu
    check_id = "cuda.wsl_driver"
    if isinstance(system, Unavailable) or isinstance(gpu, Unavailable):
        yield skipped(check_id, "WSL GPU driver", missing_of(system, gpu))
        return
    if isinstance(system.is_wsl, Unavailable):
        yield skipped(check_id, "WSL GPU driver", system.is_wsl)
        return
    if not system.is_wsl:
        yield Finding(check_id, Severity.OK, "not WSL")
        return
    if system.wsl_version == 1:
        yield Finding(
            check_id,
            Severity.WARN,
            "WSL 1 has no GPU support",
            fix="wsl --set-version <distro> 2  (in Windows PowerShell)",
            evidence=("system.wsl_version",),
        )
    elif gpu.gpus:
        yield Finding(check_id, Severity.OK, f"WSL reaches {len(gpu.gpus)} GPU(s) through the Windows driver")
    else:
        # A Linux driver package inside WSL puts its libnvidia-ml/libcuda before /usr/lib/wsl/lib; they cannot talk
        # to /dev/dxg, so NVML and CUDA fail (NVIDIA CUDA on WSL user guide, "do not install any Linux display driver").
        yield Finding(
            check_id,
            Severity.WARN,
            f"WSL sees no GPU: {gpu.no_gpu_reason}",
            detail="Under WSL 2 the Windows driver provides the GPU through /usr/lib/wsl/lib; a Linux NVIDIA driver "
            "installed inside WSL shadows it.",
            fix="sudo apt-get remove --purge '^nvidia-driver-.*' '^libnvidia-.*'  (keep only the Windows driver; "
            "install CUDA with the WSL-Ubuntu toolkit package, which has no driver), then `wsl --shutdown`",
            evidence=("system.is_wsl", "gpu.no_gpu_reason"),
        )
