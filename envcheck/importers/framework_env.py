"""Reads the environment tables detectron2 and OpenMMLab print (what their issue templates ask for instead of torch's
collect_env) into the values of torch's collect_env, so one builder (importers/collect_env.py) makes the Snapshot.

* `python -m detectron2.utils.collect_env`: a tabulate table ("PyTorch  1.8.1+cu111 @/path", "GPU 0,1  NVIDIA
  GeForce RTX 3080 Ti (arch=8.6)", "GPU available  Yes", "Driver version  470.63.01"), then torch's
  `torch.__config__.show()` ("PyTorch built with: ... - CUDA Runtime 11.1 ... - NVCC architecture flags: ...").
* mmcv / mmdetection / mmengine's `collect_env` ("sys.platform: linux", "CUDA available: True", "GPU 0,1: ...",
  "PyTorch: 1.6.0", "PyTorch compiling details: PyTorch built with: ...", "TorchVision: 0.7.0", "MMCV: 1.1.5"), or
  the repr of the same dict (`print(collect_env())`: "OrderedDict([('sys.platform', 'linux'), ...])"), which
  importers/framework_env_repr.py turns into those lines first.

Both state more than torch's collect_env in places: each GPU's compute capability ("(arch=8.6)") and, in the build
settings, the CUDA and cuDNN torch was built with and its arch list (the NVCC flags): those become facts too. The
nvcc at CUDA_HOME (`NVCC`, or detectron2's `CUDA compiler` when it quotes nvcc) and the system compiler (`Compiler
($CXX)`, `GCC`) fill collect_env's `CUDA runtime version` and `GCC version`, so the toolchain checks read them.
"""

from __future__ import annotations

import dataclasses
import re

from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.importers.collect_env import snapshot_from_report
from envcheck.importers.collect_env_text import CollectEnvReport, PackageLine, decode_text
from envcheck.importers.framework_env_repr import env_repr_as_lines, looks_like_env_repr
from envcheck.snapshot import Snapshot

DETECTRON2 = "detectron2"
OPENMMLAB = "OpenMMLab"
_DETECT_CHARS = 20000
# A row: a label, then two or more spaces (detectron2's table) or a colon (OpenMMLab's lines), then the value.
_ROW = re.compile(r"^(?P<label>[A-Za-z_][\w.,()$ +-]*?)(?:\s*:\s+|\s{2,}|\s*:$)(?P<value>\S.*)?$")
_GPU_LABEL = re.compile(r"^GPU\s*(?P<indices>\d+(?:\s*,\s*\d+)*)$")
_ARCH = re.compile(r"\s*\(arch=(?P<capability>\d+\.\d+)\)\s*$")
_CUDA_RUNTIME = re.compile(r"CUDA Runtime (\d+\.\d+)")
_CUDA_SETTING = re.compile(r"\bCUDA_VERSION=(\d+\.\d+)")
_CUDNN = re.compile(r"\bCuDNN (\d+)\.(\d+)(?:\.(\d+))?")
_GENCODE = re.compile(r"arch=compute_(\d+[a-z]?),code=(sm|compute)_(\d+[a-z]?)")
# nvcc's last line as the tables print it: "Cuda compilation tools, release 10.1, V10.1.243" (`nvcc -V`), or only
# "Build cuda_11.3.r11.3/compiler.29920130_0" (`nvcc -V | tail -n1`). detectron2's "CUDA compiler  CUDA 10.1" is
# instead the CUDA its compiled ops were built with, and is not read.
_NVCC_RELEASE = re.compile(r"release (\d+\.\d+), V(\d+\.\d+(?:\.\d+)?)")
_NVCC_BUILD = re.compile(r"\bBuild cuda_(\d+\.\d+)")
# the system compiler's `--version` first line ("c++ (Ubuntu 7.5.0-3ubuntu1~18.04) 7.5.0"); "GCC 9.3" is instead
# the compiler detectron2's or mmcv's own ops were built with. Ubuntu 22.04's gcc names itself with its target
# triple ("x86_64-linux-gnu-gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0", as mmengine 0.10 pastes show).
_SYSTEM_COMPILER = re.compile(r"^(?:[\w.]+(?:-[\w.]+)*-)?(?:c\+\+|g\+\+|gcc)\s")
_PLATFORMS = {"linux": "Linux", "win32": "Microsoft Windows", "darwin": "macOS", "cygwin": "Microsoft Windows"}
# normalised label (lower case, letters and digits) -> the collect_env value it is
_VALUES = {
    "pytorch": "torch_version",
    "pytorchdebugbuild": "debug_build",
    "gpuavailable": "cuda_available",
    "cudaavailable": "cuda_available",
    "python": "python_version",
    "driverversion": "driver",
}
# normalised label -> the distribution it names, for the package list the companion checks read
_PACKAGES = {
    "pytorch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "pillow": "pillow",
    "detectron2": "detectron2",
    "fvcore": "fvcore",
    "iopath": "iopath",
    "mmcv": "mmcv",
    "mmdetection": "mmdet",
    "mmengine": "mmengine",
    "mmpose": "mmpose",
    "opencv": "opencv-python",
    "cv2": "opencv-python",
}


