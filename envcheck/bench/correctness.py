"""Does the device compute the right numbers? The first steps on the device against the CPU in float64.

Both runs start from the same weights and see the same batches; a broken kernel, driver or GPU that computes
wrong numbers without crashing shows as a loss trajectory that leaves float64's by more than rounding explains.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from envcheck.bench.loop import build_trainer
from envcheck.bench.presets import Preset
from envcheck.bench.result import Correctness

CORRECTNESS_STEPS = 5

# Largest relative deviation of the loss from float64 that rounding alone explains, per precision.
# Unit roundoff u: float32 2^-24 = 6.0e-8; TF32 (10-bit mantissa) 2^-11 = 4.9e-4; bfloat16 (7-bit) 2^-8 = 3.9e-3.
# The loss after k SGD steps carries the rounding of every dot product of k forward and backward passes
# (reductions of up to ~4.6k terms in ResNet-18's 3x3x512 convolutions), which grows roughly like
# sqrt(n) * u per product; measured here on CPU float32 the tutorial net deviates by ~1e-7 over 5 steps.
# The tolerances leave 10-100x headroom over that so a healthy device never fails, while a wrong kernel
# (a wrong result is typically off by 1e-2 or more of the loss, see tests/test_bench_correctness.py) fails.
TOLERANCES = {"float32": 1e-4, "tf32": 1e-2, "bf16-autocast": 5e-2}


def precision_of(trainer_is_bf16: bool, device: Any) -> str:
    """What the device computes matmuls/convolutions in: TF32 on Ampere+ when cuDNN/cuBLAS may use it."""
    import torch

    if trainer_is_bf16:
        return "bf16-autocast"
    is_ampere = device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8  # TF32
    if is_ampere and (torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32):
        return "tf32"
    return "float32"


def max_relative_deviation(losses: tuple[float, ...], reference: tuple[float, ...]) -> float:
    """max |loss - reference| / |reference| over the steps; inf when a loss is not finite."""
    worst = 0.0
    for loss, expected in zip(losses, reference, strict=True):
        if not math.isfinite(loss):  # NaN or inf: as wrong as it gets
            return float("inf")
        worst = max(worst, abs(loss - expected) / max(abs(expected), 1e-12))
    return worst


def check_correctness(preset: Preset, model: Any, batches: list[tuple[Any, Any]], device: Any) -> Correctness:
    """Train copies of `model` for len(batches) steps on `device` and on the CPU in float64; compare losses."""
    import torch

    trainer = build_trainer(preset, copy.deepcopy(model), device, len(batches))
    reference = build_trainer(preset, copy.deepcopy(model).double(), torch.device("cpu"), len(batches))
    reference.is_bf16 = False
    reference.channels_last = False
    started = time.perf_counter()
    device_losses = tuple(float(trainer.step(images, labels)) for images, labels in batches)  # float() waits
    device_s = time.perf_counter() - started
    reference_losses = tuple(
        float(reference.step(images.detach().to("cpu", torch.float64), labels.detach().to("cpu")))
        for images, labels in batches
    )
    precision = precision_of(trainer.is_bf16, device)
    deviation = max_relative_deviation(device_losses, reference_losses)
    tolerance = TOLERANCES[precision]
    return Correctness(
        steps=len(batches),
        precision=precision,
        device_losses=device_losses,
        reference_losses=reference_losses,
        max_rel_deviation=deviation,
        tolerance=tolerance,
        passed=deviation <= tolerance,
        device_s=device_s,
    )
