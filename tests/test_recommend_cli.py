"""`envcheck recommend` end to end: ranking, JSON contract, --buy, --emit skypilot, --here, input errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envcheck.cli import app
from envcheck.snapshot import to_json
from tests import factories

runner = CliRunner()
MEMORY_KEYS = {"weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "kv_cache_bytes",
               "overhead_bytes", "total_bytes"}  # fmt: skip
OPTION_KEYS = {"cloud", "instance_type", "gpu", "gpu_count", "gpu_memory_gb", "strategy", "price_per_hour",
               "job_hours", "job_cost", "as_of"}  # fmt: skip


def recommend_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["recommend", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_llama_7b_lora_lists_only_instances_with_room_cheapest_job_first() -> None:
    data = recommend_json("--workload", "llama-7b-lora", "--top", "100")
    assert data["memory"].keys() >= MEMORY_KEYS
    assert data["memory"]["total_bytes"] == sum(data["memory"][k] for k in MEMORY_KEYS - {"total_bytes"})
    options = data["options"]
    assert options and all(o.keys() >= OPTION_KEYS for o in options)
    for option in options:
        assert option["memory_per_gpu_bytes"] <= option["gpu_memory_gb"] * 1e9
        assert option["gpu_memory_gb"] > 16  # 16.3 GB needed: no T4 or V100-16GB
        assert option["as_of"] and option["price_per_hour"] > 0
    costs = [o["job_cost"] for o in options]
    known = [round(c, 2) for c in costs if c is not None]  # equal to the cent: the faster job first
    assert known == sorted(known) and costs[len(known) :] == [None] * (len(costs) - len(known))  # B300 last
    assert {o["gpu"] for o in options if o["job_cost"] is None} <= {"B300"}
    assert data["cheapest"] == f"{options[0]['cloud']} {options[0]['instance_type']}"
    assert data["workload"]["is_job_size_assumed"] is True


def test_sort_hourly_filters_and_top() -> None:
    data = recommend_json("--workload", "llama-7b-lora", "--sort", "hourly", "--cloud", "aws", "--top", "3")
    hourly = [o["price_per_hour"] for o in data["options"]]
    assert len(hourly) == 3 and hourly == sorted(hourly) and {o["cloud"] for o in data["options"]} == {"aws"}
    spot = recommend_json("--workload", "llama-7b-lora", "--spot", "--max-price", "2", "--min-gpus", "1")
    assert all(o["is_spot"] and o["price_per_hour"] <= 2 for o in spot["options"])


def test_terminal_output_names_prices_dates_and_the_three_picks() -> None:
    result = runner.invoke(app, ["recommend", "--workload", "llama-7b-lora", "--top", "3"], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "memory on one GPU" in result.output and "(2025)" in result.output
    for label in ("cheapest:", "fastest:", "best value:"):
        assert label in result.output


def test_buy_gives_break_even_hours() -> None:
    data = recommend_json("--workload", "llama-7b-lora", "--buy", "--power-price", "0.30")
    buy = data["buy"]
    assert buy["power_price_usd_kwh"] == 0.30
    rtx4090 = next(o for o in buy["options"] if "4090" in o["gpu"])
    assert rtx4090["gpu_count"] == 1 and rtx4090["purchase_usd"] == 1599 and rtx4090["price_as_of"]
    assert rtx4090["break_even_hours"] is not None and rtx4090["break_even_hours"] > 0
    assert not any("H100" in o["gpu"] for o in buy["options"])  # no public list price: left out


def parse_yaml_subset(text: str) -> dict[str, Any]:
    """The YAML we write: comments, `key: value` and one level of nested mapping; values JSON or true/false/int."""
    root: dict[str, Any] = {}
    current: dict[str, Any] = root
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(": ") if ": " in line else (line.strip().rstrip(":"), "", "")
        target = root if indent == 0 else current
        assert indent in (0, 2), line
        if not value:
            target[key] = current = {}
            continue
        target[key] = {"true": True, "false": False}.get(value) if value in ("true", "false") else json.loads(value)
    return root


def test_emit_skypilot_writes_a_task_for_the_best_value_option(tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    data = recommend_json("--workload", "llama-7b-lora", "--cloud", "aws", "--spot", "--emit", "skypilot",
                          "--emit-file", str(path))  # fmt: skip
    task = parse_yaml_subset(path.read_text())
    resources = task["resources"]
    assert task["name"] == "envcheck-llama-7b-lora" and task["num_nodes"] == 1
    assert resources["cloud"] == "aws" and resources["use_spot"] is True
    assert data["best_value"] == f"aws {resources['instance_type']}"
    assert resources["accelerators"].split(":")[1].isdigit()
    assert data["emitted"] == str(path)


def test_nothing_fits_says_what_would_with_numbers() -> None:
    data = recommend_json("--params", "70B", "--task", "finetune", "--cloud", "lambda", "--max-price", "5")
    assert data["options"] == []
    suggestions = "\n".join(data["suggestions"])
    assert "ZeRO-3 / FSDP over" in suggestions and "--task qlora" in suggestions and "GB" in suggestions


def test_here_from_a_snapshot_of_a_4090(tmp_path: Path) -> None:
    saved = tmp_path / "snapshot.json"
    saved.write_text(to_json(factories.gpu_machine(factories.nvml_gpu("rtx4090-driver535.86.05"))))
    data = recommend_json("--workload", "llama-7b-lora", "--from", str(saved), "--top", "1")
    here = data["here"]
    assert here["gpu_count"] == 1 and "4090" in here["gpu"] and here["fits"] is True
    assert here["settings"] == "as given" and here["job_hours"] > 0


def test_hf_config_and_shape_options(tmp_path: Path) -> None:
    config = tmp_path / "tiny" / "config.json"
    config.parent.mkdir()
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    config.write_text(json.dumps(gpt2))
    data = recommend_json("--hf-config", str(config), "--tokens", "1B", "--top", "1")
    assert data["workload"]["name"] == "tiny" and data["workload"]["job_tokens"] == 1e9
    shaped = recommend_json("--layers", "32", "--hidden", "4096", "--heads", "32", "--vocab", "32000",
                            "--intermediate", "11008", "--task", "lora", "--top", "1")  # fmt: skip
    assert shaped["workload"]["parameters"] == 6_738_415_616


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload", "no-such-model"], 'unknown workload profile "no-such-model"'),
        (["--params", "lots"], "--params"),
        (["--workload", "llama-7b-lora", "--params", "7B"], "exactly one of"),
        (["--workload", "llama-7b-lora", "--sort", "random"], "--sort"),
        (["--workload", "llama-7b-lora", "--emit", "terraform"], "--emit"),
        (["--layers", "2"], "needs --layers, --hidden, --heads and --vocab"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["recommend", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_malformed_profile_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    profile = tmp_path / "bad.toml"
    profile.write_text('name = "bad"\nparameters = "many"\n')
    result = runner.invoke(app, ["recommend", "--workload", str(profile)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "bad.toml" in result.stderr