class FrameworkEnvError(ValueError):
    """The table names no PyTorch version; the message is one line."""


def format_of(text: str) -> str | None:
    """DETECTRON2 or OPENMMLAB for text holding one of their tables (a `sys.platform` row and a `PyTorch` row),
    else None."""
    head = text[:_DETECT_CHARS]
    if looks_like_env_repr(head):
        return OPENMMLAB  # only OpenMMLab's collect_env prints its environment as a dict opening with sys.platform
    rows = _rows(head)
    labels = {label for label, _ in rows}
    if "sysplatform" not in labels or "pytorch" not in labels:
        return None
    return OPENMMLAB if labels & {"mmcv", "mmdetection", "mmengine", "pytorchcompilingdetails"} else DETECTRON2


def snapshot_from_framework_env(data: bytes, file_name: str) -> Snapshot:
    """A Snapshot of the machine a detectron2 or OpenMMLab environment table describes; raises FrameworkEnvError."""
    text = decode_text(data)
    if looks_like_env_repr(text):
        text = env_repr_as_lines(text)
        kind = OPENMMLAB
    else:
        kind = format_of(text) or DETECTRON2
    rows = _rows(text)
    report = _report(rows, text)
    if not report.values.get("torch_version", "")[:1].isdigit():
        raise FrameworkEnvError(f"no readable PyTorch row: not a {kind} collect_env output")
    source = f"{kind.lower()}-env:{file_name}"
    snapshot = snapshot_from_report(report, text, source, f"the {kind} environment table {file_name}")
    return _with_build_facts(snapshot, rows, text)


def _rows(text: str) -> list[tuple[str, str]]:
    """(normalised label, value) of every row; torch's build settings (bulleted) and rules are not rows."""
    rows = []
    for raw in text.splitlines():
        line = raw.replace("\u00a0", " ").strip().strip("`").strip()
        if not line or line.startswith(("-", "|", "PyTorch built with")):
            continue
        match = _ROW.match(line)
        if match is None:
            continue
        label = match.group("label").strip()
        gpu = _GPU_LABEL.match(label)
        key = f"gpu {gpu.group('indices')}" if gpu else re.sub(r"[^a-z0-9]", "", label.lower())
        rows.append((key, (match.group("value") or "").strip()))
    return rows


