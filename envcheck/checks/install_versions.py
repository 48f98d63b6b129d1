"""Install checks judged against the knowledge base: a CPU wheel on a GPU machine, NumPy 2 under a NumPy 1 build,
a Python the torch release has no wheels for. torchvision/torchaudio against torch: checks/companions.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from packaging.version import Version

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import (
    INDEX_URL,
    NOT_LISTED,
    UNLISTED_TORCH,
    driver_os,
    gpu_models,
    installed_version,
    is_package_list_missing,
    knowledge_of,
    missing_of,
    platform_of,
    python_fits,
    release_tuple,
    wheels,
)
from envcheck.facts.common import Unavailable, known
from envcheck.facts.messages import NumpyFailure, quoted
from envcheck.finding import Finding, Severity
from envcheck.knowledge.model import Knowledge, TorchRelease, release_key


@check("install.cpu_wheel_on_gpu", "A machine with an NVIDIA GPU has a CUDA build of torch, not the CPU-only wheel.")
def check_cpu_wheel_on_gpu(given: CheckInput) -> Iterator[Finding]:
    framework, gpu = given.snapshot.framework, given.snapshot.gpu
    check_id = "install.cpu_wheel_on_gpu"
    if isinstance(framework, Unavailable):
        yield skipped(check_id, "torch build against the GPUs", framework)
        return
    torch = framework.torch
    system = known(given.snapshot.system)
    if torch is not None and not torch.cuda_version and system is not None and system.os_name == "Darwin":
        # no CUDA build of torch exists for macOS (pytorch.org's selector offers none); its GPU path is MPS
        yield Finding(check_id, Severity.OK, f"torch {torch.version} fits macOS, which has no CUDA builds of torch")
        return
    if torch is not None and not (torch.cuda_version or torch.hip_version) and _is_report_without_gpus(given):
        yield Finding(
            check_id,
            Severity.WARN,
            f"torch {torch.version} is a CPU-only build: CUDA can never be available with it",
            detail="torch.version.cuda is None. The report shows no GPU"
            + (f" ({gpu.reason})" if isinstance(gpu, Unavailable) else f" ({gpu.no_gpu_reason})")
            + ", so it cannot show whether this machine has one; if it has an NVIDIA GPU, this build will not use it.",
            fix=_gpu_wheel_fix(given, torch.version, None, framework.interpreter),
            evidence=("framework.torch.cuda_version", "gpu"),
        )
        return
    if isinstance(gpu, Unavailable):
        yield skipped(check_id, "torch build against the GPUs", gpu)
        return
    if torch is None or not gpu.gpus or torch.cuda_version or torch.hip_version:
        why = "torch not imported" if torch is None else ("no NVIDIA GPU" if not gpu.gpus else "a GPU build")
        yield Finding(check_id, Severity.OK, f"torch build fits the machine ({why})")
        return
    yield Finding(
        check_id,
        Severity.FAIL,
        f"torch {torch.version} is a CPU-only build, but this machine has {len(gpu.gpus)} NVIDIA GPU(s)",
        detail="torch.version.cuda is None: every tensor stays on the CPU and torch.cuda.is_available() is False.",
        fix=_gpu_wheel_fix(given, torch.version, known(gpu.driver_version), framework.interpreter),
        evidence=("framework.torch.cuda_version", "gpu.gpus", "gpu.driver_version"),
    )


def _is_report_without_gpus(given: CheckInput) -> bool:
    """A pasted or imported report (not this machine's probes) that lists no GPU: cut off, or nvidia-smi failed."""
    gpu = given.snapshot.gpu
    if given.snapshot.source == "live":
        return False
    return isinstance(gpu, Unavailable) or (not gpu.gpus and gpu.source not in ("nvml", "nvidia-smi"))


def _gpu_wheel_fix(given: CheckInput, torch_version: str, driver: str | None, python: str) -> str:
    """The CUDA wheel of the installed release with the newest CUDA the driver runs (else the newest release)."""
    knowledge = knowledge_of(given)
    generic = (
        f"{python} -m pip install --force-reinstall torch --index-url {INDEX_URL}cuXYZ "
        "(pick cuXYZ for your driver at https://pytorch.org/get-started/locally/)"
    )
    if knowledge is None or driver is None:
        return generic
    system, python_facts, gpu = given.snapshot.system, known(given.snapshot.python), known(given.snapshot.gpu)
    os, platform = driver_os(system), platform_of(system)
    # the wheel must also have code for these GPUs (a cu124 wheel is no fix on an RTX 5090)
    models = gpu_models(gpu, None, knowledge) if gpu else ()
    capabilities = tuple(m.compute_capability for m in models if m.compute_capability)
    release = knowledge.torch_release(torch_version)
    wheel = None
    if release is not None:
        # a release without arch tables for this platform cannot be judged on its GPUs: match on the driver alone
        is_tabled = any(knowledge.arch_list(release.version, v, platform) for v in release.cuda_variants)
        ccs = capabilities if is_tabled else ()
        wheel = next(
            wheels(knowledge, driver=driver, os=os, platform=platform, compute_capabilities=ccs, release=release), None
        )
    if wheel is None:
        python_version = python_facts.version if python_facts else None
        newest = wheels(
            knowledge,
            driver=driver,
            os=os,
            platform=platform,
            python_version=python_version,
            compute_capabilities=capabilities,
        )
        wheel = next(newest, None)
    if wheel is None:
        return f"No official CUDA wheel runs on driver {driver}: upgrade the driver, then {generic}"
    has_audio = python_facts is not None and installed_version(python_facts, "torchaudio") is not None
    return (
        f"{wheel.install_command(python, with_audio=has_audio)} --force-reinstall  "
        f"({wheel.label}: the newest CUDA variant driver {driver} runs)"
    )


# torch 2.3.0 is the first release built against NumPy 2.0 (pytorch/pytorch#107302) on Linux and macOS, 2.4.1 on
# Windows (pytorch/pytorch#131668); profiles/compat/numpy_abi.toml holds the floors with their sources. A build
# against NumPy 2 also runs with NumPy 1.x, but one built against NumPy 1.x fails under NumPy 2:
# "A module that was compiled using NumPy 1.x cannot be run in NumPy 2" and "RuntimeError: Numpy is not available".
# Without the knowledge base (or its row), the Linux floor: the one every platform's wheels reached last but Windows.
_FIRST_TORCH_FOR_NUMPY_2 = Version("2.3.0")


def numpy_platform(given: CheckInput) -> str:
    """Whose wheels the torch is: windows, macos or linux (WSL and a report without system facts: linux)."""
    facts = known(given.snapshot.system)
    if facts is not None and facts.os_name == "Windows":
        return "windows"
    return "macos" if facts is not None and facts.os_name == "Darwin" else "linux"


def first_torch_for_numpy_2(given: CheckInput) -> tuple[Version, str]:
    """The first torch release whose wheels for this platform run under NumPy 2, and the platform's name."""
    platform, knowledge = numpy_platform(given), knowledge_of(given)
    floors = knowledge.numpy_abi_floors if knowledge is not None else ()
    floor = next((f for f in floors if f.platform == platform), None)
    return (Version(floor.first_torch) if floor is not None else _FIRST_TORCH_FOR_NUMPY_2), platform


_PLATFORM_NAMES = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}


