"""The companion and arch rules against the release history they apply to (issue 11 item 6): pure-Python
torchvision, nightly and source-build version strings and ROCm builds never fail; a companion of another
build (CPU beside CUDA) does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envcheck.checks.companions import conda_variant
from envcheck.checks.wheels import wheel_for_driver_cuda
from envcheck.facts.common import Unavailable
from envcheck.facts.python import InstalledPackage, PythonFacts
from envcheck.finding import Severity
from envcheck.importers.collect_env import snapshot_from_collect_env
from envcheck.snapshot import Snapshot
from tests import factories
from tests.test_checks_install import KNOWLEDGE, only

NO_ARCH_PROBED = {"arch_list": ()}  # a collect_env paste: torch's arch list is not in it
BLACKWELL = {"device[0].name": "NVIDIA GeForce RTX 5090", "device[0].compute_capability": [12, 0]}


def installed(system_changes: dict[str, str] | None = None, **versions: str) -> Snapshot:
    return factories.snapshot(
        python=factories.python(packages=factories.packages(**versions)),
        system=factories.system(**(system_changes or {})),
    )


@pytest.mark.parametrize(
    ("torch", "torchvision"),
    [("1.4.0", "0.2.2.post3"), ("1.2.0", "0.2.1"), ("2.3.1+cu121", "0.2.2"), ("1.0.1", "0.2.2")],
)
def test_pure_python_torchvision_fits_any_torch(torch: str, torchvision: str) -> None:
    assert only("install.companion_versions", installed(torch=torch, torchvision=torchvision)).severity is Severity.OK


def test_the_first_torchvision_with_compiled_ops_is_judged() -> None:
    finding = only("install.companion_versions", installed(torch="1.4.0", torchvision="0.3.0"))
    assert finding.severity is Severity.FAIL and "made for torch 1.1.0" in finding.title


@pytest.mark.parametrize(
    "versions",
    [
        # companions the release tables list beside the paired one: a same-day fix release, conda's pairing
        {"torch": "1.7.0", "torchvision": "0.8.1", "torchaudio": "0.7.0a0+ac17b64"},
        {"torch": "2.0.0", "torchvision": "0.15.0", "torchaudio": "2.0.0"},
        {"torch": "2.0.0+cu118", "torchvision": "0.15.1+cu118", "torchaudio": "2.0.1+cu118"},
        # real nightly sets: numbers and dates need not line up with torch's (pytorch/pytorch#150900, #40013)
        {
            "torch": "2.8.0.dev20250407+cu128",
            "torchvision": "0.22.0.dev20250408+cu128",
            "torchaudio": "2.6.0.dev20250408+cu128",
        },
        {"torch": "1.6.0.dev20200609", "torchvision": "0.7.0.dev20200610"},
        # conda's pytorch-nightly trio of pytorch/audio#2610
        {"torch": "1.13.0.dev20220815", "torchvision": "0.14.0.dev20220815", "torchaudio": "0.13.0.dev20220815"},
        # source builds: a git tree, an NGC container (torch 2.0.0a0 never had a release torchvision 0.15.0)
        {"torch": "2.1.0a0+git32f93b1", "torchvision": "0.16.0a0+c1e2095"},
        {"torch": "2.0.0a0+fe05266", "torchvision": "0.15.0a0", "torchaudio": "2.0.1+3b40834"},
        # a release torch with a torchvision built from source against it
        {"torch": "2.0.1", "torchvision": "0.15.0a0+5850f37"},
        # ROCm wheels
        {"torch": "2.5.1+rocm6.2", "torchvision": "0.20.1+rocm6.2", "torchaudio": "2.5.1+rocm6.2"},
        # an untagged companion beside an untagged torch: a conda build of either kind, not judged on its variant
        {"torch": "2.2.1", "torchvision": "0.17.1"},
        # an untagged PyPI torchvision is its default CUDA build (cu121 for 2.2), the same as this torch
        {"torch": "2.2.1+cu121", "torchvision": "0.17.1"},
    ],
)
def test_no_false_failure_on_nightly_source_and_rocm_builds(versions: dict[str, str]) -> None:
    finding = only("install.companion_versions", installed(**versions))
    assert finding.severity is Severity.OK, finding.title


def test_a_release_torchvision_beside_a_nightly_torch_is_a_warning_with_the_nightly_to_install() -> None:
    finding = only("install.companion_versions", installed(torch="2.6.0.dev20241001+cu124", torchvision="0.20.0"))
    assert finding.severity is Severity.WARN
    assert finding.fix is not None and "--pre" in finding.fix and "whl/nightly/cu124" in finding.fix


def test_a_source_built_companion_of_another_series_is_a_warning() -> None:
    finding = only("install.companion_versions", installed(torch="2.0.1", torchvision="0.14.0a0+abc1234"))
    assert finding.severity is Severity.WARN and "source build" in finding.title


def test_a_nightly_companion_beside_a_release_torch_fails() -> None:
    # pytorch/audio#1749: a ROCm nightly torchaudio beside torch 1.9.0+cu111 asks for libtorch_hip.so
    finding = only(
        "install.companion_versions", installed(torch="1.9.0+cu111", torchaudio="0.10.0.dev20210902+rocm4.1")
    )
    assert finding.severity is Severity.FAIL and "torchaudio==0.9.0" in (finding.fix or "")


def test_a_cuda_torchvision_beside_a_cpu_torch_fails_and_reinstalls_the_cpu_build() -> None:
    # pytorch/pytorch#122494: torch 2.2.1+cpu with PyPI's torchvision 0.17.1 (a CUDA build on Linux x86_64)
    finding = only("install.companion_versions", installed(torch="2.2.1+cpu", torchvision="0.17.1"))
    assert finding.severity is Severity.FAIL
    assert "CUDA 12.1 build" in finding.title and "CPU-only one" in finding.title
    assert finding.fix is not None and "--force-reinstall" in finding.fix and "torchvision==0.17.1" in finding.fix
    assert "whl/cpu" in finding.fix


def test_untagged_pypi_builds_are_judged_only_on_linux_x86_64() -> None:
    windows = installed({"os_name": "Windows"}, torch="2.2.1+cpu", torchvision="0.17.1")
    assert only("install.companion_versions", windows).severity is Severity.OK  # PyPI's Windows build is CPU
    arm = installed({"architecture": "aarch64"}, torch="2.2.1+cpu", torchvision="0.17.1")
    assert only("install.companion_versions", arm).severity is Severity.OK


@pytest.mark.parametrize(
    ("torch", "companion", "severity"),
    [
        ("2.1.0+cu118", "0.16.0+cpu", Severity.WARN),  # loads; its ops have no CUDA kernels
        ("2.5.1+cu124", "0.20.1+cu121", Severity.WARN),  # another CUDA minor: current torchvision accepts it
        ("2.1.0+cu118", "0.16.0+cu121", Severity.FAIL),  # another CUDA major: refused at import
        ("2.11.0+cu128", "0.26.0", Severity.FAIL),  # PyPI's torchvision is cu130: another CUDA major fails at import
        ("2.1.0+cpu", "0.16.0+cu121", Severity.FAIL),  # links libtorch_cuda, which a CPU torch lacks
        ("2.1.0+rocm5.6", "0.16.0+cu121", Severity.FAIL),
        ("2.1.0+rocm5.6", "0.16.0+rocm5.6", Severity.OK),
    ],
)
def test_a_companion_of_another_build_variant(torch: str, companion: str, severity: Severity) -> None:
    assert only("install.companion_versions", installed(torch=torch, torchvision=companion)).severity is severity


@pytest.mark.parametrize("version", ["2.6.0.dev20241201+cu126", "2.1.0a0+41361538.nv23.06"])
def test_arch_tables_are_not_applied_to_nightly_or_source_builds(version: str) -> None:
    rtx5090 = factories.nvml_gpu("rtx4090-driver535.86.05", **BLACKWELL)
    torch = factories.torch_on(rtx5090, version=version, cuda_version="12.6", **NO_ARCH_PROBED)
    finding = only("cuda.arch_support", factories.gpu_machine(rtx5090, torch))
    assert finding.severity is Severity.SKIP and "nightly or source build" in finding.detail


def test_arch_tables_still_judge_the_release_wheel() -> None:
    rtx5090 = factories.nvml_gpu("rtx4090-driver535.86.05", **BLACKWELL)
    torch = factories.torch_on(rtx5090, version="2.6.0+cu126", cuda_version="12.6", **NO_ARCH_PROBED)
    assert only("cuda.arch_support", factories.gpu_machine(rtx5090, torch)).severity is Severity.FAIL


def test_a_companion_listed_for_one_release_is_named_as_made_for_it() -> None:
    finding = only("install.companion_versions", installed(torch="1.7.1", torchvision="0.8.1"))
    assert finding.severity is Severity.FAIL and "made for torch 1.7.0" in finding.title
    assert "torchvision==0.8.2" in (finding.fix or "")


def test_a_nightly_is_judged_on_the_arch_list_torch_itself_reported() -> None:
    # pytorch/pytorch#53164: a cu111 nightly built without sm_61, which the 1.8.0 cu111 release wheel had
    gtx1070ti = factories.nvml_gpu(
        "rtx4090-driver535.86.05", **{"device[0].name": "GeForce GTX 1070 Ti", "device[0].compute_capability": [6, 1]}
    )
    nightly = factories.torch_on(
        gtx1070ti,
        version="1.9.0.dev20210303+cu111",
        cuda_version="11.1",
        arch_list=("sm_50", "sm_70", "sm_80", "sm_86"),
    )
    finding = only("cuda.arch_support", factories.gpu_machine(gtx1070ti, nightly))
    assert finding.severity is Severity.FAIL and "sm_61" in finding.title


@pytest.mark.parametrize(
    ("torch", "driver_cuda", "variant"),
    [
        ("2.1.0+cu121", "11.4", "cu118"),  # a 470 driver runs any CUDA 11.x wheel (minor-version compatibility)
        ("1.12.1+cu102", "9.1", None),  # no 1.12.1 wheel is that old
        ("1.7.1+cu110", "10.2", "cu102"),  # before CUDA 11 only the driver's own CUDA or older
        ("2.6.0+cu126", "12.2", "cu126"),  # the same major: the installed wheel itself would run (not named as a fix)
    ],
)
def test_the_wheel_a_driver_too_old_still_runs(torch: str, driver_cuda: str, variant: str | None) -> None:
    wheel = wheel_for_driver_cuda(KNOWLEDGE, torch, driver_cuda)
    assert (wheel.variant if wheel else None) == variant


def test_a_cpu_build_on_macos_is_no_warning_even_in_a_paste_without_gpu_lines() -> None:
    mac = factories.snapshot(
        system=factories.system(os_name="Darwin", architecture="arm64"),
        framework=factories.framework(torch=factories.torch(version="2.2.2", cuda_version=None, devices=())),
        gpu=Unavailable("collect_env printed 'No CUDA'", "run on the machine"),
    )
    mac = dataclasses.replace(mac, source="collect-env:report.txt")  # an imported paste, not this machine
    assert only("install.cpu_wheel_on_gpu", mac).severity is Severity.OK
    linux = factories.snapshot(
        framework=factories.framework(torch=factories.torch(version="2.2.2", cuda_version=None, devices=())),
        gpu=Unavailable("collect_env printed 'No CUDA'", "run on the machine"),
    )
    linux = dataclasses.replace(linux, source="collect-env:report.txt")
    assert only("install.cpu_wheel_on_gpu", linux).severity is Severity.WARN


def test_torchaudio_after_its_last_release() -> None:
    # torchaudio made no release after 2.11; a stable-ABI torchaudio loads with a later torch, so it only warns
    later = only("install.companion_versions", installed(torch="2.12.0+cu130", torchaudio="2.11.0+cu130"))
    assert later.severity is Severity.WARN and "no torchaudio release exists" in later.title
    assert later.fix is not None and "uninstall -y torchaudio" in later.fix and "--pre" not in later.fix
    # ...but not with an earlier one (deepbeepmeep/Wan2GP#1701: torchaudio 2.11 under torch 2.10, undefined symbol)
    earlier = only("install.companion_versions", installed(torch="2.10.0+cu130", torchaudio="2.11.0+cu130"))
    assert earlier.severity is Severity.FAIL and "torchaudio==2.10.0" in (earlier.fix or "")
    # a torchaudio from before the stable ABI (2.9 and older) beside a torch without one still fails
    old = only("install.companion_versions", installed(torch="2.12.0+cu130", torchaudio="2.9.1"))
    assert old.severity is Severity.FAIL


# conda: the build string names the variant (issue 11 item 6 follow-up). Strings from real collect_env pastes:
# pytorch/pytorch#27745 (py3.7_cuda90_cudnn7_1, py_3), #69202 (py3.8_cpu_0), the fixtures under
# tests/fixtures/collect_env (py3.10_cuda12.1_cudnn8.9.2_0, py3.7_cuda10.1.243_cudnn7.6.3_0, py39_cu113, py37_cu101);
# conda-forge's cuda118_py310h... / cpu_py310h... (conda/conda#14761)
@pytest.mark.parametrize(
    ("build", "variant"),
    [
        ("py3.9_cuda11.7_cudnn8.5.0_0", "cu117"),
        ("py3.10_cpu_0", "cpu"),
        ("py3.7_cuda90_cudnn7_1", "cu90"),
        ("py3.7_cuda10.1.243_cudnn7.6.3_0", "cu101"),
        ("py39_cu117", "cu117"),
        ("py37_cu101", "cu101"),
        ("py310_cpu", "cpu"),
        ("cuda118_py310h9f1b2c3_300", "cu118"),
        ("cuda120_py311h1234567_301", "cu120"),
        ("cpu_py310h0123456_0", "cpu"),
        ("gpu_cuda113py39h19ae3d8_1", "cu113"),
        ("py_3", None),
        ("0", None),
        ("h778d358_5", None),
        ("pypi_0", None),
    ],
)
def test_conda_build_strings_name_the_variant(build: str, variant: str | None) -> None:
    assert conda_variant(build) == variant


def conda_env(torch: tuple[str, str], *others: tuple[str, str, str], channel: str = "pytorch") -> Snapshot:
    """A conda environment as a paste records it: pip lists each package, conda adds its build and channel."""
    packages = [InstalledPackage("torch", torch[0], "pip", build=torch[1], channel=channel)]
    packages += [
        InstalledPackage(name, version, "conda", build=build, channel=channel) for name, version, build in others
    ]
    return factories.snapshot(python=factories.python(packages=tuple(packages)), framework=Unavailable("pasted"))


@pytest.mark.parametrize(
    "snapshot",
    [
        conda_env(
            ("2.0.1", "py3.9_cuda11.7_cudnn8.5.0_0"),
            ("torchvision", "0.15.2", "py39_cu117"),
            ("pytorch-cuda", "11.7", "h778d358_5"),
            ("pytorch-mutex", "1.0", "cuda"),
        ),
        conda_env(
            ("1.13.1", "py3.10_cpu_0"),
            ("torchvision", "0.14.1", "py310_cpu"),
            ("cpuonly", "2.0", "0"),
            ("pytorch-mutex", "1.0", "cpu"),
        ),
        conda_env(
            ("2.1.2", "cuda118_py310h9f1b2c3_300"),
            ("torchvision", "0.16.2", "cuda118_py310h1234567_1"),
            channel="conda-forge",
        ),
        conda_env(("1.4.0", "py3.7_cuda10.1.243_cudnn7.6.3_0"), ("torchvision", "0.5.0", "py37_cu101")),
        # a noarch torchvision names no build: nothing to judge
        conda_env(("1.0.0", "py3.7_cuda90_cudnn7_1"), ("torchvision", "0.2.2", "py_3")),
    ],
)
def test_healthy_conda_environments_pass(snapshot: Snapshot) -> None:
    finding = only("install.companion_versions", snapshot)
    assert finding.severity is Severity.OK, finding.title


def test_a_conda_cpu_torchvision_beside_a_cuda_pytorch_warns_with_a_conda_fix() -> None:
    env = conda_env(("2.0.1", "py3.9_cuda11.7_cudnn8.5.0_0"), ("torchvision", "0.15.2", "py39_cpu"))
    finding = only("install.companion_versions", env)
    assert finding.severity is Severity.WARN
    assert "torchvision 0.15.2 is a CPU-only build, torch 2.0.1 a CUDA 11.7 one" in finding.title
    assert finding.fix == 'conda install -c pytorch "torchvision=0.15.2=*cu117*"'


def test_a_conda_cuda_torchvision_beside_a_cpu_pytorch_fails() -> None:
    env = conda_env(("1.13.1", "py3.10_cpu_0"), ("torchvision", "0.14.1", "py310_cu117"))
    finding = only("install.companion_versions", env)
    assert finding.severity is Severity.FAIL and "CUDA 11.7 build, torch 1.13.1 a CPU-only one" in finding.title
    assert finding.fix == 'conda install -c pytorch "torchvision=0.14.1=*cpu*"'  # no pip uninstall of conda's files


def test_conda_forge_builds_are_judged_by_their_own_convention() -> None:
    env = conda_env(("2.1.2", "cpu_py310h0123456_0"), ("torchvision", "0.16.2", "cuda118_py310h1234567_1"),
                    channel="conda-forge")  # fmt: skip
    finding = only("install.companion_versions", env)
    assert finding.severity is Severity.FAIL
    assert finding.fix == 'conda install -c conda-forge "torchvision=0.16.2=*cpu*"'


@pytest.mark.parametrize("pin", [("cpuonly", "2.0", "0"), ("pytorch-mutex", "1.0", "cpu")])
def test_the_cpu_pin_beside_a_cuda_pytorch_warns(pin: tuple[str, str, str]) -> None:
    # "Anaconda installation CUDA requested, cpuonly obtained" (pytorch/pytorch#32369)
    env = conda_env(("2.0.1", "py3.9_cuda11.7_cudnn8.5.0_0"), ("torchvision", "0.15.2", "py39_cu117"), pin)
    finding = only("install.companion_versions", env)
    assert finding.severity is Severity.WARN and f"{pin[0]} {pin[1]} (conda's CPU-only pin)" in finding.title
    assert finding.fix == f"conda remove {pin[0]}"


@pytest.mark.parametrize(("runtime", "severity"), [("11.8", Severity.WARN), ("12.1", Severity.FAIL)])
def test_pytorch_cuda_of_another_version_than_the_build(runtime: str, severity: Severity) -> None:
    env = conda_env(("2.0.1", "py3.9_cuda11.7_cudnn8.5.0_0"), ("pytorch-cuda", runtime, "h778d358_5"))
    finding = only("install.companion_versions", env)
    assert (
        finding.severity is severity and f"pytorch-cuda {runtime} installs the CUDA {runtime} runtime" in finding.title
    )
    assert finding.fix == "conda install -c pytorch -c nvidia pytorch-cuda=11.7"


def test_pytorch_cuda_beside_a_cpu_pytorch_says_conda_chose_the_cpu_build() -> None:
    # pytorch/pytorch#69202: `pytorch=1.9.0=py3.8_cpu_0` installed where a CUDA build was asked for
    env = conda_env(("1.13.1", "py3.10_cpu_0"), ("pytorch-cuda", "11.7", "h778d358_5"))
    finding = only("install.companion_versions", env)
    assert finding.severity is Severity.WARN and "torch 1.13.1 is a CPU-only build" in finding.title
    assert finding.fix == "conda install -c pytorch -c nvidia pytorch=1.13.1 pytorch-cuda=11.7"


CONDA_PASTE = Path(__file__).parent / "fixtures" / "collect_env" / "linux-torch2.1-cu121-a100x8-conda.txt"


def from_paste(*edits: tuple[str, str]) -> Snapshot:
    text = CONDA_PASTE.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return snapshot_from_collect_env(text.encode(), "edited.txt")


def test_the_importer_keeps_condas_build_and_channel_on_the_one_install() -> None:
    python = from_paste().python
    assert isinstance(python, PythonFacts)
    (torch,) = [p for p in python.packages if p.name == "torch"]
    assert (torch.location, torch.build, torch.channel) == ("pip", "py3.10_cuda12.1_cudnn8.9.2_0", "pytorch")
    (runtime,) = [p for p in python.packages if p.name == "pytorch-cuda"]
    assert (runtime.version, runtime.build, runtime.location) == ("12.1", "ha16c6d3_5", "conda")
    assert only("install.companion_versions", from_paste()).severity is Severity.OK


def test_a_pasted_conda_cpu_torchvision_and_cpu_mutex_are_found() -> None:
    snapshot = from_paste(
        ("0.16.0              py310_cu121", "0.16.0              py310_cpu"),
        ("pytorch-mutex             1.0                        cuda", "pytorch-mutex             1.0   cpu"),
    )
    finding = only("install.companion_versions", snapshot)
    assert finding.severity is Severity.WARN
    assert "torchvision 0.16.0 is a CPU-only build, torch 2.1.0 a CUDA 12.1 one" in finding.title
    assert "pytorch-mutex 1.0 (conda's CPU-only pin)" in finding.title


def test_a_pasted_pytorch_cuda_of_another_major_fails() -> None:
    snapshot = from_paste(("pytorch-cuda              12.1", "pytorch-cuda              11.8"))
    finding = only("install.companion_versions", snapshot)
    assert finding.severity is Severity.FAIL and "torch 2.1.0 is a CUDA 12.1 build" in finding.title


def test_a_conda_line_without_a_channel_column_gets_a_fix_without_one() -> None:
    # Anaconda's defaults channel prints no channel column: `[conda] pytorch 1.13.1 gpu_cuda113py310h19ae3d8_1`
    packages = (
        InstalledPackage("torch", "1.13.1", "pip", build="gpu_cuda113py310h19ae3d8_1"),
        InstalledPackage("torchvision", "0.14.1", "conda", build="cpu_py310h0123456_0"),
    )
    env = factories.snapshot(python=factories.python(packages=packages), framework=Unavailable("pasted"))
    finding = only("install.companion_versions", env)
    assert finding.severity is Severity.WARN and finding.fix == 'conda install "torchvision=0.14.1=*cuda113*"'
