"""What torch, NVML and NumPy said in words while a pasted report was collected: each warning or error decoded
into its numbers, with the line it came from, so a finding can quote the evidence (issue 11, "read every line").

On a live snapshot the same parsers read what torch warned or printed while the framework probe imported it and
initialised CUDA (FrameworkFacts.runtime_output), so a finding quotes torch's own line on this machine too."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DriverTooOld:
    """ "The NVIDIA driver on your system is too old (found version 11040)" (c10/cuda, cudaErrorInsufficientDriver)."""

    driver_cuda_version: str  # the newest CUDA the driver serves, decoded: 11040 -> "11.4"
    source_line: str


@dataclass(frozen=True, slots=True)
class NoDriver:
    """ "Found no NVIDIA driver on your system" (c10/cuda, cudaErrorNoDevice / libcuda missing)."""

    source_line: str


@dataclass(frozen=True, slots=True)
class UnsupportedArch:
    """ "<GPU> with CUDA capability sm_120 is not compatible with the current PyTorch installation. The current
    PyTorch install supports CUDA capabilities sm_50 ... sm_90" (torch/cuda/__init__.py, _check_capability)."""

    gpu_name: str
    compute_capability: str  # "12.0"
    arch_list: tuple[str, ...]  # the wheel's, as quoted: ("sm_50", ..., "sm_90"); () when the line is cut
    source_line: str


@dataclass(frozen=True, slots=True)
class GpuTooOld:
    """ "Found GPU0 Tesla K40m which is of cuda capability 3.5. PyTorch no longer supports this GPU because it is
    too old. The minimum cuda capability supported by this library is 3.7." (torch/cuda/__init__.py)."""

    gpu_index: int
    gpu_name: str
    compute_capability: str  # "3.5"
    minimum_capability: str | None  # "3.7"; None when the line is cut before it
    source_line: str


@dataclass(frozen=True, slots=True)
class NumpyFailure:
    """NumPy could not be used from torch: "Failed to initialize NumPy", "Numpy is not available", "A module that
    was compiled using NumPy 1.x cannot be run in NumPy 2.0.0"."""

    numpy_version: str | None  # the NumPy named in the line ("2.0.0"); None when it names none
    source_line: str


@dataclass(frozen=True, slots=True)
class NvmlMismatch:
    """ "Failed to initialize NVML: Driver/library version mismatch": the kernel module and libnvidia-ml differ."""

    library_version: str | None  # "NVML library version: 550.54" when nvidia-smi printed it
    source_line: str


@dataclass(frozen=True, slots=True)
class CudnnMismatch:
    """ "cuDNN version incompatibility: PyTorch was compiled against (9, 20, 0) but found runtime version (9, 13, 1)"
    (torch/backends/cudnn/__init__.py; before torch 1.8 "... but linked against 7005")."""

    compiled_version: str  # "9.20.0"
    runtime_version: str  # "9.13.1"
    source_line: str


@dataclass(frozen=True, slots=True)
class RuntimeMessages:
    driver_too_old: DriverTooOld | None = None
    no_driver: NoDriver | None = None
    unsupported_archs: tuple[UnsupportedArch, ...] = ()
    gpus_too_old: tuple[GpuTooOld, ...] = ()
    numpy_failure: NumpyFailure | None = None
    nvml_mismatch: NvmlMismatch | None = None
    cudnn_mismatch: CudnnMismatch | None = None

    @property
    def is_cuda_init_failure(self) -> bool:
        """torch's CUDA initialisation failed, so torch.cuda.is_available() returned False."""
        return self.driver_too_old is not None or self.no_driver is not None


NO_MESSAGES = RuntimeMessages()


def quoted(source_line: str) -> str:
    """How a finding cites the line its fact came from."""
    return f"from the line: {source_line}"
