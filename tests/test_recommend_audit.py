"""Plausibility audit of `envcheck recommend`: labels never dominated, ties, job sizes, notes and filter advice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envcheck.advise.catalog import Catalog, Instance, load_shipped_catalog
from envcheck.advise.memory_model import estimate
from envcheck.advise.recommend import Filters, Option, recommend_instances
from envcheck.advise.workload_spec import parse_count, resolve_spec, spec_from_profile, with_options
from envcheck.cli import app
from envcheck.knowledge import KnowledgeError, load_knowledge, load_workload
from envcheck.render.recommend import _hours

KNOWLEDGE = load_knowledge()
CATALOG = load_shipped_catalog(KNOWLEDGE)
PROFILES = sorted(p.stem for p in Path("profiles/workloads").glob("*.toml"))
runner = CliRunner()
# Llama-3-8B's published config.json (meta-llama/Meta-Llama-3-8B): 8,030,261,248 parameters
LLAMA3_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
             "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False}  # fmt: skip


def recommend_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["recommend", "--no-bench-results", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def dominates(a: Option, b: Option) -> bool:
    """``a`` costs less and finishes sooner than ``b``."""
    assert a.job_cost is not None and b.job_cost is not None and a.job_hours is not None and b.job_hours is not None
    return a.job_cost < b.job_cost - 0.005 and a.job_hours < b.job_hours


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("is_spot", [False, True])
def test_no_named_option_is_beaten_on_both_cost_and_time(profile: str, is_spot: bool) -> None:
    spec = spec_from_profile(load_workload(profile))
    rec = recommend_instances(spec, CATALOG, Filters(is_spot=is_spot))
    timed = [o for o in rec.options if o.job_cost is not None]
    assert rec.cheapest is not None and rec.fastest is not None and rec.best_value is not None
    for named in (rec.cheapest, rec.fastest, rec.best_value):
        assert not any(dominates(other, named) for other in timed), (profile, named.instance.instance_type)
    # best value: the fastest job within 1.25 x the cheapest job's cost
    assert rec.best_value.job_cost is not None and rec.cheapest.job_cost is not None
    assert rec.best_value.job_cost <= 1.25 * rec.cheapest.job_cost


def test_equal_job_costs_rank_the_faster_option_first() -> None:
    # 2 x A100 at twice the hourly price of 1 x A100 does the same serving job in half the time for the same money
    a100 = next(i for i in CATALOG.instances if i.gpu_spec.name == "A100 80GB")
    one = replace(a100, instance_type="one", gpu_count=1, price_on_demand_usd_h=1.39, price_spot_usd_h=None)
    two = replace(one, instance_type="two", gpu_count=2, price_on_demand_usd_h=2.78)
    catalog = Catalog(instances=(one, two), dropped=(), origin="test")
    spec = spec_from_profile(load_workload("llama-70b-inference-4bit"))
    rec = recommend_instances(spec, catalog, Filters())
    assert [o.job_cost for o in rec.options] == pytest.approx([rec.options[0].job_cost] * 2)
    assert [o.instance.instance_type for o in rec.options] == ["two", "one"]
    assert rec.cheapest is not None and rec.cheapest.instance.instance_type == "two"


def test_job_costs_are_hours_times_price_and_sorted() -> None:
    data = recommend_json("--workload", "llama-7b-lora", "--top", "100")
    costs = [o["job_cost"] for o in data["options"]]
    known = [round(c, 2) for c in costs if c is not None]  # equal to the cent: the faster job first
    assert known == sorted(known) and costs[len(known) :] == [None] * (len(costs) - len(known))
    for option in data["options"][: len(known)]:
        assert option["job_cost"] == pytest.approx(option["job_hours"] * option["price_per_hour"])


@pytest.mark.parametrize(("text", "count"), [("2e11", 2 * 10**11), ("1.5e9", 1_500_000_000), ("1e3k", 10**6)])
def test_token_counts_in_scientific_notation(text: str, count: int) -> None:
    assert parse_count(text, "--tokens") == count


def test_tokens_2e11_on_the_command_line() -> None:
    data = recommend_json("--params", "13B", "--task", "train", "--tokens", "2e11", "--top", "1")
    assert data["workload"]["job_tokens"] == 2e11 and data["workload"]["is_job_size_assumed"] is False


def test_ad_hoc_billion_parameter_models_recompute_activations_like_the_profiles(tmp_path: Path) -> None:
    # Llama-2-7B described by its config sizes like the llama-7b-full profile (both recompute activations)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
                                  "num_hidden_layers": 32, "vocab_size": 32000}))  # fmt: skip
    adhoc = resolve_spec(None, None, None, config)
    profile = spec_from_profile(load_workload("llama-7b-full"))
    assert adhoc.parameters == profile.parameters and adhoc.is_checkpointing
    assert estimate(adhoc).activations_bytes == estimate(profile).activations_bytes
    # QLoRA of a 65B count at the defaults: near the paper's "<48 GB" (which is at sequence 512), not 89 GB
    qlora = with_options(resolve_spec(None, "65B", None, None), task="qlora")
    assert 40e9 < estimate(qlora).total_bytes < 50e9
    # --no-checkpointing still turns it off; small models keep every activation
    assert not with_options(adhoc, is_checkpointing=False).is_checkpointing
    assert not resolve_spec(None, "350M", None, None).is_checkpointing


def test_hf_config_name_is_the_model_folder_or_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "Meta-Llama-3-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA3_8B))
    (tmp_path / "llama3-8b.json").write_text(json.dumps(LLAMA3_8B))
    in_folder = resolve_spec(None, None, None, folder / "config.json")
    assert in_folder.name == "Meta-Llama-3-8B" and in_folder.parameters == 8_030_261_248
    assert resolve_spec(None, None, None, tmp_path / "llama3-8b.json").name == "llama3-8b"


def test_an_assumed_shape_says_its_kv_cache_is_an_upper_bound() -> None:
    args = ["recommend", "--no-bench-results", "--params", "70B", "--task", "infer", "--precision", "int4"]
    result = runner.invoke(app, [*args, "--concurrency", "32", "--context", "8192", "--top", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the note wraps at the terminal's width
    assert "no grouped-query attention: 2.58 MB of KV cache per token, an upper bound" in text
    profile = runner.invoke(app, ["recommend", "--no-bench-results", "--workload", "llama-70b-inference-4bit"])
    assert "shape assumed" not in profile.output  # Llama-2-70B's own shape (8 KV heads)
    data = recommend_json("--params", "70B", "--task", "infer", "--top", "1")
    assert data["workload"]["is_shape_assumed"] is True


@pytest.mark.parametrize(("hours", "text"), [(19 / 3600, "19 s"), (0.1 / 3600, "1 s"), (0.5, "30 min"), (2.0, "2.0 h")])
def test_short_jobs_are_shown_in_seconds_not_0_min(hours: float, text: str) -> None:
    assert _hours(hours) == text


def test_a_cnn_shows_millions_of_parameters() -> None:
    result = runner.invoke(app, ["recommend", "--no-bench-results", "--workload", "cifar10-cnn", "--top", "1"])
    assert "11.2 M parameters" in result.output and "0.01 B" not in result.output


def test_when_the_filters_leave_nothing_the_advice_says_what_fits_without_them() -> None:
    data = recommend_json("--workload", "llama-7b-full", "--region", "us-west", "--min-gpus", "4", "--max-price", "60")
    assert data["considered_count"] == 0 and data["options"] == []
    first, second = data["suggestions"][:2]
    assert first == "no instance in the catalog matches --region us-west, --max-price 60, --min-gpus 4"
    assert second.startswith("without --region us-west, --max-price 60, --min-gpus 4: ") and "$" in second
    # filters that leave instances too small: the memory advice follows, with numbers
    tight = recommend_json("--params", "70B", "--task", "finetune", "--cloud", "lambda", "--max-price", "20")
    assert tight["suggestions"][0].startswith("without --cloud lambda, --max-price 20: ")
    assert any(s.startswith("ZeRO-3 / FSDP over") and "GB per GPU" in s for s in tight["suggestions"])


def test_no_filters_no_filter_advice() -> None:
    data = recommend_json("--params", "1T", "--task", "train")
    assert data["options"] == [] and data["suggestions"][0].startswith("needs ")


def test_every_instance_with_room_is_listed_and_none_without(tmp_path: Path) -> None:
    spec = spec_from_profile(load_workload("llama-7b-full"))
    rec = recommend_instances(spec, CATALOG, Filters())
    listed = {(o.instance.cloud, o.instance.instance_type, o.instance.region) for o in rec.options}
    for instance in CATALOG.instances:
        key = (instance.cloud, instance.instance_type, instance.region)
        sharded = min(
            (estimate(spec, s, instance.gpu_count).total_bytes for s in _strategies(instance)),
            default=float("inf"),
        )
        has_room = sharded <= instance.gpu_memory_gb * 1e9 and instance.gpu_spec.compute_capability >= (8, 0)
        assert (key in listed) == has_room, key


def _strategies(instance: Instance) -> tuple[str, ...]:
    return ("single",) if instance.gpu_count == 1 else ("ddp", "zero1", "zero2", "zero3")


@pytest.mark.parametrize("text", ["1e999", "5e21", "9999999999T"])
def test_absurd_counts_are_one_line_errors(text: str) -> None:
    with pytest.raises(KnowledgeError, match=r"--tokens: .* is too large"):
        parse_count(text, "--tokens")
