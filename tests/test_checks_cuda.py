"""The CUDA checks on real GPU facts (nvidia-smi XML, NVML recordings) combined with torch installs from factories."""

from __future__ import annotations

import pytest

from envcheck.checks.registry import CheckInput, all_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts, no_gpu_facts
from envcheck.finding import Finding, Severity
from envcheck.knowledge import Knowledge, load_knowledge
from envcheck.snapshot import Snapshot
from tests import factories

KNOWLEDGE = load_knowledge()
A100 = "a100-sxm4-40gb-mig-driver510.47.03"
# torch 2.3.1+cu121 on a driver too old for it: CUDA does not start, so torch sees no device
NO_CUDA = factories.torch(is_cuda_available=False, device_count=0, devices=())


def only(check_id: str, snapshot: Snapshot, knowledge: Knowledge | None = KNOWLEDGE) -> Finding:
    (registered,) = [c for c in all_checks() if c.id == check_id]
    (finding,) = registered.run(CheckInput(snapshot, knowledge=knowledge))
    return finding


def test_driver_470_with_a_cu121_wheel_fails_naming_the_minimum_and_the_newest_runnable_wheel() -> None:
    gpu = factories.nvml_gpu("rtx4090-driver535.86.05", driver_version="470.82.01")
    finding = only("cuda.driver_too_old", factories.gpu_machine(gpu, NO_CUDA))
    assert finding.severity is Severity.FAIL
    assert "470.82.01" in finding.title and "525.60.13" in finding.title and "2.3.1+cu121" in finding.title
    assert finding.fix is not None and "525.60.13" in finding.fix
    # the newest wheel a 470 driver (CUDA 11.4; 11.x minor-version compatibility) runs on an sm_89 GPU with Python 3.11
    assert "torch==2.7.1" in finding.fix and "whl/cu118" in finding.fix


def test_driver_515_of_a_real_t4_is_too_old_for_cu121_and_535_is_enough() -> None:
    t4 = factories.nvml_gpu("t4-driver515.105.01")
    assert only("cuda.driver_too_old", factories.gpu_machine(t4, NO_CUDA)).severity is Severity.FAIL
    rtx4090 = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    finding = only("cuda.driver_too_old", factories.gpu_machine(rtx4090))
    assert finding.severity is Severity.OK and "535.86.05" in finding.title


def test_an_old_driver_on_which_torch_started_cuda_warns_of_forward_compatibility_and_does_not_fail() -> None:
    # an NGC-style container: torch built for CUDA 12.1 initialised CUDA on a data-centre GPU whose kernel driver
    # (515) is older than 12.x needs; only a newer user-space libcuda (cuda-compat) makes that possible
    t4 = factories.nvml_gpu("t4-driver515.105.01")
    finding = only("cuda.driver_too_old", factories.gpu_machine(t4))  # factories' torch: is_cuda_available=True
    assert finding.severity is Severity.WARN
    assert "515.105.01" in finding.title and "forward compatibility" in finding.title
    assert "framework.torch.is_cuda_available" in finding.evidence
    assert finding.fix is not None and finding.fix.startswith("Upgrade the NVIDIA driver")
    # the same driver with CUDA not available is the ordinary failure
    assert only("cuda.driver_too_old", factories.gpu_machine(t4, NO_CUDA)).severity is Severity.FAIL


def test_driver_check_skips_without_gpus_cuda_build_or_knowledge() -> None:
    assert only("cuda.driver_too_old", factories.snapshot()).severity is Severity.SKIP  # no GPU
    rtx4090 = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    assert only("cuda.driver_too_old", factories.gpu_machine(rtx4090), knowledge=None).severity is Severity.SKIP
    cpu = factories.torch(version="2.3.1+cpu", cuda_version=None, devices=())
    assert only("cuda.driver_too_old", factories.gpu_machine(rtx4090, cpu)).severity is Severity.SKIP


def test_k80_with_torch_2_3_cu121_has_no_kernel_image_and_the_fix_names_cu118() -> None:
    k80 = factories.nvidia_smi_gpu("k80x4-driver430.26-ecc-dbe-retired")  # the XML of driver 430 has no compute_cap
    kepler = factories.torch(devices=(), arch_list=Unavailable("pasted collect_env"))  # arch list from the tables
    finding = only("cuda.arch_support", factories.gpu_machine(k80, kepler))
    assert finding.severity is Severity.FAIL
    assert "Tesla K80 (sm_37)" in finding.title and "no kernel image" in finding.title
    assert finding.fix is not None and "+cu118" in finding.fix


