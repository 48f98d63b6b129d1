"""How long a job takes on N GPUs of one model: compute-bound training, bandwidth-bound serving, or measured.

Formulas and constants with their sources: docs/recommend.md#time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.advise.communication import (
    gpu_link,
    tensor_parallel_bytes_per_token_step,
    training_communication_s,
)
from envcheck.advise.workload_spec import DEFAULT_DECODE_EFFICIENCY, WorkloadSpec
from envcheck.facts.common import Unavailable
from envcheck.input_files import CONFIG_LIMIT, load_json_file
from envcheck.knowledge import GpuSpec, KnowledgeError, normalise_gpu_name
from envcheck.validation import InvalidValue, positive_number, quoted

# Model FLOPs utilisation by GPU segment, when nothing was measured. Large-model training reaches 40-55% on
# datacenter GPUs with NVLink (Megatron-LM, Narayanan et al. 2021: 52% on A100; PaLM, Chowdhery et al. 2022:
# 46%); PCIe-only workstation and consumer cards with less memory run smaller batches: 30% is an assumption.
DEFAULT_UTILISATION = {"datacenter": 0.40, "workstation": 0.30, "consumer": 0.30, "embedded": 0.20}
# The default share of peak DRAM bandwidth decode reaches (workload_spec.DEFAULT_DECODE_EFFICIENCY; an option).
BANDWIDTH_EFFICIENCY = DEFAULT_DECODE_EFFICIENCY
# Forward FLOPs per sample of the shipped CNN profiles (2 FLOPs per multiply-add). ResNet-50 at 224x224:
# 3.8e9 multiply-adds (He et al. 2016, table 1). CIFAR ResNet-18 (3x3 stem, no max-pool) at 32x32: 0.56e9
# multiply-adds (the count commonly reported for kuangliu/pytorch-cifar's ResNet18). Training = 3 x forward.
CNN_FORWARD_FLOPS = {"resnet50-imagenet": 2 * 3.8e9, "cifar10-cnn": 2 * 0.56e9}
# The default job when --tokens is not given, so that a whole-job cost can be ranked (stated in every report):
# fine-tunes and serving 1e8 tokens; pre-training 20 tokens per parameter (Chinchilla, Hoffmann et al. 2022);
# CNNs their reference recipe: 90 ImageNet epochs (torchvision references) or 30 CIFAR-10 epochs (assumption).
DEFAULT_JOB_TOKENS = 100_000_000
CHINCHILLA_TOKENS_PER_PARAMETER = 20
# The bench preset whose model is the cifar10-cnn profile's (CIFAR ResNet-18): its images/s converts to FLOP/s.
BENCH_PRESET = "resnet18"
DEFAULT_CNN_SAMPLES = {"resnet50-imagenet": 90 * 1_281_167, "cifar10-cnn": 30 * 50_000}
# The range of a believable bench throughput: the slowest CPU trains a few images/s, no GPU a billion.
# Outside it (1e-320, 1e308) the utilisation it sets turns a job time into a division by zero or infinity.
IMAGES_PER_S_RANGE = (1e-3, 1e9)


@dataclass(frozen=True, slots=True)
class BenchMeasurement:
    """A measured training throughput: ``images_per_s`` of the CIFAR-10 CNN on ``device``."""

    images_per_s: float
    device: str
    source: str  # the file it was read from
    date: str | None = None  # ISO 8601, when the bench ran (None: the file does not say)


# One measurement, several (one per GPU model: each is used only for options with its GPU), or none.
Measured = BenchMeasurement | Sequence[BenchMeasurement] | None


@dataclass(frozen=True, slots=True)
class JobTime:
    hours: float  # compute (or bandwidth) time plus the communication below
    basis: str  # "compute", "bandwidth" or "measured"
    utilisation: float
    communication_hours: float = 0.0  # GPU-to-GPU communication that compute does not hide
    interconnect: str | None = None  # the link it runs over ("NVLink 900 GB/s"); None: one GPU, no communication
    measurement: BenchMeasurement | None = None  # the bench that set the utilisation (basis "measured")

    @property
    def communication_share(self) -> float:
        return self.communication_hours / self.hours if self.hours > 0 else 0.0


def job_units(spec: WorkloadSpec) -> tuple[float, bool]:
    """Tokens (or CNN samples) of the whole job, and whether they are the documented default."""
    if spec.tokens is not None:
        return float(spec.tokens), False
    if spec.shape is None:
        return float(DEFAULT_CNN_SAMPLES.get(spec.name, DEFAULT_JOB_TOKENS)), True
    if spec.task == "train":
        return float(CHINCHILLA_TOKENS_PER_PARAMETER * spec.parameters), True
    return float(DEFAULT_JOB_TOKENS), True


def training_flops(spec: WorkloadSpec) -> float | None:
    """6 x P x T for full training (Kaplan et al. 2020), 4 x P x T for LoRA (no weight gradients of the frozen
    base), + 2 x P x T when activations are recomputed (one more forward pass, Korthikanti et al. 2022). P is
    the parameters each token uses: a mixture of experts computes with its active experts only."""
    units, _ = job_units(spec)
    if spec.shape is None:
        forward = CNN_FORWARD_FLOPS.get(spec.name)
        return None if forward is None else 3 * forward * units
    per_token = 4.0 if spec.task in ("lora", "qlora") else 6.0
    if spec.is_checkpointing:
        per_token += 2.0
    return per_token * spec.compute_parameters * units


def peak_tflops(gpu: GpuSpec, precision: str) -> float | None:
    """Dense peak for the math the job runs: bf16/fp16 tensor cores, fp32 otherwise; None when unknown."""
    order = {"bf16": ("bf16", "fp16"), "fp16": ("fp16",), "fp32": ("fp32",)}.get(precision, ("bf16", "fp16"))
    for name in order:
        value = getattr(gpu, f"{name}_tflops")
        if isinstance(value, float | int) and not isinstance(value, Unavailable) and value > 0:
            return float(value)
    return None


def assumed_utilisation(spec: WorkloadSpec, gpu: GpuSpec) -> float:
    """--mfu when given, else the default of the GPU's segment (DEFAULT_UTILISATION)."""
    return spec.mfu if spec.mfu is not None else DEFAULT_UTILISATION.get(gpu.segment, 0.30)


