"""Hostile numbers and values in every input file (issue 15, items 9-11): one-line errors naming the file and the
field, exit 2, never a traceback; NaN and infinity refused on input and never written as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envcheck.advise.catalog import load_catalog
from envcheck.advise.time_model import load_bench_results
from envcheck.advise.workload_spec import resolve_spec
from envcheck.bench.calibration import calibrate, load_references, reference_toml
from envcheck.cli import app
from envcheck.knowledge import KnowledgeError, load_knowledge
from envcheck.loaders import InputError
from envcheck.snapshot import ProbeRun, SnapshotFormatError, from_json, to_json
from envcheck.validation import InvalidValue, bounded_count, finite_number, positive_number, quoted
from tests import factories
from tests.test_bench_calibration import H200_FOR_TESTS
from tests.test_recommend_audit import LLAMA3_8B
from tests.test_recommend_catalog import aws_row, row, skypilot_csv, write_toml

runner = CliRunner()
KNOWLEDGE = load_knowledge()
HUGE = 10**400  # float() of it raises OverflowError


def one_line_error(args: list[str], *fragments: str) -> str:
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("envcheck: error: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a\nb\x1b[2J", r'"a\nb\x1b[2J"'),
        ('say "hi"', r'"say \"hi\""'),
        ("x" * 100, '"' + "x" * 55 + '..."'),
        (HUGE, "an integer of about 401 digits"),
        (True, "true"),
        ({"a": 1}, "a table"),
        ([1], "an array"),
        (float("nan"), "nan"),
        (2.5, "2.5"),
    ],
)
def test_quoted_is_one_short_escaped_line(value: object, shown: str) -> None:
    assert quoted(value) == shown
    assert len(quoted(value)) <= 60 and "\n" not in quoted(value)


def test_quoted_shows_an_integer_str_refuses_by_its_size() -> None:
    assert quoted(10**5000) == "an integer of about 5001 digits"  # str() of it raises ValueError


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "expected a number, got true"),
        ("7", 'expected a number, got "7"'),
        (None, "expected a number, got None"),
        (HUGE, "is too large"),
        (float("inf"), "expected a finite number, got inf"),
        (float("-inf"), "expected a finite number, got -inf"),
        (float("nan"), "expected a finite number, got nan"),
    ],
)
def test_finite_number_refuses(value: object, problem: str) -> None:
    with pytest.raises(InvalidValue, match=rf"^f\.toml: field 'x': .*{problem}"):
        finite_number(value, "f.toml: field 'x'")


def test_finite_number_accepts_ints_and_floats_as_floats() -> None:
    assert finite_number(3, "x") == 3.0 and isinstance(finite_number(3, "x"), float)
    assert finite_number(-1e308, "x") == -1e308


@pytest.mark.parametrize(
    ("value", "problem"), [(0, "positive"), (-1, "positive"), (1e-320, "too small"), (2e9, "large")]
)
def test_positive_number_refuses_zero_negatives_denormals_and_above_the_maximum(value: float, problem: str) -> None:
    with pytest.raises(InvalidValue, match=problem):
        positive_number(value, "x", maximum=1e9)
    assert positive_number(0.5, "x") == 0.5


@pytest.mark.parametrize("value", [-1, 9, 2.0, True, "3", HUGE])
def test_bounded_count_refuses(value: object) -> None:
    with pytest.raises(InvalidValue, match=r"^x: expected a whole number"):
        bounded_count(value, "x", 8)
    assert bounded_count(8, "x", 8) == 8


# --- snapshots (--from) --------------------------------------------------------------------------------------


def snapshot_json(**probe_changes: Any) -> str:
    document = json.loads(to_json(factories.snapshot()))
    document["probes"][0].update(probe_changes)
    return json.dumps(document)  # writes NaN and Infinity as json.dumps does by default


@pytest.mark.parametrize(
    ("value", "problem"),
    [(HUGE, "is too large"), (float("inf"), "finite"), (float("nan"), "finite"), (1e999, "finite")],
)
def test_snapshot_refuses_huge_and_non_finite_durations(value: float, problem: str, tmp_path: Path) -> None:
    with pytest.raises(SnapshotFormatError, match=rf"\$\.probes\[0\]\.duration_s: .*{problem}"):
        from_json(snapshot_json(duration_s=value))
    path = tmp_path / "snap.json"
    path.write_text(snapshot_json(duration_s=value))
    one_line_error(["doctor", "--from", str(path)], str(path), "duration_s")


def test_snapshot_refuses_integers_beyond_int64(tmp_path: Path) -> None:
    document = json.loads(to_json(factories.snapshot()))
    document["memory"]["total_bytes"] = HUGE
    with pytest.raises(SnapshotFormatError, match=r"memory\.total_bytes: an integer of about 401 digits is too large"):
        from_json(json.dumps(document))


def test_json_output_never_holds_nan() -> None:
    with_nan = dataclasses.replace(factories.snapshot(), probes=(ProbeRun("x", "ok", math.nan, None),))
    with pytest.raises(ValueError, match="not JSON compliant"):  # a bug to see, not invalid JSON to hand on
        to_json(with_nan)


# --- catalogs (--catalog) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"count": "1e-320"}, "gpu_count: expected a whole number of GPUs, got 1e-320"),
        ({"count": "0.5"}, "gpu_count: expected a whole number of GPUs"),
        ({"count": str(HUGE)}, "gpu_count: an integer of about 401 digits is too large"),
        ({"count": "inf"}, "gpu_count: expected a finite number, got inf"),
        ({"count": "100000"}, "GPU count 100000 is more than any instance has"),
        ({"price": "nan"}, "price_on_demand_usd_h: expected a finite number, got nan"),
        ({"price": "inf"}, "price_on_demand_usd_h: expected a finite number"),
        ({"spot": "price_spot_usd_h = -0.5\n"}, "spot price $-0.5/h is not positive"),
        ({"spot": "price_spot_usd_h = nan\n"}, "price_spot_usd_h: expected a finite number"),
    ],
)
def test_toml_catalog_rows_with_hostile_numbers_are_dropped_with_the_field(
    changes: dict[str, str], reason: str, tmp_path: Path
) -> None:
    fields = {"count": 1, "price": 1.0, "spot": ""} | changes
    text = row("bad", count=fields["count"], price=fields["price"], spot=fields["spot"])  # type: ignore[arg-type]
    path = write_toml(tmp_path / "mine.toml", [row("good"), text])
    catalog = load_catalog(path, KNOWLEDGE)
    assert [i.instance_type for i in catalog.instances] == ["good"]
    assert reason in "\n".join(catalog.dropped)


def test_negative_spot_price_no_longer_breaks_the_ranking(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "mine.toml", [row("good", spot="price_spot_usd_h = 0.5\n"),
                                               row("bad", spot="price_spot_usd_h = -0.5\n")])  # fmt: skip
    result = runner.invoke(app, ["recommend", "--no-bench-results", "--params", "1B", "--catalog", str(path),
                                 "--spot", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [o["instance_type"] for o in json.loads(result.stdout)["options"]] == ["good"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"AcceleratorCount": "1e-320"}, "GPU count 0 is not positive"),
        ({"AcceleratorCount": "inf"}, "AcceleratorCount: expected a finite number"),
        ({"AcceleratorCount": "9" * 400}, "AcceleratorCount: expected a finite number"),  # float() of it is inf
        ({"Price": "nan"}, "Price: expected a finite number, got nan"),
        ({"SpotPrice": "-1"}, "spot price $-1/h is not positive"),
        ({"GpuInfo": '{"TotalGpuMemoryInMiB": 1e999}'}, "TotalGpuMemoryInMiB: expected a finite number"),
    ],
)
def test_skypilot_rows_with_hostile_numbers_are_dropped(changes: dict[str, str], reason: str, tmp_path: Path) -> None:
    path = skypilot_csv(tmp_path / "aws" / "vms.csv", [aws_row("g5.xlarge", "1.0"), aws_row("bad", "1.0", **changes)])
    catalog = load_catalog(path, KNOWLEDGE)
    assert [i.instance_type for i in catalog.instances] == ["g5.xlarge"]
    assert reason in "\n".join(catalog.dropped)


def test_unknown_cloud_is_an_error_naming_the_known_ones() -> None:
    one_line_error(["recommend", "--params", "7B", "--cloud", "coreweave"], '--cloud "coreweave"', "aws, azure, gcp")


# --- workloads (--workload FILE, --hf-config) ----------------------------------------------------------------

WORKLOAD = """name = "mine"
description = "a test"
parameters = {parameters}
min_gpu_memory_gb = {memory}
dtypes_required = ["bf16"]
min_compute_capability = "8.0"
min_ram_gb = 16
min_free_disk_gb = 10
min_cpu_cores = 4
source = "test"
as_of = 2026-11-01
"""


@pytest.mark.parametrize(
    ("parameters", "memory", "problem"),
    [
        (str(HUGE), "16", "parameters: expected a whole number from 0 to"),
        ("7000000000", "inf", "min_gpu_memory_gb: expected a finite number, got inf"),
        ("7000000000", "nan", "min_gpu_memory_gb: expected a finite number, got nan"),
        ("7000000000", str(HUGE), "min_gpu_memory_gb: an integer of about 401 digits is too large"),
        ("7000000000", '"16\\nGB\\u001b[2J"', r'min_gpu_memory_gb: expected a number, got "16\nGB\x1b[2J"'),
    ],
)
def test_workload_file_with_hostile_numbers_is_one_line(
    parameters: str, memory: str, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(WORKLOAD.format(parameters=parameters, memory=memory))
    one_line_error(["recommend", "--workload", str(path)], f"{path}: {problem}")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"hidden_size": HUGE}, "field 'hidden_size': an integer of about 401 digits is too large"),
        ({"vocab_size": 10**12}, "field 'vocab_size': 1000000000000 is too large"),
        ({"num_attention_heads": 8192}, "8192 attention heads for a hidden size of 4096"),
        ({"num_key_value_heads": 64}, "64 key/value heads is more than the 32 heads"),
        ({"num_hidden_layers": 10**8, "hidden_size": 10**8, "num_attention_heads": 10**4}, "parameters is too many"),
    ],
)
def test_hf_config_with_hostile_sizes_is_one_line(changes: dict[str, int], problem: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA3_8B | changes))
    with pytest.raises(KnowledgeError, match=rf"^{path}: .*{problem}"):
        resolve_spec(None, None, None, path)
    one_line_error(["recommend", "--hf-config", str(path)], str(path))


def test_shape_options_beyond_any_model_are_refused() -> None:
    one_line_error(["recommend", "--layers", str(10**30), "--hidden", "4096", "--heads", "32", "--vocab", "32000"],
                   "layers", "expected 1 to")  # fmt: skip
    one_line_error(["recommend", "--params", "7B", "--batch", str(10**30)], "--batch", "too large")


# --- bench results (--bench-results, saved results) ----------------------------------------------------------

BENCH = {"schema": "envcheck.bench/1", "preset": "resnet18", "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3",
         "images_per_s": 12000.0, "date": "2026-11-28T00:00:00Z"}  # fmt: skip


@pytest.mark.parametrize(
    ("rate", "problem"),
    [(1e-320, "too small"), (0, "positive"), (HUGE, "too large"), (float("nan"), "finite"), (1e300, "too large")],
)
def test_bench_results_with_hostile_rates_are_one_line(rate: float, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH | {"images_per_s": rate}))
    with pytest.raises(KnowledgeError, match=rf"images_per_s: .*{problem}"):
        load_bench_results(path)
    one_line_error(["recommend", "--params", "7B", "--bench-results", str(path)], f"{path}: images_per_s")


def test_a_saved_result_with_a_denormal_rate_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    from envcheck.bench.store import bench_results_dir

    directory = bench_results_dir()
    directory.mkdir(parents=True)
    (directory / "20261128T000000Z-h100.json").write_text(json.dumps(BENCH | {"images_per_s": 1e-320}))
    result = runner.invoke(app, ["recommend", "--params", "7B", "--json"])
    assert result.exit_code == 0, result.output
    assert "skipped saved bench result" in result.stderr and "too small" in result.stderr


# --- calibration (--calibration) -----------------------------------------------------------------------------


def calibration_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("images_per_s = 0", "field 'images_per_s': expected a positive number, got 0"),
        ("images_per_s = -5.0", "field 'images_per_s': expected a positive number"),
        ("images_per_s = 1e-320", "field 'images_per_s': 1e-320 is too small"),
        ("images_per_s = nan", "field 'images_per_s': expected a finite number, got nan"),
        ("images_per_s = inf", "field 'images_per_s': expected a finite number, got inf"),
        (f"images_per_s = {HUGE}", "field 'images_per_s': an integer of about 401 digits is too large"),
        ('images_per_s = "fast"', "field 'images_per_s': expected a number, got \"fast\""),
        ("spread_cv = nan", "field 'spread_cv': expected a finite number"),
        ("spread_cv = -1.0", "field 'spread_cv': must not be negative"),
        ("date = 2026-11-28T10:00:00", "field 'date': expected a date"),
        ('date = "yesterday"', "field 'date': expected a date"),
        ("device = 5", "field 'device': expected a string, got 5"),
        ('device = """multi\nline"""', None),  # a text with a newline is a fine device name
    ],
)
def test_calibration_with_hostile_values_is_one_line(change: str, problem: str | None, tmp_path: Path) -> None:
    key = change.split(" = ", maxsplit=1)[0]
    lines = [line for line in reference_toml(H200_FOR_TESTS).splitlines() if not line.startswith(f"{key} =")]
    path = calibration_file(tmp_path, "\n".join([*lines, change, ""]))
    if problem is None:
        assert load_references(path)[0].device == "multi\nline"
        return
    with pytest.raises(
        InputError, match="^" + f"{path}: reference 1: {problem}".replace("(", r"\(").replace("$", r"\$")
    ):
        load_references(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("reference = 5", "reference: expected [[reference]] tables, got 5"),
        ("reference = [5]", "reference 1: expected a table, got 5"),
    ],
)
def test_calibration_that_is_not_tables_is_one_line(text: str, problem: str, tmp_path: Path) -> None:
    path = calibration_file(tmp_path, text)
    with pytest.raises(InputError) as raised:
        load_references(path)
    assert str(raised.value) == f"{path}: {problem}"


def test_a_valid_reference_gives_a_finite_score(tmp_path: Path) -> None:
    references = load_references(calibration_file(tmp_path, reference_toml(H200_FOR_TESTS)))
    result = calibrate("resnet18", H200_FOR_TESTS.device, True, 1000.0, references, KNOWLEDGE, False, ())
    assert result.score is not None and math.isfinite(result.score) and result.score > 0


def test_a_missing_calibration_file_is_refused_before_the_bench_runs(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(InputError, match="no such file"):
        load_references(missing)
    # exit 2 at once: the check comes before the run (which would take seconds to minutes and import torch)
    one_line_error(["bench", "--calibration", str(missing)], f"{missing}: no such file")
    one_line_error(["bench", "--calibration", str(tmp_path)], f"{tmp_path}: is a directory, expected a regular file")
    broken = calibration_file(tmp_path, "[[reference]]\nimages_per_s = 0\n")
    one_line_error(["bench", "--calibration", str(broken)], "reference 1 lacks")


# --- doctor and info flags -----------------------------------------------------------------------------------


def test_skip_of_an_unknown_check_id_is_an_error_with_close_matches() -> None:
    one_line_error(["doctor", "--skip", "system.shm_sise"], '--skip "system.shm_sise"', "did you mean system.shm_size")
    one_line_error(["doctor", "--skip", "bogus.id"], '--skip "bogus.id": no check has this id')


def test_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    for command in ("doctor", "info"):
        one_line_error([command, "--path", str(tmp_path / "nope")], "--path", "no such file or directory")


def test_record_nvml_into_a_directory_is_an_error(tmp_path: Path) -> None:
    one_line_error(["info", "--record-nvml", str(tmp_path)], f"--record-nvml {tmp_path}: is a directory")


def test_flag_and_field_values_with_newlines_are_shown_escaped_on_one_line(tmp_path: Path) -> None:
    one_line_error(["recommend", "--params", "7\nB\x1b[2J"], r'--params: "7\nB\x1b[2J" is not a count')
    one_line_error(["recommend", "--params", "7B", "--task", "x" * 500], '--task: "xxx', '..." is not one of')
    path = tmp_path / "mine.toml"
    path.write_text(WORKLOAD.format(parameters="7", memory="16").replace('["bf16"]', '["bf16", "x\\ny"]'))
    one_line_error(["recommend", "--workload", str(path)], r'unknown dtype "x\ny"')
    path.write_text(WORKLOAD.format(parameters="7", memory="16") + '"odd\\nkey" = 1\n')
    one_line_error(["recommend", "--workload", str(path)], r'"odd\nkey": unknown field')