def test_blackwell_on_a_cu121_wheel_fails_and_cu128_or_later_is_named() -> None:
    changes = {"device[0].name": "NVIDIA GeForce RTX 5090", "device[0].compute_capability": [12, 0]}
    gpu = factories.nvml_gpu("rtx4090-driver535.86.05", **changes)
    blackwell = factories.torch_on(gpu)  # torch 2.3.1+cu121: sm_50 ... sm_90, no PTX
    finding = only("cuda.arch_support", factories.gpu_machine(gpu, blackwell))
    assert finding.severity is Severity.FAIL and "sm_120" in finding.title
    assert finding.fix is not None and "from torch 2.7.0+cu128" in finding.fix


def test_a_gpu_in_the_arch_list_passes_and_ptx_only_is_information() -> None:
    rtx4090 = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    assert only("cuda.arch_support", factories.gpu_machine(rtx4090)).severity is Severity.OK  # sm_89 runs sm_86
    ptx_only = factories.torch_on(rtx4090, arch_list=("sm_70", "compute_70"))
    assert only("cuda.arch_support", factories.gpu_machine(rtx4090, ptx_only)).severity is Severity.INFO


def test_dtypes_missing_on_old_gpus_are_information_and_hopper_has_them_all() -> None:
    t4 = factories.nvml_gpu("t4-driver515.105.01")
    finding = only("cuda.dtype_support", factories.gpu_machine(t4))
    assert finding.severity is Severity.INFO and "no bf16/TF32/FP8" in finding.title
    h100 = factories.nvidia_smi_gpu("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes")
    assert only("cuda.dtype_support", factories.gpu_machine(h100)).severity is Severity.OK


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        ("", Severity.FAIL),
        ("-1", Severity.FAIL),
        ("2", Severity.FAIL),  # the machine has GPUs 0 and 1
        ("GPU-00000000-dead-beef", Severity.FAIL),
        ("0,5", Severity.WARN),
        ("0,0", Severity.WARN),  # a repeat ends the list
        ("1", Severity.OK),
        ("1,0", Severity.OK),
    ],
)
def test_cuda_visible_devices(value: str, severity: Severity) -> None:
    two = factories.nvidia_smi_gpu("rtx-a5000x2-driver590.44.01")
    snapshot = factories.gpu_machine(two, environment=factories.environment(CUDA_VISIBLE_DEVICES=value))
    assert only("cuda.visible_devices", snapshot).severity is severity


def test_cuda_visible_devices_accepts_a_uuid_prefix_of_a_present_gpu() -> None:
    two = factories.nvidia_smi_gpu("rtx-a5000x2-driver590.44.01")
    uuid = two.gpus[1].uuid
    assert isinstance(uuid, str)
    snapshot = factories.gpu_machine(two, environment=factories.environment(CUDA_VISIBLE_DEVICES=uuid[:12]))
    assert only("cuda.visible_devices", snapshot).severity is Severity.OK
    unset = factories.gpu_machine(two, environment=factories.environment())
    assert only("cuda.visible_devices", unset).severity is Severity.OK


PIP_CUDA = factories.packages(torch="2.3.1", nvidia_cudnn_cu12="8.9.2.26", nvidia_cublas_cu12="12.1.3.1")


@pytest.mark.parametrize(
    ("ld_library_path", "severity"),
    [
        ("/usr/local/cuda-11.8/lib64", Severity.WARN),  # another major than the wheel's 12.1
        ("/usr/local/cuda/lib64:/opt/cudnn/lib", Severity.INFO),
        ("/home/ada/miniconda3/envs/train/lib", Severity.INFO),
        ("/usr/local/nvidia/lib:/usr/local/nvidia/lib64", Severity.OK),  # the driver mount of the container toolkit
        ("", Severity.OK),
    ],
)
def test_ld_library_path_shadowing_the_bundled_libraries(ld_library_path: str, severity: Severity) -> None:
    snapshot = factories.snapshot(
        python=factories.python(packages=PIP_CUDA),
        environment=factories.environment(LD_LIBRARY_PATH=ld_library_path),
    )
    assert only("cuda.ld_library_path", snapshot).severity is severity


