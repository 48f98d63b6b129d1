"""`--from` a pasted `python -m torch.utils.collect_env` output: facts pinned per fixture, the doctor's verdict on
real-shaped causes and healthy machines, the mangling people add when pasting, and a fuzz of the parser."""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from envcheck.cli.app import app
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.python import PythonFacts
from envcheck.facts.system import SystemFacts
from envcheck.importers.collect_env import CollectEnvError, snapshot_from_collect_env
from envcheck.importers.collect_env_text import match_label, parse_collect_env, split_runs
from envcheck.loaders import InputError, load_snapshot_file
from envcheck.snapshot import Snapshot, from_json, to_json

FIXTURES = Path(__file__).parent / "fixtures" / "collect_env"
runner = CliRunner()

# fixture -> (torch version, torch.version.cuda, is_cuda_available, python, driver, GPU names, torchvision)
PINNED: dict[str, tuple[str, str | None, bool, str, str | None, tuple[str, ...], str | None]] = {
    "linux-torch2.1-cu121-a100x8-conda.txt": (
        "2.1.0",
        "12.1",
        True,
        "3.10.13",
        "535.104.05",
        ("NVIDIA A100-SXM4-80GB",) * 8,
        "0.16.0",
    ),
    "linux-torch1.4-cu101-gtx1080ti-2020.txt": (
        "1.4.0",
        "10.1",
        True,
        "3.7",
        "440.64",
        ("GeForce GTX 1080 Ti",),
        "0.5.0",
    ),
    "windows-torch2.1-cpu-wheel-rtx4090.txt": (
        "2.1.0+cpu",
        None,
        False,
        "3.11.5",
        "546.33",
        ("NVIDIA GeForce RTX 4090",),
        "0.16.0",
    ),
    "linux-torch2.1-cu121-driver470-too-old.txt": (
        "2.1.0+cu121",
        "12.1",
        False,
        "3.10.13",
        "470.82.01",
        ("Tesla V100-SXM2-32GB",) * 4,
        "0.16.0",
    ),
    "windows-torch2.1-cu121-driver526-rtx3080.txt": (
        "2.1.2+cu121",
        "12.1",
        False,
        "3.10.13",
        "526.98",
        ("NVIDIA GeForce RTX 3080",),
        "0.16.2+cu121",
    ),
    "linux-torch2.5-cu124-rtx5090-sm120.txt": (
        "2.5.1+cu124",
        "12.4",
        True,
        "3.12.9",
        "570.124.04",
        ("NVIDIA GeForce RTX 5090",),
        "0.20.1",
    ),
    "linux-torch2.1-cu121-tesla-k80-sm37.txt": (
        "2.1.0+cu121",
        "12.1",
        False,
        "3.10.11",
        "470.182.03",
        ("Tesla K80",),
        "0.16.0",
    ),
    "linux-torch2.1-cu118-torchvision0.15-mismatch.txt": (
        "2.1.2+cu118",
        "11.8",
        True,
        "3.10.12",
        "535.129.03",
        ("NVIDIA GeForce RTX 3090",),
        "0.15.2+cu118",
    ),
    "macos-torch2.2-arm64-m2pro.txt": ("2.2.0", None, False, "3.11.7", None, (), "0.17.0"),
    "linux-torch1.10-cu113-conda-rtxa6000.txt": (
        "1.10.2",
        "11.3",
        True,
        "3.9.7",
        "510.47.03",
        ("NVIDIA RTX A6000",) * 2,
        "0.11.3",
    ),
    "github-paste-details-crlf-mangled.txt": (
        "2.3.1+cu121",
        "12.1",
        True,
        "3.11.9",
        "550.54.15",
        ("NVIDIA H100 80GB HBM3",) * 2,
        "0.18.1",
    ),
    "truncated-torch2.2-cu118-rtx3080.txt": (
        "2.2.1+cu118",
        "11.8",
        True,
        "3.10.12",
        None,
        ("NVIDIA GeForce RTX 3080",),
        None,
    ),
    "linux-torch2.9-cu130-h200x8.txt": (
        "2.9.0+cu130",
        "13.0",
        True,
        "3.12.3",
        "580.95.05",
        ("NVIDIA H200",) * 8,
        "0.24.0+cu130",
    ),
    "windows-torch1.13-cu117-rtx3060.txt": (
        "1.13.1+cu117",
        "11.7",
        True,
        "3.10.9",
        "531.41",
        ("NVIDIA GeForce RTX 3060",),
        "0.14.1+cu117",
    ),
    "linux-torch2.1-rocm5.6-rx7900xtx.txt": ("2.1.1+rocm5.6", None, True, "3.10.12", None, (), "0.16.1+rocm5.6"),
    "quoted-indented-torch1.7-cu110-rtx2080ti.txt": (
        "1.7.1+cu110",
        "11.0",
        True,
        "3.8",
        "455.45.01",
        ("GeForce RTX 2080 Ti",) * 2,
        "0.8.2+cu110",
    ),
}
# fixture -> the check that must name the cause as a failure (the doctor's ids, docs/checks.md)
CAUSES = {
    "linux-torch2.1-cu121-driver470-too-old.txt": {"cuda.driver_too_old"},
    "windows-torch2.1-cpu-wheel-rtx4090.txt": {"install.cpu_wheel_on_gpu"},
    "linux-torch2.5-cu124-rtx5090-sm120.txt": {"cuda.arch_support"},
    # K80 (sm_37, last driver branch R470) under a cu121 wheel: both the driver and the arch are wrong
    "linux-torch2.1-cu121-tesla-k80-sm37.txt": {"cuda.driver_too_old", "cuda.arch_support"},
    "linux-torch2.1-cu118-torchvision0.15-mismatch.txt": {"install.companion_versions"},
    # Windows numbering: 526.98 is below cu12x's Windows floor 527.41 (above the Linux one, 525.60.13)
    "windows-torch2.1-cu121-driver526-rtx3080.txt": {"cuda.driver_too_old"},
}
HEALTHY = sorted(set(PINNED) - set(CAUSES))


