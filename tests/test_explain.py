"""`envcheck explain` on error texts written in each signature's real format, judged against hand-built Snapshots.

Every signature of profiles/failure_signatures.toml has a case here (a test checks that none is missing); each
case states the cause the Snapshot's facts must pick, or None where no fact can decide and the candidates stand."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from envcheck.explain import ExplainReport, Explanation, explain_text
from envcheck.explain.decode import capability_of_sm
from envcheck.explain.engine import no_snapshot
from envcheck.facts.common import Unavailable
from envcheck.facts.environment import EnvironmentFacts, EnvironmentVariable, NvSwitchFabric
from envcheck.facts.gpu import no_gpu_facts
from envcheck.knowledge import load_knowledge
from envcheck.knowledge.signatures import load_signatures
from envcheck.snapshot import Snapshot
from tests import factories

GIB = 1024**3
MIB = 1024**2


def explain(text: str, snapshot: Snapshot | None = None) -> ExplainReport:
    return explain_text(text, snapshot or no_snapshot("not collected"), load_knowledge(), load_signatures())


def found(report: ExplainReport, signature: str) -> Explanation:
    matches = [e for e in report.explanations if e.signature == signature]
    assert matches, f"{signature} not found; found {[e.signature for e in report.explanations]}"
    return matches[0]


def environment(fabric: Any = None, **variables: str) -> EnvironmentFacts:
    facts = EnvironmentFacts(tuple(EnvironmentVariable(k, v, False) for k, v in sorted(variables.items())))
    return replace(facts, fabric=fabric) if fabric is not None else facts


def on_gpu(machine: str, **sections: Any) -> Snapshot:
    return factories.gpu_machine(factories.nvml_gpu(machine), **sections)


def with_torch(**changes: Any) -> Snapshot:
    return factories.snapshot(framework=factories.framework(torch=factories.torch(**changes)))


@dataclass(frozen=True)
class Case:
    name: str
    signature: str
    text: str
    snapshot: Any  # a Snapshot, or a function making one (fixtures load lazily)
    cause: str | None
    words: tuple[str, ...] = ()  # each must appear in the fix, the because lines or the decoded numbers


OOM_OTHER = """\
Traceback (most recent call last):
  File "/home/ada/train.py", line 88, in <module>
    loss.backward()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of \
