"""Every NVIDIA GPU resolves to a compute capability by name (profiles/gpu_capabilities.toml), and a capability
inferred from a family rule drives the CUDA checks like a listed one, with the finding saying it was inferred."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, all_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge import KnowledgeError, load_knowledge
from envcheck.knowledge.capability import family_by_rule, fold_gpu_name, gpu_capability
from envcheck.snapshot import Snapshot
from tests import factories

KNOWLEDGE = load_knowledge()
SPEC_NAMES = [(gpu.name, name, gpu.compute_capability) for gpu in KNOWLEDGE.gpus for name in gpu.nvml_names]
FAMILY_NAMES = [(f.family, name, f.compute_capability) for f in KNOWLEDGE.gpu_families for name in f.names]


def spellings(name: str) -> list[str]:
    """How NVML (new and old drivers), nvidia-smi -L and collect_env print one GPU name."""
    bare = name.removeprefix("NVIDIA ")
    return [
        f"NVIDIA {bare}",
        bare,
        f"GPU 0: NVIDIA {bare}",
        f"GPU 3: {bare} (UUID: GPU-5d9d3a3e-1b7c-8f0e-2a4b-0123456789ab)",
        f"nvidia  {bare.upper()}",
    ]


@pytest.mark.parametrize(("row", "name", "cc"), SPEC_NAMES)
def test_every_spec_row_is_found_by_its_nvml_and_listing_spellings(row: str, name: str, cc: tuple[int, int]) -> None:
    for spelling in spellings(name):
        found = gpu_capability(KNOWLEDGE, spelling)
        assert found is not None, spelling
        assert (found.family, found.compute_capability, found.is_inferred) == (row, cc, False), spelling
        assert found.inferred_note == ""


@pytest.mark.parametrize(("family", "name", "cc"), FAMILY_NAMES)
def test_every_listed_name_is_found_by_its_nvml_and_listing_spellings(
    family: str, name: str, cc: tuple[int, int]
) -> None:
    for spelling in spellings(name):
        found = gpu_capability(KNOWLEDGE, spelling)
        assert found is not None, spelling
        assert found.compute_capability == cc and not found.is_inferred, spelling


@pytest.mark.parametrize(("family", "name", "cc"), FAMILY_NAMES)
def test_each_family_rule_finds_its_own_names_first(family: str, name: str, cc: tuple[int, int]) -> None:
    # a name found by an earlier family's rule would get the wrong capability once it is dropped from the list
    ruled = family_by_rule(KNOWLEDGE, f"NVIDIA {name}")
    assert ruled is not None and ruled.family == family, name


@pytest.mark.parametrize(("row", "name", "cc"), SPEC_NAMES)
def test_the_rules_agree_with_every_spec_row(row: str, name: str, cc: tuple[int, int]) -> None:
    ruled = family_by_rule(KNOWLEDGE, name)
    assert ruled is not None and ruled.compute_capability == cc, name


def test_every_family_names_its_source_and_the_table_spans_kepler_to_blackwell() -> None:
    families = KNOWLEDGE.gpu_families
    assert all(f.provenance.source and f.names for f in families)
    assert {f.architecture for f in families} >= {"Kepler", "Maxwell", "Pascal", "Volta", "Turing", "Ampere"}
    assert {f.architecture for f in families} >= {"Ada Lovelace", "Hopper", "Blackwell"}
    assert {f.segment for f in families} == {"consumer", "workstation", "datacenter", "embedded"}


@pytest.mark.parametrize(
    ("name", "cc", "family"),
    [
        ("NVIDIA GeForce RTX 4070 Ti SUPER Laptop GPU", (8, 9), "GeForce RTX 40"),  # a laptop name the list lacks
        ("NVIDIA GeForce RTX 2060 SUPER with Max-Q Design", (7, 5), "GeForce RTX 20"),
        ("NVIDIA GeForce RTX 5080 D", (12, 0), "GeForce RTX 50"),  # a regional variant
        ("NVIDIA GeForce RTX 4080 D", (8, 9), "GeForce RTX 40"),
        ("NVIDIA GeForce RTX 5070 OEM", (12, 0), "GeForce RTX 50"),
        ("GeForce GTX 1070 Ti with Max-Q Design", (6, 1), "GeForce GTX 10"),
        ("NVIDIA GeForce GTX 1660 Ti Laptop GPU", (7, 5), "GeForce GTX 16"),
        ("NVIDIA GeForce RTX 2050 Laptop GPU", (8, 6), "GeForce RTX 2050 / MX570 (GA107)"),  # Ampere, not Turing
        ("NVIDIA RTX A5000 12GB Laptop GPU", (8, 6), "RTX A-series (GA10x)"),
        ("NVIDIA RTX 3500 Ada Generation Embedded GPU", (8, 9), "RTX Ada Generation"),
        ("NVIDIA RTX PRO 5000 Blackwell Max-Q", (12, 0), "RTX PRO Blackwell"),
        ("NVIDIA H100 96GB HBM3", (9, 0), "H100 / H800 / H200 / H20 / GH200 (GH100)"),
        ("NVIDIA H800 80GB HBM3", (9, 0), "H100 / H800 / H200 / H20 / GH200 (GH100)"),
        ("NVIDIA A800 80GB HBM2e", (8, 0), "A100 / A800 / A30 (GA100)"),
        ("GRID A100X-40C", (8, 0), "A100 / A800 / A30 (GA100)"),  # a vGPU profile
        ("GRID T4-16Q", (7, 5), "T4"),
        ("NVIDIA L40S-48C", (8, 9), "L4 / L40 / L40S / L20 / L2 (AD10x)"),
        ("NVIDIA B200 SXM6 180GB", (10, 0), "B200 / B100 / GB200"),
        ("NVIDIA GH200 96GB HBM3", (9, 0), "H100 / H800 / H200 / H20 / GH200 (GH100)"),
        ("Tesla K40m-12GB", (3, 5), "Tesla K20 / K40 (GK110)"),
        ("NVIDIA Jetson Xavier NX Developer Kit", (7, 2), "Jetson Xavier"),
        ("Quadro P4200 Mobile", (6, 1), "Quadro P (GP10x)"),
        ("Quadro K2100M (mobile)", (3, 0), "Quadro K (GK10x)"),
    ],
)
def test_a_name_the_table_lacks_gets_its_familys_capability_marked_inferred(
    name: str, cc: tuple[int, int], family: str
) -> None:
    found = gpu_capability(KNOWLEDGE, name)
    assert found is not None, name
    assert (found.compute_capability, found.family, found.is_inferred) == (cc, family, True)
    assert found.inferred_note == f"compute capability {cc[0]}.{cc[1]}, inferred from the {family} family"


@pytest.mark.parametrize(
    "name",
    [
        "Matrox G200eW",
        "AMD Radeon RX 7900 XTX",
        "AMD Radeon 860M",  # AMD's integrated GPUs share GeForce laptop numbers
        "AMD Radeon 780M Graphics",
        "AMD Instinct MI300X",
        "Intel(R) Arc(TM) A770 Graphics",
        "Apple M2 Max",
        "",
    ],
)
def test_other_vendors_are_not_given_an_nvidia_capability(name: str) -> None:
    assert gpu_capability(KNOWLEDGE, name) is None


def test_folding_drops_the_listing_index_and_uuid() -> None:
    assert fold_gpu_name("GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-1234)") == "geforce rtx 4090"


def test_a_name_in_two_families_is_a_one_line_knowledge_error(tmp_path: Path) -> None:
    root = Path(KNOWLEDGE.root)
    copy = tmp_path / "profiles"
    for path in root.rglob("*.toml"):
        (copy / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        (copy / path.relative_to(root)).write_text(path.read_text())
    table = copy / "gpu_capabilities.toml"
    table.write_text(table.read_text().replace('"GeForce RTX 4060",', '"GeForce RTX 4060",\n    "GeForce RTX 5090",'))
    with pytest.raises(KnowledgeError, match=r"gpu_capabilities.toml: family\[\d+\]: name 'GeForce RTX 5090' is also"):
        load_knowledge(copy)


def only(check_id: str, snapshot: Snapshot) -> Finding:
    (registered,) = [c for c in all_checks() if c.id == check_id]
    (finding,) = registered.run(CheckInput(snapshot, knowledge=KNOWLEDGE))
    return finding


def renamed(name: str) -> GpuFacts:
    """The recorded RTX 4090 XML (driver 535: no compute_cap field) with another GPU's name."""
    facts = factories.nvidia_smi_gpu("rtx4090-driver535.86.05")
    assert isinstance(facts.gpus[0].compute_capability, Unavailable)
    return dataclasses.replace(facts, gpus=tuple(dataclasses.replace(g, name=name) for g in facts.gpus))