@check("install.numpy_abi", "The numpy major version is one the installed torch was built to run with.")
def check_numpy_abi(given: CheckInput) -> Iterator[Finding]:
    python = given.snapshot.python
    check_id = "install.numpy_abi"
    if given.snapshot.messages.numpy_failure is not None:
        yield _numpy_failure_finding(given, check_id, given.snapshot.messages.numpy_failure)
        return
    if isinstance(python, Unavailable):
        yield skipped(check_id, "numpy against torch", python)
        return
    if is_package_list_missing(given):
        yield Finding(check_id, Severity.SKIP, "numpy against torch not checked", detail=UNLISTED_TORCH)
        return
    torch_version, numpy_version = installed_version(python, "torch"), installed_version(python, "numpy")
    torch_key = release_key(torch_version) if torch_version else None
    numpy_key = release_key(numpy_version) if numpy_version else None
    if torch_key is None or numpy_key is None:
        missing = "torch" if torch_key is None else "numpy"
        yield Finding(check_id, Severity.OK, f"{missing} not installed (or its version unreadable): nothing to match")
        return
    first, platform = first_torch_for_numpy_2(given)
    if numpy_key.major >= 2 and torch_key < first:
        shown = _PLATFORM_NAMES[platform]
        why = (
            "torch before 2.3 cannot use NumPy 2"
            if first == _FIRST_TORCH_FOR_NUMPY_2
            else f"torch's {shown} wheels before {first} were built against NumPy 1.x (Linux's from 2.3 on "
            "were not; pytorch/pytorch#131668, #128860), so they cannot use NumPy 2"
        )
        yield Finding(
            check_id,
            Severity.FAIL,
            f"numpy {numpy_version} with torch {torch_version}, whose {shown} wheels were built against NumPy 1.x",
            detail=f"{why}: 'A module that was compiled using NumPy 1.x cannot be run in NumPy 2', then "
            "'RuntimeError: Numpy is not available' at tensor.numpy() and in DataLoaders "
            "(profiles/compat/numpy_abi.toml; pytorch/pytorch#107302).",
            fix=f'{python.executable} -m pip install "numpy<2"  (or upgrade to torch >= {first})',
            evidence=("python.packages", "system.os_name"),
        )
    else:
        yield Finding(check_id, Severity.OK, f"numpy {numpy_version} works with torch {torch_version}")


