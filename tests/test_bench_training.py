"""The pipelines, the networks, the timing and the correctness check, on the CPU with tiny step counts."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: TID253  # the bench tests exercise torch directly

from envcheck.bench.correctness import TOLERANCES, check_correctness, max_relative_deviation
from envcheck.bench.data import load_cifar10, synthetic_cifar10
from envcheck.bench.loop import build_trainer, measure, percentile, summarise
from envcheck.bench.models import build_model
from envcheck.bench.pipeline import PADDING_PX, DeviceBatches, LoaderBatches
from envcheck.bench.presets import PRESETS
from tests.bench_helpers import small_cifar10, write_small_cifar10

TUTORIAL = PRESETS["tutorial-cnn"]


def test_device_batches_normalise_like_to_tensor_and_normalize() -> None:
    data = synthetic_cifar10(128, 8)
    batches = DeviceBatches(data.train_images, data.train_labels, 64, 0.5, 0.5, False, "cpu", seed=0)
    images, labels = next(batches.epoch())
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32 and labels.dtype == torch.int64
    raw = batches.images[: 0 + 1].float()
    expected = (raw / 255 - 0.5) / 0.5
    assert torch.allclose(batches.prepare(batches.images[:1]), expected, atol=1e-6)


def _maybe_flip(crop: torch.Tensor, flip: bool) -> torch.Tensor:
    return crop.flip(2) if flip else crop


def test_device_crop_and_flip_match_padded_crops() -> None:
    data = synthetic_cifar10(64, 8)
    batches = DeviceBatches(data.train_images, data.train_labels, 16, 0.5, 0.5, True, "cpu", seed=1)
    source = batches.images[:16]
    augmented = batches.crop_and_flip(source)
    padded = torch.nn.functional.pad(source, (PADDING_PX,) * 4)
    flipped_count = 0
    for n in range(16):
        matches = [
            (dy, dx, flip)
            for dy, dx, flip in itertools.product(range(2 * PADDING_PX + 1), range(2 * PADDING_PX + 1), (False, True))
            if torch.equal(augmented[n], _maybe_flip(padded[n, :, dy : dy + 32, dx : dx + 32], flip))
        ]
        assert matches, f"image {n} is not a padded crop (or its mirror) of the source"
        flipped_count += all(flip for _, _, flip in matches)
    assert 0 < flipped_count < 16  # p = 0.5 per image: some flipped, some not


def test_classic_loader_gives_the_same_pixels(tmp_path: Path) -> None:
    data = load_cifar10(write_small_cifar10(tmp_path), is_official_required=False)
    classic = LoaderBatches(
        data.train_images[:64], data.train_labels[:64], 64, 0.5, 0.5, False, "cpu", seed=0, workers=0
    )
    device = DeviceBatches(data.train_images[:64], data.train_labels[:64], 64, 0.5, 0.5, False, "cpu", seed=0)
    (classic_images, classic_labels), (device_images, device_labels) = next(classic.epoch()), next(device.epoch())
    # different shuffles: compare per-label sums, which do not depend on order
    for label in range(10):
        assert torch.allclose(
            classic_images[classic_labels == label].sum(0), device_images[device_labels == label].sum(0), atol=1e-3
        )


def test_networks_have_the_published_shapes() -> None:
    tutorial, resnet = build_model("tutorial-cnn"), build_model("resnet18-cifar")
    assert sum(p.numel() for p in tutorial.parameters()) == 62006  # the tutorial's Net
    assert 11_000_000 < sum(p.numel() for p in resnet.parameters()) < 11_300_000  # CIFAR ResNet-18: 11.17M
    assert resnet(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_tutorial_net_learns_the_synthetic_set() -> None:
    torch.manual_seed(0)
    data = synthetic_cifar10(2048, 256)
    # the tutorial's lr 0.001 needs thousands of steps; 10x that shows learnability within a test's budget
    faster = dataclasses.replace(TUTORIAL, learning_rate=0.02)
    trainer = build_trainer(faster, build_model("tutorial-cnn"), torch.device("cpu"), 0)
    stream = DeviceBatches(data.train_images, data.train_labels, 64, 0.5, 0.5, False, "cpu", seed=0).forever()
    first = float(trainer.step(*next(stream)))
    for _ in range(100):
        trainer.step(*next(stream))
    test = DeviceBatches(data.test_images, data.test_labels, 64, 0.5, 0.5, False, "cpu", seed=0)
    assert first > 2.0 and trainer.accuracy(test.epoch()) > 0.5  # chance is 0.1


def test_measure_reports_windows_and_percentiles() -> None:
    data = synthetic_cifar10(256, 8)
    trainer = build_trainer(TUTORIAL, build_model("tutorial-cnn"), torch.device("cpu"), 0)
    stream = DeviceBatches(data.train_images, data.train_labels, 64, 0.5, 0.5, False, "cpu", seed=0).forever()
    seen: list[tuple[str, int, int]] = []
    timing = measure(trainer, stream, 2, 3, 2, 64, lambda *event: seen.append(event))
    assert len(timing.window_images_per_s) == 3 and timing.timed_steps == 6 and timing.images_per_s > 0
    assert timing.step_p50_ms <= timing.step_p95_ms
    assert seen[-1] == ("timed", 6, 6) and ("warm-up", 2, 2) in seen


def test_summary_statistics() -> None:
    timing = summarise([1.0, 2.0, 1.0], [0.1] * 9 + [1.0], steps_per_window=10, batch=10, warmup=0)
    assert timing.images_per_s == 100.0 and timing.window_images_per_s == (100.0, 50.0, 100.0)
    assert timing.cv == pytest.approx(np.std([100, 50, 100]) / np.mean([100, 50, 100]))
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0


def _batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = synthetic_cifar10(64 * count, 8)
    return list(
        itertools.islice(
            DeviceBatches(data.train_images, data.train_labels, 64, 0.5, 0.5, False, "cpu", 0).epoch(), count
        )
    )


def test_correctness_passes_on_a_healthy_cpu() -> None:
    torch.manual_seed(0)
    result = check_correctness(TUTORIAL, build_model("tutorial-cnn"), _batches(3), torch.device("cpu"))
    assert result.passed and result.precision == "float32" and result.steps == 3
    assert result.max_rel_deviation < TOLERANCES["float32"] / 10


def test_correctness_fails_when_a_kernel_is_slightly_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    """A float32 linear layer that is 1% off (a faulty kernel) must fail; float64 (the reference) stays right."""
    original = torch.nn.functional.linear

    def faulty(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        out = original(x, weight, bias)
        return out * 1.01 if out.dtype == torch.float32 else out

    monkeypatch.setattr(torch.nn.functional, "linear", faulty)
    torch.manual_seed(0)
    result = check_correctness(TUTORIAL, build_model("tutorial-cnn"), _batches(3), torch.device("cpu"))
    assert not result.passed and result.max_rel_deviation > TOLERANCES["float32"]


def test_deviation_of_non_finite_losses_is_infinite() -> None:
    assert max_relative_deviation((1.0, float("nan")), (1.0, 1.0)) == float("inf")
    assert max_relative_deviation((1.1, 2.0), (1.0, 2.0)) == pytest.approx(0.1)


def test_closing_the_classic_loader_stops_its_workers() -> None:
    """The bench closes its loaders in a finally: persistent workers must not outlive an interrupted run."""
    from tests.test_bounded import wait_gone

    data = synthetic_cifar10(64, 8)
    classic = LoaderBatches(data.train_images, data.train_labels, 16, 0.5, 0.5, False, "cpu", seed=0, workers=2)
    next(classic.forever())
    workers = [worker.pid for worker in classic.loader._iterator._workers]
    assert len(workers) == 2
    classic.close()
    assert all(wait_gone(pid) for pid in workers)
    classic.close()  # twice is harmless: the finally may run after an error in close's caller


def test_full_run_below_target_fails_and_forecasts_through_the_callback() -> None:
    from envcheck.bench.loop import ESTIMATE
    from envcheck.bench.runner import RunOptions, run_bench
    from envcheck.knowledge import load_knowledge

    seen: list[tuple[str, int, int]] = []
    options = RunOptions(TUTORIAL, "cpu", is_full=True, steps=4, windows=2, warmup_steps=3, is_measuring_ceiling=False)
    result = run_bench(options, small_cifar10(320, 64, is_learnable=False), load_knowledge(), lambda *e: seen.append(e))
    recipe = result.recipe
    assert recipe is not None and len(recipe.epoch_accuracies) == TUTORIAL.epochs
    # shuffled labels: the target is out of reach, so the run is not passed although its numbers are right
    assert not recipe.is_target_reached and result.correctness.passed and not result.is_passed
    assert recipe.total_s >= recipe.training_s > 0
    # forecasts before the long part: from the correctness steps, for the whole run (3 warm-up + 4 timed +
    # 10 epochs of 5 training steps and 1 test batch at a third of a step = 60.3), then after the third (last)
    # warm-up step for what is left (57.3)
    estimates = [event for event in seen if event[0].startswith(ESTIMATE)]
    assert [(phase, steps) for phase, _, steps in estimates] == [
        (f"{ESTIMATE} from the 5 correctness steps", 60),
        (f"{ESTIMATE} from the first 3 steps", 57),
    ]
    assert all(seconds >= 0 for _, seconds, _ in estimates)
    assert seen.index(estimates[0]) == seen.index(("correctness", 5, 5)) + 1
    assert seen.index(estimates[1]) == seen.index(("warm-up", 3, 3)) + 1
    assert result.correctness.device_s > 0
    # the recipe is one bar, so its time remaining is the run's
    recipe_events = [event for event in seen if event[0] == "10 epochs"]
    assert recipe_events[-1] == ("10 epochs", 50, 50)


def test_forecast_from_a_reference_and_its_text() -> None:
    import datetime

    from envcheck.bench.calibration import Reference
    from envcheck.bench.runner import RunPlan, calibrated_estimate
    from envcheck.render.bench import estimate_line

    resnet = PRESETS["resnet18"]
    cpu = Reference("resnet18", "Some CPU, 2 threads", 100.0, 0.02, "2.15.0", "0.1.0", datetime.date(2026, 12, 6), "m")
    plan = RunPlan(warmup=8, timed=40, recipe=0.0)
    assert calibrated_estimate(plan, resnet, "device", "some cpu, 2 threads", (cpu,)) == (round(48 * 512 / 100), 48)
    assert calibrated_estimate(plan, resnet, "dataloader", "Some CPU, 2 threads", (cpu,)) is None
    assert estimate_line("estimate from the first 3 steps", 59, 100) is None  # a short run needs no warning
    assert estimate_line("estimate from the first 3 steps", 380, 1180) == (
        "this run should take about 6 min 20 s more (1,180 steps, estimate from the first 3 steps)"
    )


def test_progress_bars_print_a_long_forecast_and_show_the_time_remaining() -> None:
    import io

    from rich.console import Console

    from envcheck.render.bench import progress_bars

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with progress_bars(console) as on_progress:
        on_progress("estimate from the first 3 steps", 20, 10)  # short: nothing printed
        on_progress("estimate from the first 3 steps", 3725, 1000)
        on_progress("30 epochs", 10, 1000)
    text = out.getvalue()
    assert "this run should take about 1 h 02 min more (1,000 steps, estimate from the first 3 steps)" in text
    assert text.count("this run should take") == 1 and "ETA" in text