def load(name: str) -> Snapshot:
    return load_snapshot_file(FIXTURES / name)


def unavailable_values(value: Any, path: str = "$") -> list[tuple[str, Unavailable]]:
    if isinstance(value, Unavailable):
        return [(path, value)]
    if is_dataclass(value) and not isinstance(value, type):
        return [
            found for f in fields(value) for found in unavailable_values(getattr(value, f.name), f"{path}.{f.name}")
        ]
    if isinstance(value, tuple):
        return [found for index, item in enumerate(value) for found in unavailable_values(item, f"{path}[{index}]")]
    return []


def test_every_fixture_is_pinned() -> None:
    assert sorted(path.name for path in FIXTURES.glob("*.txt")) == sorted(PINNED)
    assert len(PINNED) >= 12


@pytest.mark.parametrize("name", sorted(PINNED))
def test_fixture_facts_are_pinned(name: str) -> None:
    torch_version, cuda, is_available, python_version, driver, gpus, torchvision = PINNED[name]
    snapshot = load(name)
    assert snapshot.source == f"collect-env:{name}"
    framework, python, gpu = snapshot.framework, snapshot.python, snapshot.gpu
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    assert (framework.torch.version, framework.torch.cuda_version) == (torch_version, cuda)
    assert framework.torch.is_cuda_available is is_available
    assert framework.python_version == python_version
    assert isinstance(python, PythonFacts) and python.version == python_version
    packages = {package.name: package.version for package in python.packages}
    assert packages.get("torchvision") == torchvision
    if gpus:
        assert isinstance(gpu, GpuFacts) and tuple(g.name for g in gpu.gpus) == gpus
        assert [g.index for g in gpu.gpus] == list(range(len(gpus))) and gpu.gpu_count == len(gpus)
        assert gpu.driver_version == driver if driver else isinstance(gpu.driver_version, Unavailable)
    # what collect_env never says stays unknown, with a reason, never a made-up value
    for section in ("cpu", "memory", "storage", "environment"):
        assert isinstance(getattr(snapshot, section), Unavailable)
    # the OS is named (tests/test_collect_env_windows.py); the host, user and container never are
    system = snapshot.system
    assert isinstance(system, SystemFacts)
    for unknown in (system.hostname, system.is_root, system.container, system.uptime_s, system.open_files_limit):
        assert isinstance(unknown, Unavailable)
    assert all(found.reason for _, found in unavailable_values(snapshot))
    assert isinstance(framework.torch.cpu_smoke_test, Unavailable)
    assert isinstance(framework.torch.import_duration_s, Unavailable)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_imported_snapshot_round_trips_through_json(name: str) -> None:
    snapshot = load(name)
    assert from_json(to_json(snapshot)) == snapshot