def test_ld_library_path_is_the_named_cause_when_torch_fails_to_import() -> None:
    broken = factories.framework(torch=None, import_error="OSError: libcudnn.so.8: cannot open shared object file")
    snapshot = factories.snapshot(
        framework=broken,
        python=factories.python(packages=PIP_CUDA),
        environment=factories.environment(LD_LIBRARY_PATH="/usr/local/cuda/lib64"),
    )
    finding = only("cuda.ld_library_path", snapshot)
    assert finding.severity is Severity.FAIL and "/usr/local/cuda/lib64" in finding.title
    conda_torch = factories.snapshot(environment=factories.environment(LD_LIBRARY_PATH="/usr/local/cuda/lib64"))
    assert only("cuda.ld_library_path", conda_torch).severity is Severity.OK  # nothing bundled to shadow


@pytest.mark.parametrize(
    ("cuda_home", "severity"),
    [
        ("/usr/local/cuda-11.8", Severity.WARN),
        ("/usr/local/cuda-12.4", Severity.INFO),
        ("/usr/local/cuda-12.1", Severity.OK),
        ("/usr/local/cuda", Severity.SKIP),  # the path does not say which toolkit it is
    ],
)
def test_cuda_home_against_the_wheel(cuda_home: str, severity: Severity) -> None:
    snapshot = factories.snapshot(environment=factories.environment(CUDA_HOME=cuda_home))
    assert only("cuda.cuda_home", snapshot).severity is severity


def test_gpu_on_the_bus_without_driver_and_container_without_gpus_warn() -> None:
    on_bus = no_gpu_facts(
        "nvml",
        "an NVIDIA GPU is on the PCI bus (0000:3b:00.0) but the NVIDIA kernel driver is not loaded",
        "install the NVIDIA driver",
    )
    finding = only("cuda.driver_loaded", factories.snapshot(gpu=on_bus))
    assert finding.severity is Severity.WARN and finding.fix == "install the NVIDIA driver"
    assert only("cuda.container_gpus", factories.snapshot(gpu=on_bus)).severity is Severity.OK
    no_nodes = no_gpu_facts(
        "nvml", "the NVIDIA driver is loaded but there are no /dev/nvidia* device nodes (a container without GPUs?)"
    )
    in_docker = factories.snapshot(gpu=no_nodes, system=factories.system(container="docker"))
    finding = only("cuda.container_gpus", in_docker)
    assert (
        finding.severity is Severity.WARN
        and "docker container" in finding.title
        and "--gpus all" in (finding.fix or "")
    )
    healthy = factories.snapshot()  # no GPU at all: neither fires
    assert only("cuda.driver_loaded", healthy).severity is Severity.OK
    assert only("cuda.container_gpus", healthy).severity is Severity.OK


def test_error_802_on_an_nvswitch_system_names_the_fabric_manager() -> None:
    h100 = factories.nvidia_smi_gpu("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes")
    stuck = factories.torch(is_cuda_available=False, devices=(), cuda_error="CUDA error: system not yet initialized")
    finding = only("cuda.fabric_manager", factories.gpu_machine(h100, stuck))
    assert finding.severity is Severity.FAIL and "8 GPU(s)" in finding.title
    assert "nvidia-fabricmanager" in (finding.fix or "")
    assert only("cuda.fabric_manager", factories.gpu_machine(h100)).severity is Severity.OK


def test_wsl_without_gpu_warns_and_with_gpu_passes() -> None:
    wsl = factories.system(is_wsl=True, wsl_version=2)
    broken = no_gpu_facts("nvml", "NVML could not start: Driver Not Loaded")
    finding = only("cuda.wsl_driver", factories.snapshot(system=wsl, gpu=broken))
    assert finding.severity is Severity.WARN and "/usr/lib/wsl/lib" in finding.detail
    rtx4090 = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    assert only("cuda.wsl_driver", factories.gpu_machine(rtx4090, system=wsl)).severity is Severity.OK
    assert only("cuda.wsl_driver", factories.snapshot()).severity is Severity.OK


def test_no_cuda_check_warns_or_fails_on_healthy_gpu_machines() -> None:
    for gpu in (
        factories.nvidia_smi_gpu("rtx4090-driver535.86.05"),
        factories.nvidia_smi_gpu("rtx-a5000x2-driver590.44.01"),
        factories.nvidia_smi_gpu("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"),
        factories.nvml_gpu(A100, driver_version="535.129.03"),
    ):
        snapshot = factories.gpu_machine(gpu)
        for registered in all_checks():
            if registered.area in ("cuda", "install"):
                for finding in registered.run(CheckInput(snapshot, knowledge=KNOWLEDGE)):
                    assert finding.severity in (Severity.OK, Severity.INFO, Severity.SKIP), finding