which 1.06 GiB is free. Process 4121 has 40.00 GiB memory in use. Including non-PyTorch memory, this process has \
38.00 GiB memory in use. Of the allocated memory 36.50 GiB is allocated by PyTorch, and 1.02 GiB is reserved by \
PyTorch but unallocated. If reserved but unallocated memory is large try setting \
PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.
"""
OOM_FRAGMENTED = """\
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of 23.65 GiB of
which 512.00 MiB is free. Including non-PyTorch memory, this process has 23.12 GiB memory in use. Of the allocated
memory 15.80 GiB is allocated by PyTorch, and 6.90 GiB is reserved by PyTorch but unallocated. If reserved but
unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.
"""
OOM_TOO_LARGE = """\
torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 23.65 GiB \
of which 3.06 MiB is free. Including non-PyTorch memory, this process has 23.64 GiB memory in use. Of the allocated \
memory 23.19 GiB is allocated by PyTorch, and 12.48 MiB is reserved by PyTorch but unallocated.
"""
OOM_OLD = """\
RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total capacity; 6.33 GiB already \
allocated; 7.31 MiB free; 6.40 GiB reserved in total by PyTorch) If reserved memory is >> allocated memory try \
setting max_split_size_mb to avoid fragmentation.
"""
SM120 = """\
/opt/venv/lib/python3.11/site-packages/torch/cuda/__init__.py:230: UserWarning:
NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation.
The current PyTorch install supports CUDA capabilities sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90.
If you want to use the NVIDIA GeForce RTX 5090 GPU with PyTorch, please check the instructions at \
https://pytorch.org/get-started/locally/

  warnings.warn(
RuntimeError: CUDA error: no kernel image is available for execution on the device
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
"""
TOO_OLD_GPU = """\
/usr/lib/python3/dist-packages/torch/cuda/__init__.py:152: UserWarning:
    Found GPU0 Tesla K40m which is of cuda capability 3.5.
    PyTorch no longer supports this GPU because it is too old.
    The minimum cuda capability supported by this library is 3.7.

  warnings.warn(old_gpu_warn.format(d, name, major, minor, min_arch // 10, min_arch % 10))
"""
NO_KERNEL = """\
  File "/home/ada/train.py", line 12, in <module>
    y = model(x.cuda())
RuntimeError: CUDA error: no kernel image is available for execution on the device
Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.
"""
DRIVER_TOO_OLD = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "/opt/conda/lib/python3.10/site-packages/torch/cuda/__init__.py", line 298, in _lazy_init
    torch._C._cuda_init()
RuntimeError: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU driver by \
downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx Alternatively, go \
to: https://pytorch.org to install a PyTorch version that has been compiled with your version of the CUDA driver.
"""
INSUFFICIENT = """\
/usr/local/lib/python3.10/dist-packages/torch/cuda/__init__.py:138: UserWarning: CUDA initialization: Unexpected \
error from cudaGetDeviceCount(). Did you run some cuda functions before calling NumCudaDevices() that might have \
already set an error? Error 35: CUDA driver version is insufficient for CUDA runtime version (Triggered internally \
at ../c10/cuda/CUDAFunctions.cpp:108.)
"""
UNDEFINED_SYMBOL = """\
Traceback (most recent call last):
  File "/opt/conda/lib/python3.10/site-packages/torch_scatter/__init__.py", line 16, in <module>
    torch.ops.load_library(spec.origin)
OSError: /opt/conda/lib/python3.10/site-packages/torch_scatter/_scatter_cuda.so: undefined symbol: \
_ZN3c1017RegisterOperatorsD1Ev
"""
NMS = """\
  File "/opt/venv/lib/python3.11/site-packages/torchvision/_meta_registrations.py", line 164, in <module>
    @register_meta("nms")
RuntimeError: operator torchvision::nms does not exist
"""
NUMPY = """\
A module that was compiled using NumPy 1.x cannot be run in
NumPy 2.0.0 as it may crash. To support both 1.x and 2.x
versions of NumPy, modules must be compiled with NumPy 2.0.
Some module may need to rebuild instead e.g. with 'pybind11>=2.12'.
Traceback (most recent call last):  File "/home/ada/app.py", line 1, in <module>
    import torch
AttributeError: _ARRAY_API not found
"""
WATCHDOG = """\
[rank3]:[E1128 10:12:44.123456 2291 ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: \
WorkNCCL(SeqNum=28421, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600018 milliseconds \
before timing out.
"""
NCCL_SHM = """\
node1:2291:2391 [0] include/shm.h:28 NCCL WARN Call to posix_fallocate failed : No space left on device
node1:2291:2391 [0] include/shm.h:48 NCCL WARN Error while creating shared memory segment \
/dev/shm/nccl-dBGEpo (size 9637888)
torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, \
unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5
ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.
"""
BUS_ERROR = """\
ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).
Traceback (most recent call last):
RuntimeError: DataLoader worker (pid 1871) is killed by signal: Bus error. It is possible that dataloader's workers \
are out of shared memory. Please try to raise your shared memory limit.
"""
CUBLAS = "RuntimeError: CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`\n"
CUBLAS_INDEX = """\
../aten/src/ATen/native/cuda/Indexing.cu:1236: indexSelectSmallIndex: block: [5,0,0], thread: [96,0,0] \
Assertion `srcIndex < srcSelectDimSize` failed.
RuntimeError: CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`
"""
NO_DRIVER = """\
  File "/usr/local/lib/python3.10/dist-packages/torch/cuda/__init__.py", line 302, in _lazy_init
    torch._C._cuda_init()
RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver \
from http://www.nvidia.com/Download/index.aspx
"""
NO_DEVICE = """\
UserWarning: CUDA initialization: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before \
calling NumCudaDevices() that might have already set an error? Error 100: no CUDA-capable device is detected
"""
NVML = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.54\n"
WIN126 = """\
OSError: [WinError 126] The specified module could not be found. Error loading \
"C:\\Users\\ada\\venv\\Lib\\site-packages\\torch\\lib\\fbgemm.dll" or one of its dependencies.
"""
NVJITLINK = """\
ImportError: /opt/venv/lib/python3.11/site-packages/torch/lib/../../nvidia/cusparse/lib/libcusparse.so.12: \
undefined symbol: __nvJitLinkComplete_12_4, version libnvJitLink.so.12
"""
CUDNN = """\
RuntimeError: cuDNN version incompatibility: PyTorch was compiled  against (8, 5, 0) but found runtime version \
(8, 3, 3). PyTorch already comes bundled with cuDNN. One option to resolving this error is to ensure PyTorch can \
find the bundled cuDNN.Looks like your LD_LIBRARY_PATH contains incompatible version of cudnnPlease either remove it \
from the path or install cudnn (8, 5, 0)
"""
ERROR_802 = """\
/opt/venv/lib/python3.10/site-packages/torch/cuda/__init__.py:128: UserWarning: CUDA initialization: Unexpected \
error from cudaGetDeviceCount(). Did you run some cuda functions before calling NumCudaDevices() that might have \
already set an error? Error 802: system not yet initialized (Triggered internally at \
../c10/cuda/CUDAFunctions.cpp:108.)
"""
ERROR_804 = """\
UserWarning: CUDA initialization: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before \
calling NumCudaDevices() that might have already set an error? Error 804: forward compatibility was attempted on non \
supported HW (Triggered internally at ../c10/cuda/CUDAFunctions.cpp:108.)
"""
ERROR_803 = """\
RuntimeError: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before calling \
NumCudaDevices() that might have already set an error? Error 803: system has unsupported display driver / cuda \
driver combination
"""
LIBCUDA = """\
Could not load library libcudnn_cnn_infer.so.8. Error: libcuda.so: cannot open shared object file: No such file or \
directory
Aborted (core dumped)
"""
GLIBC = """\
ImportError: /lib64/libc.so.6: version `GLIBC_2.28' not found (required by \
/opt/venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so)
"""
BITSANDBYTES = """\
RuntimeError:
        CUDA Setup failed despite GPU being available. Please run the following command to get more information:

        python -m bitsandbytes
"""
PTX = """\
RuntimeError: CUDA error: the provided PTX was compiled with an unsupported toolchain.
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
"""
HIP = """\
RuntimeError: HIP error: invalid device function
HIP kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
"""
FORK = """\
RuntimeError: Cannot re-initialize CUDA in forked subprocess. To use CUDA with multiprocessing, you must use the \
'spawn' start method
"""
FD = """\
  File "/usr/lib/python3.10/multiprocessing/reduction.py", line 164, in recvfds
    raise RuntimeError('received %d items of ancdata' %
RuntimeError: received 0 items of ancdata
"""
LIGHTNING = """\
GPU available: True (cuda), used: True
Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/8
Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/8
"""
REMOTE_PEER = """\
torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:275, remote process \
exited or there was a network error, NCCL version 2.19.3
ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.
Last error:
socketProgress: Connection closed by remote peer node-7<54011>
"""


def fabric(running: bool) -> Any:
    return lambda: on_gpu(
        "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes",
        environment=environment(NvSwitchFabric(4, running)),
    )


CASES = (
    Case(
        "cpu wheel on a GPU machine",
        "install.torch_not_compiled_with_cuda",
        'Traceback (most recent call last):\n  File "t.py", line 3, in <module>\n'
        "    torch.zeros(1).cuda()\nAssertionError: Torch not compiled with CUDA enabled\n",
        lambda: factories.gpu_machine(
            factories.nvml_gpu("rtx4090-driver535.86.05"),
            factories.torch(version="2.3.1+cpu", cuda_version=None, arch_list=(), devices=()),
        ),
        "cpu_wheel",
        ("download.pytorch.org/whl/cu",),
    ),
    Case(
        "macos",
        "install.torch_not_compiled_with_cuda",
        "AssertionError: Torch not compiled with CUDA enabled\n",
        lambda: factories.snapshot(system=factories.system(os_name="Darwin")),
        "macos",
    ),
    Case("oom names the other process", "cuda.out_of_memory", OOM_OTHER, no_snapshot("x"), "other_process", ("4121",)),
    Case(
        "oom with processes on the GPU",
        "cuda.out_of_memory",
        OOM_TOO_LARGE,
        lambda: on_gpu("t4-driver515.105.01"),
        "other_process",
        ("nvidia-smi -i 0",),
    ),
    Case("oom fragmentation", "cuda.out_of_memory", OOM_FRAGMENTED, None, "fragmentation", ("6.9 GiB",)),
    Case("oom too large", "cuda.out_of_memory", OOM_TOO_LARGE, None, "too_large", ("20.0 MiB",)),
    Case("oom old wording", "cuda.out_of_memory", OOM_OLD, None, None, ("7.3 MiB free of 7.8 GiB",)),
    Case("sm_120 on an old wheel", "cuda.no_kernel_image", SM120, None, "gpu_too_new", ("cu128", "sm_120")),
    Case("gpu too old", "cuda.no_kernel_image", TOO_OLD_GPU, None, "gpu_too_old", ("Tesla K40m",)),
    Case(
        "no kernel image on a Kepler K80 with torch cu121",
        "cuda.no_kernel_image",
        NO_KERNEL,
        lambda: on_gpu("k80x4-driver430.26-ecc-dbe-retired"),
        "gpu_too_old",
        ("sm_37", "R470"),
    ),
    Case(
        "no kernel image from an extension",
        "cuda.no_kernel_image",
        NO_KERNEL,
        lambda: on_gpu("rtx4090-driver535.86.05"),
        "extension_arch",
        ("sm_89",),
    ),
    Case(
        "driver too old",
        "cuda.driver_too_old",
        DRIVER_TOO_OLD,
        factories.snapshot(),
        "driver_behind_wheel",
        ("11.4", "525.60.13"),
    ),
    Case(
        "insufficient driver in a container",
        "cuda.insufficient_driver",
        INSUFFICIENT,
        factories.snapshot(system=factories.system(container="docker")),
        "container_newer_than_host",
        ("error 35 = cudaErrorInsufficientDriver",),
    ),
    Case(
        "undefined symbol",
        "extension.undefined_symbol",
        UNDEFINED_SYMBOL,
        factories.snapshot(),
        None,
        ("torch-scatter", "2.3.1+cu121"),
    ),
    Case(
        "torchvision of another release",
        "install.torchvision_operator_missing",
        NMS,
        factories.snapshot(python=factories.python(packages=factories.packages(torch="2.3.1", torchvision="0.15.2"))),
        "version_mismatch",
    ),
    Case(
        "torchvision of another variant",
        "install.torchvision_operator_missing",
        NMS,
        factories.snapshot(
            python=factories.python(packages=factories.packages(torch="2.3.1+cu121", torchvision="0.18.1+cpu"))
        ),
        "variant_mismatch",
        ("cpu",),
    ),
    Case(
        "numpy 2 with an old torch",
        "install.numpy_abi",
        NUMPY,
        factories.snapshot(python=factories.python(packages=factories.packages(torch="2.1.2", numpy="2.0.0"))),
        "old_torch",
        ("numpy<2",),
    ),
    Case(
        "numpy 2 with a new torch",
        "install.numpy_abi",
        NUMPY,
        factories.snapshot(python=factories.python(packages=factories.packages(torch="2.4.0", numpy="2.0.0"))),
        "other_extension",
    ),
    Case(  # the same torch on Windows: its 2.4.0 wheels were built against NumPy 1.x (pytorch/pytorch#131668)
        "numpy 2 with torch 2.4.0 on Windows",
        "install.numpy_abi",
        NUMPY,
        factories.snapshot(
            system=factories.system(os_name="Windows"),
            python=factories.python(packages=factories.packages(torch="2.4.0", numpy="2.0.1")),
        ),
        "old_torch",
        ("numpy<2", "torch >= 2.4.1"),
    ),
    Case("nccl watchdog", "nccl.watchdog_timeout", WATCHDOG, None, None, ("ALLREDUCE", "600 s")),
    Case(
        "nccl shm in docker",
        "nccl.shm_exhausted",
        NCCL_SHM,
        factories.snapshot(storage=factories.storage(shm_total_bytes=64 * MIB, shm_free_bytes=60 * MIB)),
        "shm_too_small",
        ("9.2 MiB", "--shm-size"),
    ),
    Case(
        "bus error in docker",
        "dataloader.bus_error",
        BUS_ERROR,
        factories.snapshot(storage=factories.storage(shm_total_bytes=64 * MIB, shm_free_bytes=60 * MIB)),
        "shm_too_small",
        ("64.0 MiB",),
    ),
    Case("cublas after an index assertion", "cuda.cublas_not_initialized", CUBLAS_INDEX, None, "index_out_of_range"),
    Case("cublas near oom", "cuda.cublas_not_initialized", CUBLAS, lambda: on_gpu("t4-driver515.105.01"), "near_oom"),
    Case(
        "no driver in a container",
        "cuda.no_driver",
        NO_DRIVER,
        factories.snapshot(system=factories.system(container="docker")),
        "container_without_gpus",
        ("--gpus all",),
    ),
    Case(
        "no driver loaded",
        "cuda.no_driver",
        NO_DRIVER,
        factories.snapshot(
            gpu=no_gpu_facts(
                "nvml",
                "an NVIDIA GPU is on the PCI bus (0000:01:00.0) but the NVIDIA kernel driver is not loaded",
                "sudo modprobe nvidia",
            )
        ),
        "driver_not_installed",
    ),
    Case(
        "no device, every GPU hidden",
        "cuda.no_driver",
        NO_DEVICE,
        lambda: on_gpu("rtx4090-driver535.86.05", environment=environment(CUDA_VISIBLE_DEVICES="")),
        "devices_hidden",
        ("error 100 = cudaErrorNoDevice",),
    ),
    Case("nvml mismatch", "nvml.driver_library_mismatch", NVML, None, "upgrade_without_reboot", ("550.54",)),
    Case(
        "WinError 126 on torch 2.4",
        "windows.dll_load_failed",
        WIN126,
        with_torch(version="2.4.0+cpu", cuda_version=None),
        "msvc_runtime_missing",
        ("fbgemm.dll", "2.4.0"),
    ),
    Case(
        "nvjitlink wheel too old",
        "cuda.nvjitlink_symbol",
        NVJITLINK,
        factories.snapshot(
            python=factories.python(packages=factories.packages(torch="2.4.0", nvidia_nvjitlink_cu12="12.1.105"))
        ),
        "nvjitlink_wheel",
        ("12.4",),
    ),
    Case(
        "cudnn from LD_LIBRARY_PATH",
        "cudnn.version_mismatch",
        CUDNN,
        factories.snapshot(environment=environment(LD_LIBRARY_PATH="/usr/local/cuda-11.6/lib64")),
        "ld_library_path",
        ("8.5.0", "8.3.3"),
    ),
    Case(
        "802 without fabric manager",
        "cuda.error_802_fabric_manager",
        ERROR_802,
        fabric(False),
        "fabric_manager_not_running",
        ("systemctl",),
    ),
    Case(
        "802 with fabric manager running",
        "cuda.error_802_fabric_manager",
        ERROR_802,
        fabric(True),
        "fabric_manager_version",
    ),
    Case(
        "804",
        "cuda.error_803_804_compat",
        ERROR_804,
        lambda: on_gpu("rtx4090-driver535.86.05"),
        "forward_compat_on_consumer_gpu",
        ("RTX 4090",),
    ),
    Case("803", "cuda.error_803_804_compat", ERROR_803, None, "libcuda_mismatch", ("cudaErrorSystemDriverMismatch",)),
    Case(
        "libcuda under WSL",
        "cuda.libcuda_not_found",
        LIBCUDA,
        factories.snapshot(system=factories.system(is_wsl=True, wsl_version=2)),
        "wsl_library_path",
    ),
    Case(
        "glibc on CentOS 7",
        "system.glibc_too_old",
        GLIBC,
        factories.snapshot(system=factories.system(libc="glibc 2.17", distribution="CentOS Linux 7 (Core)")),
        "old_distribution",
        ("2.28", "glibc 2.17"),
    ),
    Case(
        "bitsandbytes with BNB_CUDA_VERSION",
        "bitsandbytes.cuda_setup",
        BITSANDBYTES,
        factories.snapshot(environment=environment(BNB_CUDA_VERSION="122")),
        "cuda_library_not_found",
    ),
    Case(
        "PTX newer than the driver",
        "cuda.unsupported_ptx",
        PTX,
        lambda: factories.gpu_machine(
            factories.nvml_gpu("rtx4090-driver535.86.05"),
            factories.torch_on(
                factories.nvml_gpu("rtx4090-driver535.86.05"), version="2.6.0+cu126", cuda_version="12.6"
            ),
        ),
        "driver_older_than_ptx",
        ("12.6", "12.2"),
    ),
    Case(
        "HIP invalid device function",
        "rocm.invalid_device_function",
        HIP,
        with_torch(version="2.5.1+rocm6.2", cuda_version=None, hip_version="6.2", arch_list=("gfx90a", "gfx942")),
        "gfx_not_in_wheel",
        ("gfx90a",),
    ),
    Case("fork", "multiprocessing.cuda_fork", FORK, factories.snapshot(), "fork_after_cuda", ("fork",)),
    Case(
        "ancdata with a low ulimit",
        "multiprocessing.fd_sharing",
        FD,
        factories.snapshot(system=factories.system(open_files_limit=1024)),
        "open_files_limit",
        ("1024",),
    ),
    Case(
        "lightning waits for ranks",
        "lightning.ddp_member_hang",
        LIGHTNING,
        factories.snapshot(environment=environment(SLURM_NTASKS="4")),
        "slurm_tasks_mismatch",
        ("SLURM_NTASKS=4", "8"),
    ),
    Case("nccl remote peer", "nccl.remote_peer", REMOTE_PEER, None, None),
    Case(
        "shape mismatch",
        "code.shape_mismatch",
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 256x10)\n",
        None,
        "program_bug",
    ),
    Case(
        "index assertion",
        "code.index_out_of_range",
        "/pytorch/aten/src/ATen/native/cuda/Indexing.cu:1146: indexSelectLargeIndex: block: [263,0,0], thread: [0,0,0] "
        "Assertion `srcIndex < srcSelectDimSize` failed.\nRuntimeError: CUDA error: device-side assert triggered\n",
        None,
        "program_bug",
    ),
    Case(
        "device-side assert",
        "code.device_side_assert",
        "RuntimeError: CUDA error: device-side assert triggered\n",
        None,
        "program_bug",
    ),
)


def _snapshot(case: Case) -> Snapshot | None:
    return case.snapshot() if callable(case.snapshot) else case.snapshot


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_signature_and_cause(case: Case) -> None:
    explanation = found(explain(case.text, _snapshot(case)), case.signature)
    assert (explanation.cause.id if explanation.cause else None) == case.cause, explanation
    said = " ".join((explanation.fix, *explanation.because, *explanation.decoded))
    for word in case.words:
        assert word in said, (word, said)
    assert explanation.quoted_line and explanation.line_number >= 1
    if explanation.cause is None:  # undecided: every cause, in the profile's order
        signature = next(s for s in load_signatures().signatures if s.id == case.signature)
        assert explanation.candidates == signature.causes


def test_every_signature_has_a_case_and_a_judge() -> None:
    from envcheck.explain.judges import all_judges

    ids = {signature.id for signature in load_signatures().signatures}
    assert ids == {case.signature for case in CASES}
    environment_ids = {s.id for s in load_signatures().signatures if s.kind == "environment"}
    assert len(environment_ids) >= 28
    assert set(all_judges()) <= ids
    assert environment_ids <= set(all_judges())


def test_every_cause_check_is_a_registered_check() -> None:
    from envcheck.checks.registry import all_checks

    registered = {check.id for check in all_checks()}
    for signature in load_signatures().signatures:
        for cause in signature.causes:
            assert set(cause.checks) <= registered, (signature.id, cause.id)


def test_exit_codes() -> None:
    assert explain(DRIVER_TOO_OLD).exit_code == 1
    assert explain("RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)\n").exit_code == 0
    assert explain(CUBLAS_INDEX).exit_code == 0  # the cuBLAS error is the echo of an index bug
    assert explain("all went well\n").exit_code == 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "The quick brown fox jumps over the lazy dog. Training finished: loss 0.031, accuracy 99.1%.\n" * 50,
        "Epoch 3/10: 100%|██████████| 782/782 [00:41<00:00, 19.02it/s, loss=0.412]\n" * 200,
        # code bugs the environment must not be blamed for, in their real wording
        "IndexError: index 12 is out of bounds for dimension 0 with size 10\n",
        "ValueError: Expected input batch_size (32) to match target batch_size (64).\n",
        "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, "
        "cuda:0 and cpu!\n",
        "KeyError: 'attention_mask'\n",
        "ModuleNotFoundError: No module named 'transformers'\n",
    ],
)
def test_never_blames_the_environment_for_other_text(text: str) -> None:
    report = explain(text)
    assert report.exit_code == 0
    assert all(not e.blames_environment for e in report.explanations)


