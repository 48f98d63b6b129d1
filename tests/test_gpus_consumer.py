"""Common consumer and workstation cards in profiles/gpus.toml: found by the names NVML prints, laptop chips kept
apart, and the GeForce tensor figures following the header's FP32-accumulate convention."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.finding import Severity
from envcheck.importers.collect_env import snapshot_from_collect_env
from envcheck.knowledge import GpuSpec, load_knowledge

KNOWLEDGE = load_knowledge()
FIXTURES = Path(__file__).parent / "fixtures" / "collect_env"


@pytest.mark.parametrize(
    ("nvml_name", "compute_capability"),
    [
        ("NVIDIA GeForce RTX 3090 Ti", (8, 6)),
        ("NVIDIA GeForce RTX 3080 Ti", (8, 6)),
        ("NVIDIA GeForce RTX 3080", (8, 6)),
        ("NVIDIA GeForce RTX 3070", (8, 6)),
        ("NVIDIA GeForce RTX 3060 Ti", (8, 6)),
        ("NVIDIA GeForce RTX 3060", (8, 6)),
        ("NVIDIA GeForce RTX 4080 SUPER", (8, 9)),
        ("NVIDIA GeForce RTX 4080", (8, 9)),
        ("NVIDIA GeForce RTX 4070 Ti", (8, 9)),
        ("NVIDIA GeForce RTX 4070", (8, 9)),
        ("NVIDIA GeForce RTX 4060 Ti", (8, 9)),
        ("NVIDIA GeForce RTX 4060", (8, 9)),
        ("NVIDIA GeForce RTX 5080", (12, 0)),
        ("NVIDIA GeForce RTX 5070 Ti", (12, 0)),
        ("NVIDIA GeForce RTX 5070", (12, 0)),
        ("NVIDIA GeForce RTX 2080", (7, 5)),
        ("NVIDIA GeForce RTX 2070", (7, 5)),
        ("NVIDIA GeForce RTX 2060", (7, 5)),
        ("NVIDIA GeForce GTX 1660", (7, 5)),
        ("GeForce GTX 1080", (6, 1)),  # drivers before ~2021 print no "NVIDIA " prefix
        ("NVIDIA GeForce GTX 1070", (6, 1)),
        ("GeForce GTX 1060 6GB", (6, 1)),
        ("NVIDIA TITAN RTX", (7, 5)),
        ("TITAN V", (7, 0)),
        ("TITAN Xp", (6, 1)),
        ("Quadro RTX 8000", (7, 5)),
        ("Quadro RTX 6000", (7, 5)),
        ("NVIDIA RTX A4000", (8, 6)),
        ("NVIDIA RTX A2000", (8, 6)),
        ("NVIDIA RTX 4000 Ada Generation", (8, 9)),
        ("NVIDIA RTX 4500 Ada Generation", (8, 9)),
        ("NVIDIA RTX 5000 Ada Generation", (8, 9)),
        ("NVIDIA A30", (8, 0)),
        ("NVIDIA A16", (8, 6)),
        ("NVIDIA A2", (8, 6)),
    ],
)
def test_common_cards_are_found_by_their_nvml_name(nvml_name: str, compute_capability: tuple[int, int]) -> None:
    spec = KNOWLEDGE.gpu_by_name(nvml_name)
    assert spec is not None, nvml_name
    assert spec.compute_capability == compute_capability
    assert spec.provenance.source and spec.provenance.as_of.year >= 2026


@pytest.mark.parametrize(
    "nvml_name",
    [
        "NVIDIA GeForce RTX 3080 Laptop GPU",  # GA104 at a fraction of the desktop card's power budget
        "NVIDIA GeForce RTX 4090 Laptop GPU",
        "NVIDIA GeForce RTX 3060 Laptop GPU",
        "NVIDIA RTX A2000 12GB",  # a different board from the 6 GB row
        "NVIDIA GeForce RTX 3080 Ti Laptop GPU",
        "NVIDIA GeForce GTX 1660 Ti",
    ],
)
def test_other_chips_sharing_a_name_prefix_are_not_matched(nvml_name: str) -> None:
    assert KNOWLEDGE.gpu_by_name(nvml_name) is None


def _number(value: float | Unavailable | None) -> float:
    assert isinstance(value, float), value
    return value


def _geforce(architecture: str) -> list[GpuSpec]:
    return [g for g in KNOWLEDGE.gpus if g.segment == "consumer" and g.architecture == architecture]


@pytest.mark.parametrize("architecture", ["Ampere", "Ada Lovelace", "Blackwell"])
def test_geforce_tensor_figures_are_fp32_accumulate(architecture: str) -> None:
    # GeForce runs FP16/BF16 tensor math with FP32 accumulate at 2x its FP32 rate (the FP16-accumulate figure
    # NVIDIA's marketing quotes is twice that); a row that doubled it would overstate training speed 2x
    cards = _geforce(architecture)
    assert len(cards) >= 3
    for card in cards:
        fp32 = _number(card.fp32_tflops)
        assert _number(card.fp16_tflops) == pytest.approx(2 * fp32, rel=0.01), card.name
        assert _number(card.bf16_tflops) == pytest.approx(2 * fp32, rel=0.01), card.name
        assert _number(card.tf32_tflops) == pytest.approx(fp32, rel=0.01), card.name


def test_pascal_geforce_has_no_fp16_unit_and_turing_no_bf16() -> None:
    for card in _geforce("Pascal"):
        assert card.fp16_tflops is None and card.bf16_tflops is None, card.name
    for card in _geforce("Turing"):
        assert card.bf16_tflops is None and card.tf32_tflops is None, card.name


def test_a_pasted_rtx_3080_now_has_a_compute_capability_for_the_cuda_checks() -> None:
    data = (FIXTURES / "windows-torch2.1-cu121-driver526-rtx3080.txt").read_bytes()
    findings = {
        f.id: f for f in run_checks(CheckInput(snapshot_from_collect_env(data, "paste.txt"), knowledge=KNOWLEDGE))
    }
    # Ampere: bf16 and TF32 present, FP8 not (8.9+), which the dtype check reports as information
    dtype = findings["cuda.dtype_support"]
    assert dtype.severity is Severity.INFO and "no FP8" in dtype.title and "bf16" not in dtype.title
