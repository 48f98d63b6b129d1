"""One benchmark run from options to result: data, pipeline, correctness, timed windows, recipe, calibration."""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.bench.calibration import calibrate, likely_reasons, load_references
from envcheck.bench.ceiling import measure_ceiling
from envcheck.bench.correctness import CORRECTNESS_STEPS, check_correctness
from envcheck.bench.data import Dataset
from envcheck.bench.loop import ESTIMATE, Progress, Trainer, build_trainer, measure, synchronize
from envcheck.bench.presets import Preset
from envcheck.bench.result import BenchResult, RecipeRun, Telemetry
from envcheck.bench.telemetry import TelemetrySampler, open_nvml_for, unavailable


@dataclass(frozen=True, slots=True)
class RunOptions:
    preset: Preset
    device: str  # "cpu", "cuda:N", "mps"
    is_full: bool = False
    loader: str = "device"
    workers: int = 2
    seed: int = 0
    steps: int | None = None  # timed steps (None: the preset's quick_steps)
    windows: int | None = None
    warmup_steps: int | None = None
    calibration_file: Path | None = None
    is_measuring_ceiling: bool = True  # matmul and copy rates against the spec sheet (bench/ceiling.py)


def cpu_name() -> str:
    from envcheck.probes.cpu import parse_cpuinfo

    try:
        model = parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8")).model
    except OSError:
        model = None
    import platform

    return model if isinstance(model, str) else (platform.processor() or platform.machine())


