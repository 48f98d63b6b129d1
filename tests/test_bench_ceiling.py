"""The device ceiling (matmul TFLOP/s, copy GB/s) measured with real torch on the CPU, its comparison with a
spec sheet, what happens when the device runs out of memory, and how bench shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch  # noqa: TID253  # the ceiling is measured with real torch
from typer.testing import CliRunner

from envcheck.bench import ceiling
from envcheck.bench.ceiling import Ceiling, CeilingMeasure, measure_ceiling
from envcheck.cli import app
from envcheck.knowledge import load_knowledge
from envcheck.render.bench import _ceiling_line

KNOWLEDGE = load_knowledge()
TINY = ["bench", "--device", "cpu", "--steps", "4", "--warmup", "1", "--windows", "2", "--synthetic", "--json"]


def test_cpu_ceiling_is_measured_and_has_no_spec_to_compare() -> None:
    result = measure_ceiling(torch.device("cpu"), "Some CPU, 2 threads", KNOWLEDGE)
    assert result.unavailable is None and result.spec_source is None
    assert [(m.kind, m.dtype, m.unit) for m in result.measures] == [
        ("matmul", "fp32", "TFLOP/s"),
        ("copy", "fp32", "GB/s"),
    ]
    # 2 cores reach well above 1 GFLOP/s and 0.1 GB/s, and nothing reaches 1 PFLOP/s or 100 TB/s
    matmul, copy = result.measures
    assert 1e-3 < matmul.achieved < 1000 and 0.1 < copy.achieved < 100_000
    assert matmul.spec is None and matmul.fraction is None


def test_fraction_is_achieved_over_spec_and_tf32_leaves_precision_as_it_was() -> None:
    torch.set_float32_matmul_precision("medium")
    try:
        measure = ceiling._measure_matmul(torch, torch.device("cpu"), "cpu", "tf32", 2.0)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision("highest")
    assert measure.fraction == pytest.approx(measure.achieved / 2.0)


def test_out_of_memory_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*_: object) -> CeilingMeasure:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ceiling, "_measure_copy", out_of_memory)
    result = measure_ceiling(torch.device("cpu"), "cpu", KNOWLEDGE)
    assert result.measures == ()
    assert result.unavailable == "not measured: CUDA out of memory. Tried to allocate 2.00 GiB"


def test_line_shows_share_of_spec() -> None:
    line = _ceiling_line(
        Ceiling(
            "NVIDIA H200",
            (
                CeilingMeasure("matmul", "bf16", 812.4, "TFLOP/s", 989.0, 812.4 / 989.0),
                CeilingMeasure("copy", "fp32", 4123.0, "GB/s", 4800.0, 4123.0 / 4800.0),
            ),
            "profiles/gpus.toml: H200 (SXM)",
        )
    )
    assert line == "matmul bf16 812 TFLOP/s (82% of 989) · copy 4,123 GB/s (86% of 4,800)"


def test_bench_json_carries_the_ceiling_and_no_ceiling_skips_it(tmp_path: Path) -> None:
    runner = CliRunner()
    measured = runner.invoke(app, [*TINY, "--no-save"])
    assert measured.exit_code == 0, measured.output
    data = json.loads(measured.stdout)["ceiling"]
    assert [m["kind"] for m in data["measures"]] == ["matmul", "copy"]
    skipped = runner.invoke(app, [*TINY, "--no-save", "--no-ceiling"])
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.stdout)["ceiling"] is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_healthy_gpu_reaches_a_plausible_share_of_its_spec() -> None:
    device = torch.device("cuda:0")
    result = measure_ceiling(device, torch.cuda.get_device_name(device), KNOWLEDGE)
    assert result.unavailable is None
    for measure in result.measures:
        if measure.fraction is not None:  # a real GPU neither beats its spec sheet nor crawls
            assert 0.2 < measure.fraction < 1.15, measure