def test_binary_garbage_is_not_recognised() -> None:
    import random

    noise = random.Random(7).randbytes(200_000).decode("utf-8", "replace")
    report = explain(noise)
    assert report.exit_code == 0 and not report.explanations


def test_a_code_bug_beside_an_environment_failure_still_exits_1() -> None:
    report = explain("RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)\n" + DRIVER_TOO_OLD)
    assert {e.signature for e in report.explanations} == {"code.shape_mismatch", "cuda.driver_too_old"}
    assert report.exit_code == 1


def test_lightning_start_that_completed_is_not_a_hang() -> None:
    text = (
        LIGHTNING + "----\ndistributed_backend=nccl\nAll distributed processes registered. Starting with 8 processes\n"
    )
    assert not explain(text).explanations


def test_quoted_line_is_escaped_and_short() -> None:
    text = "noise \x1b]0;title\x07 " + "x" * 5000 + " Found no NVIDIA driver on your system. " + "y" * 5000 + "\n"
    explanation = found(explain(text), "cuda.no_driver")
    assert "\x1b" not in explanation.quoted_line and "\x07" not in explanation.quoted_line
    assert len(explanation.quoted_line) <= 240
    assert "Found no NVIDIA driver" in explanation.quoted_line


def test_colours_and_windows_line_ends_are_read_through() -> None:
    text = "\x1b[31mRuntimeError\x1b[0m: Found no NVIDIA driver on your\r\nsystem.\r\n"
    assert found(explain(text), "cuda.no_driver").line_number == 1


