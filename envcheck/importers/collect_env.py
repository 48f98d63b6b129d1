"""Builds a Snapshot from a pasted `python -m torch.utils.collect_env` output: the torch build, the packages, the
driver and GPU names it names. Everything the format lacks is Unavailable, so checks skip instead of guessing."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from envcheck import __version__
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts, TorchFacts
from envcheck.facts.gpu import Gpu, GpuFacts, LostGpu, MigDevice, no_gpu_facts
from envcheck.facts.gpu_health import EccCounts, EccFacts
from envcheck.facts.messages import NO_MESSAGES, RuntimeMessages
from envcheck.facts.python import InstalledPackage, PythonFacts
from envcheck.importers.collect_env_system import system_from_report
from envcheck.importers.collect_env_text import (
    CollectEnvReport,
    PackageLine,
    decode_text,
    parse_collect_env,
    split_runs,
)
from envcheck.importers.collect_env_toolchain import extensions_from_report, toolchain_from_report
from envcheck.importers.nvidia_smi_text import read_lost_gpus, with_lost_gpus
from envcheck.importers.runtime_messages import read_messages
from envcheck.knowledge.rules import cuda_of_variant
from envcheck.snapshot import ProbeRun, Snapshot

NOT_IN_OUTPUT = "not in collect_env output"
# The interpreter collect_env ran in is not printed; fixes address it as the user would type it.
PASTED_INTERPRETER = "python"
_ABSENT_SECTIONS = ("cpu", "memory", "storage", "environment", "network")

_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)*(?:[.+\-\w]*)")
_GPU_LINE = re.compile(r"^GPU\s*(\d+)\s*:\s*(.+?)\s*(?:\(UUID:[^)]*\)?)?$", re.IGNORECASE)
# `nvidia-smi -L` lists each MIG device under its GPU: "  MIG 3g.20gb     Device  0: (UUID: MIG-...)"
_MIG_LINE = re.compile(r"^MIG\s+\S+\s+Device\s+(\d+)\s*:", re.IGNORECASE)
# torch's own warning when a GPU's arch is missing from the wheel (torch/cuda/__init__.py, _check_capability)
_SUPPORTED_ARCHES = re.compile(r"supports CUDA capabilities\s+((?:(?:sm|compute)_\d+\s*)+)", re.IGNORECASE)
_CONDA_CUDA = re.compile(r"cuda_?(\d+)\.(\d+)|cuda(\d{2,3})(?!\d)")
_CONDA_CUDNN = re.compile(r"cudnn_?(\d+)\.(\d+)\.(\d+)")
_UNKNOWN_WORDS = ("n/a", "none", "could not collect", "no cuda", "")


class CollectEnvError(ValueError):
    """The text is too mangled to read as collect_env output (not even the torch version)."""


def snapshot_from_collect_env(data: bytes, file_name: str) -> Snapshot:
    """A Snapshot of the machine a collect_env output describes; raises only CollectEnvError."""
    runs = split_runs(decode_text(data))
    text = _last_readable_run(runs)
    source = f"collect-env:{file_name}" + (f" (the last of {len(runs)} runs pasted)" if len(runs) > 1 else "")
    return snapshot_from_report(parse_collect_env(text), text, source, f"the collect_env output {file_name}")


def snapshot_from_report(report: CollectEnvReport, text: str, source: str, described: str) -> Snapshot:
    """A Snapshot from collect_env's values (or another tool's table read into them: importers/framework_env.py);
    `text` is the run they came from, whose warnings are read with them (an earlier run's are history)."""
    messages = read_messages(text)
    framework = _framework_or_cut(report, messages)
    sections: dict[str, Any] = {
        "system": system_from_report(report.values),
        "python": _python(report),
        "framework": framework,
        **dict.fromkeys(_ABSENT_SECTIONS, Unavailable(NOT_IN_OUTPUT)),
    }
    # envcheck's own torch probe never ran: say so, so install.framework_probe skips with the reason
    not_probed = f"read from {described}; envcheck's torch probe did not run"
    probes = [
        ProbeRun(name, "skipped", 0.0, value.reason)
        for name, value in sections.items()
        if isinstance(value, Unavailable)
    ]
    if not isinstance(framework, Unavailable):
        probes.append(ProbeRun("framework", "skipped", 0.0, not_probed))
    return Snapshot(
        envcheck_version=__version__,
        created_at="unknown",
        source=source,
        is_redacted=False,
        probes=tuple(probes),
        gpu=_gpu_with_lost(_gpu(report, source, messages), source, read_lost_gpus(text)),
        **sections,
        messages=messages,
        toolchain=toolchain_from_report(report),
    )


def _last_readable_run(runs: tuple[str, ...]) -> str:
    """The run the facts come from: the last one that names torch. A report pasted twice is a report before and
    after a change (a driver update, a reinstall), and the last is the machine as it is now, the one a fix must
    act on; its warnings are read with it and the earlier run's are not, so no fact is judged against a warning
    printed by a different install."""
    for run in reversed(runs):
        report = parse_collect_env(run)
        if report.values.get("torch_version", "").strip() or _package(report, "torch") is not None:
            return run
    return "".join(runs)


def _framework_or_cut(report: CollectEnvReport, messages: RuntimeMessages) -> FrameworkFacts | Unavailable:
    """The framework facts; a paste cut off above `PyTorch version` is still read when torch's own warnings
    (printed while collect_env imported it) are all it holds, the framework then unknown."""
    try:
        torch_version = _torch_version(report)
    except CollectEnvError:
        if messages == NO_MESSAGES:
            raise
        return Unavailable("collect_env output cut off before its `PyTorch version` line; only torch's warnings read")
    return _framework(report, torch_version, messages)


def _torch_version(report: CollectEnvReport) -> str | None:
    """The torch version, None when collect_env could not import torch ("N/A"); raises when nothing says."""
    stated = report.values.get("torch_version", "").strip()
    match = _VERSION.match(stated)
    if match:
        return match.group(0)
    installed = _package(report, "torch")
    if installed is not None:  # the PyTorch line was cut or edited; the package list still names it
        return installed.version if stated.lower() not in ("n/a", "none") else None
    if stated.lower() in ("n/a", "none"):
        return None
    raise CollectEnvError("no PyTorch version in it: not a readable `python -m torch.utils.collect_env` output")


def _framework(
    report: CollectEnvReport, torch_version: str | None, messages: RuntimeMessages
) -> FrameworkFacts | Unavailable:
    python_version = _python_version(report)
    if torch_version is None:
        is_installed = _package(report, "torch") is not None
        return FrameworkFacts(
            interpreter=PASTED_INTERPRETER,
            python_version=python_version,
            is_torch_installed=is_installed,
            torch=None,
            import_error="collect_env could not import torch (it printed `PyTorch version: N/A`)"
            if is_installed
            else None,
            import_traceback_tail=None,
        )
    cuda_version = _cuda_build(report, torch_version)
    is_cuda_available = _boolean(report.values.get("cuda_available"))
    if is_cuda_available is None and "cuda_available" not in report.values:
        is_cuda_available = _implied_cuda_available(report, torch_version, cuda_version, messages)
    if isinstance(cuda_version, Unavailable) or is_cuda_available is None:
        missing = "CUDA used to build PyTorch" if isinstance(cuda_version, Unavailable) else "Is CUDA available"
        return Unavailable(f"collect_env output without a readable `{missing}` line (torch {torch_version})")
    unread = Unavailable(NOT_IN_OUTPUT)
    torch = TorchFacts(
        version=torch_version,
        cuda_version=cuda_version,
        hip_version=_hip_build(report, torch_version),
        cudnn_version=None if cuda_version is None else _cudnn(report),
        nccl_version=None if cuda_version is None else _pip_version(report, "nvidia-nccl-cu", unread),
        is_cuda_available=is_cuda_available,
        cuda_error=_cuda_warning(report),
        is_mps_available=unread,
        device_count=unread,
        arch_list=_arch_list(report) or next((m.arch_list for m in messages.unsupported_archs if m.arch_list), ()),
        devices=(),
        cpu_smoke_test=Unavailable("collect_env runs no computation"),
        location=unread,
        import_duration_s=unread,
    )
    return FrameworkFacts(PASTED_INTERPRETER, python_version, True, torch, None, None, extensions_from_report(report))


def _implied_cuda_available(
    report: CollectEnvReport, torch_version: str, cuda_version: str | Unavailable | None, messages: RuntimeMessages
) -> bool | None:
    """torch.cuda.is_available() of a paste cut off before its `Is CUDA available` line, where the rest implies it:
    a CPU-only build never has CUDA, and torch's "CUDA initialization" warning is printed by is_available() failing."""
    if cuda_version is None and _hip_build(report, torch_version) is None:
        return False
    return False if messages.is_cuda_init_failure else None


def _cuda_build(report: CollectEnvReport, torch_version: str) -> str | Unavailable | None:
    """torch.version.cuda: the CUDA line; else the wheel's +cuXYZ tag or conda's build string."""
    stated = report.values.get("cuda_build")
    if stated is not None:
        # collect_env before 1.8 printed "Could not collect" where torch.version.cuda was None
        if stated.strip().lower() in _UNKNOWN_WORDS:
            return None
        match = re.match(r"^\d+\.\d+", stated.strip())
        return match.group(0) if match else Unavailable(f"unreadable `CUDA used to build PyTorch: {stated.strip()}`")
    local = torch_version.partition("+")[2].lower()
    if re.fullmatch(r"cu\d+", local):
        return cuda_of_variant(local)
    if local == "cpu" or local.startswith("rocm"):
        return None
    conda = _package(report, "torch", manager="conda")
    if conda is not None and conda.build:
        if "cpu" in conda.build:
            return None
        match = _CONDA_CUDA.search(conda.build)
        if match:
            return f"{match.group(1)}.{match.group(2)}" if match.group(1) else cuda_of_variant(f"cu{match.group(3)}")
    return Unavailable(NOT_IN_OUTPUT)


def _hip_build(report: CollectEnvReport, torch_version: str) -> str | None:
    stated = report.values.get("rocm_build", "").strip()
    if _VERSION.match(stated):
        return stated
    local = torch_version.partition("+")[2]
    return local.removeprefix("rocm") if local.startswith("rocm") else None


def _cudnn(report: CollectEnvReport) -> int | Unavailable:
    """torch.backends.cudnn.version() from the cuDNN torch ships (conda build string, nvidia-cudnn wheel).

    The "cuDNN version" line lists the *system* libcudnn, which a pip wheel does not load, so it is not used."""
    conda = _package(report, "torch", manager="conda")
    match = _CONDA_CUDNN.search(conda.build or "") if conda is not None else None
    parts = [int(group) for group in match.groups()] if match else None
    wheel = _pip_version(report, "nvidia-cudnn-cu", None)
    if parts is None and wheel is not None:
        parts = [int(number) for number in re.findall(r"\d+", wheel)[:3]]
    if not parts or len(parts) < 3:
        return Unavailable("collect_env lists the system's cuDNN libraries, not the one torch loads")
    major, minor, patch = parts[:3]
    # cudnn.h: CUDNN_VERSION is major*1000+minor*100+patch before cuDNN 9, major*10000+minor*100+patch since
    return major * (10000 if major >= 9 else 1000) + minor * 100 + patch


def _python_version(report: CollectEnvReport) -> str | Unavailable:
    match = re.match(r"^(\d+\.\d+(?:\.\d+)?)", report.values.get("python_version", "").strip())
    return match.group(1) if match else Unavailable(NOT_IN_OUTPUT)


def _python(report: CollectEnvReport) -> PythonFacts | Unavailable:
    version = _python_version(report)
    if isinstance(version, Unavailable):
        return Unavailable(f"{NOT_IN_OUTPUT}: no readable `Python version` line")
    packages = _installed_packages(report.packages)
    line = report.values.get("python_version", "")
    unread = Unavailable(NOT_IN_OUTPUT)
    return PythonFacts(
        executable=PASTED_INTERPRETER,
        version=version,
        implementation="PyPy" if "pypy" in line.lower() else "CPython",  # sys.version names PyPy
        prefix=unread,
        virtualenv=unread,
        conda_env=unread,
        pip_version=unread,
        packages=packages,
        is_user_site_enabled=unread,
    )


def _installed_packages(lines: tuple[PackageLine, ...]) -> tuple[InstalledPackage, ...]:
    """pip's and conda's lists describe one environment; a conda line is a second install only when it differs."""
    pip = {line.name: line for line in lines if line.manager == "pip"}
    # pip lists conda's installs too (torch==2.0.1 beside `[conda] pytorch 2.0.1 py3.9_cuda11.7_cudnn8.5.0_0`):
    # one install, whose conda build string and channel say its CPU/CUDA variant, so they are kept on pip's entry
    same = {
        _conda_to_pip_name(line.name): line
        for line in lines
        if line.manager == "conda"
        and line.channel != "pypi"
        and _conda_to_pip_name(line.name) in pip
        and _public(pip[_conda_to_pip_name(line.name)].version) == _public(line.version)
    }
    packages = [
        InstalledPackage(
            line.name,
            line.version,
            "pip",
            build=same[line.name].build if line.name in same else None,
            channel=same[line.name].channel if line.name in same else None,
        )
        for line in pip.values()
    ]
    for line in lines:
        name = _conda_to_pip_name(line.name)
        if line.manager != "conda" or line.channel == "pypi" or name in same:
            continue
        if any(package.name == name and package.location == "conda" for package in packages):
            continue
        packages.append(InstalledPackage(name, line.version, "conda", build=line.build, channel=line.channel))
    return tuple(packages)


def _gpu(report: CollectEnvReport, source: str, messages: RuntimeMessages) -> GpuFacts | Unavailable:
    first = report.values.get("gpu_models")
    if first is None:
        return Unavailable(NOT_IN_OUTPUT)
    lines = [line for line in (first, *report.continued.get("gpu_models", ())) if line]
    by_index: dict[int, str] = {}
    mig: dict[int, set[int]] = {}
    current: int | None = None
    for line in lines:
        if match := _GPU_LINE.match(line):
            current = int(match.group(1))
            by_index.setdefault(current, match.group(2))  # a line pasted twice is one GPU
        elif (device := _MIG_LINE.match(line)) and current is not None:
            mig.setdefault(current, set()).add(int(device.group(1)))
    names = sorted(by_index.items())
    if not names:
        said = first.strip().lower()
        if said == "no cuda":  # collect_env: torch saw no CUDA and neither nvidia-smi nor nvcc answered
            return no_gpu_facts(source, "collect_env found no NVIDIA GPU or driver (it printed `No CUDA`)")
        if said in _UNKNOWN_WORDS:
            return Unavailable("collect_env could not list the GPUs (`nvidia-smi -L` failed or is missing)")
        return Unavailable(f"collect_env names no NVIDIA GPU: {first.strip()}")
    driver = report.values.get("driver", "").strip()
    unread = Unavailable(NOT_IN_OUTPUT)
    return GpuFacts(
        source=source,
        driver_version=driver if _VERSION.match(driver) else unread,
        cuda_driver_version=unread,
        nvml_version=unread,
        gpu_count=len(names),
        gpus=tuple(
            _named_gpu(index, name, tuple(sorted(mig.get(index, ()))), _stated_capability(name, messages))
            for index, name in names
        ),
        topology=unread,
        # one entry, not forty: of each GPU collect_env prints only the name line of `nvidia-smi -L`
        missing_fields=("gpu/* except product_name (collect_env prints only `nvidia-smi -L`)",),
        no_gpu_reason=None,
    )


def _gpu_with_lost(gpu: GpuFacts | Unavailable, source: str, lost: tuple[LostGpu, ...]) -> GpuFacts | Unavailable:
    """The GPUs, and those nvidia-smi said it could not open ("Unable to determine the device handle for GPU ...",
    pasted with the report or printed by collect_env's own `nvidia-smi` call): a lost GPU is worth a finding even
    when the GPU list itself is cut off or says "Could not collect"."""
    if not lost:
        return gpu
    if isinstance(gpu, Unavailable):
        gpu = no_gpu_facts(source, "collect_env lists no GPU it could open")
    return with_lost_gpus(gpu, lost)


def _named_gpu(index: int, name: str, mig_devices: tuple[int, ...], capability: str | None) -> Gpu:
    """A GPU of which collect_env gives only the name (`nvidia-smi -L`), its MIG devices when it lists some, and
    its compute capability when torch's warning above the block states it."""
    unread = Unavailable(NOT_IN_OUTPUT)
    counts = EccCounts(unread, unread)
    values: dict[str, Any] = {field.name: unread for field in fields(Gpu)}
    values.update(index=index, name=name, ecc=EccFacts(unread, unread, counts, counts))
    if capability is not None:
        values.update(compute_capability=capability)
    if mig_devices:
        # MIG lines prove MIG is on; their absence does not prove it off (MIG on with no instance lists none)
        devices = tuple(MigDevice(n, unread, unread, unread, unread, unread, unread) for n in mig_devices)
        values.update(is_mig_enabled=True, mig_devices=devices)
    return Gpu(**values)


def _stated_capability(name: str, messages: RuntimeMessages) -> str | None:
    """The compute capability torch's capability warning gives for the GPU of this name, if it names it."""
    wanted = _plain_name(name)
    stated = [(m.gpu_name, m.compute_capability) for m in messages.unsupported_archs]
    stated += [(m.gpu_name, m.compute_capability) for m in messages.gpus_too_old]
    return next((capability for gpu_name, capability in stated if _plain_name(gpu_name) == wanted), None)


def _plain_name(name: str) -> str:
    """nvidia-smi and torch spell a name alike but for the brand prefix of older drivers ("GeForce GTX 1080")."""
    return re.sub(r"^nvidia\s+", "", " ".join(name.lower().split()))


def _cuda_warning(report: CollectEnvReport) -> str | None:
    """The warning torch printed above the block while collect_env initialised CUDA, when there is one."""
    # the source line torch prints under each warning ("warnings.warn(", "return torch._C...") is not its text
    text = re.split(r"\s(?:warnings\.warn\(|return torch\._C)", " ".join(report.preamble))[0]
    match = re.search(r"UserWarning:\s*(.+?)(?:\s*\(Triggered internally.*)?$", text)
    if match and re.search(r"cuda|gpu|driver|capabilit", match.group(1), re.IGNORECASE):
        return match.group(1).strip()
    return None


def _arch_list(report: CollectEnvReport) -> tuple[str, ...]:
    """torch's arch list when its warning above the block quotes it; else () = not reported (checks then use the
    knowledge tables of the wheel, see checks/wheels.py), since collect_env never prints get_arch_list()."""
    match = _SUPPORTED_ARCHES.search(" ".join(report.preamble))
    return tuple(match.group(1).split()) if match else ()


def _package(report: CollectEnvReport, name: str, manager: str | None = None) -> PackageLine | None:
    for line in report.packages:
        if _conda_to_pip_name(line.name) == name and (manager is None or line.manager == manager):
            return line
    return None


def _pip_version(report: CollectEnvReport, prefix: str, default: Any) -> Any:
    """The version of the first pip package whose name starts with prefix (nvidia-cudnn-cu12, -cu11), else default."""
    return next((line.version for line in report.packages if line.name.startswith(prefix)), default)


def _conda_to_pip_name(name: str) -> str:
    return "torch" if name == "pytorch" else name  # conda's pytorch package is the torch distribution


def _public(version: str) -> str:
    return version.partition("+")[0]


def _boolean(text: str | None) -> bool | None:
    word = (text or "").strip().lower()
    return True if word in ("true", "yes") else False if word in ("false", "no") else None