@check("install.python_supported", "The Python version is one the installed torch release ships wheels for.")
def check_python_supported(given: CheckInput) -> Iterator[Finding]:
    python, knowledge = given.snapshot.python, knowledge_of(given)
    check_id = "install.python_supported"
    if isinstance(python, Unavailable) or knowledge is None:
        yield skipped(check_id, "Python version against torch", missing_of(python))
        return
    framework = known(given.snapshot.framework)
    imported = framework.torch.version if framework is not None and framework.torch is not None else None
    # a paste cut before its package list still names the torch that imported
    torch_version = installed_version(python, "torch") or imported
    release = knowledge.torch_release(torch_version) if torch_version else None
    if isinstance(python.version, Unavailable):
        yield skipped(check_id, "Python version against torch", python.version)
        return
    if release is None:
        why = NOT_LISTED if torch_version is None else f"torch {torch_version} is not in the tables"
        yield Finding(check_id, Severity.SKIP, "Python version against torch not checked", detail=why)
        return
    if python_fits(release, python.version):
        yield Finding(
            check_id,
            Severity.OK,
            f"Python {python.version} is supported by torch {release.version} "
            f"({release.python_min}-{release.python_max})",
        )
        return
    newest = next((r for r in _by_version(knowledge) if python_fits(r, python.version)), None)
    wanted = release_tuple(python.version)
    too_new = wanted is not None and (release_tuple(release.python_max) or (0, 0)) < wanted
    advice = f"use a Python {release.python_min}-{release.python_max} environment for torch {release.version}"
    if newest is not None and too_new:
        advice = (
            f"{python.executable} -m pip install torch=={newest.version} torchvision=={newest.torchvision} "
            f"(the newest release with wheels for Python {python.version}), or {advice}"
        )
    yield Finding(
        check_id,
        Severity.WARN,
        f"Python {python.version} is outside torch {release.version}'s supported range "
        f"{release.python_min}-{release.python_max}",
        detail="No official wheel of this release exists for this Python: the install is a source or "
        "third-party build, and C extensions built for other Pythons will not load.",
        fix=advice,
        evidence=("python.version", "python.packages"),
    )


def _by_version(knowledge: Knowledge) -> list[TorchRelease]:
    return sorted(knowledge.torch_releases, key=lambda r: Version(r.version), reverse=True)


def _numpy_failure_finding(given: CheckInput, check_id: str, message: NumpyFailure) -> Finding:
    """The report shows torch failing to use NumPy: a failure whatever the package list says (or lacks)."""
    python = known(given.snapshot.python)
    numpy_version = message.numpy_version or (installed_version(python, "numpy") if python else None)
    torch_version = installed_version(python, "torch") if python else None
    torch_key = release_key(torch_version) if torch_version else None
    is_numpy_2 = numpy_version is not None and numpy_version.split(".", 1)[0] not in ("0", "1")
    executable = python.executable if python else "python"
    first, _ = first_torch_for_numpy_2(given)
    if is_numpy_2 and (torch_key is None or torch_key < first):
        fix = f'{executable} -m pip install "numpy<2"  (or upgrade torch to >= {first}, built against NumPy 2)'
    else:
        fix = f"{executable} -m pip install --force-reinstall numpy  (a NumPy that imports on its own; check with "\
              f"`{executable} -c 'import numpy'`)"  # fmt: skip
    said = " and ".join(
        part for part in (f"numpy {numpy_version}" if numpy_version else "", f"torch {torch_version}" if torch_version
                          else "") if part
    )  # fmt: skip
    return Finding(
        check_id,
        Severity.FAIL,
        "torch cannot use NumPy" + (f" ({said})" if said else ""),
        detail="tensor.numpy(), torch.from_numpy() and DataLoaders fail. " + quoted(message.source_line),
        fix=fix,
        evidence=("messages.numpy_failure", "python.packages"),
    )