def _renamed(name: str, capability: list[int]) -> GpuFacts:
    """The RTX 4090 machine's GPU (driver 535, which drives every GPU below) as another GPU."""
    return factories.nvml_gpu(
        "rtx4090-driver535.86.05", **{"device[0].name": name, "device[0].compute_capability": capability}
    )


# torch 1.6.0+cu102's own list as printed on an RTX 3090 (pytorch/pytorch#46794, facebookresearch/detectron2#3076)
CU102_ARCHS = ("sm_37", "sm_50", "sm_60", "sm_61", "sm_70", "sm_75", "compute_37")


def test_an_rtx_3090_on_a_cu102_wheel_fails_though_the_wheel_has_ptx() -> None:
    rtx3090 = _renamed("NVIDIA GeForce RTX 3090", [8, 6])
    old = factories.torch_on(rtx3090, version="1.6.0+cu102", cuda_version="10.2", arch_list=CU102_ARCHS)
    finding = only("cuda.arch_support", factories.gpu_machine(rtx3090, old))
    assert finding.severity is Severity.FAIL and "sm_86" in finding.title
    assert finding.detail is not None and "CUDA 10.2, which the wheel was built with, predates" in finding.detail
    # the first wheels that cover sm_86 are the cu110 ones (sm_80 code runs on 8.6), and driver 535 runs them
    assert finding.fix is not None and "from torch 1.7.0+cu110" in finding.fix


def test_an_rtx_3090_runs_the_sm_80_code_of_a_cu110_wheel() -> None:
    # CUDA 11.0 knows sm_80, not sm_86, but the 3090 runs torch 1.7.x+cu110 (niuchuangnn/SPICE#26, MRzzm/DINet#100)
    rtx3090 = _renamed("NVIDIA GeForce RTX 3090", [8, 6])
    cu110 = factories.torch_on(rtx3090, version="1.7.1+cu110", cuda_version="11.0", arch_list=Unavailable("pasted"))
    assert only("cuda.arch_support", factories.gpu_machine(rtx3090, cu110)).severity is Severity.OK


def test_an_a100_on_a_cu110_wheel_passes() -> None:
    a100 = _renamed("NVIDIA A100-SXM4-40GB", [8, 0])
    cu110 = factories.torch_on(a100, version="1.7.1+cu110", cuda_version="11.0", arch_list=Unavailable("pasted"))
    assert only("cuda.arch_support", factories.gpu_machine(a100, cu110)).severity is Severity.OK


def test_an_h100_on_a_cu117_wheel_fails_even_with_ptx() -> None:
    # the H100 on torch 1.13.x+cu117 (HazyResearch/hyena-dna#76, PKU-YuanGroup/Open-Sora-Plan#39); compute_37 as
    # in the lists of amithkk/stable-diffusion-k8s#10
    h100 = _renamed("NVIDIA H100 80GB HBM3", [9, 0])
    archs = ("sm_37", "sm_50", "sm_60", "sm_61", "sm_70", "sm_75", "sm_80", "sm_86", "compute_37")
    cu117 = factories.torch_on(h100, version="1.13.1+cu117", cuda_version="11.7", arch_list=archs)
    finding = only("cuda.arch_support", factories.gpu_machine(h100, cu117))
    assert finding.severity is Severity.FAIL and "sm_90" in finding.title
    assert finding.detail is not None and "CUDA 11.7" in finding.detail and "up to 8.6" in finding.detail
    assert finding.fix is not None and "+cu118" in finding.fix


def test_ptx_only_within_a_family_the_toolkit_knows_stays_a_note() -> None:
    # CUDA 12.1 knows Hopper (9.0): an H100 on a wheel with only compute_80 PTX for it JIT-compiles, slowly
    h100 = _renamed("NVIDIA H100 80GB HBM3", [9, 0])
    ptx = factories.torch_on(h100, arch_list=("sm_70", "sm_80", "compute_80"))  # torch 2.3.1+cu121
    finding = only("cuda.arch_support", factories.gpu_machine(h100, ptx))
    assert finding.severity is Severity.INFO and "PTX" in finding.title
