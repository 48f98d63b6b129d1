"""The training step and its timing: warm-up excluded, the device synchronised before every clock read."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from envcheck.bench.presets import Preset
from envcheck.bench.result import Timing

# on_progress(phase, done, total): how progress leaves bench/ (the CLI turns it into progress bars)
Progress = Callable[[str, int, int], None]
# A phase starting with ESTIMATE is no bar but a forecast: on_progress("estimate from ...", seconds, steps) says
# the run's remaining `steps` training steps should take about `seconds`; the rest of the phase names the basis.
ESTIMATE = "estimate"


def synchronize(device: Any) -> None:
    """Wait for queued kernels: CUDA and MPS run asynchronously, so a clock read without this times the launch."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def uses_bf16(preset: Preset, device: Any) -> bool:
    """bf16 autocast where it is fast: CUDA with bf16 tensor cores (compute capability 8.0+, Ampere)."""
    import torch

    return preset.bf16_autocast and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


@dataclass(slots=True)
class Trainer:
    """A model, its optimizer and schedule on one device: `step(images, labels)` trains on one batch."""

    model: Any
    optimizer: Any
    scheduler: Any | None
    device: Any
    is_bf16: bool
    channels_last: bool

    def step(self, images: Any, labels: Any) -> Any:
        import torch

        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.is_bf16 else contextlib.nullcontext()
        with autocast:
            loss = torch.nn.functional.cross_entropy(self.model(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()

    def accuracy(self, batches: Iterator[tuple[Any, Any]]) -> float:
        import torch

        self.model.eval()
        correct = total = 0
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.is_bf16 else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            for batch, labels in batches:
                images = batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch
                correct += int((self.model(images).argmax(1) == labels).sum())
                total += int(labels.shape[0])
        self.model.train()
        return correct / total if total else 0.0


def build_trainer(preset: Preset, model: Any, device: Any, total_steps: int) -> Trainer:
    """SGD with the preset's momentum and weight decay; one-cycle schedules span `total_steps`."""
    import torch

    model = model.to(device)
    if preset.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=preset.learning_rate, momentum=preset.momentum, weight_decay=preset.weight_decay
    )
    scheduler = None
    if preset.schedule == "one-cycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=preset.learning_rate, total_steps=max(total_steps, 2)
        )
    return Trainer(model, optimizer, scheduler, device, uses_bf16(preset, device), preset.channels_last)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a p95 is a step that really happened)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summarise(
    window_seconds: list[float], step_seconds: list[float], steps_per_window: int, batch: int, warmup: int
) -> Timing:
    rates = [steps_per_window * batch / seconds for seconds in window_seconds]
    mean = statistics.fmean(rates)
    return Timing(
        images_per_s=statistics.median(rates),
        window_images_per_s=tuple(rates),
        cv=statistics.pstdev(rates) / mean if len(rates) > 1 else 0.0,
        step_p50_ms=percentile(step_seconds, 0.50) * 1000,
        step_p95_ms=percentile(step_seconds, 0.95) * 1000,
        warmup_steps=warmup,
        timed_steps=steps_per_window * len(window_seconds),
        batch_size=batch,
    )


def measure(
    trainer: Trainer,
    batches: Iterator[tuple[Any, Any]],
    warmup_steps: int,
    windows: int,
    steps_per_window: int,
    batch_size: int,
    on_progress: Progress,
) -> Timing:
    """Train `warmup_steps` untimed (cuDNN autotuning, oneDNN primitive creation), then `windows` timed windows."""
    timed_total = windows * steps_per_window
    for done in range(warmup_steps):
        trainer.step(*next(batches))
        on_progress("warm-up", done + 1, warmup_steps)
    synchronize(trainer.device)
    window_seconds: list[float] = []
    step_seconds: list[float] = []
    for window in range(windows):
        start = previous = time.perf_counter()
        for _ in range(steps_per_window):
            trainer.step(*next(batches))
            synchronize(trainer.device)
            now = time.perf_counter()
            step_seconds.append(now - previous)
            previous = now
        window_seconds.append(previous - start)
        on_progress("timed", (window + 1) * steps_per_window, timed_total)
    return summarise(window_seconds, step_seconds, steps_per_window, batch_size, warmup_steps)