def device_name(device: Any) -> str:
    """CPUs by model and torch's thread count (throughput scales with both); GPUs by their CUDA name."""
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    if device.type == "mps":
        return f"Apple MPS ({cpu_name()})"
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def versions_and_flags(
    device: Any, is_bf16: bool, channels_last: bool
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    import platform

    import torch

    from envcheck import __version__

    versions = {
        "envcheck": __version__,
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version())  # type: ignore[no-untyped-call]
        if torch.backends.cudnn.is_available()  # type: ignore[no-untyped-call]
        else "None",
        "python": platform.python_version(),
    }
    flags = {
        "threads": str(torch.get_num_threads()),
        "interop_threads": str(torch.get_num_interop_threads()),
        "deterministic": str(torch.are_deterministic_algorithms_enabled()),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": str(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": str(torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": str(torch.backends.cudnn.benchmark),
        "bf16_autocast": str(is_bf16),
        "channels_last": str(channels_last),
        "device_type": device.type,
    }
    return tuple(versions.items()), tuple(flags.items())


def make_batches(options: RunOptions, images: Any, labels: Any, device: Any, augment: bool) -> Any:
    from envcheck.bench.pipeline import DeviceBatches, LoaderBatches

    preset = options.preset
    common = (images, labels, preset.batch_size, preset.normalise_mean, preset.normalise_std, augment, str(device))
    if options.loader == "dataloader":
        return LoaderBatches(*common, seed=options.seed, workers=options.workers)
    return DeviceBatches(*common, seed=options.seed)


# Evaluating a test batch (forward only, no gradients) costs about a third of a training step.
EVAL_STEP_COST = 1 / 3
ESTIMATE_AFTER_STEPS = 3  # warm-up steps measured before the forecast; the first one carries one-time costs


@dataclass(frozen=True, slots=True)
class RunPlan:
    """How many training steps a run has left after each phase, for forecasts."""

    warmup: int
    timed: int
    recipe: float  # the --full recipe's training steps plus its test batches at EVAL_STEP_COST; 0 for --quick

    @property
    def total(self) -> float:
        return self.warmup + self.timed + self.recipe


def run_plan(options: RunOptions, dataset: Dataset) -> RunPlan:
    preset = options.preset
    windows = options.windows or preset.quick_windows
    steps = options.steps or preset.quick_steps
    warmup = preset.warmup_steps if options.warmup_steps is None else options.warmup_steps
    recipe = 0.0
    if options.is_full:
        train_steps = len(dataset.train_labels) // preset.batch_size
        test_steps = -(-len(dataset.test_labels) // preset.batch_size)
        recipe = preset.epochs * (train_steps + EVAL_STEP_COST * test_steps)
    return RunPlan(warmup, max(1, steps // windows) * windows, recipe)


def calibrated_estimate(
    plan: RunPlan, preset: Preset, loader: str, name: str, references: Any
) -> tuple[int, int] | None:
    """(seconds, steps) for the whole run from a measured reference of this preset, loader and device, if any."""
    same = [
        r for r in references if r.preset == preset.name and r.loader == loader and r.device.lower() == name.lower()
    ]
    if not same:
        return None
    reference = max(same, key=lambda r: r.date)
    return round(plan.total * preset.batch_size / reference.images_per_s), round(plan.total)


def forecasting(on_progress: Progress, plan: RunPlan) -> Progress:
    """``on_progress`` that also forecasts the rest of the run, once, from the first measured warm-up steps."""
    seen: list[float] = []
    after = min(ESTIMATE_AFTER_STEPS, plan.warmup)

    def forward(phase: str, done: int, total: int) -> None:
        on_progress(phase, done, total)
        if phase != "warm-up" or len(seen) >= after:
            return
        seen.append(time.perf_counter())
        if len(seen) == after >= 2:
            per_step = (seen[-1] - seen[0]) / (len(seen) - 1)  # from the second step: the first has one-time costs
            left = plan.total - len(seen)
            on_progress(f"{ESTIMATE} from the first {len(seen)} steps", round(per_step * left), round(left))

    return forward


def _telemetry_sampler(device: Any) -> TelemetrySampler | Telemetry | None:
    import torch

    if device.type != "cuda":
        return None
    opened = open_nvml_for(str(torch.cuda.get_device_properties(device).uuid))
    if isinstance(opened, str):
        return unavailable(opened)
    backend, index = opened
    return TelemetrySampler(backend, index)


def run_recipe(options: RunOptions, dataset: Dataset, model: Any, device: Any, on_progress: Progress) -> RecipeRun:
    """The whole recipe from the initial weights: epochs, test accuracy after each, time to the target accuracy."""
    preset = options.preset
    train = make_batches(options, dataset.train_images, dataset.train_labels, device, preset.augment)
    test = make_batches(options, dataset.test_images, dataset.test_labels, device, augment=False)
    try:
        return _train_recipe(options, train, test, model, device, on_progress)
    finally:  # DataLoader workers must not outlive an interrupted run
        train.close()
        test.close()


def _train_recipe(
    options: RunOptions, train: Any, test: Any, model: Any, device: Any, on_progress: Progress
) -> RecipeRun:
    preset = options.preset
    total = preset.epochs * train.steps_per_epoch
    trainer = build_trainer(preset, model, device, total)
    accuracies: list[float] = []
    training_s, to_target = 0.0, None
    began = time.perf_counter()
    phase = f"{preset.epochs} epochs"  # one bar for the whole recipe: its time remaining is the run's
    for epoch in range(preset.epochs):
        synchronize(device)
        start = time.perf_counter()
        for done, (images, labels) in enumerate(train.epoch(), 1):
            trainer.step(images, labels)
            on_progress(phase, epoch * train.steps_per_epoch + done, total)
        synchronize(device)
        training_s += time.perf_counter() - start
        accuracies.append(trainer.accuracy(test.epoch()))
        if to_target is None and accuracies[-1] >= preset.target_accuracy:
            to_target = training_s
    total_s = time.perf_counter() - began
    return RecipeRun(preset.epochs, tuple(accuracies), preset.target_accuracy, to_target, training_s, total_s)


def _measure_throughput(
    options: RunOptions, batches: Any, model: Any, device: Any, on_progress: Progress, plan: RunPlan | None = None
) -> tuple[Any, Trainer, Any, Telemetry | None]:
    """The correctness check and the timed windows, on one stream of batches: (correctness, trainer, timing,
    telemetry)."""
    preset = options.preset
    stream = batches.forever()
    on_progress("correctness", 0, CORRECTNESS_STEPS)
    correctness = check_correctness(preset, model, [next(stream) for _ in range(CORRECTNESS_STEPS)], device)
    on_progress("correctness", CORRECTNESS_STEPS, CORRECTNESS_STEPS)
    if plan is not None:  # the first measured steps: a forecast before the long part starts
        per_step = correctness.device_s / CORRECTNESS_STEPS
        on_progress(
            f"{ESTIMATE} from the {CORRECTNESS_STEPS} correctness steps",
            round(per_step * plan.total),
            round(plan.total),
        )
    windows = options.windows or preset.quick_windows
    steps = options.steps or preset.quick_steps
    warmup = preset.warmup_steps if options.warmup_steps is None else options.warmup_steps
    per_window = max(1, steps // windows)
    trainer = build_trainer(preset, model, device, warmup + per_window * windows)
    sampler = _telemetry_sampler(device)
    if isinstance(sampler, TelemetrySampler):
        with sampler:
            timing = measure(trainer, stream, warmup, windows, per_window, preset.batch_size, on_progress)
        telemetry: Telemetry | None = sampler.result()
        sampler.backend.shutdown()
    else:
        timing = measure(trainer, stream, warmup, windows, per_window, preset.batch_size, on_progress)
        telemetry = sampler
    return correctness, trainer, timing, telemetry


def run_bench(options: RunOptions, dataset: Dataset, knowledge: Any, on_progress: Progress) -> BenchResult:
    import copy

    import torch

    from envcheck.bench.models import build_model

    preset = options.preset
    device = torch.device(options.device)
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    torch.manual_seed(options.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    model = build_model(preset.model)
    initial = copy.deepcopy(model)
    name = device_name(device)
    references = load_references(options.calibration_file)
    plan = run_plan(options, dataset)
    before = calibrated_estimate(plan, preset, options.loader, name, references)
    if before is not None:
        on_progress(f"{ESTIMATE} from the reference run of {name}", *before)
    on_progress = forecasting(on_progress, plan)
    batches = make_batches(options, dataset.train_images, dataset.train_labels, device, preset.augment)
    try:
        correctness, trainer, timing, telemetry = _measure_throughput(
            options, batches, model, device, on_progress, plan
        )
    finally:  # DataLoader workers must not outlive an interrupted run
        batches.close()
    recipe = run_recipe(options, dataset, initial, device, on_progress) if options.is_full else None
    cpu_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    reasons = likely_reasons(telemetry, options.loader, load_average, cpu_count, torch.get_num_threads())
    calibration = calibrate(
        preset.name,
        name,
        device.type == "cuda",
        timing.images_per_s,
        references,
        knowledge,
        trainer.is_bf16,
        reasons,
        options.loader,
    )
    versions, flags = versions_and_flags(device, trainer.is_bf16, preset.channels_last)
    ceiling = measure_ceiling(device, name, knowledge) if options.is_measuring_ceiling else None
    return BenchResult(
        preset=preset.name,
        device=str(device),
        device_name=name,
        data=dataset.kind,
        data_source=dataset.source,
        data_checksums=dataset.checksums,
        loader=options.loader,
        workers=options.workers if options.loader == "dataloader" else 0,
        mode="full" if options.is_full else "quick",
        timing=timing,
        correctness=correctness,
        calibration=calibration,
        telemetry=telemetry,
        recipe=recipe,
        load_average_before=load_average,
        cpu_count=cpu_count,
        versions=versions,
        flags=flags,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        ceiling=ceiling,
    )


def resolve_devices(spec: str | None) -> list[str]:
    """--device: cpu, cuda, cuda:N, mps, all (every CUDA GPU, else MPS, else the CPU); None picks the best one."""
    import torch

    from envcheck.loaders import InputError

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    best = ["cuda:0"] if gpus else ["mps"] if has_mps else ["cpu"]
    if spec is None:
        return best
    if spec == "all":
        return [f"cuda:{n}" for n in range(gpus)] or best
    if spec == "cpu":
        return ["cpu"]
    if spec == "mps":
        if not has_mps:
            raise InputError("--device mps: this torch has no usable MPS device (Apple silicon, macOS 12.3+)")
        return ["mps"]
    if spec == "cuda" or spec.startswith("cuda:"):
        number = spec.partition(":")[2] or "0"
        if not number.isdigit():
            raise InputError(f"--device {spec}: expected cuda:N with N a GPU number")
        if int(number) >= gpus:
            raise InputError(
                f"--device {spec}: torch sees {gpus} CUDA GPU(s) (torch.cuda.is_available() is {gpus > 0})"
            )
        return [f"cuda:{int(number)}"]
    raise InputError(f"--device {spec}: expected cpu, cuda, cuda:N, mps or all")
