"""Facts reported by the out-of-process framework probe (torch imported in the target interpreter)."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable

# What snapshots from before the field, collect_env imports and other sources without it decode to.
LIBRARIES_NOT_RECORDED = Unavailable(
    "this snapshot does not record which libraries torch loaded (envcheck's own torch probe records them on Linux)"
)


ABI_NOT_RECORDED = Unavailable("this snapshot does not record torch's C++ ABI (envcheck's torch probe does)")
EXTENSIONS_NOT_RECORDED = Unavailable(
    "this snapshot does not record the compiled extensions beside torch (envcheck's torch probe does)"
)
IMPORT_OUTPUT_NOT_RECORDED = Unavailable(
    "this snapshot does not record what extension imports printed (envcheck's torch probe does)"
)


@dataclass(frozen=True, slots=True)
class SmokeTest:
    """A small float32 matmul on a device (TF32 off) compared with a float64 product on the CPU."""

    passed: bool
    max_abs_error: float | None  # None when the device computation itself failed
    error: str | None  # e.g. "CUDA error: no kernel image is available for execution on the device"
    duration_s: float


@dataclass(frozen=True, slots=True)
class TorchDevice:
    index: int
    # Unavailable when torch.cuda.get_device_properties() raised for this device (a GPU that fell off the bus)
    name: str | Unavailable
    compute_capability: str | Unavailable  # "8.0"
    memory_total_bytes: int | Unavailable
    multiprocessor_count: int | Unavailable
    smoke_test: SmokeTest


@dataclass(frozen=True, slots=True)
class TorchFacts:
    version: str  # verbatim, e.g. 2.3.1+cu121
    cuda_version: str | None  # torch.version.cuda; None for a CPU or ROCm build
    hip_version: str | None  # torch.version.hip; None unless a ROCm build
    cudnn_version: int | Unavailable | None  # torch.backends.cudnn.version(), e.g. 90100
    nccl_version: str | Unavailable | None  # "2.20.5"; None when the build has no NCCL
    is_cuda_available: bool
    cuda_error: str | None  # the warning/error torch gave when CUDA was not available
    is_mps_available: bool | Unavailable  # Unavailable in a collect_env import
    device_count: int | Unavailable  # Unavailable in a collect_env import (it prints nvidia-smi's list)
    # torch.cuda.get_arch_list(): sm_80, sm_90, compute_90 (PTX); () when the source did not report it
    arch_list: tuple[str, ...]
    devices: tuple[TorchDevice, ...]
    cpu_smoke_test: SmokeTest | Unavailable | None  # None: not run; Unavailable: the source runs none
    location: str | Unavailable  # where the imported torch package lives
    import_duration_s: float | Unavailable
    # Paths of the CUDA-family shared libraries (libcudart, libcublas, libcudnn*, libnccl, libcuda, ...) mapped into
    # the probe's process after the import, CUDA's initialisation and the smoke tests, from /proc/self/maps:
    # the copies the dynamic loader actually chose. Last, with a default, so older snapshots still decode.
    loaded_cuda_libraries: tuple[str, ...] | Unavailable = LIBRARIES_NOT_RECORDED
    # torch._C._GLIBCXX_USE_CXX11_ABI: the C++ ABI every extension must be built with (False: the pre-C++11
    # std::string, as torch's pip wheels before 2.7). With a default, so older snapshots still decode.
    cxx11_abi: bool | Unavailable = ABI_NOT_RECORDED


@dataclass(frozen=True, slots=True)
class Extension:
    """An installed distribution that ships code compiled against torch, read from its metadata in the target."""

    name: str  # normalised distribution name: flash-attn, torch-scatter
    version: str  # verbatim, local tag included: 2.6.3+cu123torch2.4cxx11abiFALSE, 2.1.2+pt23cu121
    location: str | Unavailable  # the sys.path entry it was found in; Unavailable in a collect_env import
    wheel_tags: tuple[str, ...]  # the Tag lines of its dist-info WHEEL file; () without one (an egg, a conda package)
    requires_torch: tuple[str, ...]  # its Requires-Dist lines naming torch, verbatim ("torch==2.4.1")
    # the Requires-Dist line of torch's own metadata naming it (torch pins triton: "triton==3.1.0; ..."); None if none
    pinned_by_torch: str | None
    # the URL pip installed it from (direct_url.json, PEP 610): a wheel downloaded from a release page names its build
    # in the file name; None when it came from an index
    origin_url: str | None
    # None: it imported; the exception line when it did not; Unavailable when no import was tried (torch itself
    # failed to import, or a source that cannot tell, such as a collect_env paste)
    import_error: str | Unavailable | None
    import_duration_s: float | Unavailable
    # what its import printed (stdout, stderr, logging's fallback handler) and warned, one line each, bounded: an
    # import can warn and go on (bitsandbytes: "compiled without GPU support"). () when it said nothing; Unavailable
    # when no import was tried. Last, with a default, so older snapshots still decode.
    import_output: tuple[str, ...] | Unavailable = IMPORT_OUTPUT_NOT_RECORDED


@dataclass(frozen=True, slots=True)
class FrameworkFacts:
    interpreter: str  # the interpreter the probe ran in
    python_version: str | Unavailable  # Unavailable in a collect_env paste cut off before its `Python version` line
    is_torch_installed: bool
    torch: TorchFacts | None  # None when torch is missing or failed to import
    import_error: str | None  # the exception line when `import torch` failed
    import_traceback_tail: str | None
    # the installed distributions of profiles/compat/extensions.toml (flash-attn, xformers, torch-scatter, ...), what
    # their metadata says they were built for, and whether they import beside this torch. Last, with a default, so
    # older snapshots still decode.
    extensions: tuple[Extension, ...] | Unavailable = EXTENSIONS_NOT_RECORDED
    # What torch, NumPy and NVML warned or wrote to stderr while the live probe imported torch, initialised CUDA
    # and ran its smoke tests ("UserWarning: CUDA initialization: ..."), one line each; () for a paste (its text
    # is read whole) and for snapshots saved before it was recorded. collect() decodes it into Snapshot.messages.
    runtime_output: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModuleImport:
    """One package imported in the target interpreter after an install (`setup --apply` / `--check`)."""

    distribution_version: str | None  # importlib.metadata's version; None: no such distribution installed
    version: str | None  # the imported module's __version__ (what actually runs); None when the import failed
    import_error: str | None  # the exception line, e.g. "RuntimeError: operator torchvision::nms does not exist"


@dataclass(frozen=True, slots=True)
class OperatorTest:
    """torchvision.ops.nms on three boxes on a device: the compiled operators torchvision registers with torch."""

    passed: bool
    error: str | None  # e.g. "RuntimeError: operator torchvision::nms does not exist"
    duration_s: float


@dataclass(frozen=True, slots=True)
class InstallFacts:
    """What an installed torch + torchvision does in the target interpreter on the device a plan is for."""

    interpreter: str
    device: str  # "cpu", "cuda", "mps"
    torch: ModuleImport
    torchvision: ModuleImport
    matmul: SmokeTest | None  # None: torch did not import
    nms: OperatorTest | None  # None: torch or torchvision did not import
