"""Why a machine shows no NVIDIA GPU, found cheaply from files (no NVML, no subprocess), with a fix for each cause."""

from __future__ import annotations

from pathlib import Path

from envcheck.probes.context import ProbeContext

LIBRARY = "libnvidia-ml.so.1"
# Where distributions, the CUDA containers and WSL put the driver's user-space libraries.
_LIBRARY_DIRS = (
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "usr/lib",
    "usr/local/nvidia/lib64",
    "usr/local/nvidia/lib",
    "usr/lib/wsl/lib",
)
_NVIDIA_VENDOR = "0x10de"
_DISPLAY_CLASS = "0x03"  # PCI base class 03: display controllers (VGA 0300, 3D controller 0302)


def has_nvml_library(context: ProbeContext) -> bool:
    """Is libnvidia-ml.so.1 where the dynamic loader would find it (ld.so.cache, LD_LIBRARY_PATH, usual dirs)."""
    root, etc = context.roots.root, context.roots.etc
    try:
        if LIBRARY.encode() in (etc / "ld.so.cache").read_bytes():
            return True
    except OSError:
        pass  # no cache (minimal images, musl): look in the directories instead
    extra = [part for part in context.environ.get("LD_LIBRARY_PATH", "").split(":") if part]
    candidates = [root / directory / LIBRARY for directory in _LIBRARY_DIRS]
    candidates += [root / part.lstrip("/") / LIBRARY for part in extra]
    return any(path.exists() for path in candidates)


def library_from_ld_library_path(context: ProbeContext) -> str | None:
    """The libnvidia-ml.so.1 an LD_LIBRARY_PATH entry supplies (the loader tries those first), or None."""
    for part in context.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if part and (context.roots.root / part.lstrip("/") / LIBRARY).exists():
            return f"{part.rstrip('/')}/{LIBRARY}"
    return None


def has_device_nodes(context: ProbeContext) -> bool:
    """/dev/nvidiactl or /dev/nvidiaN: what a container started without `--gpus` lacks."""
    dev = context.roots.root / "dev"
    try:
        return any(path.name == "nvidiactl" or path.name[6:].isdigit() for path in dev.glob("nvidia*"))
    except OSError:
        return False


def driver_version(context: ProbeContext) -> str | None:
    """The loaded kernel module's version line, or None when no NVIDIA kernel driver is loaded."""
    try:
        text = (context.roots.proc / "driver" / "nvidia" / "version").read_text(errors="replace")
    except OSError:
        return None
    first = text.splitlines()[0] if text else ""
    return " ".join(first.split()) or "unknown version"


def nvidia_pci_devices(context: ProbeContext) -> tuple[str, ...] | None:
    """PCI addresses of NVIDIA display/3D controllers on the bus, loaded driver or not; None if unreadable."""
    found = []
    devices = context.roots.sys / "bus" / "pci" / "devices"
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return None
    for device in entries:
        if _read(device / "vendor") == _NVIDIA_VENDOR and _read(device / "class").startswith(_DISPLAY_CLASS):
            found.append(device.name)
    return tuple(found)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def explain_no_gpu(context: ProbeContext, nvml_problem: str | None = None) -> tuple[str, str | None]:
    """(reason, fix) for a machine where neither NVML nor nvidia-smi gave GPUs; most specific cause first."""
    pci = nvidia_pci_devices(context)
    driver = driver_version(context)
    reason: str
    fix: str | None
    if pci and driver is None:
        reason = f"an NVIDIA GPU is on the PCI bus ({pci[0]}) but the NVIDIA kernel driver is not loaded"
        fix = (
            "install the NVIDIA driver (e.g. `sudo ubuntu-drivers install`) or load it (`sudo modprobe nvidia`);"
            " see `dmesg | grep -i nvidia`"
        )
    elif driver is not None and not has_device_nodes(context):
        reason = "the NVIDIA driver is loaded but there are no /dev/nvidia* device nodes (a container without GPUs?)"
        fix = (
            "start the container with `--gpus all` (NVIDIA Container Toolkit)"
            " or request GPUs from the scheduler (`nvidia.com/gpu`)"
        )
    elif driver is not None and not has_nvml_library(context):
        reason = f"the NVIDIA kernel driver is loaded ({driver}) but its library {LIBRARY} is missing"
        fix = (
            "install the driver's user-space libraries matching the kernel module,"
            " or run the container with the NVIDIA Container Toolkit (`--gpus all`)"
        )
    elif driver is not None:
        reason = f"the NVIDIA driver is loaded ({driver}) but NVML could not be used"
        fix = "compare `cat /proc/driver/nvidia/version` with `nvidia-smi`; after a driver upgrade, reboot"
    else:
        library = "" if has_nvml_library(context) else f", no {LIBRARY}"
        reason = f"no NVIDIA driver (no kernel module loaded{library})"
        fix = "install the NVIDIA driver" if has_nvml_library(context) else None
        if pci is not None:  # pci == (): the bus was readable and holds no NVIDIA display controller
            reason = f"no NVIDIA GPU on the PCI bus and {reason}"
            fix = "use a machine with an NVIDIA GPU (a VM needs the GPU passed through)"
    if nvml_problem:
        reason += f" ({nvml_problem})"
    hidden = context.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        # NVML ignores CUDA_VISIBLE_DEVICES, so this is never why NVML sees nothing; it will hide GPUs from CUDA.
        reason += f"; note: CUDA_VISIBLE_DEVICES={hidden!r} also hides every GPU from CUDA"
        fix = (fix + "; " if fix else "") + "unset CUDA_VISIBLE_DEVICES"
    return reason, fix
