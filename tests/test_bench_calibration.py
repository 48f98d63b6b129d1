"""Calibration (reference lookup, prediction from spec sheets, verdicts), telemetry from recorded NVML, findings."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest

from envcheck.bench.calibration import (
    Reference,
    calibrate,
    likely_reasons,
    load_references,
    reference_toml,
    slow_siblings,
    verdict_of,
)
from envcheck.bench.findings import bench_findings
from envcheck.bench.result import BenchResult, Calibration, Correctness, Timing, result_to_json
from envcheck.bench.telemetry import TelemetrySampler, summarise_samples, take_sample
from envcheck.finding import Severity
from envcheck.knowledge import load_knowledge
from envcheck.loaders import InputError
from envcheck.probes.nvml.replay import load_recording

NVML = Path(__file__).parent / "fixtures" / "nvml"
# a made-up reference for the prediction tests only; the shipped profiles/calibration.toml holds measurements
H200_FOR_TESTS = Reference(
    "resnet18", "NVIDIA H200", 20000.0, 0.01, "2.14.1", "0.1.0", datetime.date(2026, 11, 28), "test"
)


def test_shipped_references_load_and_are_measurements() -> None:
    references = load_references()
    assert references, "profiles/calibration.toml holds at least the development machine's CPU"
    for reference in references:
        assert reference.images_per_s > 0 and 0 <= reference.spread_cv < 1
        assert "envcheck bench" in reference.method  # says how it was measured


def test_reference_round_trips_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(
        reference_toml(H200_FOR_TESTS) + reference_toml(dataclasses.replace(H200_FOR_TESTS, device='a "quoted" name'))
    )
    assert load_references(path) == (
        dataclasses.replace(H200_FOR_TESTS, images_per_s=20000.0),
        dataclasses.replace(H200_FOR_TESTS, device='a "quoted" name'),
    )


def test_bad_calibration_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text('[[reference]]\npreset = "x"\n')
    with pytest.raises(InputError, match="reference 1 lacks device, images_per_s"):
        load_references(path)
    path.write_text("[[reference]\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_references(path)


def test_verdict_thresholds() -> None:
    assert [verdict_of(s) for s in (1.2, 0.9, 0.89, 0.7, 0.69)] == [
        "as expected", "as expected", "slower than expected", "slower than expected", "much slower",
    ]  # fmt: skip


def test_measured_reference_gives_a_score() -> None:
    cpu = Reference(
        "tutorial-cnn", "AMD EPYC, 2 threads", 10000.0, 0.02, "2.14.1", "0.1.0", datetime.date(2026, 11, 28), "m"
    )
    result = calibrate("tutorial-cnn", "AMD EPYC, 2 threads", False, 6000.0, (cpu,), load_knowledge(), False, ("r",))
    assert (result.kind, result.score, result.verdict, result.reasons) == ("measured", 0.6, "much slower", ("r",))
    assert calibrate("tutorial-cnn", "Other CPU", False, 6000.0, (cpu,), load_knowledge(), False, ()).kind == "none"


def test_references_key_on_preset_loader_and_device(tmp_path: Path) -> None:
    day = datetime.date(2026, 11, 28)
    device_row = Reference("tutorial-cnn", "AMD EPYC, 2 threads", 10000.0, 0.02, "2.14.1", "0.1.0", day, "m")
    knowledge = load_knowledge()
    # a DataLoader run is not scored against the device-loader row: "not scored", with the reason
    loader_run = calibrate(
        "tutorial-cnn", "AMD EPYC, 2 threads", False, 3000.0, (device_row,), knowledge, False, (), "dataloader"
    )
    assert (loader_run.kind, loader_run.score, loader_run.verdict) == ("none", None, "not scored")
    assert loader_run.basis == (
        "no reference for tutorial-cnn with the dataloader loader on AMD EPYC, 2 threads"
        " (this device has one for the device loader only); record one with `envcheck bench --preset tutorial-cnn"
        " --loader dataloader --save-reference FILE` on an idle machine, then copy its row into"
        " profiles/calibration.toml or pass --calibration FILE"
    )
    # with a row of its own loader it is scored against that row, not the other
    loader_row = dataclasses.replace(device_row, images_per_s=4000.0, loader="dataloader")
    scored = calibrate(
        "tutorial-cnn", "AMD EPYC, 2 threads", False, 3000.0, (device_row, loader_row), knowledge, False, (),
        "dataloader",
    )  # fmt: skip
    assert (scored.score, scored.reference_images_per_s) == (0.75, 4000.0)
    assert "dataloader loader" in scored.basis
    # GPU predictions use only references of the same loader
    gpu_loader = calibrate("resnet18", "NVIDIA H100 80GB HBM3", True, 1.0, (H200_FOR_TESTS,), knowledge, True, (),
                           "dataloader")  # fmt: skip
    assert gpu_loader.verdict == "not scored" and "with the dataloader loader" in gpu_loader.basis
    # a row written before the loader field: its method says which loader it ran with
    path = tmp_path / "old.toml"
    text = reference_toml(dataclasses.replace(device_row, method="envcheck bench --quick --loader dataloader: x"))
    path.write_text(text.replace('loader = "device"\n', ""))
    assert load_references(path)[0].loader == "dataloader"
    path.write_text(reference_toml(device_row).replace('loader = "device"', 'loader = "fast"'))
    with pytest.raises(InputError, match="field 'loader': expected device or dataloader"):
        load_references(path)


def test_uncalibrated_gpu_is_predicted_from_spec_sheets() -> None:
    knowledge = load_knowledge()
    h100 = calibrate("resnet18", "NVIDIA H100 80GB HBM3", True, 15000.0, (H200_FOR_TESTS,), knowledge, True, ())
    assert h100.kind == "predicted" and h100.reference_device == "NVIDIA H200"
    # same compute (989 bf16 TFLOP/s), 3.35 vs 4.8 TB/s: sqrt(1 * 3.35 / 4.8) = 0.835
    assert h100.reference_images_per_s == pytest.approx(20000 * 0.835, rel=0.01)
    assert "predicted from NVIDIA H200" in h100.basis
    unknown = calibrate("resnet18", "NVIDIA Imaginary 9000", True, 1.0, (H200_FOR_TESTS,), knowledge, True, ())
    assert unknown.kind == "none" and "not in the GPU specifications" in unknown.basis


def test_likely_reasons() -> None:
    reasons = likely_reasons(None, "dataloader", load_average=3.0, cpu_count=2, threads=1)
    assert any("CPU-bound" in r for r in reasons) and any("load average 3.00 on 2 CPUs" in r for r in reasons)
    assert any("1 threads of 2" in r for r in reasons)
    assert likely_reasons(None, "device", 0.1, 2, 2) == ()


def test_telemetry_from_a_throttling_l40s_recording() -> None:
    backend = load_recording(NVML / "l40s-x2-driver550.90.07-pcie-gen3x8-throttling.json").backend()
    sample = take_sample(backend, 0)
    telemetry = summarise_samples([sample] * 4, backend.max_clock(0, "sm"), 0.2)
    assert telemetry.samples == 4 and telemetry.sm_clock_median_mhz == sample.sm_clock_mhz
    assert telemetry.thermal_slowdown_fraction is not None and telemetry.power_cap_fraction is not None
    reasons = likely_reasons(telemetry, "device", None, 2, 2)
    assert (telemetry.thermal_slowdown_fraction > 0) == any("thermal" in r for r in reasons)


def test_sampler_thread_samples_until_stopped_and_survives_unsupported_fields() -> None:
    recording = load_recording(NVML / "t4-driver515.105.01.json").with_error("power_usage[0]", "NOT_SUPPORTED")
    with TelemetrySampler(recording.backend(), 0, interval_s=0.01) as sampler:
        while len(sampler.samples) < 3:
            pass
    telemetry = sampler.result()
    assert telemetry.samples >= 3 and telemetry.power_median_w is None and telemetry.sm_clock_median_mhz is not None


def _result(
    images_per_s: float, device: str = "cuda:0", passed: bool = True, verdict: str = "as expected"
) -> BenchResult:
    score = None if verdict == "not scored" else 1.0
    return BenchResult(
        "tutorial-cnn", device, "NVIDIA H200", "synthetic", "synthetic", None, "device", 0, "quick",
        Timing(images_per_s, (images_per_s,), 0.01, 1.0, 1.2, 5, 10, 64),
        Correctness(5, "tf32", (2.3,), (2.3,), 0.5 if not passed else 1e-6, 1e-2, passed),
        Calibration("measured", 1000.0, 0.01, "NVIDIA H200", "m", score, verdict, ("thermal slowdown",)),
        None, None, 0.1, 16, (("torch", "2.14.1"),), (("threads", "16"),), "2026-11-28T00:00:00+00:00",
    )  # fmt: skip


def test_slow_sibling_is_flagged() -> None:
    results = tuple(_result(r, f"cuda:{n}") for n, r in enumerate((1000, 1010, 990, 850)))
    flags = slow_siblings(results)
    assert [f.device for f in flags] == ["cuda:3"] and flags[0].slower_fraction == pytest.approx(0.15)


def test_findings_from_a_verdict() -> None:
    ok = bench_findings(_result(1000))
    assert [(f.id, f.severity) for f in ok] == [("bench.correctness", Severity.OK), ("bench.speed", Severity.OK)]
    bad = bench_findings(_result(1000, passed=False, verdict="much slower"), slow_siblings(()))
    assert [f.severity for f in bad] == [Severity.FAIL, Severity.FAIL] and bad[0].fix
    assert "likely: thermal slowdown" in bad[1].detail
    assert bench_findings(_result(1000, verdict="not scored"))[1].severity is Severity.INFO


def test_json_has_the_issue_keys() -> None:
    document = result_to_json(_result(1234.5))
    for key in ("preset", "device", "data", "images_per_s", "cv", "correctness", "calibration", "versions", "flags"):
        assert key in document
    assert document["schema"] == "envcheck.bench/1"
    assert {"max_rel_deviation", "passed"} <= set(document["correctness"])
    assert {"reference_images_per_s", "score", "verdict", "kind"} <= set(document["calibration"])


def test_the_shipped_references_score_only_the_machine_they_were_measured_on() -> None:
    """profiles/calibration.toml holds one measured row (docs/bench.md#references): tutorial-cnn, device loader, the
    2-vCPU development VM. Any other machine, every GPU included, is "not scored" and told how to add a row."""
    shipped = load_references()
    assert [(r.preset, r.loader, r.device) for r in shipped] == [("tutorial-cnn", "device", "AMD EPYC, 2 threads")]
    knowledge = load_knowledge()
    for preset, device, is_gpu in [
        ("tutorial-cnn", "NVIDIA H100 80GB HBM3", True),  # a GPU: no GPU row to predict from
        ("resnet18", "NVIDIA H200", True),
        ("tutorial-cnn", "Intel Xeon Platinum 8480+, 8 threads", False),
        ("resnet18", "AMD EPYC, 2 threads", False),  # the VM itself, another preset
    ]:
        result = calibrate(preset, device, is_gpu, 1000.0, shipped, knowledge, is_gpu, ())
        assert (result.verdict, result.score) == ("not scored", None), (preset, device)
        assert f"envcheck bench --preset {preset} --loader device --save-reference FILE" in (result.basis or "")
    same = calibrate("tutorial-cnn", "AMD EPYC, 2 threads", False, 17642.7, shipped, knowledge, False, ())
    assert (same.kind, same.verdict) == ("measured", "as expected")
