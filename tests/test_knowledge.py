"""The knowledge base: every shipped profile loads, key facts are pinned, and bad files fail with file and field."""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path

import pytest

from envcheck.facts.common import Unavailable
from envcheck.knowledge import (
    KnowledgeError,
    arch_support,
    cuda_of_variant,
    driver_satisfies,
    load_knowledge,
    load_workload,
    profiles_root,
    required_driver,
    workload_names,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nvidia-smi"
WORKLOADS = (
    "bert-base-finetune",
    "cifar10-cnn",
    "llama-70b-inference-4bit",
    "llama-7b-full",
    "llama-7b-lora",
    "resnet50-imagenet",
)


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    """A writable copy of the shipped profiles, for breaking one file at a time."""
    root = tmp_path / "profiles"
    shutil.copytree(profiles_root(), root)
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- every shipped file loads -----------------------------------------------------------------


def test_profiles_root_is_the_checkout_profiles_directory() -> None:
    assert (profiles_root() / "compat" / "torch_releases.toml").is_file()


def test_everything_loads_and_is_cached() -> None:
    knowledge = load_knowledge()
    assert knowledge is load_knowledge()
    assert len(knowledge.torch_releases) >= 50
    assert len(knowledge.cuda_toolkits) >= 30
    assert len(knowledge.wheel_archs) >= 90
    assert len(knowledge.gpus) >= 40


def test_every_row_has_source_and_as_of() -> None:
    knowledge = load_knowledge()
    rows = (
        *knowledge.torch_releases, *knowledge.cuda_toolkits, *knowledge.wheel_archs, *knowledge.gpus,
        *knowledge.extensions, *knowledge.import_signatures, *knowledge.host_compilers,
    )  # fmt: skip
    for row in rows:
        assert row.provenance.source.strip()
        assert row.provenance.as_of.year >= 2026


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_workload_loads(name: str) -> None:
    profile = load_workload(name)
    assert profile.name == name
    assert profile.description and profile.parameters > 0
    assert profile.min_gpu_memory_gb > 0 and profile.min_cpu_cores >= 1


def test_workload_names_lists_the_shipped_profiles() -> None:
    assert workload_names() == WORKLOADS


def test_workload_from_a_file_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    shutil.copy(profiles_root() / "workloads" / "cifar10-cnn.toml", path)
    assert load_workload(path).parameters == 11_173_962
    assert load_workload(str(path)).name == "cifar10-cnn"


def test_cnn_workloads_carry_activation_memory() -> None:
    for name in ("cifar10-cnn", "resnet50-imagenet"):
        profile = load_workload(name)
        assert profile.activation_memory_per_sample_mb and profile.reference_resolution


# --- pinned facts ---------------------------------------------------------------------------------


def test_torch_251_variants_and_companions() -> None:
    release = load_knowledge().torch_release("2.5.1")
    assert release is not None
    assert release.cuda_variants == ("cu118", "cu121", "cu124")
    assert (release.torchvision, release.torchaudio) == ("0.20.1", "2.5.1")
    assert (release.python_min, release.python_max) == ("3.9", "3.13")


@pytest.mark.parametrize("version", ["2.3.1+cu121", "2.3.1", " 2.3.1+cpu ", "2.3.1.post1"])
def test_torch_release_accepts_local_and_post_tags(version: str) -> None:
    release = load_knowledge().torch_release(version)
    assert release is not None and release.version == "2.3.1"


def test_torch_release_unknown_or_garbage_is_none() -> None:
    knowledge = load_knowledge()
    assert knowledge.torch_release("0.4.1") is None
    assert knowledge.torch_release("not a version") is None


def test_tables_reach_back_to_torch_10_and_cuda_70() -> None:
    knowledge = load_knowledge()
    first = knowledge.torch_release("1.0.0")
    assert first is not None and first.cuda_variants == ("cu80", "cu90", "cu100")
    assert first.torchaudio is None
    toolkit = knowledge.cuda_toolkit("7.0")
    assert toolkit is not None and toolkit.linux_min_driver == "346.46"
    assert toolkit.minor_compat_linux_min is None


def test_unlisted_variants_are_a_subset() -> None:
    release = load_knowledge().torch_release("1.0.1")
    assert release is not None and "cu80" in release.cuda_variants and release.unlisted_variants == ("cu80",)


def test_lts_release_has_no_pypi_default() -> None:
    release = load_knowledge().torch_release("1.8.2")
    assert release is not None and release.pypi_default_cuda is None


@pytest.mark.parametrize(
    ("cuda", "linux", "compat"),
    [
        ("11.8", "520.61.05", "450.80.02"),
        ("12.0", "525.60.13", "525.60.13"),
        ("12.4.1", "550.54.14", "525.60.13"),
        ("13.0", "580.65.06", "580"),
        ("10.2", "440.33", None),
    ],
)
def test_cuda_toolkit_minimums(cuda: str, linux: str, compat: str | None) -> None:
    toolkit = load_knowledge().cuda_toolkit(cuda)
    assert toolkit is not None
    assert (toolkit.linux_min_driver, toolkit.minor_compat_linux_min) == (linux, compat)


def test_windows_minimum_missing_for_cuda_13_is_unavailable_not_none() -> None:
    toolkit = load_knowledge().cuda_toolkit("13.0")
    assert toolkit is not None and isinstance(toolkit.windows_min_driver, Unavailable)


@pytest.mark.parametrize(
    ("variant", "minimum", "is_minor_compat"),
    [
        ("cu121", "525.60.13", True),
        ("cu128", "525.60.13", True),
        ("cu118", "450.80.02", True),
        ("cu130", "580", True),
        ("cu110", "450.36.06", False),
        ("cu102", "440.33", False),
    ],
)
def test_required_driver_follows_minor_version_compatibility(variant: str, minimum: str, is_minor_compat: bool) -> None:
    requirement = required_driver(load_knowledge(), variant)
    assert requirement is not None
    assert (requirement.minimum, requirement.is_minor_compat) == (minimum, is_minor_compat)


def test_ptx_jit_needs_the_toolkits_own_driver() -> None:
    requirement = required_driver(load_knowledge(), "cu128", is_ptx_jit=True)
    assert requirement is not None and requirement.minimum == "570.26"


def test_variant_and_driver_helpers() -> None:
    assert [cuda_of_variant(v) for v in ("cu80", "cu102", "cu121", "cu130", "cpu", "rocm6.2")] == [
        "8.0",
        "10.2",
        "12.1",
        "13.0",
        None,
        None,
    ]
    assert driver_satisfies("535.86.05", "525.60.13") is True
    assert driver_satisfies("470.82.01", "525.60.13") is False
    assert driver_satisfies("N/A", "525.60.13") is None


@pytest.mark.parametrize(
    ("nvml_name", "cc"),
    [
        ("NVIDIA A100-SXM4-80GB", (8, 0)),
        ("Tesla V100-SXM2-16GB", (7, 0)),
        ("NVIDIA GeForce RTX 4090", (8, 9)),
        ("NVIDIA H200", (9, 0)),
        ("Tesla K80", (3, 7)),
        ("Tesla T4", (7, 5)),
        ("NVIDIA RTX A5000", (8, 6)),
        ("NVIDIA GeForce GT 730", (3, 5)),
        ("GeForce RTX 4090", (8, 9)),
        ("nvidia  h100 80gb hbm3", (9, 0)),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", (12, 0)),
    ],
)
def test_gpu_by_name(nvml_name: str, cc: tuple[int, int]) -> None:
    gpu = load_knowledge().gpu_by_name(nvml_name)
    assert gpu is not None and gpu.compute_capability == cc


def test_every_recorded_nvidia_smi_product_name_resolves() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not present at {FIXTURES}")
    names = {
        m for f in FIXTURES.glob("*.xml") for m in re.findall(r"<product_name>(.*?)</product_name>", f.read_text())
    }
    assert names
    for name in names:
        assert load_knowledge().gpu_by_name(name) is not None, name


def test_missing_units_are_none_never_zero() -> None:
    knowledge = load_knowledge()
    v100 = knowledge.gpu_by_name("Tesla V100-SXM2-16GB")
    k80 = knowledge.gpu_by_name("Tesla K80")
    assert v100 is not None and k80 is not None
    assert v100.bf16_tflops is None and v100.fp16_tflops == 125
    assert k80.fp16_tflops is None and k80.memory_gb == 12
    for gpu in knowledge.gpus:
        for value in (gpu.tf32_tflops, gpu.bf16_tflops, gpu.fp16_tflops, gpu.fp8_tflops, gpu.fp32_tflops):
            assert value != 0


def test_unknown_gpu_is_none() -> None:
    assert load_knowledge().gpu_by_name("Matrox G200eW") is None


def test_arch_list_and_ptx_forward_compatibility() -> None:
    knowledge = load_knowledge()
    wheel = knowledge.arch_list("2.5.1+cu124", "")
    assert wheel is not None and "sm_90" in wheel.sass and wheel.ptx == ()
    assert arch_support(wheel, (8, 9)).kind == "sass"  # sm_86 cubins run on 8.9 (same major)
    assert arch_support(wheel, (12, 0)).kind == "none"  # RTX 5090 on cu124: no kernel image
    old = knowledge.arch_list("1.4.0", "cu101")
    assert old is not None and old.ptx == ("compute_37",)
    assert (old.cuda, old.newest_known) == ("10.1", (7, 5))  # the toolkit, and the newest GPU it knows
    support = arch_support(old, (8, 0))  # A100 on 1.4.0+cu101: CUDA 10.1 predates Ampere, PTX or not
    assert support.kind == "none" and "CUDA 10.1, which the wheel was built with, predates" in support.detail
    # within a family the toolkit knows, PTX still serves: a T4 (7.5) on this wheel's compute_37 alone
    support = arch_support(dataclasses.replace(old, sass=("sm_37",)), (7, 5))
    assert (support.kind, support.arch) == ("ptx", "compute_37")
    assert knowledge.arch_list("2.7.0", "cu128", "linux-aarch64") is None


def test_k80_needs_a_cu118_wheel() -> None:
    knowledge = load_knowledge()
    cu118, cu126 = knowledge.arch_list("2.6.0", "cu118"), knowledge.arch_list("2.6.0", "cu126")
    assert cu118 is not None and cu126 is not None
    assert arch_support(cu118, (3, 7)).kind == "sass"
    assert arch_support(cu126, (3, 7)).kind == "none"


def test_loading_is_fast() -> None:
    started = time.perf_counter()
    load_knowledge(profiles_root())  # uncached path: parse and validate everything
    # generous bound so a loaded CI machine does not flake; measured ~17 ms on a laptop-class CPU
    assert time.perf_counter() - started < 0.5


# --- malformed files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "old", "new", "message"),
    [
        (
            "gpus.toml",
            "memory_gb = 40\n",
            'memory_gb = "16 or 32"\n',
            r'^profiles/gpus\.toml: gpu\[\d+\]\.memory_gb: expected a number, got "16 or 32"$',
        ),
        (
            "gpus.toml",
            'fp8_tflops = "n/a"',
            "fp8_tflops = 0",
            r"^profiles/gpus\.toml: gpu\[0\]\.fp8_tflops: expected a positive number",
        ),
        (
            "gpus.toml",
            'compute_capability = "3.7"',
            'compute_capability = "sm_37"',
            r"^profiles/gpus\.toml: gpu\[0\]\.compute_capability: expected a compute capability",
        ),
        (
            "compat/torch_releases.toml",
            'version = "2.5.1"',
            'version = "2.5.one"',
            r'^profiles/compat/torch_releases\.toml: release\[\d+\]\.version: expected a version, got "2\.5\.one"$',
        ),
        (
            "compat/torch_releases.toml",
            'cuda_variants = ["cu80", "cu90", "cu100"]',
            'cuda_variants = "cu80;cu90"',
            r"^profiles/compat/torch_releases\.toml: release\[0\]\.cuda_variants: expected an array of strings",
        ),
        (
            "compat/torch_releases.toml",
            "release_date = 2018-12-07",
            'release_date = "Dec 2018"',
            r"^profiles/compat/torch_releases\.toml: release\[0\]\.release_date: expected a date",
        ),
        (
            "compat/cuda_toolkits.toml",
            'linux_min_driver = "346.46"',
            'linux_min_driver = ">=346.46"',
            r"^profiles/compat/cuda_toolkits\.toml: toolkit\[0\]\.linux_min_driver: expected a version",
        ),
        (
            "compat/wheel_arch.toml",
            'torch = ">=1.0.0,<1.1"',
            'torch = "1.0.x"',
            r"^profiles/compat/wheel_arch\.toml: wheel\[0\]\.torch: expected a version range",
        ),
        (
            "compat/wheel_arch.toml",
            'sass = ["sm_35"',
            'sass = ["3.5"',
            r'^profiles/compat/wheel_arch\.toml: wheel\[0\]\.sass: unexpected entry "3\.5"$',
        ),
        (
            "gpus.toml",
            "memory_type = ",
            "memroy_type = ",
            r"^profiles/gpus\.toml: gpu\[0\]\.memroy_type: unknown field$",
        ),
        (
            "compat/extensions.toml",
            "--no-build-isolation flash-attn  (compiles against torch {torch_release}",
            "--no-build-isolation flash-attn  (compiles against torch {torch_version}",
            r"^profiles/compat/extensions\.toml: extension\[0\]\.fix: unknown placeholder \{torch_version\}",
        ),
        (
            "compat/extensions.toml",
            'declares = ["local_tag", "origin_url"]',
            'declares = ["local_tag", "metadata"]',
            r'^profiles/compat/extensions\.toml: extension\[0\]\.declares: unexpected entry "metadata"$',
        ),
        (
            "compat/extensions.toml",
            'pattern = "undefined symbol: _ZN(K)?',
            'pattern = "undefined symbol: _ZN((K)?',
            r"^profiles/compat/extensions\.toml: signature\[0\]\.pattern: not a regular expression",
        ),
        (
            "compat/host_compilers.toml",
            'cuda_to = "11.0"',
            'cuda_to = "10.2"',
            r"^profiles/compat/host_compilers\.toml: nvcc\[0\]\.cuda_to: is below cuda_from$",
        ),
        (
            "compat/host_compilers.toml",
            "gcc_max = 9",
            'gcc_max = "9"',
            r"^profiles/compat/host_compilers\.toml: nvcc\[0\]\.gcc_max: ",
        ),
        (
            "compat/numpy_abi.toml",
            'platform = "windows"',
            'platform = "win32"',
            r"^profiles/compat/numpy_abi\.toml: platform\[2\]\.platform: "
            r'expected one of linux, macos, windows, got "win32"$',
        ),
        (
            "compat/numpy_abi.toml",
            'platform = "macos"',
            'platform = "linux"',
            r"^profiles/compat/numpy_abi\.toml: platform\[1\]: duplicates platform\[0\] \(linux\)$",
        ),
        (
            "compat/numpy_abi.toml",
            'first_torch = "2.4.1"',
            'first_torch = "two"',
            r'^profiles/compat/numpy_abi\.toml: platform\[2\]\.first_torch: expected a version, got "two"$',
        ),
    ],
)
def test_malformed_value_names_file_and_field(profiles: Path, relative: str, old: str, new: str, message: str) -> None:
    edit(profiles / relative, old, new)
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(profiles)


