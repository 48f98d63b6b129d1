"""CUDA checks of how this process reaches the GPUs and its libraries: CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH (against
the libraries torch really loaded), and the toolkit at CUDA_HOME. Judged from recorded facts only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import installed_version, missing_of
from envcheck.facts.common import Unavailable, known
from envcheck.facts.environment import EnvironmentFacts
from envcheck.facts.framework import TorchFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.messages import quoted
from envcheck.facts.python import PythonFacts
from envcheck.finding import Finding, Severity


def _variable(environment: EnvironmentFacts, name: str) -> str | None:
    return next((v.value for v in environment.variables if v.name == name), None)


def _visible(value: str, gpu: GpuFacts) -> tuple[list[str], str | None]:
    """The GPUs CUDA will enumerate under CUDA_VISIBLE_DEVICES=value, and the first entry it rejects.

    CUDA reads the comma-separated list up to the first invalid entry (an index out of range, an unknown
    UUID, a repeat) and ignores the rest (CUDA C Programming Guide, "CUDA Environment Variables").
    """
    count = max(gpu.gpu_count, len(gpu.gpus))
    uuids = [known(device.uuid) or "" for device in gpu.gpus]
    seen: list[str] = []
    for entry in (part.strip() for part in value.split(",")):
        index: int | None = None
        if re.fullmatch(r"[+-]?\d+", entry):
            index = int(entry)
            index = index if 0 <= index < count else None
        elif entry.upper().startswith("GPU-") and len(entry) > 4:
            index = next((i for i, uuid in enumerate(uuids) if uuid.lower().startswith(entry.lower())), None)
        if index is None or str(index) in seen:
            return seen, entry
        seen.append(str(index))
    return seen, None


@check("cuda.visible_devices", "CUDA_VISIBLE_DEVICES, when set, names GPUs that exist and leaves at least one visible.")
def check_visible_devices(given: CheckInput) -> Iterator[Finding]:
    environment, gpu = given.snapshot.environment, given.snapshot.gpu
    check_id = "cuda.visible_devices"
    if isinstance(environment, Unavailable) or isinstance(gpu, Unavailable):
        yield skipped(check_id, "CUDA_VISIBLE_DEVICES", missing_of(environment, gpu))
        return
    value = _variable(environment, "CUDA_VISIBLE_DEVICES")
    if value is None:
        yield Finding(check_id, Severity.OK, "CUDA_VISIBLE_DEVICES not set: CUDA sees every GPU")
        return
    if not gpu.gpus:
        detail = f"no NVIDIA GPU seen ({gpu.no_gpu_reason}), so there is nothing to hide"
        yield Finding(check_id, Severity.SKIP, "CUDA_VISIBLE_DEVICES not checked", detail=detail)
        return
    if value.strip().upper().startswith("MIG-"):
        detail = "MIG device UUIDs are not recorded in the snapshot (`nvidia-smi -L` lists them)"
        yield Finding(check_id, Severity.SKIP, "CUDA_VISIBLE_DEVICES not checked", detail=detail)
        return
    count = max(gpu.gpu_count, len(gpu.gpus))
    visible, rejected = _visible(value, gpu)
    listed = f"the machine has {count} GPU(s), " + ("index 0" if count == 1 else f"indices 0-{count - 1}")
    if not visible:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU from CUDA",
            detail=f"CUDA stops at {rejected!r}, which names no GPU; {listed}. torch.cuda.is_available() is False.",
            fix="unset CUDA_VISIBLE_DEVICES  (or list the GPUs to use, e.g. CUDA_VISIBLE_DEVICES=0)",
            evidence=("environment.CUDA_VISIBLE_DEVICES", "gpu.gpu_count"),
        )
    elif rejected is not None:
        yield Finding(
            check_id,
            Severity.WARN,
            f"CUDA_VISIBLE_DEVICES={value!r} names {rejected!r}, which is not a GPU here; CUDA ignores it and "
            f"everything after it",
            detail=f"CUDA sees {len(visible)} GPU(s): {', '.join(visible)}; {listed}.",
            fix=f"export CUDA_VISIBLE_DEVICES={','.join(visible)}  (valid entries only)",
            evidence=("environment.CUDA_VISIBLE_DEVICES", "gpu.gpu_count"),
        )
    else:
        yield Finding(
            check_id, Severity.OK, f"CUDA_VISIBLE_DEVICES={value!r}: {len(visible)} of {count} GPU(s) visible"
        )


# Directories that hold a CUDA toolkit's or cuDNN's own libraries (not the driver's: /usr/local/nvidia is the
# driver mount of the NVIDIA Container Toolkit, and libcuda must come from the driver anyway).
_TOOLKIT_DIR = re.compile(r"/cuda[^/]*/(lib64|lib|targets/[^/]+/lib)/?$|cudnn|/nccl", re.IGNORECASE)
_CONDA_LIB = re.compile(
    r"/(ana|mini)conda\d*/(envs/[^/]+/)?lib/?$|/miniforge\d*/(envs/[^/]+/)?lib/?$|/envs/[^/]+/lib/?$"
)
_CUDA_IN_PATH = re.compile(r"cuda[-_]?(\d+)\.(\d+)", re.IGNORECASE)


# The pip wheel (nvidia-<component>, nvidia-<component>-cu12, ...) that bundles each CUDA library torch loads, by the
# library's name before ".so"; longest names first so libcublasLt is not taken for libcublas. The driver's libcuda
# and libnvidia-ml are not in it: no wheel bundles them.
_WHEEL_OF_LIBRARY = (
    ("libcublasLt", "cublas"), ("libcusparseLt", "cusparselt"), ("libcusolverMg", "cusolver"),
    ("libnvrtc-builtins", "cuda-nvrtc"), ("libcudart", "cuda-runtime"), ("libcublas", "cublas"),
    ("libcudnn", "cudnn"), ("libnccl", "nccl"), ("libnvrtc", "cuda-nvrtc"), ("libcusparse", "cusparse"),
    ("libcufft", "cufft"), ("libcurand", "curand"), ("libcusolver", "cusolver"), ("libnvJitLink", "nvjitlink"),
    ("libcupti", "cuda-cupti"), ("libnvToolsExt", "nvtx"), ("libcufile", "cufile"), ("libnvshmem", "nvshmem"),
)  # fmt: skip
_IN_WHEEL = re.compile(r"/(site|dist)-packages/(nvidia|torch)/")


def _bundled_wheels(python: PythonFacts) -> list[str]:
    """The installed nvidia-* wheels that carry CUDA libraries (not nvidia-ml-py and other bindings)."""
    components = {component for _, component in _WHEEL_OF_LIBRARY}
    return sorted(
        f"{package.name} {package.version}"
        for package in python.packages
        if (match := re.fullmatch(r"nvidia-([a-z-]+?)(-cu\d+)?", package.name)) and match.group(1) in components
    )


def _library_name(path: str) -> str:
    """/x/libcudnn_ops.so.9 -> libcudnn_ops"""
    return path.rsplit("/", 1)[-1].split(".so", maxsplit=1)[0]


def _bundled_copy(library: str, wheels: list[str], torch_version: str) -> str | None:
    """What the wheel installed in place of `library` ("nvidia-cudnn-cu12 9.1.0.70"), or None when it bundles none."""
    component = next((c for prefix, c in _WHEEL_OF_LIBRARY if library.startswith(prefix)), None)
    if component is None:
        return None
    wheel = next((w for w in wheels if re.fullmatch(rf"nvidia-{component}(-cu\d+)? \S+", w)), None)
    if wheel is not None:
        return wheel
    # wheels without nvidia-* dependencies (torch 1.x +cuXXX) carry the libraries themselves, in torch/lib
    return f"torch {torch_version}'s torch/lib" if "+cu" in torch_version else None


def _is_in_wheel(path: str, torch: TorchFacts) -> bool:
    location = known(torch.location)
    return bool(_IN_WHEEL.search(path)) or (location is not None and path.startswith(f"{location}/lib/"))


def _origin(path: str, search_dirs: list[str], preloaded: list[str]) -> str:
    """How a library outside the wheel got loaded, as far as the recorded variables tell."""
    folder = path.rpartition("/")[0]
    if path in preloaded:
        return "LD_PRELOAD"
    if folder in search_dirs:
        return "LD_LIBRARY_PATH"
    return ""  # a symlinked LD_LIBRARY_PATH entry, a bare name in LD_PRELOAD, /etc/ld.so.preload, another library


def _judge_loaded_libraries(
    check_id: str, loaded: tuple[str, ...], torch: TorchFacts, python: PythonFacts, environment: EnvironmentFacts
) -> Finding | None:
    """The finding from the libraries torch actually loaded; None when it loaded none that its wheel bundles."""
    wheels = _bundled_wheels(python)
    bundled = [(path, copy) for path in loaded if (copy := _bundled_copy(_library_name(path), wheels, torch.version))]
    if not bundled:
        return None
    search_dirs = [
        part.rstrip("/") or "/" for part in (_variable(environment, "LD_LIBRARY_PATH") or "").split(":") if part
    ]
    preloaded = re.split(r"[:\s]+", _variable(environment, "LD_PRELOAD") or "")
    evidence = ("framework.torch.loaded_cuda_libraries", "environment.LD_LIBRARY_PATH", "python.packages")
    foreign = [(path, copy) for path, copy in bundled if not _is_in_wheel(path, torch)]
    if not foreign:
        title = f"torch loaded all {len(bundled)} of its bundled CUDA libraries from the wheel" + (
            f"; LD_LIBRARY_PATH ({', '.join(search_dirs)}) shadows none of them" if search_dirs else ""
        )
        detail = "Read from the probe process's memory map after the import, CUDA's start and the smoke tests." + (
            " Libraries loaded later (cuDNN's sub-libraries at the first convolution) are still looked up in "
            "LD_LIBRARY_PATH first."
            if search_dirs
            else ""
        )
        return Finding(check_id, Severity.OK, title, detail=detail, evidence=evidence)
    lines, fixes = [], []
    for path, copy in foreign:
        folder, _, name = path.rpartition("/")
        origin = _origin(path, search_dirs, preloaded)
        lines.append(f"{name} from {folder}{f' (on {origin})' if origin else ''} instead of {copy}")
        fix = {"LD_PRELOAD": f"remove {path} from LD_PRELOAD", "LD_LIBRARY_PATH": f"drop {folder} from LD_LIBRARY_PATH"}
        fixes.append(
            fix.get(origin, f"unset LD_LIBRARY_PATH and LD_PRELOAD (one may reach {folder} through a symlink)")
        )
    names = ", ".join(path.rpartition("/")[2] for path, _ in foreign)
    folders = ", ".join(sorted({path.rpartition("/")[0] for path, _ in foreign}))
    return Finding(
        check_id,
        Severity.WARN,
        f"torch loaded {names} from {folders}, not the copies its wheel bundles",
        detail="; ".join(lines) + ". LD_PRELOAD, and LD_LIBRARY_PATH for libraries the wheel does not pin by RPATH "
        "(RUNPATH, dlopen: cuDNN's sub-libraries), take precedence over the wheel's own copies; a build other than the "
        "one torch was built against fails with symbol or version errors, or runs slower.",
        fix="; ".join(dict.fromkeys(fixes)) + " before running torch",
        evidence=(*evidence, "environment.LD_PRELOAD"),
    )


@check("cuda.ld_library_path", "LD_LIBRARY_PATH does not shadow the CUDA, cuDNN and NCCL libraries the wheel bundles.")
def check_ld_library_path(given: CheckInput) -> Iterator[Finding]:
    environment, python, framework = given.snapshot.environment, given.snapshot.python, given.snapshot.framework
    check_id = "cuda.ld_library_path"
    cudnn = given.snapshot.messages.cudnn_mismatch
    if cudnn is not None:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"torch was built against cuDNN {cudnn.compiled_version} but loaded cuDNN {cudnn.runtime_version}",
            detail="Another libcudnn (a system or conda copy, usually reached through LD_LIBRARY_PATH) replaced the "
            f"one the wheel bundles. {quoted(cudnn.source_line)}",
            fix="unset LD_LIBRARY_PATH (or drop its cuDNN directory) before running torch; "
            "`ldconfig -p | grep libcudnn` lists the copies the loader can find",
            evidence=("messages.cudnn_mismatch",),
        )
        return
    if isinstance(environment, Unavailable) or isinstance(python, Unavailable):
        yield skipped(check_id, "LD_LIBRARY_PATH", missing_of(environment, python))
        return
    bundled = _bundled_wheels(python)
    torch_version = installed_version(python, "torch") or ""
    is_bundling = bool(bundled) or "+cu" in torch_version
    value = _variable(environment, "LD_LIBRARY_PATH") or ""
    search_dirs = [part.rstrip("/") or "/" for part in value.split(":") if part]
    toolkit_dirs = [part for part in search_dirs if _TOOLKIT_DIR.search(part)]
    conda_dirs = [part for part in search_dirs if _CONDA_LIB.search(part)]
    framework_facts = known(framework)
    torch = framework_facts.torch if framework_facts else None
    loaded = known(torch.loaded_cuda_libraries) if torch else None
    if is_bundling and torch is not None and loaded is not None:
        # the libraries torch really loaded settle the question; without them, judge from the directory names
        finding = _judge_loaded_libraries(check_id, loaded, torch, python, environment)
        if finding is not None:
            yield finding
            return
    if not is_bundling or not (toolkit_dirs or conda_dirs):
        why = "no pip CUDA wheel bundling its libraries" if not is_bundling else "no CUDA library directory in it"
        yield Finding(check_id, Severity.OK, f"LD_LIBRARY_PATH shadows nothing ({why})")
        return
    import_error = framework_facts.import_error if framework_facts else None
    wheel_cuda = torch.cuda_version if torch else None
    other_major = [d for d in toolkit_dirs if (m := _CUDA_IN_PATH.search(d)) and wheel_cuda and
                   m.group(1) != wheel_cuda.split(".")[0]]  # fmt: skip
    shown = ", ".join(toolkit_dirs + conda_dirs)
    detail = (
        "The dynamic loader searches LD_LIBRARY_PATH before the wheel's own RUNPATH, so libcudart/libcublas/"
        f"libcudnn/libnccl from these directories replace the ones pip installed ({', '.join(bundled) or 'torch/lib'})."
    )
    fix = f"unset LD_LIBRARY_PATH  (or drop {shown} from it) before running torch"
    evidence = ("environment.LD_LIBRARY_PATH", "python.packages")
    if import_error and toolkit_dirs + conda_dirs:
        title = f"torch fails to import ({import_error}) and LD_LIBRARY_PATH puts {shown} first"
        yield Finding(check_id, Severity.FAIL, title, detail=detail, fix=fix, evidence=evidence)
    elif other_major:
        title = f"LD_LIBRARY_PATH has CUDA libraries of another major version than the wheel's {wheel_cuda}: {shown}"
        yield Finding(check_id, Severity.WARN, title, detail=detail, fix=fix, evidence=evidence)
    else:
        title = f"LD_LIBRARY_PATH may shadow the wheel's CUDA libraries: {shown}"
        yield Finding(check_id, Severity.INFO, title, detail=detail + " It works while the versions agree.", fix=fix,
                      evidence=evidence)  # fmt: skip


def _toolkit_version(environment: EnvironmentFacts, name: str, home: str) -> tuple[str | None, str, str]:
    """(major.minor of the toolkit at `home`, where that came from, why it is unknown when it is)."""
    toolkit = known(environment.cuda_toolkit)
    recorded = known(toolkit.version) if toolkit is not None else None
    if recorded is not None and (match := re.match(r"(\d+)\.(\d+)", recorded)):
        return f"{match.group(1)}.{match.group(2)}", f"version {recorded} in its version file", ""
    if match := _CUDA_IN_PATH.search(home):
        return f"{match.group(1)}.{match.group(2)}", "its path", ""
    why = (
        toolkit.version.reason
        if toolkit is not None and isinstance(toolkit.version, Unavailable)
        else f"{name}={home} does not name its CUDA version, and the snapshot records no toolkit version"
    )
    return None, "", why


@check("cuda.cuda_home", "The CUDA toolkit at CUDA_HOME (used to build extensions) matches the wheel's CUDA version.")
def check_cuda_home(given: CheckInput) -> Iterator[Finding]:
    environment, framework = given.snapshot.environment, given.snapshot.framework
    check_id = "cuda.cuda_home"
    if isinstance(environment, Unavailable) or isinstance(framework, Unavailable):
        yield skipped(check_id, "CUDA_HOME", missing_of(environment, framework))
        return
    name = next((n for n in ("CUDA_HOME", "CUDA_PATH") if _variable(environment, n)), None)
    torch = framework.torch
    if name is None or torch is None or torch.cuda_version is None:
        why = "CUDA_HOME not set" if name is None else "torch is not a CUDA build"
        yield Finding(check_id, Severity.OK, f"no toolkit to compare ({why}); only extension builds use it")
        return
    home = _variable(environment, name) or ""
    wheel_major, _, wheel_minor = torch.cuda_version.partition(".")
    repoint = f"point {name} at a CUDA {wheel_major}.x toolkit, e.g. export {name}=/usr/local/cuda-{torch.cuda_version}"
    toolkit = known(environment.cuda_toolkit)
    if toolkit is not None and not toolkit.is_directory:
        yield Finding(
            check_id,
            Severity.WARN,
            f"{name}={home} does not exist: building CUDA extensions will find no nvcc",
            detail="torch.utils.cpp_extension (and pip installs of packages with CUDA code) take the toolkit from "
            f"{name} without checking it.",
            fix=f"{repoint}  (or unset {name})",
            evidence=(f"environment.{name}", "environment.cuda_toolkit"),
        )
        return
    home_cuda, seen_in, why = _toolkit_version(environment, name, home)
    if home_cuda is None:
        yield Finding(check_id, Severity.SKIP, "CUDA_HOME toolkit version not checked", detail=why)
        return
    evidence = (f"environment.{name}", "environment.cuda_toolkit", "framework.torch.cuda_version")
    if home_cuda.split(".") == [wheel_major, wheel_minor.split(".")[0]]:
        yield Finding(
            check_id,
            Severity.OK,
            f"{name} toolkit CUDA {home_cuda} ({seen_in}) matches torch's CUDA {torch.cuda_version}",
        )
        return
    # torch.utils.cpp_extension raises on a major mismatch and only warns on a minor one (_check_cuda_version).
    is_major = home_cuda.split(".")[0] != wheel_major
    yield Finding(
        check_id,
        Severity.WARN if is_major else Severity.INFO,
        f"{name} is CUDA {home_cuda} ({seen_in}) but torch {torch.version} was built with CUDA {torch.cuda_version}",
        detail="Only building CUDA extensions (pip install of packages with CUDA code, torch.utils.cpp_extension) "
        + (
            "fails: 'The detected CUDA version mismatches the version that was used to compile PyTorch'."
            if is_major
            else "warns about the minor version difference."
        ),
        fix=repoint,
        evidence=evidence,
    )