def test_cause_facts_are_extracted() -> None:
    old_driver = load("linux-torch2.1-cu121-driver470-too-old.txt")
    assert isinstance(old_driver.framework, FrameworkFacts) and old_driver.framework.torch is not None
    assert "driver on your system is too old" in (old_driver.framework.torch.cuda_error or "")
    assert old_driver.framework.torch.cudnn_version == 8902  # nvidia-cudnn-cu12==8.9.2.26
    assert old_driver.framework.torch.nccl_version == "2.18.1"

    blackwell = load("linux-torch2.5-cu124-rtx5090-sm120.txt")
    assert isinstance(blackwell.framework, FrameworkFacts) and blackwell.framework.torch is not None
    # torch's own warning above the block quotes the wheel's arch list
    assert blackwell.framework.torch.arch_list == ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
    assert "sm_120 is not compatible" in (blackwell.framework.torch.cuda_error or "")
    assert blackwell.framework.torch.cudnn_version == 90100

    conda = load("linux-torch2.1-cu121-a100x8-conda.txt")
    assert isinstance(conda.framework, FrameworkFacts) and conda.framework.torch is not None
    assert conda.framework.torch.cudnn_version == 8902  # from py3.10_cuda12.1_cudnn8.9.2_0, not the system lib
    assert conda.framework.torch.arch_list == ()  # not reported: checks fall back to the wheel tables


def test_pip_and_conda_lines_of_one_environment_are_one_install() -> None:
    for name in ("linux-torch2.1-cu121-a100x8-conda.txt", "windows-torch1.13-cu117-rtx3060.txt"):
        python = load(name).python
        assert isinstance(python, PythonFacts)
        assert [package.location for package in python.packages if package.name == "torch"] == ["pip"]


def test_a_conda_install_that_differs_from_pip_is_a_second_install() -> None:
    text = (
        (FIXTURES / "linux-torch1.4-cu101-gtx1080ti-2020.txt")
        .read_text()
        .replace("[pip] torch==1.4.0", "[pip] torch==1.5.0")
    )
    python = snapshot_from_collect_env(text.encode(), "edited.txt").python
    assert isinstance(python, PythonFacts)
    assert sorted((p.version, p.location) for p in python.packages if p.name == "torch") == [
        ("1.4.0", "conda"),
        ("1.5.0", "pip"),
    ]


def test_macos_no_cuda_means_no_nvidia_gpu_and_unknown_gpu_list_is_unavailable() -> None:
    gpu = load("macos-torch2.2-arm64-m2pro.txt").gpu
    assert isinstance(gpu, GpuFacts) and gpu.gpus == () and "No CUDA" in (gpu.no_gpu_reason or "")
    text = (FIXTURES / "linux-torch2.9-cu130-h200x8.txt").read_text()
    start, end = text.index("GPU models"), text.index("Nvidia driver")
    edited = text[:start] + "GPU models and configuration: Could not collect\n" + text[end:]
    assert isinstance(snapshot_from_collect_env(edited.encode(), "x.txt").gpu, Unavailable)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_doctor_from_fixture_runs_and_names_the_cause(name: str) -> None:
    result = runner.invoke(app, ["doctor", "--from", str(FIXTURES / name), "--json"])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    failures = {finding["id"] for finding in document["findings"] if finding["severity"] == "fail"}
    assert failures == CAUSES.get(name, set()), [f for f in document["findings"] if f["severity"] == "fail"]
    assert result.exit_code == (1 if failures else 0)
    skipped = {finding["id"] for finding in document["findings"] if finding["severity"] == "skip"}
    # facts the format lacks are skipped, never judged: no computation ran, no /dev/shm was measured
    assert "install.smoke_test" in skipped and any(check.startswith("system.") for check in skipped)


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("PyTorch version", "torch_version"),
        ("ytorch version", "torch_version"),  # the first character lost in the copy
        ("Torch version", "torch_version"),  # hand-edited
        ("Nvidia Driver Version ", "driver"),
        ("Driver version", "driver"),  # retyped by hand
        ("GPUs", "gpu_models"),
        ("CUDA version", None),  # ambiguous: neither the build's CUDA nor cuDNN
        ("CPU(s)", None),  # lscpu's, not collect_env's CPU
        ("Model name", None),
    ],
)
def test_label_matching_is_tolerant_but_not_loose(label: str, key: str | None) -> None:
    assert match_label(label) == key


