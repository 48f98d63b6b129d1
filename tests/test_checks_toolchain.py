"""The extension and toolchain checks on hand-built facts: extensions built for another torch, CUDA or ABI, failing
imports, nvcc's CUDA major, the host compiler limit and CUDA_HOME against PATH's nvcc."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envcheck.checks.extensions import parse_local_label
from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.environment import CudaToolkit
from envcheck.facts.framework import Extension
from envcheck.finding import Finding, Severity
from envcheck.knowledge.loader import load_knowledge
from envcheck.probes.target_script import EXTENSION_MODULES, NOT_IMPORTED
from envcheck.snapshot import Snapshot
from tests import factories

TORCH_CU126 = factories.torch(version="2.6.0+cu126", cuda_version="12.6", cxx11_abi=False)
UNDEFINED = (
    "ImportError: /opt/venv/lib/python3.11/site-packages/flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: "
    "undefined symbol: _ZN3c104cuda9SetDeviceEi"
)
FLASH_FOR_TORCH_24 = factories.extension("flash-attn", "2.6.3+cu123torch2.4cxx11abiFALSE")
NVCC_118 = factories.tool("/usr/local/cuda-11.8/bin/nvcc", "11.8.89")


def machine(*extensions: Extension, torch: object = TORCH_CU126, **sections: object) -> Snapshot:
    framework = factories.framework(torch=torch, extensions=extensions)
    return factories.snapshot(framework=framework, **sections)


def findings(snapshot: Snapshot, prefix: str) -> list[Finding]:
    given = CheckInput(snapshot, load_knowledge())
    return [f for f in run_checks(given) if f.id.startswith(prefix)]


def one(snapshot: Snapshot, check_id: str, severity: Severity | None = None) -> Finding:
    found = [f for f in findings(snapshot, check_id) if f.id == check_id]
    chosen = [f for f in found if severity is None or f.severity is severity]
    assert len(chosen) == 1, found
    return chosen[0]


def test_every_distribution_the_probe_imports_has_a_row_and_back() -> None:
    assert {rule.name for rule in load_knowledge().extensions} == set(EXTENSION_MODULES)


@pytest.mark.parametrize(
    ("label", "torch", "cuda_major", "abi"),
    [
        ("cu123torch2.4cxx11abiFALSE", (2, 4), 12, False),  # flash-attn release wheels
        ("pt23cu121", (2, 3), 12, None),  # PyG
        ("pt210cu128", (2, 10), 12, None),
        ("pt21cpu", (2, 1), 0, None),
        ("cu118", None, 11, None),  # vLLM, detectron2
        ("cu92", None, 9, None),
        ("cu12torch2.6cxx11abiTRUE", (2, 6), 12, True),  # flash-attn 2.7 and later name the CUDA major alone
    ],
)
def test_local_labels_say_what_was_built_for(
    label: str, torch: tuple[int, int] | None, cuda_major: int, abi: bool | None
) -> None:
    declared = parse_local_label(label, "its version")
    assert declared is not None
    assert (declared.torch, declared.cuda_major, declared.abi) == (torch, cuda_major, abi)


def test_a_label_that_says_nothing_about_the_build_is_none() -> None:
    assert parse_local_label("post1", "its version") is None


def test_nothing_is_flagged_without_extensions_or_toolkit() -> None:
    snapshot = machine()
    flagged = [f for f in findings(snapshot, "") if f.id.startswith(("install.extension", "toolchain."))]
    assert flagged
    assert all(f.severity is Severity.OK for f in flagged), flagged


def test_flash_attn_built_for_another_torch_fails_with_the_fix() -> None:
    finding = one(machine(FLASH_FOR_TORCH_24), "install.extension_build", Severity.FAIL)
    assert "flash-attn 2.6.3+cu123torch2.4cxx11abiFALSE" in finding.title
    assert "torch 2.4" in finding.title
    assert finding.fix is not None
    assert "--no-build-isolation" in finding.fix
    assert "cu12torch2.6cxx11abiFALSE" in finding.fix  # the release wheel that fits
    assert "github.com/Dao-AILab/flash-attention/releases" in finding.detail


def test_pyg_wheel_of_another_cuda_major_names_the_pyg_index() -> None:
    scatter = factories.extension("torch-scatter", "2.1.2+pt26cu118")
    finding = one(machine(scatter), "install.extension_build", Severity.FAIL)
    assert "CUDA 11" in finding.title
    assert finding.fix is not None
    assert "https://data.pyg.org/whl/torch-2.6.0+cu126.html" in finding.fix


def test_abi_mismatch_alone_is_a_failure() -> None:
    flash = factories.extension("flash-attn", "2.7.4+cu12torch2.6cxx11abiTRUE")
    finding = one(machine(flash), "install.extension_build", Severity.FAIL)
    assert "C++11 ABI" in finding.title


def test_wheel_url_declares_the_build_when_the_version_does_not() -> None:
    url = "https://github.com/x/releases/download/v2.6.3/flash_attn-2.6.3+cu123torch2.4cxx11abiFALSE-cp311-cp311-linux_x86_64.whl"
    flash = factories.extension("flash-attn", "2.6.3", origin_url=url)
    finding = one(machine(flash), "install.extension_build", Severity.FAIL)
    assert "the wheel it came from" in finding.title


def test_xformers_pinned_to_another_torch_fails_and_one_for_this_torch_passes() -> None:
    wrong = factories.extension("xformers", "0.0.28.post1", requires_torch=("torch==2.4.1",))
    finding = one(machine(wrong), "install.extension_build", Severity.FAIL)
    assert "requires torch==2.4.1" in finding.title
    assert finding.fix is not None
    assert '"torch==2.6.0" xformers --index-url https://download.pytorch.org/whl/cu126' in finding.fix
    right = factories.extension("xformers", "0.0.29.post2", requires_torch=("torch==2.6.0",))
    assert one(machine(right), "install.extension_build").severity is Severity.OK


def test_an_extra_s_torch_requirement_is_not_a_pin() -> None:
    extra = factories.extension("xformers", "0.0.28", requires_torch=('torch==2.4.1; extra == "dev"',))
    assert one(machine(extra), "install.extension_build").severity is Severity.OK


def test_triton_of_another_release_than_torch_pins() -> None:
    triton = factories.extension("triton", "3.1.0", pinned_by_torch='triton==3.2.0; platform_system == "Linux"')
    finding = one(machine(triton), "install.extension_build", Severity.FAIL)
    assert "requires triton==3.2.0" in finding.title
    assert finding.fix is not None
    assert '"triton==3.2.0"' in finding.fix


def test_a_failing_import_names_the_error_and_its_cause() -> None:
    flash = replace(FLASH_FOR_TORCH_24, import_error=UNDEFINED)
    finding = one(machine(flash), "install.extension_import", Severity.FAIL)
    assert "_ZN3c104cuda9SetDeviceEi" in finding.title
    assert "compiled against another torch release or C++ ABI" in finding.detail
    assert "says torch 2.4" in finding.detail  # its metadata agrees


def test_an_unknown_import_error_says_so() -> None:
    odd = factories.extension("mmcv", "2.1.0", import_error="ModuleNotFoundError: No module named 'mmengine'")
    finding = one(machine(odd), "install.extension_import", Severity.FAIL)
    assert "not a known signature" in finding.detail


def test_only_printed_signatures_are_searched_in_what_a_clean_import_printed() -> None:
    knowledge = load_knowledge()
    # a healthy old bitsandbytes names its CUDA library: a cause in an error line, nothing when merely printed
    healthy = "CUDA SETUP: Loading binary /venv/site-packages/bitsandbytes/libbitsandbytes_cuda118.so..."
    assert knowledge.import_cause(healthy) is not None
    assert knowledge.import_cause(healthy, is_printed=True) is None
    printed = replace(
        factories.extension("bitsandbytes", "0.41.1"),
        import_output=(healthy, "UserWarning: The installed version of bitsandbytes was compiled without GPU support."),
    )
    finding = one(machine(printed), "install.extension_import")
    assert finding.severity in (Severity.FAIL, Severity.WARN)
    assert finding.title.endswith(
        "says it cannot work: UserWarning: The installed version of bitsandbytes was compiled without GPU support."
    )
    assert not [
        f
        for f in findings(
            machine(factories.extension("bitsandbytes", "0.41.1", import_output=(healthy,))), "install.extension_import"
        )
        if f.severity is not Severity.OK
    ]


def test_imports_not_tried_are_skipped_with_the_reason() -> None:
    untried = Unavailable("import not tried: torch itself failed to import")
    flash = factories.extension("flash-attn", "2.6.3", import_error=untried, import_duration_s=untried)
    finding = one(machine(flash), "install.extension_import")
    assert finding.severity is Severity.SKIP
    assert "torch itself failed" in finding.detail


def test_old_snapshots_without_extensions_skip() -> None:
    framework = replace(factories.framework(), extensions=Unavailable("this snapshot does not record it"))
    finding = one(factories.snapshot(framework=framework), "install.extension_build")
    assert finding.severity is Severity.SKIP


# --- nvcc against torch's CUDA -----------------------------------------------------------------------------------


def test_nvcc_11_8_beside_cu126_warns_when_an_extension_needs_building() -> None:
    snapshot = machine(FLASH_FOR_TORCH_24, toolchain=factories.toolchain(nvcc=NVCC_118))
    finding = one(snapshot, "toolchain.nvcc_cuda_major")
    assert finding.severity is Severity.WARN
    assert "nvcc 11.8.89" in finding.title
    assert "flash-attn" in finding.title
    assert finding.fix is not None
    assert "CUDA 12.6 toolkit" in finding.fix


def test_nvcc_11_8_beside_cu126_is_only_a_note_when_nothing_needs_building() -> None:
    prebuilt = factories.extension("xformers", "0.0.29.post2", requires_torch=("torch==2.6.0",))
    for snapshot in (machine(toolchain=factories.toolchain(nvcc=NVCC_118)),
                     machine(prebuilt, toolchain=factories.toolchain(nvcc=NVCC_118))):  # fmt: skip
        finding = one(snapshot, "toolchain.nvcc_cuda_major")
        assert finding.severity is Severity.INFO, finding


def test_deepspeed_needs_the_toolchain_even_from_a_wheel() -> None:
    deepspeed = factories.extension("deepspeed", "0.16.4")
    finding = one(machine(deepspeed, toolchain=factories.toolchain(nvcc=NVCC_118)), "toolchain.nvcc_cuda_major")
    assert finding.severity is Severity.WARN
    assert "deepspeed" in finding.detail


def test_the_fix_names_an_installed_toolkit_of_torch_s_cuda() -> None:
    toolkits = (
        factories.toolkit("/usr/local/cuda-11.8", "11.8.0"),
        factories.toolkit("/usr/local/cuda-12.6", "12.6.3"),
    )
    snapshot = machine(FLASH_FOR_TORCH_24, toolchain=factories.toolchain(nvcc=NVCC_118, toolkits=toolkits))
    finding = one(snapshot, "toolchain.nvcc_cuda_major")
    assert finding.fix is not None
    assert finding.fix.startswith("export CUDA_HOME=/usr/local/cuda-12.6 ")


def test_no_nvcc_while_something_needs_building_warns() -> None:
    finding = one(machine(FLASH_FOR_TORCH_24), "toolchain.nvcc_cuda_major")
    assert finding.severity is Severity.WARN
    assert finding.title.startswith("no nvcc")


def test_cuda_home_is_left_to_cuda_cuda_home() -> None:
    environment = factories.environment(CUDA_HOME="/usr/local/cuda-11.8")
    snapshot = machine(FLASH_FOR_TORCH_24, environment=environment, toolchain=factories.toolchain(nvcc=NVCC_118))
    assert "judged by cuda.cuda_home" in one(snapshot, "toolchain.nvcc_cuda_major").title


def test_a_cpu_torch_needs_no_nvcc() -> None:
    cpu = factories.torch(version="2.6.0+cpu", cuda_version=None, devices=(), device_count=0)
    snapshot = machine(FLASH_FOR_TORCH_24, torch=cpu, toolchain=factories.toolchain(nvcc=NVCC_118))
    assert one(snapshot, "toolchain.nvcc_cuda_major").severity is Severity.OK


# --- host compiler -------------------------------------------------------------------------------------------------


def test_gxx_newer_than_nvcc_accepts_warns_when_building() -> None:
    toolchain = factories.toolchain(nvcc=NVCC_118, gxx=factories.tool("/usr/bin/g++", "12.3.0"))
    finding = one(machine(FLASH_FOR_TORCH_24, toolchain=toolchain), "toolchain.host_compiler")
    assert finding.severity is Severity.WARN
    assert finding.title == "g++ 12.3.0 is newer than nvcc 11.8.89 accepts (GCC 11 at most)"
    assert finding.fix is not None
    assert "CC=gcc-11 CXX=g++-11" in finding.fix
    assert one(machine(toolchain=toolchain), "toolchain.host_compiler").severity is Severity.INFO


def test_gxx_within_the_limit_passes() -> None:
    toolchain = factories.toolchain(nvcc=factories.tool("/usr/bin/nvcc", "12.4.131"))
    assert one(machine(toolchain=toolchain), "toolchain.host_compiler").severity is Severity.OK


def test_an_nvcc_outside_the_table_is_not_judged() -> None:
    toolchain = factories.toolchain(nvcc=factories.tool("/usr/bin/nvcc", "10.2.89"))
    assert one(machine(toolchain=toolchain), "toolchain.host_compiler").severity is Severity.SKIP


# --- CUDA_HOME against PATH's nvcc ---------------------------------------------------------------------------------


def test_cuda_home_and_path_nvcc_of_different_versions_warn() -> None:
    environment = replace(factories.environment(CUDA_HOME="/usr/local/cuda-12.6"))
    snapshot = machine(environment=environment, toolchain=factories.toolchain(nvcc=NVCC_118))
    finding = one(snapshot, "toolchain.cuda_home_nvcc")
    assert finding.severity is Severity.WARN
    assert "CUDA_HOME=/usr/local/cuda-12.6" in finding.title
    assert finding.fix == "export PATH=/usr/local/cuda-12.6/bin:$PATH  (or point CUDA_HOME at /usr/local/cuda-11.8)"


def test_cuda_home_through_the_default_symlink_is_the_same_toolkit() -> None:
    environment = factories.environment(CUDA_HOME="/usr/local/cuda")
    nvcc = factories.tool("/usr/local/cuda-12.6/bin/nvcc", "12.6.85")
    toolkits = (factories.toolkit("/usr/local/cuda", "12.6.3", "/usr/local/cuda-12.6"),)
    snapshot = machine(environment=environment, toolchain=factories.toolchain(nvcc=nvcc, toolkits=toolkits))
    assert one(snapshot, "toolchain.cuda_home_nvcc").severity is Severity.OK


def test_toolchain_not_recorded_skips() -> None:
    snapshot = machine(toolchain=Unavailable("this snapshot does not record the build toolchain"))
    for check_id in ("toolchain.nvcc_cuda_major", "toolchain.host_compiler", "toolchain.cuda_home_nvcc"):
        assert one(snapshot, check_id).severity is Severity.SKIP


def test_the_distributions_listed_without_import_agree_with_the_table() -> None:
    assert {rule.name for rule in load_knowledge().extensions if not rule.is_imported} == set(NOT_IMPORTED)


def test_triton_alone_has_nothing_to_import() -> None:
    triton = factories.extension("triton", "3.2.0", import_error=Unavailable(NOT_IMPORTED["triton"]))
    finding = one(machine(triton), "install.extension_import")
    assert finding.severity is Severity.OK


def test_a_hung_import_is_named_as_such() -> None:
    hung = factories.extension("vllm", "0.7.2", import_error="TimeoutError: import vllm did not finish within 15 s")
    finding = one(machine(hung), "install.extension_import", Severity.FAIL)
    assert "the import hung" in finding.detail


def test_cuda_home_without_a_version_file_is_judged_by_its_own_nvcc() -> None:
    home = "/opt/conda/envs/train"
    missing = Unavailable(f"{home} has neither version.json nor version.txt")
    environment = replace(
        factories.environment(CUDA_HOME=home), cuda_toolkit=CudaToolkit("CUDA_HOME", home, True, missing)
    )
    toolchain = factories.toolchain(
        toolkits=(factories.toolkit(home, "11.8.89"),), gxx=factories.tool("/usr/bin/g++", "12.3.0")
    )
    finding = one(machine(environment=environment, toolchain=toolchain), "toolchain.host_compiler")
    assert finding.title == "g++ 12.3.0 is newer than nvcc 11.8.89 accepts (GCC 11 at most)"
