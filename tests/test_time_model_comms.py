"""The communication term of the time model: bytes per step by sharding, the link it runs over, the worked
example of docs/recommend.md#communication, and single-GPU times left exactly as they were."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.advise.communication import (
    data_parallel_bytes_per_step,
    gpu_link,
    optimizer_steps,
    tensor_parallel_bytes_per_token_step,
)
from envcheck.advise.memory_model import estimate, lora_parameters
from envcheck.advise.recommend import job_time
from envcheck.advise.time_model import serving_time, training_flops, training_time
from envcheck.advise.workload_spec import DEFAULT_OVERLAP, WorkloadSpec, spec_from_profile, with_options
from envcheck.knowledge import GpuSpec, KnowledgeError, load_knowledge, load_workload, profiles_root
from tests.test_knowledge import edit

DOCS = Path(__file__).resolve().parents[1] / "docs" / "recommend.md"


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    """A writable copy of the shipped profiles."""
    return Path(shutil.copytree(profiles_root(), tmp_path / "profiles"))


def gpu(name: str, variant: str = "") -> GpuSpec:
    return next(g for g in load_knowledge().gpus if g.name == name and variant in g.variant)


def seven_b() -> WorkloadSpec:
    return with_options(spec_from_profile(load_workload("llama-7b-full")), tokens=10**9)


def test_links_nvlink_halved_per_direction_pcie_by_generation_and_unknown_assumed() -> None:
    assert gpu_link(gpu("H100", "SXM")).gb_s_per_direction == 450  # 900 GB/s both directions together
    assert gpu_link(gpu("A100 80GB", "SXM")).gb_s_per_direction == 300
    assert gpu_link(gpu("B200")).gb_s_per_direction == 900
    assert gpu_link(gpu("L4")).gb_s_per_direction == 31.5  # PCIe 4.0 x16, no NVLink
    # an NVLink bridge a cloud instance may not have ("?") is not counted: PCIe 4.0
    assert gpu_link(gpu("A100 80GB", "PCIe")).label == "PCIe 4.0 x16"
    assert gpu_link(gpu("Tesla T4")).gb_s_per_direction == 15.75
    unknown = replace(gpu("L4"), pcie_gen=gpu("B200").pcie_gen)  # "?" in gpus.toml
    assert gpu_link(unknown).label == "PCIe 3.0 x16 (assumed)"


def test_every_gpu_row_records_its_links_with_a_source() -> None:
    for spec in load_knowledge().gpus:
        assert spec.nvlink_gb_s is None or not isinstance(spec.nvlink_gb_s, float) or spec.nvlink_gb_s >= 160
    text = (Path(__file__).resolve().parents[1] / "profiles" / "gpus.toml").read_text()
    rows = text.split("[[gpu]]")[1:]
    recorded = [row for row in rows if "pcie_gen =" in row]
    assert recorded and all("interconnect_source =" in row for row in recorded)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("pcie_gen = 3\n", "pcie_gen = 9\n", r"gpu\[0\]\.pcie_gen: expected a PCIe generation from 1 to 6, got 9"),
        ('nvlink_gb_s = "n/a"\n', "nvlink_gb_s = 0\n", r"gpu\[0\]\.nvlink_gb_s: expected a positive number"),
        ('interconnect_source = "NVIDIA Tesla K80', 'source_of_links = "x', r"gpu\[0\]\.source_of_links: unknown"),
    ],
)
def test_malformed_interconnect_fields_name_file_and_field(profiles: Path, old: str, new: str, message: str) -> None:
    edit(profiles / "gpus.toml", old, new)
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(profiles)


def test_single_gpu_times_do_not_change() -> None:
    spec = seven_b()
    h100 = gpu("H100", "SXM")
    before = training_time(spec, h100, 1)
    after = training_time(spec, h100, 1, None, "single")
    assert before is not None and after is not None
    flops = training_flops(spec)
    assert flops is not None
    assert after.hours == before.hours == flops / (989.4e12 * 0.40) / 3600
    assert (after.communication_hours, after.interconnect) == (0.0, None)


def test_bytes_per_step_ddp_zero3_and_lora() -> None:
    spec = seven_b()
    p = spec.parameters
    ring = 2 * 7 / 8
    assert data_parallel_bytes_per_step(spec, "ddp", 8) == pytest.approx(ring * 2 * p)  # bf16 gradients
    for stage in ("zero1", "zero2"):
        assert data_parallel_bytes_per_step(spec, stage, 8) == data_parallel_bytes_per_step(spec, "ddp", 8)
    # ZeRO paper section 7: stage 3 moves 1.5x the data-parallel baseline
    assert data_parallel_bytes_per_step(spec, "zero3", 8) == pytest.approx(1.5 * ring * 2 * p)
    lora = with_options(spec, task="lora")
    assert data_parallel_bytes_per_step(lora, "ddp", 8) == pytest.approx(ring * 2 * lora_parameters(lora))
    assert data_parallel_bytes_per_step(spec, "ddp", 1) == 0
    assert optimizer_steps(spec, 1e9, 8) == 1e9 / (1 * 2048 * 8)


def docs_number(label: str) -> float:
    """The result after the last "=" on the worked example's line "* LABEL ... = NUMBER unit"."""
    match = re.search(rf"^\* {re.escape(label)}.*= ([0-9][0-9,.]*)", DOCS.read_text(), re.MULTILINE)
    assert match, f"docs/recommend.md has no '* {label} ... = number' line"
    return float(match.group(1).rstrip(".").replace(",", ""))