def test_utf16_paste_from_powershell_reads_like_utf8() -> None:
    text = (FIXTURES / "windows-torch1.13-cu117-rtx3060.txt").read_text()
    utf16 = snapshot_from_collect_env(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"), "w.txt")
    assert utf16 == snapshot_from_collect_env(text.encode(), "w.txt")


def test_rocm_build_and_an_amd_gpu_are_not_read_as_nvidia() -> None:
    snapshot = load("linux-torch2.1-rocm5.6-rx7900xtx.txt")
    assert isinstance(snapshot.framework, FrameworkFacts) and snapshot.framework.torch is not None
    assert snapshot.framework.torch.hip_version == "5.6.31061-8c743ae5d"
    assert isinstance(snapshot.gpu, Unavailable) and "AMD Radeon RX 7900 XTX" in snapshot.gpu.reason


def test_two_runs_pasted_one_below_the_other_read_the_last() -> None:
    first = (FIXTURES / "linux-torch2.1-cu121-driver470-too-old.txt").read_text()
    second = (FIXTURES / "linux-torch2.1-cu121-a100x8-conda.txt").read_text()
    snapshot = snapshot_from_collect_env((first + "\nafter updating the driver:\n" + second).encode(), "two.txt")
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.driver_version == "535.104.05"
    assert [gpu.name for gpu in snapshot.gpu.gpus] == ["NVIDIA A100-SXM4-80GB"] * 8
    assert snapshot.source == "collect-env:two.txt (the last of 2 runs pasted)"
    # the first run's "driver too old (found version 11040)" is history: not read against the second run's facts
    assert snapshot.messages.driver_too_old is None


def test_the_warning_printed_before_the_second_run_belongs_to_it() -> None:
    healthy = (FIXTURES / "linux-torch2.1-cu121-a100x8-conda.txt").read_text()
    too_old = (FIXTURES / "linux-torch2.1-cu121-driver470-too-old.txt").read_text()
    runs = split_runs(healthy + "\nand on the other node:\n" + too_old)
    assert len(runs) == 2 and runs[1].startswith("\nand on the other node:") and "found version 11040" in runs[1]
    snapshot = snapshot_from_collect_env((healthy + too_old).encode(), "two.txt")
    assert snapshot.messages.driver_too_old is not None
    assert snapshot.messages.driver_too_old.driver_cuda_version == "11.4"
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.driver_version == "470.82.01"


def test_a_second_run_pasted_without_its_start_marker_is_still_a_run() -> None:
    first = (FIXTURES / "linux-torch2.1-cu121-driver470-too-old.txt").read_text()
    second = (
        (FIXTURES / "linux-torch2.1-cu121-a100x8-conda.txt")
        .read_text()
        .replace("Collecting environment information...", "")
    )
    assert len(split_runs(first + second)) == 2 and len(split_runs(first)) == 1
    snapshot = snapshot_from_collect_env((first + second).encode(), "two.txt")
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.driver_version == "535.104.05"


def test_an_unreadable_cuda_build_is_unknown_not_cpu() -> None:
    text = (FIXTURES / "linux-torch1.4-cu101-gtx1080ti-2020.txt").read_text()
    text = text.replace("CUDA used to build PyTorch: 10.1", "CUDA used to build PyTorch: see above")
    framework = snapshot_from_collect_env(text.encode(), "edited.txt").framework
    assert isinstance(framework, Unavailable) and "CUDA used to build PyTorch" in framework.reason


@pytest.mark.parametrize(
    ("version", "cuda"),
    [("2.3.1+cu121", "12.1"), ("2.3.1+cpu", None), ("2.3.1+rocm6.0", None), ("2.3.0a0+git1a2b3c", "?")],
)
def test_without_the_cuda_line_the_build_comes_from_the_version_tag(version: str, cuda: str | None) -> None:
    text = (FIXTURES / "linux-torch2.9-cu130-h200x8.txt").read_text()
    text = text.replace("PyTorch version: 2.9.0+cu130", f"PyTorch version: {version}")
    text = text.replace("CUDA used to build PyTorch: 13.0\n", "")
    framework = snapshot_from_collect_env(text.encode(), "edited.txt").framework
    if cuda == "?":  # a source build says nothing about its CUDA: unknown, not CPU-only
        assert isinstance(framework, Unavailable)
    else:
        assert isinstance(framework, FrameworkFacts) and framework.torch is not None
        assert framework.torch.cuda_version == cuda


def test_torch_na_means_installed_but_not_importable() -> None:
    text = (FIXTURES / "linux-torch2.1-cu118-torchvision0.15-mismatch.txt").read_text()
    text = text.replace("PyTorch version: 2.1.2+cu118", "PyTorch version: N/A")
    framework = snapshot_from_collect_env(text.encode(), "na.txt").framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is None and framework.is_torch_installed
    assert "N/A" in (framework.import_error or "")


def test_a_paste_cut_before_is_cuda_available_keeps_packages_but_not_the_framework() -> None:
    text = (FIXTURES / "linux-torch2.9-cu130-h200x8.txt").read_text()
    start = text.index("Python version")
    snapshot = snapshot_from_collect_env(text[:start].encode(), "cut.txt")
    # a CUDA build with nothing saying whether CUDA came up: the framework stays unknown, it is not guessed
    assert isinstance(snapshot.framework, Unavailable) and "Is CUDA available" in snapshot.framework.reason


def test_a_paste_cut_off_after_torchs_warnings_is_read_for_them_alone() -> None:
    text = (
        "Collecting environment information...\n"
        "/venv/lib/python3.12/site-packages/torch/cuda/__init__.py:371: UserWarning: Found GPU0 Tesla V100-PCIE-32GB "
        "which is of compute capability (CC) 7.0.\n"
        "The following list shows the CCs this version of PyTorch was built for and the hardware CCs it supports:\n"
        "- 7.5 which supports hardware CC >=7.5,<8.0\n"
        "- 12.0 which supports hardware CC >=12.0,<13.0\n"
    )
    snapshot = snapshot_from_collect_env(text.encode(), "cut.txt")
    assert isinstance(snapshot.framework, Unavailable) and "PyTorch version" in snapshot.framework.reason
    (message,) = snapshot.messages.unsupported_archs
    assert (message.gpu_name, message.arch_list) == ("Tesla V100-PCIE-32GB", ("sm_75", "sm_120"))


def test_too_mangled_is_one_line_error_naming_the_file_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "mangled.txt"
    path.write_text("Collecting environment information...\nIs debug build: False\nOS: Ubuntu\n")
    with pytest.raises(InputError, match=r"mangled\.txt: no PyTorch version"):
        load_snapshot_file(path)
    result = runner.invoke(app, ["doctor", "--from", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "mangled.txt" in result.output and "Traceback" not in result.output


def test_other_text_is_still_an_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my GPU is slow, torch 2.1 on ubuntu\n")
    with pytest.raises(InputError, match="unknown format"):
        load_snapshot_file(path)


def test_a_paste_opening_with_details_or_in_utf16_is_detected_as_collect_env(tmp_path: Path) -> None:
    text = (FIXTURES / "linux-torch2.9-cu130-h200x8.txt").read_text()
    details = tmp_path / "details.txt"
    details.write_text(f"<details>\n<summary>env</summary>\n\n{text}\n</details>\n")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    for path in (details, utf16):
        gpu = load_snapshot_file(path).gpu
        assert isinstance(gpu, GpuFacts) and gpu.driver_version == "580.95.05", path


def test_nvidia_smi_xml_still_goes_to_the_xml_reader(tmp_path: Path) -> None:
    xml = next((Path(__file__).parent / "fixtures" / "nvidia-smi").glob("*.xml"))
    assert load_snapshot_file(xml).source.startswith("nvidia-smi-xml:")


REAL_LINES = [line for path in sorted(FIXTURES.glob("*.txt")) for line in path.read_text().splitlines()]


def assert_only_our_error(data: bytes) -> None:
    """Whatever the bytes, the importer returns a snapshot or raises its own one error type, nothing else."""
    with contextlib.suppress(CollectEnvError):
        snapshot_from_collect_env(data, "fuzz.txt")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_fuzz_random_text(text: str) -> None:
    assert_only_our_error(text.encode("utf-8", errors="surrogatepass"))
    parse_collect_env(text)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(PINNED)), st.integers(min_value=0), st.integers(min_value=0, max_value=2**32))
def test_fuzz_truncations_and_shuffles_of_real_fixtures(name: str, cut: int, seed: int) -> None:
    data = (FIXTURES / name).read_bytes()
    assert_only_our_error(data[: cut % (len(data) + 1)])
    lines = data.decode("utf-8").splitlines()
    shuffler = random.Random(seed)
    shuffler.shuffle(lines)
    assert_only_our_error("\n".join(lines).encode())
    mixed = [line for line in lines if shuffler.random() > 0.3] + shuffler.sample(REAL_LINES, 10)
    assert_only_our_error("\n".join(mixed).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes_after_a_marker(noise: bytes) -> None:
    assert_only_our_error(b"PyTorch version: " + noise)
    assert_only_our_error(b"\xff\xfe" + noise)
