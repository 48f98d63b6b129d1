"""Runs inside the *target* interpreter (CPython 3.8+) and prints one JSON object about it after MARKER.

`interpreter` mode: the interpreter and its ML distributions (PythonFacts); `framework` mode: imports
torch and tests it (FrameworkFacts). The JSON is the snapshot's own form of those facts (envcheck.codec).
"""

# Stdlib only, and nothing newer than Python 3.8: this file is executed by whatever interpreter the
# user points envcheck at, which may not have envcheck, may lack torch, and may be years old. Only
# annotations may use newer syntax (they are never evaluated, thanks to the import below).
from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

MARKER = "ENVCHECK-JSON:"  # the line holding the result: stray prints from `import torch` cannot corrupt it
TRACEBACK_LINES = 15

# Distributions worth reporting, as PEP 503 normalised names. `nvidia-*` covers the CUDA wheels
# (nvidia-cudnn-cu12, ...) and both NVML bindings (nvidia-ml-py, nvidia-ml-py3).
ML_DISTRIBUTIONS = frozenset(
    (
        "torch", "torchvision", "torchaudio", "triton", "pytorch-triton", "pytorch-triton-rocm",
        "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-keras", "keras", "jax", "jaxlib", "numpy",
        "pynvml", "transformers", "accelerate", "deepspeed", "xformers", "flash-attn", "bitsandbytes", "apex",
    )
)  # fmt: skip
ML_PREFIXES = ("nvidia-", "jax-cuda", "jax-rocm")  # jax's CUDA/ROCm plugins are separate wheels

# Distributions that ship code compiled against torch (profiles/compat/extensions.toml says how each declares
# what it was built for; a test keeps the two lists equal), with the module each is imported as.
EXTENSION_MODULES = {
    "flash-attn": "flash_attn", "xformers": "xformers", "bitsandbytes": "bitsandbytes", "deepspeed": "deepspeed",
    "apex": "apex", "torch-scatter": "torch_scatter", "torch-sparse": "torch_sparse", "torch-cluster": "torch_cluster",
    "torch-spline-conv": "torch_spline_conv", "pyg-lib": "pyg_lib", "mmcv": "mmcv", "mmcv-full": "mmcv",
    "detectron2": "detectron2", "vllm": "vllm", "triton": "triton", "pytorch-triton": "triton",
}  # fmt: skip
# An import that takes longer is recorded as hung and left behind (vLLM's import, the slowest, takes seconds);
# past the budget the rest are not tried, so the torch probe stays well inside its own deadline.
EXTENSION_IMPORT_TIMEOUT_S = 15.0
# Listed and judged by their metadata, not imported: torch imports triton itself when it compiles, and importing it
# here would add 0.1-0.3 s to every doctor run (measured on the development machine). profiles/compat/extensions.toml
# marks the same names `imported = false`.
NOT_IMPORTED = {
    name: "not imported: torch imports it itself when it compiles; its version is judged against torch's pin"
    for name in ("triton", "pytorch-triton")
}
EXTENSION_IMPORT_BUDGET_S = 30.0
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

# Smoke test: a 256x256 float32 matmul (plus an add, see matmul_error) against a float64 CPU reference.
# With these inputs the result reaches ~66; float32 deviates by ~2e-5, TF32 by ~0.02, bfloat16 by
# ~0.17, and a wrong or missing kernel by the order of the result. TF32 is switched off for the test,
# and 0.05 still passes TF32 in case a backend ignores the switch, while failing anything broken.
SMOKE_SIZE = 256
SMOKE_TOLERANCE = 0.05

# Shared libraries of the CUDA family, by file name (libcudnn_ops.so.9, libnvrtc-builtins.so.12.4, ...): the
# toolkit's and cuDNN's, NCCL, NVSHMEM, and the driver's libcuda / libnvidia-ml. Wheels repaired by auditwheel
# carry a hash in the name (torch 1.x's torch/lib/libcudart-e409450e.so.11.0).
CUDA_LIBRARY = re.compile(
    r"lib(cuda|cudart|cublas|cublasLt|cudnn[A-Za-z0-9_]*|nccl|nvrtc|nvrtc-builtins|cusparse|cusparseLt|cufft|cufftw"
    r"|curand|cusolver|cusolverMg|nvJitLink|cupti|cufile|nvToolsExt|nvshmem[A-Za-z0-9_]*|nvidia-ml)"
    r"(-[0-9a-f]{8})?\.so(\.[0-9.]+)?"
)


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: torch_Vision -> torch-vision."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_ml_distribution(name: str) -> bool:
    return name in ML_DISTRIBUTIONS or name.startswith(ML_PREFIXES)


