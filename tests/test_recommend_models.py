"""The memory and time models against published worked examples and hand arithmetic."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.advise import memory_model
from envcheck.advise.memory_model import estimate, fitting_estimate, kv_cache_bytes, lora_parameters
from envcheck.advise.time_model import (
    BenchMeasurement,
    load_bench_results,
    training_flops,
    training_time,
)
from envcheck.advise.workload_spec import (
    KNOWN_SHAPES,
    TransformerShape,
    adhoc_spec,
    parse_count,
    shape_from_hf_config,
    spec_from_profile,
    transformer_parameters,
    with_options,
)
from envcheck.knowledge import KnowledgeError, load_knowledge, load_workload
from envcheck.loaders import InputError

GB = 1e9


def within(value: float, expected: float, tolerance: float = 0.10) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_llama2_7b_shape_gives_its_published_parameter_count() -> None:
    assert transformer_parameters(KNOWN_SHAPES["llama-7b"]) == 6_738_415_616


@pytest.mark.parametrize(("stage", "expected_gb"), [("zero1", 31.4), ("zero2", 16.6), ("zero3", 1.9)])
def test_zero_paper_model_states_per_gpu_for_7_5b_over_64_gpus(stage: str, expected_gb: float) -> None:
    # Rajbhandari et al. 2020, figure 1: Psi = 7.5B, K = 12, Nd = 64
    spec = adhoc_spec("zero-7.5b", 7_500_000_000, None, "test")
    assert memory_model.model_states(spec).weights + memory_model.model_states(spec).gradients == 30 * GB
    per_gpu = estimate(spec, stage, 64).model_states_bytes / GB
    assert within(per_gpu, expected_gb), per_gpu


def test_zero_paper_unsharded_model_states_are_120_gb() -> None:
    spec = adhoc_spec("zero-7.5b", 7_500_000_000, None, "test")
    assert estimate(spec, "ddp", 64).model_states_bytes == pytest.approx(120 * GB)


def test_qlora_65b_finetune_fits_under_48_gb() -> None:
    # Dettmers et al. 2023: LLaMA-65B (80 layers, hidden 8192, MLP 22016), NF4 + rank-64 adapters on every
    # linear layer, paged 32-bit AdamW, sequence 512, gradient checkpointing: "<48 GB"
    shape = TransformerShape(80, 8192, 64, 64, 32000, 22016)
    base = adhoc_spec("llama-65b", transformer_parameters(shape), shape, "test")
    spec = with_options(base, task="qlora", seq_len=512, batch=1, is_checkpointing=True)
    assert spec.precision == "int4" and spec.lora_rank == 64
    total = estimate(spec).total_bytes / GB
    assert 35 < total < 48, total
    assert within(lora_parameters(spec), 0.8e9)  # 80 x 64 x (4 x 16384 + 3 x 30208)


def test_llama2_70b_int4_serving_8_by_8k_needs_60_to_65_gb() -> None:
    spec = with_options(spec_from_profile(load_workload("llama-70b-inference-4bit")), concurrency=8, context=8192)
    # GQA: 80 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 327,680 B per token; x 65,536 tokens = 21.5 GB
    assert kv_cache_bytes(spec) == 327_680 * 8 * 8192
    total = estimate(spec).total_bytes / GB
    assert 60 <= total <= 65, total


def test_flash_attention_and_checkpointing_shrink_activations() -> None:
    spec = adhoc_spec("7b", 6_738_415_616, KNOWN_SHAPES["llama-7b"], "test")
    full = estimate(replace(spec, is_flash_attention=False)).activations_bytes
    flash = estimate(spec).activations_bytes
    checkpointed = estimate(replace(spec, is_checkpointing=True)).activations_bytes
    assert full > flash > checkpointed
    # Korthikanti eq. 1 per layer at s=2048, b=1, h=4096, a=32: s*b*h*(34 + 5*a*s/h) bytes, plus fp32 logits
    expected = 32 * 2048 * 4096 * (34 + 5 * 32 * 2048 / 4096) + 4 * 2048 * 32000
    assert full == pytest.approx(expected)


def test_strategies_are_tried_least_communication_first() -> None:
    spec = adhoc_spec("7b", 6_738_415_616, KNOWN_SHAPES["llama-7b"], "test")
    on_80gb = fitting_estimate(spec, 8, 80 * GB)
    assert on_80gb is not None and on_80gb.strategy == "zero1"  # 108 GB of states do not fit replicated
    assert fitting_estimate(spec, 1, 80 * GB) is None
    on_24gb = fitting_estimate(replace(spec, is_checkpointing=True), 8, 24 * GB)
    assert on_24gb is not None and on_24gb.strategy == "zero3"


def test_cnn_memory_comes_from_the_profile() -> None:
    spec = spec_from_profile(load_workload("resnet50-imagenet"))
    result = estimate(spec)
    assert spec.shape is None and result.activations_bytes == 32 * 100 * 10**6
    assert result.weights_bytes == 25_557_032 * 4


def test_training_flops_are_6pt_and_lora_4pt() -> None:
    spec = with_options(adhoc_spec("1b", 10**9, None, "test"), tokens=10**9)
    assert training_flops(spec) == 6e18
    assert training_flops(with_options(spec, task="lora")) == 4e18
    assert training_flops(with_options(spec, is_checkpointing=True)) == 8e18


def test_job_time_divides_by_gpus_peak_and_utilisation() -> None:
    h100 = next(g for g in load_knowledge().gpus if g.name == "H100" and "SXM" in g.variant)
    spec = with_options(adhoc_spec("1b", 10**9, None, "test"), tokens=10**9)
    one, eight = training_time(spec, h100, 1), training_time(spec, h100, 8)
    assert one is not None and eight is not None
    assert one.hours == pytest.approx(6e18 / (989.4e12 * 0.40) / 3600)
    assert eight.hours == pytest.approx(one.hours / 8)


def test_a_bench_on_the_same_gpu_sets_the_utilisation(tmp_path: Path) -> None:
    gpu = next(g for g in load_knowledge().gpus if g.name == "GeForce RTX 4090")
    spec = spec_from_profile(load_workload("cifar10-cnn"))
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"schema": "envcheck.bench/1", "preset": "resnet18", "images_per_s": 5000.0,
                                "device": "cuda:0", "device_name": "NVIDIA GeForce RTX 4090"}))  # fmt: skip
    measured = load_bench_results(path)
    assert measured == BenchMeasurement(5000.0, "NVIDIA GeForce RTX 4090", str(path))
    timed = training_time(spec, gpu, 1, measured)
    assert timed is not None and timed.basis == "measured"
    # 30 epochs of 50,000 images at the measured rate
    assert timed.hours == pytest.approx(30 * 50_000 / 5000 / 3600)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ('{"device": "x"}', "images_per_s"),
        ('{"images_per_s": 1, "preset": "tutorial-cnn"}', "preset"),
    ],
)
def test_bad_bench_results_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bench.json"
    path.write_text(content)
    with pytest.raises((InputError, KnowledgeError), match=message):  # the reader's InputError, or a field's
        load_bench_results(path)


def test_hf_config_gives_shape_and_parameter_count(tmp_path: Path) -> None:
    config = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32000,
              "tie_word_embeddings": False}  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    shape, count = shape_from_hf_config(path)
    assert replace(shape, gated_mlp=None) == KNOWN_SHAPES["llama-7b"] and count == 6_738_415_616
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    path.write_text(json.dumps(gpt2))
    _, gpt2_count = shape_from_hf_config(path)
    assert within(gpt2_count, 124_439_808, 0.01)  # GPT-2 small (position embeddings are not counted)
    path.write_text('{"hidden_size": 8}')
    with pytest.raises(KnowledgeError, match="num_attention_heads"):
        shape_from_hf_config(path)


@pytest.mark.parametrize(("text", "count"), [("7B", 7 * 10**9), ("1.3b", 1_300_000_000), ("350M", 350 * 10**6)])
def test_parse_count(text: str, count: int) -> None:
    assert parse_count(text) == count


def test_bad_options_are_refused() -> None:
    spec = adhoc_spec("1b", 10**9, None, "test")
    with pytest.raises(KnowledgeError, match="--task"):
        with_options(spec, task="pretrain")
    with pytest.raises(KnowledgeError, match="full training"):
        estimate(with_options(spec, precision="int4"))
    with pytest.raises(KnowledgeError, match="7 B"):
        parse_count("7 B x")


def test_tensor_parallel_splits_weights_and_only_as_many_kv_heads_as_there_are() -> None:
    spec = with_options(spec_from_profile(load_workload("llama-70b-inference-4bit")), concurrency=8, context=8192)
    single, tp8 = estimate(spec), estimate(spec, "tp", 16)
    assert tp8.weights_bytes == pytest.approx(single.weights_bytes / 16, abs=1)
    assert tp8.kv_cache_bytes == pytest.approx(single.kv_cache_bytes / 8, abs=1)  # 8 KV heads: replicated beyond 8


def test_here_finds_the_settings_under_which_the_job_fits() -> None:
    from envcheck.advise.here import recommend_here
    from tests import factories

    snapshot = factories.gpu_machine(factories.nvml_gpu("rtx4090-driver535.86.05"))  # one 24 GB GPU
    knowledge = load_knowledge()
    full = with_options(adhoc_spec("7b", 6_738_415_616, KNOWN_SHAPES["llama-7b"], "test"), batch=4)
    result = recommend_here(full, snapshot, knowledge)
    assert result.gpu_count == 1 and result.memory is not None
    assert result.settings == "--task qlora"  # 108 GB of Adam states never fit 24 GB; a 4-bit base does
    lora = with_options(full, task="lora", batch=8)
    fitted = recommend_here(lora, snapshot, knowledge)
    assert fitted.settings.startswith("--checkpointing") and fitted.job_time is not None
    no_gpu = recommend_here(lora, factories.snapshot(), knowledge)
    assert no_gpu.gpu_name is None and no_gpu.no_gpu_reason