def _report(rows: list[tuple[str, str]], text: str) -> CollectEnvReport:
    values: dict[str, str] = {}
    packages: list[PackageLine] = []
    gpus: list[str] = []
    for key, value in rows:
        if key.startswith("gpu "):
            name = _ARCH.sub("", value).strip()
            gpus += [f"GPU {int(index)}: {name}" for index in key[4:].split(",")]
            continue
        if key == "sysplatform":
            values.setdefault("os", _PLATFORMS.get(value.lower(), value))
        if key in _VALUES:
            said = value.partition(" @")[0].strip()  # "1.8.1+cu111 @/home/.../torch": the version, then where
            if _VALUES[key] == "cuda_available":  # "Yes", "True", "No: torch.cuda.is_available() == False"
                said = {"yes": "True", "true": "True", "no": "False", "false": "False"}.get(
                    re.split(r"[\s:]", said.lower(), maxsplit=1)[0], said
                )
            values.setdefault(_VALUES[key], said)
        if key in ("nvcc", "cudacompiler"):  # the nvcc at CUDA_HOME: collect_env's "CUDA runtime version" line
            release, build = _NVCC_RELEASE.search(value), _NVCC_BUILD.search(value)
            nvcc = release.group(2) if release else build.group(1) if build else None
            if nvcc is not None:
                values.setdefault("cuda_runtime", nvcc)
        if key in ("compilercxx", "compiler", "gcc") and _SYSTEM_COMPILER.match(value):
            values.setdefault("gcc", value)
        if key in _PACKAGES:
            version = value.partition(" @")[0].strip()
            if version[:1].isdigit() and " " not in version:
                packages.append(PackageLine("pip", _PACKAGES[key], version, None, None))
    if gpus:
        values["gpu_models"] = ""
    cuda = _cuda_build(text)
    if cuda is not None:
        values["cuda_build"] = cuda
    return CollectEnvReport(
        values=values,
        continued={"gpu_models": tuple(gpus)} if gpus else {},
        packages=tuple(packages),
        preamble=(),
    )


def _cuda_build(text: str) -> str | None:
    """torch.version.cuda as torch's build settings state it; "None" for a CPU build (settings that name no CUDA);
    None when the settings are not in the paste (the version's +cuXYZ tag may still tell)."""
    match = _CUDA_RUNTIME.search(text) or _CUDA_SETTING.search(text)
    if match:
        return match.group(1)
    if "Build settings:" in text and "HIP Runtime" not in text and "USE_ROCM=ON" not in text:
        return "None"  # the settings were printed whole, and a CUDA build lists its CUDA Runtime in them
    return None


def _with_build_facts(snapshot: Snapshot, rows: list[tuple[str, str]], text: str) -> Snapshot:
    """What the table states beyond collect_env's values: each GPU's capability ("(arch=8.6)"), and torch's arch
    list and cuDNN from its build settings."""
    capabilities: dict[int, str] = {}
    for key, value in rows:
        arch = _ARCH.search(value) if key.startswith("gpu ") else None
        if arch:
            for index in key[4:].split(","):
                capabilities.setdefault(int(index), arch.group("capability"))
    gpu = snapshot.gpu
    if isinstance(gpu, GpuFacts) and capabilities:
        gpus = tuple(
            dataclasses.replace(each, compute_capability=capabilities[each.index])
            if each.index in capabilities
            else each
            for each in gpu.gpus
        )
        gpu = dataclasses.replace(gpu, gpus=gpus)
    framework = snapshot.framework
    if isinstance(framework, FrameworkFacts) and framework.torch is not None and framework.torch.cuda_version:
        torch = framework.torch
        arch_list = _arch_list(text) or torch.arch_list
        cudnn = _cudnn(text)
        torch = dataclasses.replace(
            torch, arch_list=arch_list, cudnn_version=cudnn if cudnn is not None else torch.cudnn_version
        )
        framework = dataclasses.replace(framework, torch=torch)
    return dataclasses.replace(snapshot, gpu=gpu, framework=framework)


def _arch_list(text: str) -> tuple[str, ...]:
    """torch.cuda.get_arch_list() from "NVCC architecture flags: -gencode;arch=compute_37,code=sm_37;...": the
    sm_XY of each code=sm_XY, then compute_XY for each code=compute_XY (PTX), as get_arch_list() orders them."""
    line = next((line for line in text.splitlines() if "NVCC architecture flags" in line), "")
    found = _GENCODE.findall(line)
    sm = [f"sm_{code}" for _, kind, code in found if kind == "sm"]
    ptx = [f"compute_{code}" for _, kind, code in found if kind == "compute"]
    return tuple(dict.fromkeys([*sm, *ptx]))


def _cudnn(text: str) -> int | Unavailable | None:
    """cudnn.h's CUDNN_VERSION of the cuDNN torch was built with: "CuDNN 8.0.5" -> 8005, "CuDNN 9.1" -> 90100."""
    match = _CUDNN.search(text)
    if match is None:
        return None
    major, minor, patch = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    return major * (10000 if major >= 9 else 1000) + minor * 100 + patch