def test_repeated_error_in_a_long_log_is_reported_once_with_its_count() -> None:
    log = ("step 1 loss 0.3\n" * 1000 + FORK) * 5
    explanation = found(explain(log), "multiprocessing.cuda_fork")
    assert explanation.occurrences == 5
    assert explanation.line_number == 1001


def test_a_20_mb_log_is_explained_within_seconds() -> None:
    import time

    log = "INFO step 12345 loss=0.4123 lr=3e-4 grad_norm=1.02 tokens/s=51234\n" * 300_000  # ~20 MB
    text = log + DRIVER_TOO_OLD + log
    started = time.monotonic()
    report = explain(text)
    elapsed = time.monotonic() - started
    assert [e.signature for e in report.explanations] == ["cuda.driver_too_old"]
    assert elapsed < 30, elapsed  # a generous bound on a shared 2-core machine: a backtracking pattern takes minutes


def test_wrapped_warning_lines_are_joined() -> None:
    # torch's capability warning wrapped by a terminal in the middle of its words
    text = SM120.replace("is not compatible with", "is not\ncompatible with")
    explanation = found(explain(text), "cuda.no_kernel_image")
    assert explanation.cause is not None and explanation.cause.id == "gpu_too_new"


def test_unavailable_facts_leave_causes_undecided() -> None:
    snapshot = factories.snapshot(system=Unavailable("probe crashed"), storage=Unavailable("probe crashed"))
    explanation = found(explain(BUS_ERROR, snapshot), "dataloader.bus_error")
    assert explanation.cause is None
    assert "(1)" in explanation.fix and "(2)" in explanation.fix