def test_worked_example_of_the_docs() -> None:
    """Llama-2-7B full fine-tune, 1e9 tokens, batch 1 x 2048, on 8 x H100 SXM with ZeRO-1 (docs/recommend.md)."""
    spec, h100 = seven_b(), gpu("H100", "SXM")
    timed = training_time(spec, h100, 8, None, "zero1")
    assert timed is not None
    compute_s = 8 * 6_738_415_616 * 1e9 / (8 * 989.4e12 * 0.40)  # 8PT with recomputation
    step_bytes = 2 * 7 / 8 * 2 * 6_738_415_616
    steps = 1e9 / (1 * 2048 * 8)
    communication_s = (1 - DEFAULT_OVERLAP) * steps * step_bytes / 450e9
    assert timed.communication_hours == pytest.approx(communication_s / 3600)
    assert timed.hours == pytest.approx((compute_s + communication_s) / 3600)
    assert timed.interconnect == "NVLink 900 GB/s"
    # the numbers the docs print
    assert docs_number("compute:") == round(compute_s / 3600, 2)
    assert docs_number("bytes per GPU per step:") == round(step_bytes / 1e9, 2)
    assert docs_number("per step on the link:") == round(step_bytes / 450e9 * 1000, 1)
    assert docs_number("optimizer steps:") == round(steps)
    assert docs_number("exposed communication:") == round(communication_s / 3600, 2)
    assert docs_number("job time:") == round(timed.hours, 2)
    assert docs_number("communication share:") == round(100 * timed.communication_share, 1)
    zero3 = training_time(spec, h100, 8, None, "zero3")
    assert zero3 is not None and docs_number("ZeRO-3 exposed communication:") == round(zero3.communication_hours, 2)


def test_a_slower_link_costs_more_and_job_time_passes_the_sharding_on() -> None:
    spec = seven_b()
    sxm = job_time(spec, gpu("A100 80GB", "SXM"), estimate(spec, "zero3", 8), None)
    pcie = job_time(spec, gpu("A100 80GB", "PCIe"), estimate(spec, "zero3", 8), None)
    assert sxm is not None and pcie is not None
    assert pcie.communication_hours == pytest.approx(sxm.communication_hours * 300 / 31.5)
    assert 0 < sxm.communication_share < pcie.communication_share < 1


def test_tensor_parallel_serving_adds_two_allreduces_per_layer_and_replicas_none() -> None:
    spec = spec_from_profile(load_workload("llama-70b-inference-4bit"))
    h100 = gpu("H100", "SXM")
    shape = spec.shape
    assert shape is not None
    per_step = tensor_parallel_bytes_per_token_step(spec, 4)
    assert per_step == 2 * shape.layers * 2 * 3 / 4 * spec.concurrency * shape.hidden * 2
    memory = estimate(spec, "tp", 4)
    bytes_read = memory.weights_bytes + memory.kv_cache_bytes
    parallel = serving_time(spec, h100, bytes_read, 1, tensor_parallel=4)
    alone = serving_time(spec, h100, bytes_read, 1)
    assert parallel is not None and alone is not None
    assert parallel.hours - alone.hours == pytest.approx(parallel.communication_hours)
    # one GPU's serving time is the bandwidth formula as before, to the last bit
    bandwidth = h100.memory_bandwidth_gb_s
    assert isinstance(bandwidth, float)
    assert alone.hours == 1e8 / (spec.concurrency * bandwidth * 1e9 * 0.70 / bytes_read) / 3600
    assert (alone.communication_hours, alone.interconnect) == (0.0, None)
    steps = 1e8 / spec.concurrency
    assert parallel.communication_hours == pytest.approx(steps * per_step / 450e9 / 3600)
    copies = job_time(spec, h100, estimate(spec, "replicas", 4), None)
    assert copies is not None and copies.communication_hours == 0


def test_cnn_steps_count_samples() -> None:
    spec = spec_from_profile(load_workload("cifar10-cnn"))
    assert spec.shape is None
    assert optimizer_steps(spec, 1e6, 4) == 1e6 / (spec.batch * 4)