@pytest.mark.parametrize(
    ("relative", "field"),
    [
        ("gpus.toml", "source"),
        ("gpus.toml", "as_of"),
        ("compat/torch_releases.toml", "source"),
        ("compat/cuda_toolkits.toml", "as_of"),
        ("compat/wheel_arch.toml", "source"),
        ("compat/numpy_abi.toml", "source"),
    ],
)
def test_missing_provenance_is_an_error(profiles: Path, relative: str, field: str) -> None:
    path = profiles / relative
    lines = path.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith(f"{field} = "))
    path.write_text("".join(lines[:first] + lines[first + 1 :]))
    with pytest.raises(KnowledgeError, match=rf"^profiles/{re.escape(relative)}: \w+\[0\]\.{field}: missing$"):
        load_knowledge(profiles)


def test_toml_syntax_error_names_the_file(profiles: Path) -> None:
    edit(profiles / "compat" / "cuda_toolkits.toml", 'cuda = "7.0"', 'cuda = "7.0')
    with pytest.raises(KnowledgeError, match=r"^profiles/compat/cuda_toolkits\.toml: not valid TOML: .*line \d+"):
        load_knowledge(profiles)


def test_missing_file_names_the_file(profiles: Path) -> None:
    (profiles / "gpus.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"^profiles/gpus\.toml: no such file$"):
        load_knowledge(profiles)


def test_duplicate_nvml_name_is_an_error(profiles: Path) -> None:
    edit(profiles / "gpus.toml", 'nvml_names = ["Tesla P100-PCIE-16GB"]', 'nvml_names = ["Tesla K80"]')
    with pytest.raises(KnowledgeError, match=r"^profiles/gpus\.toml: gpu\[\d+\]: duplicates gpu\[0\]"):
        load_knowledge(profiles)


def test_messages_are_one_line(profiles: Path) -> None:
    edit(profiles / "gpus.toml", 'architecture = "Kepler"', "architecture = [")
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(profiles)
    assert "\n" not in str(caught.value)


def test_malformed_workload(profiles: Path) -> None:
    edit(profiles / "workloads" / "llama-7b-lora.toml", 'dtypes_required = ["bf16"]', 'dtypes_required = ["bfloat"]')
    with pytest.raises(
        KnowledgeError, match=r'^profiles/workloads/llama-7b-lora\.toml: dtypes_required: unknown dtype "bfloat"'
    ):
        load_workload("llama-7b-lora", root=profiles)
    edit(profiles / "workloads" / "cifar10-cnn.toml", "min_ram_gb = 4", 'min_ram_gb = "4 GB"')
    with pytest.raises(
        KnowledgeError, match=r'^profiles/workloads/cifar10-cnn\.toml: min_ram_gb: expected a number, got "4 GB"$'
    ):
        load_workload("cifar10-cnn", root=profiles)


def test_unknown_workload_name_lists_the_known_ones() -> None:
    with pytest.raises(KnowledgeError, match=r'unknown workload profile "gpt-5".*cifar10-cnn'):
        load_workload("gpt-5")


def test_workload_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match=r"nope\.toml: no such file$"):
        load_workload(tmp_path / "nope.toml")