def test_cpu_torch_on_a_machine_without_a_gpu_says_a_cuda_build_would_not_help() -> None:
    snapshot = with_torch(version="2.3.1+cpu", cuda_version=None, arch_list=(), devices=())
    explanation = found(
        explain("AssertionError: Torch not compiled with CUDA enabled\n", snapshot),
        "install.torch_not_compiled_with_cuda",
    )
    assert explanation.cause is not None and explanation.cause.id == "cpu_wheel"
    assert "machine with an NVIDIA GPU" in explanation.fix and explanation.is_fix_specific


def test_a_cuda_torch_in_the_inspected_interpreter_points_at_another_one() -> None:
    explanation = found(
        explain("AssertionError: Torch not compiled with CUDA enabled\n", factories.snapshot()),
        "install.torch_not_compiled_with_cuda",
    )
    assert explanation.cause is None
    assert any("--python PATH" in line and "/opt/venv/bin/python" in line for line in explanation.because)


H100_FOREIGN = "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"  # a process of another user holds GPU 3
OOM_ON = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU {} has a total capacity of 79.11 GiB "
    "of which 1.10 GiB is free. Including non-PyTorch memory, this process has 17.90 GiB memory in use. Of the "
    "allocated memory 15.20 GiB is allocated by PyTorch, and 1.20 GiB is reserved by PyTorch but unallocated.\n"
)


