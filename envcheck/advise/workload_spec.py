"""The workload a recommendation is for: a shipped profile, a parameter count, a transformer shape or a HF config.

Everything the memory and time models need, resolved once: parameters, shape, task, precision, batch, tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from envcheck.advise.architecture import TransformerShape, active_parameters, transformer_parameters
from envcheck.advise.hf_config import MAX_DIMENSION, shape_from_config
from envcheck.input_files import HF_CONFIG_LIMIT, load_json_file
from envcheck.knowledge import KnowledgeError, WorkloadProfile, load_workload
from envcheck.validation import InvalidValue, non_negative_number, positive_number, quoted

TASKS = ("train", "finetune", "lora", "qlora", "infer")
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")
OPTIMIZERS = ("adamw", "adam8bit", "sgd")
# The oldest compute capability whose hardware computes each dtype at full rate in PyTorch.
# fp32/fp16 run on every GPU a PyTorch wheel supports (fp16 tensor cores from 7.0 make it fast);
# tf32 and bf16 tensor cores arrive with Ampere (8.0) — torch.cuda.is_bf16_supported() — fp8 with
# Ada/Hopper (8.9, 9.0; torch._scaled_mm requires sm_89+); int8/int4 tensor cores with Turing (7.5,
# NVIDIA Turing architecture whitepaper).
DTYPE_MIN_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "fp32": (0, 0),
    "fp16": (0, 0),
    "tf32": (8, 0),
    "bf16": (8, 0),
    "fp8": (8, 9),
    "int8": (7, 5),
    "int4": (7, 5),
}
# Share of data-parallel communication hidden behind compute: PyTorch DDP all-reduces gradient buckets while
# backward still runs (Li et al. 2020, "PyTorch Distributed", VLDB) and FSDP / ZeRO-3 prefetch the next layer's
# parameters; how much hides depends on the model and the batch, so 50% is an assumption (--overlap).
DEFAULT_OVERLAP = 0.5
# Memory-bound decode kernels reach roughly 70-80% of peak DRAM bandwidth; 70% is an assumption (--decode-efficiency).
DEFAULT_DECODE_EFFICIENCY = 0.70
# The parts outside the blocks' linear layers that a 4-/8-bit base may keep in bf16 (--skip-modules). Both stay
# bf16 by default, as bitsandbytes does (transformers keeps lm_head out of Linear4bit/Linear8bitLt and
# nn.Embedding is never converted) and as GPTQ/AWQ checkpoints do (lm_head unquantised unless asked for).
# Norms, biases and MoE routers always stay bf16: no library quantises them.
QUANTISABLE_PARTS = ("embeddings", "lm_head")
# A CUDA context with cuBLAS/cuDNN loaded takes a few hundred MB per GPU (PyTorch "CUDA semantics" notes;
# ~0.3-0.5 GB in practice) and the caching allocator loses some more to fragmentation: 0.5 GB and 5% of everything
# else are assumptions (--cuda-context-gb, --memory-overhead).
DEFAULT_CUDA_CONTEXT_BYTES = 500 * 10**6
DEFAULT_MEMORY_OVERHEAD = 0.05
MAX_CUDA_CONTEXT_GB = 16.0  # above any context measured (a few hundred MB to ~1 GB with every library loaded)
# FlashAttention-2 runs on Ampere (cc 8.0) and newer only (its README: "Ampere, Ada, or Hopper GPUs"); below it,
# attention stores its scores, softmax and dropout mask (Korthikanti et al.'s 5*a*s^2*b term).
FLASH_ATTENTION_MIN_COMPUTE_CAPABILITY = (8, 0)
# From this many parameters on, training is assumed to recompute activations unless --no-checkpointing.
RECOMPUTATION_PARAMETERS = 10**9


# Shapes of the models the shipped profiles describe, from their Hugging Face config.json files
# (meta-llama/Llama-2-7b-hf, meta-llama/Llama-2-70b-hf, google-bert/bert-base-uncased).
KNOWN_SHAPES: dict[str, TransformerShape] = {
    "llama-7b": TransformerShape(32, 4096, 32, 32, 32000, 11008),
    "llama-70b": TransformerShape(80, 8192, 64, 8, 32000, 28672),
    "bert-base": TransformerShape(12, 768, 12, 12, 30522, 3072),
}


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """One job to size. ``shape`` is None for CNNs, which carry per-sample activation memory instead."""

    name: str
    parameters: int
    task: str
    precision: str
    shape: TransformerShape | None
    seq_len: int
    batch: int
    optimizer: str
    is_checkpointing: bool
    is_flash_attention: bool
    tokens: int | None  # training tokens (transformers) or samples (CNNs) for the whole job; None: not timed
    concurrency: int  # serving: sequences in flight
    context: int  # serving: tokens per sequence (prompt + generated)
    activation_mb_per_sample: float | None  # CNNs, at their reference resolution
    lora_rank: int
    min_compute_capability: tuple[int, int]
    source: str  # where the description came from, for the report
    is_shape_assumed: bool = False  # shape guessed from the parameter count: no GQA, so the KV cache is an upper bound
    active_parameters: int | None = None  # used per token (mixture of experts); None: all of them
    mfu: float | None = None  # model FLOPs utilisation (--mfu); None: the default of each GPU's segment
    overlap: float = DEFAULT_OVERLAP  # share of data-parallel communication hidden behind compute (--overlap)
    # transformers' own count (the model built on the meta device), where it was installed to ask; None: not asked
    transformers_parameters: int | None = None
    decode_efficiency: float = DEFAULT_DECODE_EFFICIENCY  # serving: share of memory bandwidth decode reaches
    unquantised_parts: tuple[str, ...] = QUANTISABLE_PARTS  # int4/int8/NF4 bases: parts kept bf16 (--skip-modules)
    cuda_context_bytes: int = DEFAULT_CUDA_CONTEXT_BYTES  # per GPU, before any tensor (--cuda-context-gb)
    memory_overhead: float = DEFAULT_MEMORY_OVERHEAD  # allocator fragmentation, a share of the rest (--memory-overhead)

    @property
    def is_quantised(self) -> bool:
        """The base weights are stored in 4 or 8 bits (QLoRA's NF4, GPTQ/AWQ int4, LLM.int8)."""
        return self.task == "qlora" or (self.task == "infer" and self.precision in ("int4", "int8"))

    @property
    def compute_parameters(self) -> int:
        """The parameters each token is computed with: memory holds ``parameters``, FLOPs scale with these."""
        return self.parameters if self.active_parameters is None else self.active_parameters

    @property
    def is_training(self) -> bool:
        return self.task != "infer"


MAX_COUNT = 1e21  # above every real parameter or token count by orders of magnitude
COUNT_TOLERANCE = 0.01  # formula vs transformers: the published counts are reproduced within this (tested)


def parse_count(text: str, option: str = "--params") -> int:
    """``7B``, ``1.3b``, ``350M``, ``125000000``, ``2e11`` -> an integer count."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?(?:[eE]\+?[0-9]+)?)\s*([kKmMbBtT]?)\s*", text)
    if not match:
        raise KnowledgeError(f"{option}: {quoted(text)} is not a count such as 7B, 350M, 2e11 or 125000000")
    scale = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}[match.group(2).lower()]
    value = float(match.group(1)) * scale
    if not math.isfinite(value) or value >= MAX_COUNT:  # 1e999 is infinity; nothing is counted in 1e21s
        raise KnowledgeError(f"{option}: {quoted(text)} is too large (at most {MAX_COUNT:.0e})")
    return round(value)


def shape_from_parameters(parameters: int, vocab: int = 32000) -> TransformerShape:
    """A plausible shape for a bare parameter count: hidden = 128 x layers (Llama-7B, GPT-3 175B ratio), P ~ 12 L h^2.

    Only activations and the KV cache depend on it; the weights use the given count.
    """
    layers = max(1, round((parameters / (12 * 128**2)) ** (1 / 3)))
    hidden = max(128, 128 * round(math.sqrt(parameters / (12 * layers)) / 128))
    heads = max(1, hidden // 128)
    return TransformerShape(layers, hidden, heads, heads, vocab, 4 * hidden)


def shape_from_hf_config(path: Path) -> tuple[TransformerShape, int]:
    """Shape and total parameter count from a Hugging Face ``config.json`` (envcheck/advise/hf_config.py)."""
    shape = checked_shape(shape_from_config(load_json_file(path, HF_CONFIG_LIMIT), path), str(path))
    return shape, checked_count(transformer_parameters(shape), str(path))


def checked_shape(shape: TransformerShape, where: str) -> TransformerShape:
    """A shape the models can compute with: every dimension in range, heads that divide into the hidden size."""
    for name in ("layers", "hidden", "heads", "kv_heads", "vocab", "intermediate"):
        value = getattr(shape, name)
        if not 1 <= value <= MAX_DIMENSION:
            raise KnowledgeError(f"{where}: {name} {quoted(value)}: expected 1 to {MAX_DIMENSION:,}")
    if shape.heads > shape.hidden:
        raise KnowledgeError(f"{where}: {shape.heads} attention heads for a hidden size of {shape.hidden}")
    if shape.kv_heads > shape.heads:
        raise KnowledgeError(f"{where}: {shape.kv_heads} key/value heads is more than the {shape.heads} heads")
    return shape


def checked_count(parameters: int, where: str) -> int:
    if parameters >= MAX_COUNT:
        raise KnowledgeError(f"{where}: {parameters:.3g} parameters is too many (at most {MAX_COUNT:.0e})")
    return parameters


def _task_of(profile: WorkloadProfile) -> str:
    name = profile.name.lower()
    if "qlora" in name:
        return "qlora"
    if "lora" in name:
        return "lora"
    if "inference" in name or "serve" in name:
        return "infer"
    return "finetune" if "finetune" in name or "full" in name else "train"


def _precision_of(profile: WorkloadProfile) -> str:
    for wanted in ("int4", "int8", "bf16", "fp16"):
        if wanted in profile.dtypes_required:
            return wanted
    return "fp32"


def spec_from_profile(profile: WorkloadProfile) -> WorkloadSpec:
    """A shipped profile as a spec; transformer shapes come from KNOWN_SHAPES by name prefix."""
    shape = next((s for prefix, s in KNOWN_SHAPES.items() if profile.name.startswith(prefix)), None)
    is_cnn = profile.activation_memory_per_sample_mb is not None
    if shape is None and not is_cnn:
        shape = shape_from_parameters(profile.parameters)
    is_shape_assumed = shape is not None and not any(profile.name.startswith(p) for p in KNOWN_SHAPES)
    task = _task_of(profile)
    seq_len = profile.reference_sequence_length or 2048
    return WorkloadSpec(
        name=profile.name,
        parameters=profile.parameters,
        task=task,
        precision=_precision_of(profile),
        shape=shape,
        seq_len=seq_len,
        batch=profile.reference_batch_size or 1,
        optimizer="adamw",
        # billion-parameter models are trained with activation recomputation (the shipped llama profiles say so)
        is_checkpointing="checkpointing" in profile.description
        or (task != "infer" and is_recomputed_by_default(profile.parameters)),
        # FlashAttention-2 needs Ampere (cc 8.0) or newer; a profile that requires it can count on it
        is_flash_attention=shape is not None and profile.min_compute_capability >= (8, 0),
        tokens=None,
        concurrency=profile.reference_batch_size or 1,
        context=seq_len,
        activation_mb_per_sample=profile.activation_memory_per_sample_mb,
        lora_rank=64 if task == "qlora" else 16,
        # the profile's own minimum, raised to what its dtypes need: the judgement doctor --profile makes too
        min_compute_capability=max(
            profile.min_compute_capability,
            *(DTYPE_MIN_COMPUTE_CAPABILITY.get(dtype, (0, 0)) for dtype in profile.dtypes_required),
        ),
        source=f"profile {profile.name} ({profile.provenance.source})",
        is_shape_assumed=is_shape_assumed,
    )


def adhoc_spec(
    name: str, parameters: int, shape: TransformerShape | None, source: str, *, is_checkpointing: bool = False
) -> WorkloadSpec:
    """A spec from a bare count or a shape: a bf16 LoRA-free fine-tune until options say otherwise."""
    return WorkloadSpec(
        name=name,
        parameters=parameters,
        task="finetune",
        precision="bf16",
        shape=shape or shape_from_parameters(parameters),
        is_shape_assumed=shape is None,
        seq_len=2048,
        batch=1,
        optimizer="adamw",
        is_checkpointing=is_checkpointing,
        is_flash_attention=True,
        tokens=None,
        concurrency=1,
        context=2048,
        activation_mb_per_sample=None,
        lora_rank=16,
        min_compute_capability=(7, 0),
        source=source,
        active_parameters=active_parameters(shape) if shape is not None and shape.is_moe else None,
    )


def resolve_spec(
    workload: str | None,
    params: str | None,
    shape: TransformerShape | None,
    hf_config: Path | None,
) -> WorkloadSpec:
    """The base description from exactly one of --workload, --hf-config, the shape options or --params."""
    given = [x for x in (workload, params, shape, hf_config) if x is not None]
    if len(given) != 1:
        raise KnowledgeError("describe the workload with exactly one of --workload, --params, --hf-config or the shape")
    if workload is not None:
        return spec_from_profile(load_workload(workload))
    if hf_config is not None:
        config_shape, count = shape_from_hf_config(hf_config)
        # a model folder's config.json is named after its folder (Llama-3-8B/config.json); another file by itself
        named = hf_config.parent.name if hf_config.name == "config.json" and hf_config.parent.name else hf_config.stem
        return adhoc_spec(named, count, config_shape, f"{hf_config}", is_checkpointing=is_recomputed_by_default(count))
    if shape is not None:
        count = checked_count(transformer_parameters(checked_shape(shape, "the shape options")), "the shape options")
        source = "shape from the command line"
        return adhoc_spec("custom", count, shape, source, is_checkpointing=is_recomputed_by_default(count))
    assert params is not None
    count = parse_count(params)
    source = "--params (shape assumed: hidden = 128 x layers)"
    return adhoc_spec(params, count, None, source, is_checkpointing=is_recomputed_by_default(count))


def with_transformers_count(spec: WorkloadSpec, counted: int) -> WorkloadSpec:
    """The count transformers gave for the model it builds. More than 1% from the formula, it wins for memory
    (it is the model that will run), and the active count moves by the same difference (the parts the
    formula missed are shared by every token unless they are experts, which the formula does count)."""
    checked = replace(spec, transformers_parameters=counted)
    if abs(counted - spec.parameters) <= COUNT_TOLERANCE * spec.parameters:
        return checked
    active = None if spec.active_parameters is None else max(1, spec.active_parameters + counted - spec.parameters)
    return replace(checked, parameters=counted, active_parameters=active)


def on_gpu(spec: WorkloadSpec, compute_capability: tuple[int, int] | None) -> WorkloadSpec:
    """The spec as it runs on a GPU of this compute capability: below Ampere (8.0) there is no FlashAttention-2,
    so attention keeps its scores (a V100 in fp16 stores them; an A100 does not). None (not known): unchanged."""
    if compute_capability is None or not spec.is_flash_attention:
        return spec
    if compute_capability >= FLASH_ATTENTION_MIN_COMPUTE_CAPABILITY:
        return spec
    return replace(spec, is_flash_attention=False)


def is_recomputed_by_default(parameters: int) -> bool:
    """Billion-parameter models are trained with activation recomputation (Megatron-LM, DeepSpeed, QLoRA's
    recipe); the same rule as the shipped profiles', so a model described ad hoc sizes like its profile."""
    return parameters >= RECOMPUTATION_PARAMETERS


def parse_parts(text: str) -> tuple[str, ...]:
    """``--skip-modules embeddings,lm_head`` -> the parts kept bf16; ``none`` quantises both."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        return ()
    aliases = {"embeddings": "embeddings", "embed_tokens": "embeddings", "lm_head": "lm_head"}
    unknown = [name for name in names if name not in aliases]
    if unknown or not names:
        raise KnowledgeError(
            f"--skip-modules: {quoted(text)} is not a comma-separated list of embeddings, lm_head (or none)"
        )
    chosen = {aliases[name] for name in names}
    return tuple(part for part in QUANTISABLE_PARTS if part in chosen)


def with_options(spec: WorkloadSpec, **changes: object) -> WorkloadSpec:
    """Apply command-line overrides, validating the enumerated ones; None means "keep the spec's"."""
    given = {k: v for k, v in changes.items() if v is not None}
    for key, allowed in (("task", TASKS), ("precision", PRECISIONS), ("optimizer", OPTIMIZERS)):
        if key in given and given[key] not in allowed:
            raise KnowledgeError(f"--{key}: {quoted(given[key])} is not one of {', '.join(allowed)}")
    for key in ("seq_len", "batch", "tokens", "concurrency", "context", "lora_rank"):
        value = given.get(key)
        if isinstance(value, int) and value <= 0:
            raise KnowledgeError(f"--{key.replace('_', '-')}: must be positive, got {value}")
        if isinstance(value, int) and value > (MAX_COUNT if key == "tokens" else MAX_DIMENSION):
            raise KnowledgeError(f"--{key.replace('_', '-')}: {quoted(value)} is too large")
    try:
        if "mfu" in given:  # 1% is below any real run; above 100% is not a utilisation
            given["mfu"] = positive_number(given["mfu"], "--mfu", minimum=0.01, maximum=1.0)
        if "overlap" in given:
            given["overlap"] = non_negative_number(given["overlap"], "--overlap", maximum=1.0)
        if "decode_efficiency" in given:  # a kernel never reads DRAM faster than its peak; 5% is below any real one
            given["decode_efficiency"] = positive_number(
                given["decode_efficiency"], "--decode-efficiency", minimum=0.05, maximum=1.0
            )
        if "memory_overhead" in given:
            given["memory_overhead"] = non_negative_number(given["memory_overhead"], "--memory-overhead", maximum=1.0)
    except InvalidValue as error:
        raise KnowledgeError(f"{error} (a fraction: 0.4 is 40%)") from None
    if "cuda_context_gb" in given:
        try:
            context_gb = non_negative_number(
                given.pop("cuda_context_gb"), "--cuda-context-gb", maximum=MAX_CUDA_CONTEXT_GB
            )
        except InvalidValue as error:
            raise KnowledgeError(f"{error} (GB per GPU: 0.5 is 500 MB)") from None
        given["cuda_context_bytes"] = round(context_gb * 10**9)
    updated = replace(spec, **given)  # type: ignore[arg-type]
    if "task" in given and given["task"] == "qlora" and "precision" not in given:
        updated = replace(updated, precision="int4")
    if "task" in given and given["task"] == "qlora" and "lora_rank" not in given:
        updated = replace(updated, lora_rank=64)
    if "unquantised_parts" in given and not updated.is_quantised:
        raise KnowledgeError(
            "--skip-modules: only a 4- or 8-bit base has parts to keep unquantised "
            f"(--task qlora, or --task infer with --precision int4/int8; this is {updated.task} {updated.precision})"
        )
    if "decode_efficiency" in given and updated.task != "infer":
        raise KnowledgeError(f"--decode-efficiency: only serving decodes (--task infer); this job is {updated.task}")
    return updated