def test_every_released_cuda_variant_has_a_linux_arch_list() -> None:
    knowledge = load_knowledge()
    missing = [
        (release.version, variant)
        for release in knowledge.torch_releases
        for variant in release.cuda_variants
        if knowledge.arch_list(release.version, variant) is None
    ]
    assert missing == []


def test_first_toolkit_rows_are_checked(profiles: Path) -> None:
    path = profiles / "compat" / "cuda_toolkits.toml"
    edit(path, 'compute_capability = "8.6"\nfirst_cuda = "11.1"', 'compute_capability = "8.6"\nfirst_cuda = "eleven"')
    with pytest.raises(KnowledgeError, match=r"architecture\[4\]\.first_cuda: expected a version"):
        load_knowledge(profiles)
    edit(path, 'compute_capability = "8.6"\nfirst_cuda = "eleven"', 'compute_capability = "8.0"\nfirst_cuda = "11.1"')
    with pytest.raises(KnowledgeError, match=r"architecture\[4\]: duplicates architecture\[3\] \(8\.0\)"):
        load_knowledge(profiles)


def test_each_wheel_knows_its_toolkit_and_the_newest_gpu_it_knows() -> None:
    knowledge = load_knowledge()
    cases = {("1.6.0", "cu102"): (7, 5), ("1.7.1", "cu110"): (8, 0), ("1.13.1", "cu117"): (8, 6)}
    cases |= {("2.0.1", "cu118"): (9, 0), ("2.7.0", "cu128"): (12, 0)}
    for (version, variant), newest in cases.items():
        wheel = knowledge.arch_list(version, variant)
        assert wheel is not None and wheel.cuda == cuda_of_variant(variant) and wheel.newest_known == newest