@pytest.mark.parametrize(
    ("gpu_in_message", "visible", "cause"),
    [
        ("3", None, "other_process"),  # the process is on the GPU the message names
        ("0", None, "other_process"),  # GPU 0 itself is free, but 60 GiB of it are held outside this process (text)
        ("0", "3", "other_process"),  # torch's GPU 0 is nvidia-smi's GPU 3 under CUDA_VISIBLE_DEVICES=3
    ],
)
def test_oom_names_the_process_on_the_gpu_the_message_names(
    gpu_in_message: str, visible: str | None, cause: str
) -> None:
    variables = {"CUDA_VISIBLE_DEVICES": visible} if visible else {}
    snapshot = factories.gpu_machine(factories.nvidia_smi_gpu(H100_FOREIGN), environment=environment(**variables))
    explanation = found(explain(OOM_ON.format(gpu_in_message), snapshot), "cuda.out_of_memory")
    assert explanation.cause is not None and explanation.cause.id == cause
    names_the_process = any("pid 2871544" in line for line in explanation.because)
    assert names_the_process == (gpu_in_message == "3" or visible == "3"), explanation.because


def test_oom_on_a_free_gpu_is_not_blamed_on_another_gpus_process() -> None:
    text = OOM_ON.format("0").replace("this process has 17.90 GiB", "this process has 77.90 GiB")
    snapshot = factories.gpu_machine(factories.nvidia_smi_gpu(H100_FOREIGN))
    explanation = found(explain(text, snapshot), "cuda.out_of_memory")
    assert explanation.cause is not None and explanation.cause.id == "too_large"