def measurement_for(measured: Measured, gpu: GpuSpec) -> BenchMeasurement | None:
    """The measurement of this GPU model, if any: a bench of GPU X says nothing about GPU Y."""
    candidates = (measured,) if isinstance(measured, BenchMeasurement) else (measured or ())
    return next((m for m in candidates if _same_gpu(m.device, gpu)), None)


def training_time(
    spec: WorkloadSpec, gpu: GpuSpec, gpu_count: int, measured: Measured = None, strategy: str | None = None
) -> JobTime | None:
    """Hours = FLOPs / (GPUs x peak x utilisation) + the communication of ``strategy`` that compute does not hide
    (docs/recommend.md#communication; none when ``strategy`` is None); a bench of the same GPU model sets the
    utilisation."""
    flops = training_flops(spec)
    peak = peak_tflops(gpu, "bf16" if spec.task == "qlora" else spec.precision)
    if flops is None or peak is None:
        return None
    utilisation, basis = assumed_utilisation(spec, gpu), "compute"
    measurement = None if spec.mfu is not None else measurement_for(measured, gpu)
    if measurement is not None:
        cifar_peak = peak_tflops(gpu, "fp32")
        if cifar_peak:
            achieved = measurement.images_per_s * 3 * CNN_FORWARD_FLOPS["cifar10-cnn"] / 1e12
            utilisation, basis = min(1.0, achieved / cifar_peak), "measured"
        else:
            measurement = None
    compute_hours = flops / (gpu_count * peak * 1e12 * utilisation) / 3600
    units, _ = job_units(spec)
    communication_s = 0.0 if strategy is None else training_communication_s(spec, strategy, gpu_count, gpu, units)
    link = gpu_link(gpu).label if communication_s > 0 else None
    hours = compute_hours + communication_s / 3600
    return JobTime(hours, basis, utilisation, communication_s / 3600, link, measurement)


def serving_time(
    spec: WorkloadSpec, gpu: GpuSpec, bytes_read_per_step: float, streams: int, tensor_parallel: int = 1
) -> JobTime | None:
    """Decode reads every weight and the KV cache once per step and yields one token per sequence in flight:
    step time = bytes read per step / (bandwidth x spec.decode_efficiency), plus, over ``tensor_parallel`` GPUs, the
    activation all-reduces of the step; tokens/s = concurrency / step time, times independent ``streams``."""
    bandwidth = gpu.memory_bandwidth_gb_s
    if isinstance(bandwidth, Unavailable) or bytes_read_per_step <= 0:
        return None
    tokens_per_s = streams * spec.concurrency * bandwidth * 1e9 * spec.decode_efficiency / bytes_read_per_step
    units, _ = job_units(spec)
    link = gpu_link(gpu)
    step_communication_s = tensor_parallel_bytes_per_token_step(spec, tensor_parallel) / (link.gb_s_per_direction * 1e9)
    communication_hours = units / (streams * spec.concurrency) * step_communication_s / 3600
    label = link.label if communication_hours > 0 else None
    hours = units / tokens_per_s / 3600 + communication_hours
    return JobTime(hours, "bandwidth", spec.decode_efficiency, communication_hours, label)


def _same_gpu(device: str, gpu: GpuSpec) -> bool:
    key = normalise_gpu_name(device)
    return any(normalise_gpu_name(name) == key for name in gpu.nvml_names)


def load_bench_results(path: Path) -> BenchMeasurement:
    """An ``envcheck bench --json`` result (schema envcheck.bench/1, preset resnet18: ``images_per_s`` and the GPU in
    ``device_name``), or a minimal JSON with ``images_per_s`` and ``device`` (the NVML GPU name)."""
    return measurement_from_json(load_json_file(path, CONFIG_LIMIT), path)


def measurement_from_json(data: Any, path: Path) -> BenchMeasurement:
    """The measurement in one bench result document; KnowledgeError naming ``path`` and the field when wrong."""
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: expected a JSON object with images_per_s and device")
    preset = data.get("preset")
    if preset is not None and preset != BENCH_PRESET:
        raise KnowledgeError(
            f"{path}: preset {quoted(preset)}: only a {BENCH_PRESET} run has a known FLOP count per image"
        )
    device = data.get("device_name", data.get("device"))
    low, high = IMAGES_PER_S_RANGE
    try:
        rate = positive_number(data.get("images_per_s"), f"{path}: images_per_s", minimum=low, maximum=high)
    except InvalidValue as error:
        raise KnowledgeError(str(error)) from None
    if not isinstance(device, str) or not device:
        raise KnowledgeError(f"{path}: device: expected the GPU name, got {quoted(device)}")
    date = data.get("date")
    if date is not None and not isinstance(date, str):
        raise KnowledgeError(f"{path}: date: expected an ISO 8601 string, got {quoted(date)}")
    return BenchMeasurement(rate, device, str(path), date)