def unavailable(reason: str, fix: str | None = None) -> dict[str, Any]:
    """envcheck's JSON form of an Unavailable fact."""
    return {"unavailable": reason, "fix": fix}


def exception_line(error: BaseException) -> str:
    return traceback.format_exception_only(type(error), error)[-1].strip()


def traceback_tail() -> str:
    lines = traceback.format_exc().rstrip().splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def collect_interpreter(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """PythonFacts of the running interpreter, read from package metadata without importing any package."""
    import site
    from importlib import metadata

    packages = []
    seen = set()
    order: dict[str, int] = {}
    pip_version = None
    # distributions() walks sys.path in order, so the first of two installs listed is the one imported.
    for distribution in metadata.distributions():
        try:
            name = distribution.metadata["Name"]
            version = distribution.metadata["Version"]
            location = str(distribution.locate_file(""))
        except Exception:  # one broken dist-info must not hide the other packages
            continue
        if not name or not version:
            continue
        name = normalise(name)
        # realpath: a venv's lib64 -> lib symlink would otherwise count one install twice
        key = (name, os.path.realpath(location))
        if key in seen:
            continue
        seen.add(key)
        if name == "pip" and pip_version is None:
            pip_version = version
        if is_ml_distribution(name):
            order.setdefault(location, len(order))
            packages.append({"name": name, "version": version, "location": location})
    return {
        "executable": sys.executable,
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "prefix": sys.prefix,
        "virtualenv": virtualenv(),
        "conda_env": conda_env(environ),
        "pip_version": pip_version
        or unavailable("pip is not installed in this interpreter", f"{sys.executable} -m ensurepip --upgrade"),
        # sys.path order (the import order), then by name within one folder, so snapshots diff cleanly
        "packages": sorted(packages, key=lambda package: (order[package["location"]], package["name"])),
        "is_user_site_enabled": bool(site.ENABLE_USER_SITE),
    }


def virtualenv() -> str | None:
    """The interpreter's own venv. Not $VIRTUAL_ENV: that names the *activated* one, maybe another interpreter's."""
    base = getattr(sys, "real_prefix", None) or sys.base_prefix  # real_prefix: virtualenv < 20
    return sys.prefix if os.path.realpath(sys.prefix) != os.path.realpath(base) else None


def conda_env(environ: Mapping[str, str]) -> str | None:
    """The conda environment this interpreter belongs to (a venv made from a conda Python counts its base)."""
    for prefix in (sys.prefix, sys.base_prefix):
        if not Path(prefix, "conda-meta").is_dir():
            continue
        active = environ.get("CONDA_PREFIX")
        if active and environ.get("CONDA_DEFAULT_ENV") and os.path.realpath(active) == os.path.realpath(prefix):
            return environ["CONDA_DEFAULT_ENV"]
        # only the root installation has condabin/; conda calls it "base"
        return "base" if Path(prefix, "condabin").is_dir() else Path(prefix).name
    return None


def is_installed(name: str) -> bool:
    """Installed per its metadata, or importable (a source checkout, a bare folder on PYTHONPATH)."""
    import importlib.util
    from importlib import metadata

    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        pass
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# What torch, NumPy and NVML said while torch was imported and CUDA initialised: each warning as
# "Category: message", then what was written to sys.stderr (NumPy's "A module that was compiled using NumPy
# 1.x cannot be run in NumPy 2.0.0" is a print, not a warning). envcheck decodes it with the parsers it reads
# pasted reports with (importers/runtime_messages.py), so a live finding can quote the line as a paste's does.
RUNTIME_OUTPUT: list[str] = []
MAX_RUNTIME_OUTPUT_CHARS = 20000  # a warning printed in a loop must not fill the result
MAX_IMPORT_OUTPUT_CHARS = 4000  # the same bound for what one extension's import printed


class StderrCopy:
    """sys.stderr that still writes through, keeping a copy of the text (Python-level writes only: what C++
    writes to file descriptor 2 goes straight to the parent, which shows its tail when the probe fails).
    With `is_write_through` False it only keeps the text (sys.stdout during an extension import: the JSON line
    that follows must stay the only thing the parent reads there)."""

    def __init__(self, stream: Any, limit: int = MAX_RUNTIME_OUTPUT_CHARS, is_write_through: bool = True) -> None:
        self.stream = stream
        self.limit = limit
        self.is_write_through = is_write_through
        self.parts: list[str] = []
        self.kept = 0

    def write(self, text: str) -> int:
        if self.kept < self.limit:
            self.parts.append(str(text)[: self.limit - self.kept])
            self.kept += len(self.parts[-1])
        if not self.is_write_through:
            return len(text)
        return int(self.stream.write(text) or 0)

    def flush(self) -> None:
        if self.is_write_through:
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def keep_warnings(caught: Any) -> None:
    """Add recorded warnings to RUNTIME_OUTPUT; an inner catch_warnings hides them from the outer one."""
    for warning in caught:
        RUNTIME_OUTPUT.append(f"{warning.category.__name__}: {warning.message}")


def runtime_output(copy: StderrCopy) -> list[str]:
    return bounded_lines([*RUNTIME_OUTPUT, *"".join(copy.parts).splitlines()], MAX_RUNTIME_OUTPUT_CHARS)


def bounded_lines(lines: list[str], limit: int) -> list[str]:
    """The non-blank lines, each once, until `limit` characters are kept."""
    kept: list[str] = []
    total = 0
    for line in lines:
        if line.strip() and line not in kept and total < limit:
            kept.append(line[:limit])
            total += len(line)
    return kept


def collect_framework() -> dict[str, Any]:
    """FrameworkFacts, with what torch printed and warned while it was imported, initialised CUDA and tested."""
    copy = StderrCopy(sys.stderr)
    sys.stderr = copy
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            facts = import_and_test_torch()
        keep_warnings(caught)
    finally:
        sys.stderr = copy.stream
    facts["runtime_output"] = runtime_output(copy)
    return facts


def import_and_test_torch() -> dict[str, Any]:
    """FrameworkFacts: import torch, then record its build, its view of the GPUs and a smoke test on each."""
    facts: dict[str, Any] = {
        "interpreter": sys.executable,
        "python_version": platform.python_version(),
        "is_torch_installed": is_installed("torch"),
        "torch": None,
        "import_error": None,
        "import_traceback_tail": None,
    }
    if not facts["is_torch_installed"]:
        facts["extensions"] = collect_extensions("torch is not installed")
        return facts
    started = time.perf_counter()
    try:
        import torch
    except (Exception, SystemExit) as error:  # a broken torch raises anything: that is the fact
        facts["import_error"] = exception_line(error)
        facts["import_traceback_tail"] = traceback_tail()
        facts["extensions"] = collect_extensions("torch itself failed to import")
        return facts
    import_duration_s = time.perf_counter() - started
    location = module_location(torch)
    if not isinstance(getattr(torch, "__version__", None), str):
        facts["import_error"] = (
            f"the torch imported from {location} has no __version__: a folder named torch shadowing the package?"
        )
        facts["extensions"] = collect_extensions("torch itself failed to import")
        return facts
    facts["torch"] = torch_facts(torch, location, import_duration_s)
    # after torch's facts: an extension's import loads libraries that must not count as torch's
    facts["extensions"] = collect_extensions(None)
    return facts


def collect_extensions(why_not_imported: str | None) -> list[dict[str, Any]]:
    """Every installed distribution of EXTENSION_MODULES: its build metadata, and (when torch imported, so
    `why_not_imported` is None) whether its module imports, each import bounded by a thread with a deadline."""
    found = {name: distribution for name in (*EXTENSION_MODULES, "torch") if (distribution := find_distribution(name))}
    torch_pins = {requirement_name(line): line for line in read_requires(found["torch"])} if "torch" in found else {}
    extensions = []
    budget_end = time.monotonic() + EXTENSION_IMPORT_BUDGET_S
    for name in sorted(found):
        if name == "torch":
            continue
        facts = extension_metadata(name, found[name])
        facts["pinned_by_torch"] = torch_pins.get(name)
        reason = None
        if name in NOT_IMPORTED:
            reason = NOT_IMPORTED[name]
        elif why_not_imported is not None:
            reason = f"import not tried: {why_not_imported}"
        elif time.monotonic() > budget_end:
            reason = f"import not tried: the {EXTENSION_IMPORT_BUDGET_S:g} s budget for extension imports was spent"
        if reason is None:
            imported = import_bounded(EXTENSION_MODULES[name])
            facts["import_error"], facts["import_duration_s"], facts["import_output"] = imported
        else:
            facts["import_error"] = facts["import_duration_s"] = facts["import_output"] = unavailable(reason)
        extensions.append(facts)
    return extensions


def find_distribution(name: str) -> Any:
    """The first install of `name` on sys.path, or None. Looked up by name (a few ms) rather than by reading every
    distribution's metadata (tens of ms); Python < 3.10 does not normalise names, so the dist-info spelling
    (flash_attn-2.6.3.dist-info) is tried too."""
    from importlib import metadata

    for spelling in dict.fromkeys((name, name.replace("-", "_"))):
        try:
            distribution = metadata.distribution(spelling)
        except (metadata.PackageNotFoundError, ValueError):
            continue
        if normalise(attempt(lambda: distribution.metadata["Name"], "") or "") == name:  # noqa: B023
            return distribution
    return None


def extension_metadata(name: str, distribution: Any) -> dict[str, Any]:
    """What an installed extension's dist-info says about its build: version, WHEEL tags, torch requirement, URL."""
    wheel = attempt(lambda: distribution.read_text("WHEEL"), None) or ""
    direct_url = attempt(lambda: json.loads(distribution.read_text("direct_url.json") or "null"), None)
    url = direct_url.get("url") if isinstance(direct_url, dict) else None
    return {
        "name": name,
        "version": str(attempt(lambda: distribution.metadata["Version"], "") or ""),
        "location": str(attempt(lambda: distribution.locate_file(""), "")),
        "wheel_tags": [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")],
        "requires_torch": [line for line in read_requires(distribution) if requirement_name(line) == "torch"],
        "origin_url": url if isinstance(url, str) else None,
    }


def read_requires(distribution: Any) -> list[str]:
    return [str(line) for line in attempt(lambda: distribution.requires, None) or ()]


def requirement_name(line: str) -> str:
    """The normalised distribution name a Requires-Dist line starts with: 'torch==2.4.1' -> 'torch'."""
    match = _REQUIREMENT_NAME.match(line)
    return normalise(match.group(1)) if match else ""


def import_bounded(module: str, timeout_s: float = EXTENSION_IMPORT_TIMEOUT_S) -> tuple[str | None, float, list[str]]:
    """(None, seconds, printed) when `import MODULE` succeeds, else (its exception line, seconds, printed).

    In a daemon thread, so an import that hangs (a CUDA init waiting on a lost GPU, a lock) is recorded and
    left behind; main() ends the process without waiting for it. `printed`: what the import warned and wrote to
    sys.stdout and sys.stderr (where logging's fallback handler writes) until it ended or its deadline passed, one
    line each, at most MAX_IMPORT_OUTPUT_CHARS. Its stdout is kept, not passed on (the JSON line follows there);
    its stderr and warnings still reach the framework's runtime output as before.
    """
    import importlib

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            importlib.import_module(module)
            outcome["error"] = None
        except (Exception, SystemExit) as error:  # a broken extension raises anything: that is the fact
            outcome["error"] = exception_line(error)

    saved = sys.stdout, sys.stderr
    stdout = StderrCopy(sys.stdout, MAX_IMPORT_OUTPUT_CHARS, is_write_through=False)
    stderr = StderrCopy(sys.stderr, MAX_IMPORT_OUTPUT_CHARS)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sys.stdout, sys.stderr = stdout, stderr  # the main thread only waits meanwhile: nothing of ours is caught
        try:
            thread = threading.Thread(target=run, name=f"import-{module}", daemon=True)
            thread.start()
            thread.join(timeout_s)
        finally:
            sys.stdout, sys.stderr = saved  # a hung import printing later writes to the real streams again
    duration_s = round(time.perf_counter() - started, 4)
    keep_warnings(caught)
    warned = [f"{warning.category.__name__}: {warning.message}" for warning in caught]
    printed = bounded_lines([*warned, *"".join(stdout.parts + stderr.parts).splitlines()], MAX_IMPORT_OUTPUT_CHARS)
    if "error" not in outcome:
        return f"TimeoutError: import {module} did not finish within {timeout_s:g} s", duration_s, printed
    return outcome["error"], duration_s, printed


def module_location(module: Any) -> str:
    """The folder a module was imported from; a namespace package (a bare torch/ folder) has only __path__."""
    file = getattr(module, "__file__", None)
    if file:
        return str(Path(file).parent)
    paths = list(getattr(module, "__path__", None) or ())
    return str(paths[0]) if paths else f"unknown: {module!r} has neither __file__ nor __path__"


def attempt(call: Callable[[], Any], default: Any) -> Any:
    """call(), or `default` when it raises. Callers pass lambdas so that attribute lookups are guarded too.

    This script is the one place besides the collector that catches Exception: it runs inside a
    foreign interpreter with whatever torch it has, and one failing call must not lose the others.
    """
    try:
        return call()
    except Exception:  # see the docstring
        return default


def attempt_fact(call: Callable[[], Any]) -> Any:
    """call(), or an Unavailable with the exception line when it raises."""
    try:
        return call()
    except Exception as error:  # see attempt()
        return unavailable(exception_line(error))


def torch_facts(torch: Any, location: str, import_duration_s: float) -> dict[str, Any]:
    cuda_version = attempt(lambda: torch.version.cuda, None)
    hip_version = attempt(lambda: getattr(torch.version, "hip", None), None)
    is_gpu_build = bool(cuda_version or hip_version)
    is_cuda_available, cuda_error = cuda_availability(torch)
    device_count = attempt(lambda: int(torch.cuda.device_count()), 0) if is_cuda_available else 0
    return {
        "version": str(torch.__version__),
        "cuda_version": str(cuda_version) if cuda_version else None,
        "hip_version": str(hip_version) if hip_version else None,
        # version() is None when torch was built without cuDNN, and raises when the library is unusable
        "cudnn_version": attempt_fact(lambda: torch.backends.cudnn.version()) if is_gpu_build else None,  # noqa: PLW0108
        "nccl_version": attempt_fact(lambda: nccl_version(torch)) if is_gpu_build else None,
        "is_cuda_available": is_cuda_available,
        "cuda_error": cuda_error,
        "is_mps_available": attempt(lambda: bool(torch.backends.mps.is_available()), False),
        "device_count": device_count,
        "arch_list": attempt(lambda: [str(arch) for arch in torch.cuda.get_arch_list()], []),
        "devices": [device_facts(torch, index) for index in range(device_count)],
        "cpu_smoke_test": smoke_test(torch, "cpu"),
        "location": location,
        "import_duration_s": round(import_duration_s, 4),
        # last: after the import, CUDA's initialisation and the smoke tests, which load libraries lazily
        "loaded_cuda_libraries": loaded_cuda_libraries(),
        "cxx11_abi": attempt_fact(lambda: bool(torch._C._GLIBCXX_USE_CXX11_ABI)),
    }


def loaded_cuda_libraries(maps: str = "/proc/self/maps") -> Any:
    """Paths of the CUDA-family libraries mapped into this process, sorted, or an Unavailable saying why.

    Command line equivalent: `grep -E 'lib(cudart|cublas|cudnn|nccl)' /proc/PID/maps`. The kernel writes the
    path the file was opened at after following symlinks, so it names the copy the dynamic loader chose.
    """
    if not sys.platform.startswith("linux"):
        return unavailable(f"which libraries a process loaded is read from /proc/self/maps, which {sys.platform} lacks")
    try:
        with open(maps, encoding="utf-8", errors="replace") as lines:
            return cuda_library_paths(lines)
    except OSError as error:
        return unavailable(f"cannot read {maps}: {exception_line(error)}")


def cuda_library_paths(lines: Any) -> list[str]:
    """The CUDA-family library paths in /proc/PID/maps lines ("address perms offset dev inode path")."""
    paths = set()
    for line in lines:
        fields = line.split(None, 5)
        if len(fields) < 6:  # anonymous memory has no path
            continue
        path = fields[5].strip()
        if path.endswith(" (deleted)"):  # replaced on disk since it was loaded (a pip upgrade under a live process)
            path = path[: -len(" (deleted)")]
        if path.startswith("/") and CUDA_LIBRARY.fullmatch(path.rsplit("/", 1)[-1]):
            paths.add(path)
    return sorted(paths)


def nccl_version(torch: Any) -> str:
    import torch.cuda.nccl  # rebinds the same torch module; the submodule is not always imported

    return format_nccl_version(torch.cuda.nccl.version())


def format_nccl_version(version: Any) -> str:
    """(2, 20, 5) or (2, 20, 5, "suffix") from torch >= 1.10, NCCL_VERSION_CODE from older ones."""
    if isinstance(version, int):
        # NCCL_VERSION_CODE is major*1000 + minor*100 + patch up to 2.8, major*10000 + minor*100 + patch since 2.9
        major, rest = divmod(version, 10000 if version >= 20900 else 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return ".".join(str(part) for part in version[:3]) + "".join(str(part) for part in version[3:])


def cuda_availability(torch: Any) -> tuple[bool, str | None]:
    """torch.cuda.is_available(), and the reason torch gives when it is not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            is_available = bool(torch.cuda.is_available())
        except Exception as error:  # see attempt()
            return False, exception_line(error)
    keep_warnings(caught)
    if is_available:
        return True, None
    messages = [" ".join(str(warning.message).split()) for warning in caught]
    if not messages and attempt(lambda: torch.backends.cuda.is_built(), False):  # noqa: PLW0108
        # is_available() is silent when the driver is missing; init() raises with torch's own explanation
        # ("Found no NVIDIA driver on your system", "No CUDA GPUs are available").
        try:
            torch.cuda.init()
        except Exception as error:  # see attempt()
            messages.append(exception_line(error))
    return False, "; ".join(messages) or None


def device_facts(torch: Any, index: int) -> dict[str, Any]:
    properties = attempt_fact(lambda: torch.cuda.get_device_properties(index))
    if isinstance(properties, dict):  # the properties call failed: each field says why
        name = capability = memory = multiprocessors = properties
    else:
        name = attempt_fact(lambda: str(properties.name))
        capability = attempt_fact(lambda: f"{int(properties.major)}.{int(properties.minor)}")
        memory = attempt_fact(lambda: int(properties.total_memory))
        multiprocessors = attempt_fact(lambda: int(properties.multi_processor_count))
    return {
        "index": index,
        "name": name,
        "compute_capability": capability,
        "memory_total_bytes": memory,
        "multiprocessor_count": multiprocessors,
        "smoke_test": smoke_test(torch, f"cuda:{index}"),
    }


def smoke_test(torch: Any, device: str) -> dict[str, Any]:
    """A small matmul on `device` compared with a float64 product on the CPU."""
    started = time.perf_counter()
    result: dict[str, Any] = {"passed": False, "max_abs_error": None, "error": None, "duration_s": 0.0}
    try:
        error = matmul_error(torch, device)
    except Exception as failure:  # "no kernel image is available" is the finding
        result["error"] = exception_line(failure)
    else:
        if not math.isfinite(error):  # JSON cannot hold NaN or infinity
            result["error"] = "the result holds NaN or infinity"
        else:
            result["max_abs_error"] = error
            result["passed"] = error <= SMOKE_TOLERANCE
            if not result["passed"]:
                result["error"] = f"largest deviation {error:.3g} exceeds {SMOKE_TOLERANCE}"
    result["duration_s"] = round(time.perf_counter() - started, 4)
    return result


def matmul_error(torch: Any, device: str) -> float:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(SMOKE_SIZE, SMOKE_SIZE, generator=generator)
    b = torch.randn(SMOKE_SIZE, SMOKE_SIZE, generator=generator)
    reference = a.double() @ b.double() + a.double()
    # No TF32 (CUDA) and no bfloat16 (oneDNN on CPU) for the test; this process exits right after, so
    # nothing needs restoring. torch < 1.12 has only the CUDA switch.
    if hasattr(torch, "set_float32_matmul_precision"):
        torch.set_float32_matmul_precision("highest")
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
    on_device = torch.device(device)
    # The add runs one of torch's own kernels: cuBLAS ships kernels for every GPU, so a matmul alone
    # would pass on a GPU the wheel was not built for; the add raises "no kernel image is available".
    product = a.to(on_device) @ b.to(on_device) + a.to(on_device)
    # .cpu() waits for the device, so an asynchronous CUDA error surfaces here, inside the caller's try
    return float((product.cpu().double() - reference).abs().max().item())


# The torchvision check after an install: three boxes, the second overlapping the first (IoU 0.68), so nms at
# IoU 0.5 keeps boxes 0 and 2. A torchvision built for another torch fails here (or at import) with
# "operator torchvision::nms does not exist".
NMS_BOXES = [[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]]
NMS_SCORES = [0.9, 0.8, 0.7]
NMS_KEPT = [0, 2]


def collect_install(device: str) -> dict[str, Any]:
    """InstallFacts: import torch and torchvision, then a matmul and torchvision.ops.nms on `device`."""
    facts: dict[str, Any] = {"interpreter": sys.executable, "device": device, "matmul": None, "nms": None}
    torch = facts_of_import("torch", facts)
    torchvision = facts_of_import("torchvision", facts) if torch is not None else None
    if torch is None:
        facts["torchvision"] = {
            "distribution_version": distribution_version("torchvision"),
            "version": None,
            "import_error": "not imported: torch did not import",
        }
        return facts
    on_device = "cuda:0" if device == "cuda" else device
    facts["matmul"] = smoke_test(torch, on_device)
    if torchvision is not None:
        facts["nms"] = nms_test(torch, torchvision, on_device)
    return facts


def distribution_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return str(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def facts_of_import(name: str, facts: dict[str, Any]) -> Any:
    """Import `name`, record ModuleImport facts under facts[name], return the module (None when it failed)."""
    import importlib

    record: dict[str, Any] = {"distribution_version": distribution_version(name), "version": None, "import_error": None}
    facts[name] = record
    try:
        module = importlib.import_module(name)
    except (Exception, SystemExit) as error:  # a broken install raises anything: that is the fact
        record["import_error"] = exception_line(error)
        return None
    version = getattr(module, "__version__", None)
    record["version"] = str(version) if version is not None else None
    return module


def nms_test(torch: Any, torchvision: Any, device: str) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"passed": False, "error": None, "duration_s": 0.0}
    try:
        boxes = torch.tensor(NMS_BOXES, dtype=torch.float32).to(device)
        scores = torch.tensor(NMS_SCORES, dtype=torch.float32).to(device)
        kept = [int(index) for index in torchvision.ops.nms(boxes, scores, 0.5).cpu().tolist()]
    except Exception as failure:  # "operator torchvision::nms does not exist" is the finding
        result["error"] = exception_line(failure)
    else:
        result["passed"] = kept == NMS_KEPT
        if not result["passed"]:
            result["error"] = f"nms kept boxes {kept}, expected {NMS_KEPT}"
    result["duration_s"] = round(time.perf_counter() - started, 4)
    return result


def main(argv: list[str]) -> int:
    modes: dict[str, Callable[[], dict[str, Any]]] = {
        "interpreter": collect_interpreter,
        "framework": collect_framework,
        # install-DEVICE: after `setup --apply`, on the device (cpu, cuda, mps) the plan is for
        "install-cpu": lambda: collect_install("cpu"),
        "install-cuda": lambda: collect_install("cuda"),
        "install-mps": lambda: collect_install("mps"),
    }
    if len(argv) != 2 or argv[1] not in modes:
        sys.stderr.write(f"usage: {argv[0]} {{{'|'.join(modes)}}}\n")
        return 2
    if sys.version_info < (3, 8):  # importlib.metadata is new in 3.8
        sys.stderr.write(f"envcheck needs Python 3.8 or newer as the target; this is {platform.python_version()}\n")
        return 3
    # `python this_file.py` puts envcheck/probes/ first on sys.path, where our own modules would shadow
    # others. Drop it. In framework mode put the working directory there instead, as `python -c "import
    # torch"` (and `python train.py` from a project root) would: a local torch/ folder that breaks the
    # user's import must break ours too, and show up in the traceback.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    if argv[1] == "framework" or argv[1].startswith("install-"):
        sys.path.insert(0, "")
    facts = modes[argv[1]]()
    sys.stdout.flush()
    # a leading newline so output a library left without one cannot share the marker's line
    sys.stdout.write("\n" + MARKER + json.dumps(facts, allow_nan=False) + "\n")
    sys.stdout.flush()
    if any(thread.name.startswith("import-") for thread in threading.enumerate()):
        os._exit(0)  # an extension import hung in a thread: interpreter shutdown could wait on its locks
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