def test_a_signature_inside_a_long_run_without_spaces_is_decoded_quickly() -> None:
    import time

    run = "x" * 20_000
    text = (run + "/a/b.so: undefined symbol: _ZN3c1017RegisterOperatorsD1Ev" + run) * 3
    started = time.monotonic()
    explanation = found(explain(text), "extension.undefined_symbol")
    assert time.monotonic() - started < 5
    assert any("/a/b.so" in line for line in explanation.decoded)


def test_the_capability_warning_at_start_up_is_read_for_an_error_hours_later() -> None:
    warning = SM120.split("  warnings.warn(\n", maxsplit=1)[0]
    log = warning + "step 1 loss 2.3\n" * 5000 + "no kernel image is available for execution on the device\n" * 4
    explanation = found(explain(log), "cuda.no_kernel_image")
    assert explanation.cause is not None and explanation.cause.id == "gpu_too_new"
    assert explanation.line_number == 2  # the first occurrence: the warning


def test_a_cut_arch_list_is_read_without_its_broken_names() -> None:
    """Found by the fuzzer (seed 4, case 7589): a paste cut inside the arch list leaves "sm_6f", no arch name."""
    text = (
        "NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation.\n"
        "The current PyTorch install supports CUDA capabilities sm_50 sm_6f you want to use the NVIDIA GeForce RTX "
        "5090 GPU with PyTorch, please check the instructions at https://pytorch.org/get-started/locally/\n"
        "RuntimeError: CUDA error: no kernel image is available for execution on the device\n"
    )
    report = explain(text)
    assert report.exit_code == 1
    assert found(report, "cuda.no_kernel_image").signature == "cuda.no_kernel_image"


@pytest.mark.parametrize(("written", "capability"), [("sm_86", (8, 6)), ("120", (12, 0)), ("sm_90a", (9, 0))])
def test_arch_names_decode(written: str, capability: tuple[int, int]) -> None:
    assert capability_of_sm(written) == capability


@pytest.mark.parametrize("written", ["sm_6f", "sm_", "", "sm_1234", "compute_x"])
def test_what_is_no_arch_name_decodes_to_none(written: str) -> None:
    assert capability_of_sm(written) is None