CU126 = factories.torch(version="2.6.0+cu126", cuda_version="12.6", devices=(), arch_list=Unavailable("pasted"))


def test_an_rtx_5090_d_on_a_cu126_wheel_has_no_kernel_image() -> None:
    finding = only("cuda.arch_support", factories.gpu_machine(renamed("NVIDIA GeForce RTX 5090 D"), CU126))
    assert finding.severity is Severity.FAIL
    assert "NVIDIA GeForce RTX 5090 D (sm_120)" in finding.title
    assert finding.fix is not None and "cu128" in finding.fix


def test_an_inferred_capability_drives_the_arch_check_and_the_finding_says_so() -> None:
    finding = only("cuda.arch_support", factories.gpu_machine(renamed("NVIDIA GeForce RTX 5070 OEM"), CU126))
    assert finding.severity is Severity.FAIL
    assert "sm_120; compute capability 12.0, inferred from the GeForce RTX 50 family" in finding.title
    passing = only("cuda.arch_support", factories.gpu_machine(renamed("NVIDIA GeForce RTX 4070 Ti SUPER Laptop GPU")))
    assert passing.severity is Severity.OK and "inferred from the GeForce RTX 40 family" in passing.title


def test_an_inferred_capability_drives_the_dtype_check() -> None:
    finding = only("cuda.dtype_support", factories.gpu_machine(renamed("NVIDIA GeForce GTX 1660 Ti Laptop GPU")))
    assert finding.severity is Severity.INFO
    assert "compute capability 7.5, inferred from the GeForce GTX 16 family" in finding.title
