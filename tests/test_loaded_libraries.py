"""The CUDA libraries torch really loaded: read from /proc/self/maps by the torch probe (live, and on recorded maps
lines), decoded from old snapshots, and judged by cuda.ld_library_path against LD_LIBRARY_PATH and LD_PRELOAD."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import LIBRARIES_NOT_RECORDED, FrameworkFacts, TorchFacts
from envcheck.facts.python import InstalledPackage
from envcheck.finding import Finding, Severity
from envcheck.probes import target_script
from envcheck.probes.context import ProbeContext
from envcheck.probes.framework import probe_framework
from envcheck.probes.python import probe_python
from envcheck.render.values import format_value
from tests import factories
from tests.test_checks_cuda import only

SITE = factories.SITE
PIP_CUDA = factories.packages(
    torch="2.3.1", nvidia_cudnn_cu12="8.9.2.26", nvidia_cublas_cu12="12.1.3.1", nvidia_cuda_runtime_cu12="12.1.105"
)
WHEEL_LIBRARIES = (
    f"{SITE}/nvidia/cublas/lib/libcublas.so.12",
    f"{SITE}/nvidia/cublas/lib/libcublasLt.so.12",
    f"{SITE}/nvidia/cuda_runtime/lib/libcudart.so.12",
    f"{SITE}/nvidia/cudnn/lib/libcudnn.so.8",
)
DRIVER_LIBRARIES = ("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")

# Lines as a real /proc/PID/maps has them (x86_64, torch 2.3.1+cu121): one library mapped in several segments,
# a deleted file, auditwheel's hashed names, anonymous memory, the stack and libraries outside the CUDA family.
VENV = "/opt/venv/lib/python3.11/site-packages"
MAPPED = (
    ("r--p", f"{VENV}/nvidia/cudnn/lib/libcudnn.so.8"),
    ("r-xp", f"{VENV}/nvidia/cudnn/lib/libcudnn.so.8"),
    ("r-xp", "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcudart.so.12.4.127"),
    ("r-xp", "/tmp/ld/libnccl.so.2 (deleted)"),
    ("r-xp", f"{VENV}/nvidia/cudnn/lib/libcudnn_ops_infer.so.8"),
    ("r-xp", "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"),
    ("r-xp", f"{VENV}/torch/lib/libtorch_cuda.so"),
    ("r-xp", f"{VENV}/torch/lib/libnvrtc-d833c4f3.so.11.2"),
    ("r-xp", f"{VENV}/torch/lib/libgomp-a34b3233.so.1"),
    ("r-xp", "/usr/lib/x86_64-linux-gnu/libcudart_static_helper.a"),
)
MAPS = [
    f"7f1c{index:02x}000000-7f1c{index:02x}100000 {perms} 00000000 103:02 18352{index:02d}    {path}\n"
    for index, (perms, path) in enumerate(MAPPED)
] + ["7f1c31000000-7f1c31100000 rw-p 00000000 00:00 0\n", "7ffd1a000000-7ffd1a021000 rw-p 00000000 00:00 0  [stack]\n"]


# --- the probe ---------------------------------------------------------------------------------------------


def test_maps_lines_give_each_cuda_library_once_sorted() -> None:
    assert target_script.cuda_library_paths(MAPS) == [
        f"{VENV}/nvidia/cudnn/lib/libcudnn.so.8",
        f"{VENV}/nvidia/cudnn/lib/libcudnn_ops_infer.so.8",
        f"{VENV}/torch/lib/libnvrtc-d833c4f3.so.11.2",
        "/tmp/ld/libnccl.so.2",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
        "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcudart.so.12.4.127",
    ]


def test_unreadable_maps_and_other_systems_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = target_script.loaded_cuda_libraries(str(tmp_path / "maps"))
    assert missing["unavailable"].startswith(f"cannot read {tmp_path / 'maps'}: FileNotFoundError")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "darwin" in target_script.loaded_cuda_libraries()["unavailable"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps is Linux's")
def test_live_probe_records_the_libraries_this_venvs_torch_loaded() -> None:
    torch = live_torch(ProbeContext())
    loaded = torch.loaded_cuda_libraries
    assert isinstance(loaded, tuple)
    assert list(loaded) == sorted(set(loaded))
    for path in loaded:
        assert Path(path).is_file(), path
        assert target_script.CUDA_LIBRARY.fullmatch(Path(path).name), path
    if torch.cuda_version is None:
        pytest.skip("a CPU build of torch loads no CUDA library")
    # True here (a CUDA build without a GPU or driver): the import maps the wheel's runtime, cuBLAS and cuDNN, all
    # from this venv's site-packages; libcuda is absent without a driver and not asserted either way.
    site = Path(str(importlib.metadata.distribution("torch").locate_file(""))).resolve()
    names = {Path(path).name.split(".so")[0] for path in loaded}
    assert {"libcudart", "libcublas", "libcudnn"} <= names
    assert all(Path(path).is_relative_to(site) for path in loaded if "libcuda." not in path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps is Linux's")
def test_live_probe_sees_a_preloaded_copy_and_the_check_warns(tmp_path: Path) -> None:
    torch = live_torch(ProbeContext())
    wheel_cudart = next((p for p in known_paths(torch) if Path(p).name.startswith("libcudart.so")), None)
    if wheel_cudart is None:
        pytest.skip("this torch loads no libcudart")
    copy = tmp_path / Path(wheel_cudart).name
    shutil.copy(wheel_cudart, copy)
    environ = {**os.environ, "LD_PRELOAD": str(copy)}
    context = ProbeContext(environ=environ)
    shadowed = live_torch(context)
    assert str(copy) in known_paths(shadowed)
    snapshot = factories.snapshot(
        framework=factories.framework(torch=shadowed),
        python=probe_python(ProbeContext()),
        environment=factories.environment(LD_PRELOAD=str(copy)),
    )
    finding = only("cuda.ld_library_path", snapshot)
    assert finding.severity is Severity.WARN
    assert copy.name in finding.title and str(tmp_path) in finding.title
    assert "(on LD_PRELOAD)" in finding.detail and finding.fix == f"remove {copy} from LD_PRELOAD before running torch"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps is Linux's")
def test_live_venv_with_usr_local_cuda_on_ld_library_path_is_no_alarm() -> None:
    torch = live_torch(ProbeContext())
    if torch.cuda_version is None:
        pytest.skip("a CPU build of torch loads no CUDA library")
    snapshot = factories.snapshot(
        framework=factories.framework(torch=torch),
        python=probe_python(ProbeContext()),
        environment=factories.environment(LD_LIBRARY_PATH="/usr/local/cuda/lib64"),
    )
    finding = only("cuda.ld_library_path", snapshot)
    assert finding.severity is Severity.OK and "from the wheel" in finding.title


def live_torch(context: ProbeContext) -> TorchFacts:
    facts = probe_framework(context)
    assert facts.torch is not None, facts.import_error
    assert decode(FrameworkFacts, encode(facts)) == facts
    return facts.torch


def known_paths(torch: TorchFacts) -> tuple[str, ...]:
    assert isinstance(torch.loaded_cuda_libraries, tuple), torch.loaded_cuda_libraries
    return torch.loaded_cuda_libraries


def test_snapshots_from_before_the_field_still_load() -> None:
    data = encode(factories.torch(loaded_cuda_libraries=WHEEL_LIBRARIES))
    del data["loaded_cuda_libraries"]
    old = decode(TorchFacts, data)
    assert old.loaded_cuda_libraries == LIBRARIES_NOT_RECORDED
    unreadable = encode(factories.torch(loaded_cuda_libraries=Unavailable("cannot read /proc/self/maps")))
    assert decode(TorchFacts, unreadable).loaded_cuda_libraries == Unavailable("cannot read /proc/self/maps")


# --- the check ---------------------------------------------------------------------------------------------


def ld_check(
    loaded: tuple[str, ...] | Unavailable, packages: tuple[InstalledPackage, ...] = PIP_CUDA, **variables: str
) -> Finding:
    torch = factories.torch(version=next(p.version for p in packages if p.name == "torch"))
    snapshot = factories.snapshot(
        framework=factories.framework(torch=replace(torch, loaded_cuda_libraries=loaded)),
        python=factories.python(packages=packages),
        environment=factories.environment(**variables),
    )
    return only("cuda.ld_library_path", snapshot)


def test_all_from_the_wheel_is_ok_even_with_the_toolkit_on_ld_library_path() -> None:
    finding = ld_check(
        WHEEL_LIBRARIES + DRIVER_LIBRARIES, LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/nvidia/lib"
    )
    assert finding.severity is Severity.OK
    assert "all 4 of its bundled CUDA libraries from the wheel" in finding.title
    assert "/usr/local/cuda/lib64" in finding.title and "cuDNN's sub-libraries" in finding.detail
    # the same machine judged from the directory names only: the old, cautious answer
    assert ld_check(LIBRARIES_NOT_RECORDED, LD_LIBRARY_PATH="/usr/local/cuda/lib64").severity is Severity.INFO


def test_a_bundled_library_loaded_from_ld_library_path_warns_naming_both_copies() -> None:
    loaded = (*WHEEL_LIBRARIES[:3], "/opt/cudnn-8.6/lib/libcudnn.so.8", "/opt/cudnn-8.6/lib/libcudnn_ops_infer.so.8")
    finding = ld_check(loaded, LD_LIBRARY_PATH="/opt/cudnn-8.6/lib/:/usr/local/nvidia/lib64")
    assert finding.severity is Severity.WARN
    assert finding.title == (
        "torch loaded libcudnn.so.8, libcudnn_ops_infer.so.8 from /opt/cudnn-8.6/lib, not the copies its wheel bundles"
    )
    assert "libcudnn.so.8 from /opt/cudnn-8.6/lib (on LD_LIBRARY_PATH) instead of nvidia-cudnn-cu12 8.9.2.26" in (
        finding.detail
    )
    assert finding.fix == "drop /opt/cudnn-8.6/lib from LD_LIBRARY_PATH before running torch"
    assert "framework.torch.loaded_cuda_libraries" in finding.evidence


def test_a_foreign_copy_reached_through_a_symlink_still_warns() -> None:
    # LD_LIBRARY_PATH names /usr/local/cuda/lib64; the kernel records the resolved path of the file
    loaded = (*WHEEL_LIBRARIES[:2], "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcudart.so.12", WHEEL_LIBRARIES[3])
    finding = ld_check(loaded, LD_LIBRARY_PATH="/usr/local/cuda/lib64")
    assert finding.severity is Severity.WARN and "instead of nvidia-cuda-runtime-cu12 12.1.105" in finding.detail
    assert finding.fix is not None and "symlink" in finding.fix


def test_old_wheels_bundle_in_torch_lib_and_driver_libraries_never_count() -> None:
    torch_lib = f"{SITE}/torch/lib"
    old_wheel = factories.packages(torch="1.13.1+cu117")
    loaded = (f"{torch_lib}/libcudart-e409450e.so.11.0", f"{torch_lib}/libcudnn.so.8", *DRIVER_LIBRARIES)
    assert ld_check(loaded, old_wheel, LD_LIBRARY_PATH="/usr/local/cuda/lib64").severity is Severity.OK
    shadowed = ld_check(
        (*loaded, "/usr/local/cuda/lib64/libnccl.so.2"), old_wheel, LD_LIBRARY_PATH="/usr/local/cuda/lib64"
    )
    assert shadowed.severity is Severity.WARN and "torch 1.13.1+cu117's torch/lib" in shadowed.detail


def test_no_bundled_library_loaded_falls_back_to_the_directory_names() -> None:
    # only the driver's libraries mapped: the record settles nothing, so the path-based judgement stands
    finding = ld_check(DRIVER_LIBRARIES, LD_LIBRARY_PATH="/usr/local/cuda-11.8/lib64")
    assert finding.severity is Severity.WARN and "another major version" in finding.title
    # a conda torch bundles nothing, whatever it loaded
    conda = factories.packages(torch="2.3.1")
    loaded = ("/opt/conda/lib/libcudart.so.12",)
    assert ld_check(loaded, conda, LD_LIBRARY_PATH="/opt/conda/lib").severity is Severity.OK


def test_shown_grouped_by_folder() -> None:
    shown = format_value("loaded_cuda_libraries", (*WHEEL_LIBRARIES[:2], DRIVER_LIBRARIES[0]))
    assert shown == (
        f"{SITE}/nvidia/cublas/lib: libcublas.so.12, libcublasLt.so.12; /usr/lib/x86_64-linux-gnu: libcuda.so.550.54.15"
    )
