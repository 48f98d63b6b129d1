"""Only options that can run: TP sizes that divide the head counts, no PCIe peer-to-peer between GeForce cards,
catalog rows the catalog flags shown as such, unknown clouds and spot without a spot market refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.advise.catalog import load_shipped_catalog
from envcheck.advise.communication import PCIE_X16_GB_S_PER_DIRECTION, gpu_link, has_peer_to_peer
from envcheck.advise.memory_model import is_tensor_parallel_possible, model_states, strategies_for
from envcheck.advise.workload_spec import resolve_spec, spec_from_profile, with_options
from envcheck.knowledge import load_knowledge, load_workload
from tests.test_recommend_cli import recommend_json
from tests.test_validation import one_line_error

CONFIGS = Path(__file__).parent / "fixtures" / "hf-configs"


def test_tensor_parallel_sizes_divide_the_head_counts() -> None:
    llama70 = with_options(spec_from_profile(load_workload("llama-70b-inference-4bit")), concurrency=8)
    assert [n for n in range(2, 9) if is_tensor_parallel_possible(llama70, n)] == [2, 4, 8]  # 64 heads / 8 KV
    assert strategies_for(llama70, 3) == ("replicas",)  # 3 GPUs: copies, never TP over 3
    falcon = with_options(resolve_spec(None, None, None, CONFIGS / "tiiuae--falcon-7b.json"), task="infer")
    assert not is_tensor_parallel_possible(falcon, 2)  # 71 heads divide by nothing but 71


def test_no_instance_is_offered_with_an_impossible_tensor_parallel_size() -> None:
    data = recommend_json("--workload", "llama-70b-inference-4bit", "--concurrency", "64", "--top", "200")
    for option in data["options"]:
        if option["strategy"] == "tp":
            n = option["gpu_count"]  # 16 GPUs hold each of the 8 KV heads twice (vLLM replicates them)
            assert 64 % n == 0 and (8 % n == 0 or n % 8 == 0), option


def test_geforce_cards_have_no_peer_to_peer() -> None:
    knowledge = load_knowledge()
    rtx4090, h100 = knowledge.gpu_by_name("NVIDIA GeForce RTX 4090"), knowledge.gpu_by_name("NVIDIA H100 PCIe")
    assert rtx4090 is not None and h100 is not None
    assert not has_peer_to_peer(rtx4090) and has_peer_to_peer(h100)
    link = gpu_link(rtx4090)
    assert "no P2P" in link.label and link.gb_s_per_direction == PCIE_X16_GB_S_PER_DIRECTION[4] / 2


def test_catalog_rows_flagged_data_quality_are_shown_as_such() -> None:
    flagged = {i.instance_type: i.data_quality for i in load_shipped_catalog(load_knowledge()).instances}
    assert "verify" in (flagged["a2-ultragpu-1g"] or "")
    data = recommend_json("--workload", "llama-7b-lora", "--cloud", "gcp", "--top", "100")
    rows = {o["instance_type"]: o["data_quality"] for o in data["options"]}
    assert rows["a2-ultragpu-1g"] and None in rows.values()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--cloud", "coreweave"], ('--cloud "coreweave"', "known: aws")),
        (["--cloud", "lambda", "--spot"], ("--spot: lambda has no spot market", "drop --spot")),
        (["--cloud", "runpod", "--spot"], ("--spot: runpod has no spot market",)),
    ],
)
def test_unknown_clouds_and_spot_without_a_market_are_errors(args: list[str], fragments: tuple[str, ...]) -> None:
    one_line_error(["recommend", "--params", "7B", *args], *fragments)


def assumptions(data: dict[str, object]) -> dict[str, dict[str, object]]:
    listed = data["assumptions"]
    assert isinstance(listed, list)
    return {a["name"]: a for a in listed}


def test_every_assumption_is_in_the_json_with_its_option() -> None:
    training = assumptions(recommend_json("--params", "7B", "--task", "lora", "--top", "1"))
    assert set(training) == {"precision", "tokens", "mfu", "seq_len", "batch", "optimizer", "checkpointing",
                             "overlap", "lora_rank", "attention", "cuda_context_gb", "memory_overhead"}  # fmt: skip
    assert training["mfu"]["option"] == "--mfu" and training["mfu"]["value"]["datacenter"] == 0.4
    assert training["overlap"]["value"] == 0.5 and training["lora_rank"]["value"] == 16
    serving = assumptions(recommend_json("--params", "70B", "--task", "infer", "--precision", "int4", "--top", "1"))
    assert serving["concurrency"] == {"name": "concurrency", "value": 1, "option": "--concurrency"}  # said, not silent
    assert "embeddings/lm_head/norms bf16" in str(serving["precision"]["value"])
    assert serving["unquantised_parts"]["value"] == ["embeddings", "lm_head"]
    for listed in (training, serving):  # every assumption names the option that sets it
        assert all(a["option"] for a in listed.values()), listed


def test_mfu_and_overlap_change_the_job_time() -> None:
    base = recommend_json("--workload", "llama-7b-lora", "--cloud", "aws", "--top", "1")
    slower = recommend_json("--workload", "llama-7b-lora", "--cloud", "aws", "--top", "1", "--mfu", "0.2")
    assert assumptions(slower)["mfu"]["value"] == 0.2
    chosen = base["options"][0]["instance_type"]
    same = next(o for o in slower["options"] + base["options"] if o["instance_type"] == chosen)
    assert same["job_hours"] >= base["options"][0]["job_hours"]
    hidden = recommend_json("--params", "7B", "--min-gpus", "8", "--top", "1", "--overlap", "1")
    assert hidden["options"][0]["communication_hours"] == 0  # all of it hidden


def test_the_text_says_in_one_line_what_it_assumed() -> None:
    from typer.testing import CliRunner

    from envcheck.advise.assumptions import assumptions_line
    from envcheck.cli import app

    spec = with_options(resolve_spec(None, "70B", None, None), task="infer")
    line = assumptions_line(spec)
    assert "\n" not in line and "1 sequence(s) in flight" in line and "4.16 bits" not in line
    result = CliRunner().invoke(
        app, ["recommend", "--params", "70B", "--task", "infer", "--top", "1"], env={"COLUMNS": "400"}
    )
    assert line in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mfu", "0"], "--mfu: expected a positive number"),
        (["--mfu", "1.5"], "--mfu: 1.5 is too large"),
        (["--mfu", "nan"], "--mfu: expected a finite number"),
        (["--overlap", "-0.1"], "--overlap: must not be negative"),
        (["--overlap", "2"], "--overlap: 2.0 is too large"),
        (["--task", "infer", "--decode-efficiency", "0"], "--decode-efficiency: expected a positive number"),
        (["--task", "infer", "--decode-efficiency", "1.2"], "--decode-efficiency: 1.2 is too large"),
        (["--decode-efficiency", "0.8"], "--decode-efficiency: only serving decodes"),
        (["--task", "qlora", "--skip-modules", "norms"], '--skip-modules: "norms" is not a comma-separated list'),
        (["--task", "qlora", "--skip-modules", ","], '--skip-modules: "," is not'),
        (["--skip-modules", "lm_head"], "--skip-modules: only a 4- or 8-bit base"),
    ],
)
def test_bad_assumption_values_are_one_line_errors(args: list[str], fragment: str) -> None:
    one_line_error(["recommend", "--params", "7B", *args], fragment)


def test_decode_efficiency_is_settable_and_scales_serving_time() -> None:
    args = ("--workload", "llama-70b-inference-4bit", "--cloud", "aws", "--top", "1")
    base = recommend_json(*args)
    faster = recommend_json(*args, "--decode-efficiency", "0.35")
    assert assumptions(base)["bandwidth_efficiency"] == {
        "name": "bandwidth_efficiency", "value": 0.7, "option": "--decode-efficiency"
    }  # fmt: skip
    assert assumptions(faster)["bandwidth_efficiency"]["value"] == 0.35
    chosen = base["options"][0]
    same = next(o for o in faster["options"] if o["instance_type"] == chosen["instance_type"])
    decode = chosen["job_hours"] - (chosen["communication_hours"] or 0)
    assert same["job_hours"] - (same["communication_hours"] or 0) == pytest.approx(2 * decode, rel=1e-6)


def test_skip_modules_moves_embeddings_and_lm_head_between_bf16_and_the_quantised_format() -> None:
    from envcheck.advise.architecture import embedding_parameters, lm_head_parameters
    from envcheck.advise.assumptions import assumptions_line
    from envcheck.advise.memory_model import NF4_BITS, model_states
    from envcheck.advise.workload_spec import parse_parts

    llama3 = with_options(resolve_spec(None, None, None, CONFIGS / "meta-llama--Meta-Llama-3-8B.json"), task="qlora")
    assert llama3.shape is not None and llama3.unquantised_parts == ("embeddings", "lm_head")  # bitsandbytes' default
    kept = model_states(llama3).weights
    saved_per_parameter = 2 - NF4_BITS / 8  # bf16 bytes less NF4 bytes
    head, embeddings = lm_head_parameters(llama3.shape), embedding_parameters(llama3.shape)
    only_embeddings = with_options(llama3, unquantised_parts=parse_parts("embed_tokens"))
    assert kept - model_states(only_embeddings).weights == pytest.approx(head * saved_per_parameter)
    neither = with_options(llama3, unquantised_parts=parse_parts("none"))
    assert kept - model_states(neither).weights == pytest.approx((head + embeddings) * saved_per_parameter)
    assert "base linear layers, embeddings, lm_head NF4" in assumptions_line(neither)
    assert "norms bf16" in assumptions_line(neither)
    data = recommend_json("--hf-config", str(CONFIGS / "meta-llama--Meta-Llama-3-8B.json"), "--task", "qlora",
                          "--skip-modules", "lm_head", "--top", "1")  # fmt: skip
    assert assumptions(data)["unquantised_parts"] == {
        "name": "unquantised_parts", "value": ["lm_head"], "option": "--skip-modules"
    }  # fmt: skip
    assert "base linear layers, embeddings NF4" in str(assumptions(data)["precision"]["value"])


def test_tied_embeddings_are_one_matrix_kept_while_either_part_is() -> None:
    gemma = with_options(resolve_spec(None, None, None, CONFIGS / "google--gemma-7b.json"), task="qlora")
    assert gemma.shape is not None and gemma.shape.is_tied_embeddings
    kept = model_states(gemma).weights
    assert model_states(with_options(gemma, unquantised_parts=("lm_head",))).weights == kept
    assert model_states(with_options(gemma, unquantised_parts=())).weights < kept
