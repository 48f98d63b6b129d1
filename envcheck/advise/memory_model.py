"""GPU memory a workload needs per GPU, term by term, for each way of spreading it over N GPUs.

Every formula and constant is in docs/recommend.md with its source; tests reproduce the published examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.advise.architecture import (
    embedding_parameters,
    kv_cache_bytes_per_token,
    lm_head_parameters,
    unquantised_parameters,
)
from envcheck.advise.architecture import lora_parameters as shape_lora_parameters
from envcheck.advise.workload_spec import WorkloadSpec
from envcheck.knowledge import KnowledgeError

# Bytes per parameter of stored weights. int4 is 4 bits plus one fp16 scale and a 4-bit zero point per group of
# 128 (GPTQ/AWQ, group size 128): 4 + 20/128 = 4.156 bits. Training-time NF4 (QLoRA) is in NF4_BITS.
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "int8": 1.0, "int4": 4.156 / 8}
# QLoRA (Dettmers et al. 2023, sec. 3): NF4 with blocksize 64 and double quantisation costs 0.127 bits per
# parameter in quantisation constants on top of 4 bits.
NF4_BITS = 4 + 0.127
# Optimizer state bytes per parameter: Adam keeps two fp32 moments (8), bitsandbytes 8-bit Adam two 1-byte
# moments (2; Dettmers et al. 2022), SGD with momentum one fp32 buffer (4). Mixed precision adds a 4-byte fp32
# master copy: 2 + 2 + 4 + 8 = 16 bytes per parameter for mixed-precision Adam (ZeRO, Rajbhandari et al. 2020).
OPTIMIZER_STATE_BYTES = {"adamw": 8.0, "adam8bit": 2.0, "sgd": 4.0}
MASTER_WEIGHT_BYTES = 4.0
# LoRA adapters: bf16 weight + bf16 gradient + the optimizer's states (no master copy: the adapters are small
# and peft/QLoRA keep them in the compute dtype).
ADAPTER_WEIGHT_BYTES = 2.0
# Korthikanti et al. 2022 (Reducing activation recomputation in large transformer models), eq. 1: activations
# of one transformer layer with 16-bit activations and no tensor parallelism = s*b*h*(34 + 5*a*s/h) bytes.
# The 5*a*s^2*b term is the attention score, softmax and dropout tensors, which flash attention never stores.
ACTIVATION_LINEAR_BYTES = 34
ACTIVATION_ATTENTION_BYTES = 5
# With full recomputation only each layer's input (2*s*b*h bytes, 16-bit) is kept (Korthikanti sec. 4.1),
# plus the working set of the one layer being recomputed.
CHECKPOINT_BYTES = 2
# Serving with chunked prefill works through at most this many prompt tokens per step (vLLM
# max_num_batched_tokens default of 2048 for chunked prefill), so the activation working set is bounded.
PREFILL_CHUNK_TOKENS = 2048
STRATEGY_TITLES = {
    "single": "single GPU",
    "ddp": "DDP (replicated)",
    "zero1": "ZeRO-1",
    "zero2": "ZeRO-2",
    "zero3": "ZeRO-3 / FSDP",
    "replicas": "one copy per GPU",
    "tp": "tensor parallel",
}


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes one GPU holds under ``strategy`` over ``gpu_count`` GPUs."""

    strategy: str
    gpu_count: int
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return (
            self.weights_bytes
            + self.gradients_bytes
            + self.optimizer_bytes
            + self.activations_bytes
            + self.kv_cache_bytes
            + self.overhead_bytes
        )

    @property
    def model_states_bytes(self) -> int:
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes


@dataclass(frozen=True, slots=True)
class ModelStates:
    """Unsharded weights, gradients and optimizer states of the whole model, in bytes."""

    weights: float
    gradients: float
    optimizer: float


def lora_parameters(spec: WorkloadSpec) -> int:
    """Adapter parameters: rank r on every linear layer (QLoRA's recipe), r x (in + out) each."""
    if spec.shape is None:
        raise KnowledgeError(f"{spec.name}: LoRA needs a transformer shape (--layers --hidden ... or --hf-config)")
    return shape_lora_parameters(spec.shape, spec.lora_rank)


def quantised_split(spec: WorkloadSpec) -> tuple[float, float]:
    """(parameters stored quantised, parameters kept 16-bit) for a 4- or 8-bit base. bitsandbytes (QLoRA's
    Linear4bit) and GPTQ/AWQ replace the blocks' nn.Linear layers only: embeddings, lm_head, norms, biases and
    routers stay bf16 (Llama-3-8B under QLoRA: 5.7 GB of weights, not the 4.1 GB of 8.03 B x NF4).
    ``spec.unquantised_parts`` (--skip-modules) may quantise the embeddings and lm_head too; tied embeddings
    are one matrix, quantised only when neither part keeps it."""
    p = float(spec.parameters)
    if spec.shape is None:
        return p, 0.0
    shape, parts = spec.shape, spec.unquantised_parts
    kept = float(unquantised_parameters(shape))
    if shape.is_tied_embeddings:
        kept -= 0.0 if parts else embedding_parameters(shape)
    else:
        kept -= 0.0 if "embeddings" in parts else embedding_parameters(shape)
        kept -= 0.0 if "lm_head" in parts else lm_head_parameters(shape)
    kept = min(p, max(0.0, kept))
    return p - kept, kept


def model_states(spec: WorkloadSpec) -> ModelStates:
    """Weights, gradients and optimizer states before any sharding."""
    p = float(spec.parameters)
    if spec.task == "infer":
        if spec.precision in ("int8", "int4"):
            quantised, kept = quantised_split(spec)
            return ModelStates(quantised * WEIGHT_BYTES[spec.precision] + kept * WEIGHT_BYTES["bf16"], 0.0, 0.0)
        return ModelStates(p * WEIGHT_BYTES[spec.precision], 0.0, 0.0)
    states = OPTIMIZER_STATE_BYTES[spec.optimizer]
    if spec.task in ("lora", "qlora"):
        if spec.task == "qlora":
            quantised, kept = quantised_split(spec)
            base = quantised * NF4_BITS / 8 + kept * WEIGHT_BYTES["bf16"]
        else:
            base = p * WEIGHT_BYTES[spec.precision]
        adapters = float(lora_parameters(spec)) if spec.shape is not None else 0.0
        return ModelStates(base + adapters * ADAPTER_WEIGHT_BYTES, adapters * 2.0, adapters * states)
    if spec.precision in ("int8", "int4"):
        raise KnowledgeError(f"--precision {spec.precision}: full training needs fp32, bf16 or fp16 (or --task qlora)")
    weight = WEIGHT_BYTES[spec.precision]
    master = 0.0 if spec.precision == "fp32" else MASTER_WEIGHT_BYTES
    return ModelStates(p * weight, p * weight, p * (master + states))


def activation_bytes(spec: WorkloadSpec, *, tensor_parallel: int = 1) -> float:
    """Activation memory per GPU for one micro-batch (training) or the serving working set."""
    if spec.shape is None:
        per_sample = (spec.activation_mb_per_sample or 0.0) * 10**6
        # profiles give fp32 figures; AMP stores most activations in 16 bits (about half, per the profiles)
        return spec.batch * per_sample * (1.0 if spec.precision == "fp32" else 0.5)
    shape = spec.shape
    if spec.task == "infer":
        tokens = min(spec.concurrency * spec.context, PREFILL_CHUNK_TOKENS)
        working = tokens * (4 * shape.hidden + 2 * shape.intermediate) * 2 / tensor_parallel
        serving_logits = spec.concurrency * shape.vocab * 4.0
        return working + serving_logits
    s, b, h, a = spec.seq_len, spec.batch, shape.hidden, shape.heads
    scale = 2.0 if spec.precision == "fp32" else 1.0
    attention = 0.0 if spec.is_flash_attention else ACTIVATION_ATTENTION_BYTES * a * s * s * b
    one_layer = (ACTIVATION_LINEAR_BYTES * s * b * h + attention) * scale
    logits = 4.0 * s * b * shape.vocab  # fp32 logits for the loss
    if spec.is_checkpointing:
        return shape.layers * CHECKPOINT_BYTES * s * b * h * scale + one_layer + logits
    return shape.layers * one_layer + logits


def kv_cache_bytes(spec: WorkloadSpec) -> float:
    """K and V for every layer, KV head and token in flight: 2 x layers x kv_heads x head_dim x 2 B (fp16);
    for multi-head latent attention the latent and rotary key instead (architecture.kv_cache_bytes_per_token)."""
    if spec.task != "infer" or spec.shape is None:
        return 0.0
    return float(kv_cache_bytes_per_token(spec.shape) * spec.context * spec.concurrency)


def is_tensor_parallel_possible(spec: WorkloadSpec, gpu_count: int) -> bool:
    """Tensor parallelism splits attention heads over GPUs: vLLM requires the attention heads to divide by the
    TP size, and the KV heads to divide by it or it by them (then they are replicated); Megatron-LM requires
    the same of its query groups. Llama-2-70B (64 heads, 8 KV heads) runs on 2, 4 or 8 GPUs, not 3."""
    shape = spec.shape
    if shape is None:
        return True
    kv = shape.kv_heads
    return shape.heads % gpu_count == 0 and (kv % gpu_count == 0 or gpu_count % kv == 0)


def strategies_for(spec: WorkloadSpec, gpu_count: int) -> tuple[str, ...]:
    """Ways to use ``gpu_count`` GPUs, least communication first."""
    if gpu_count == 1:
        return ("single",)
    if spec.task == "infer":
        return ("replicas", "tp") if is_tensor_parallel_possible(spec, gpu_count) else ("replicas",)
    if spec.task in ("lora", "qlora"):
        return ("ddp", "zero3")
    return ("ddp", "zero1", "zero2", "zero3")


def estimate(spec: WorkloadSpec, strategy: str = "single", gpu_count: int = 1) -> MemoryEstimate:
    """Per-GPU memory under one strategy (see STRATEGY_TITLES)."""
    if strategy not in STRATEGY_TITLES:
        raise KnowledgeError(f'unknown sharding strategy "{strategy}" (known: {", ".join(STRATEGY_TITLES)})')
    n = gpu_count if strategy not in ("single", "ddp", "replicas") else 1
    states = model_states(spec)
    weights, grads, optimizer = states.weights, states.gradients, states.optimizer
    kv = kv_cache_bytes(spec)
    gathered = 0.0
    if strategy == "zero1":
        optimizer /= n
    elif strategy == "zero2":
        grads, optimizer = grads / n, optimizer / n
    elif strategy == "zero3":
        # FSDP/ZeRO-3 gathers one layer's full weights at a time and prefetches the next: two layers' worth of
        # temporary buffers, counted as overhead so that model states stay the ZeRO paper's (2+2+K)*P/N
        layers = spec.shape.layers if spec.shape is not None else 1
        gathered = 2 * weights / layers
        weights, grads, optimizer = weights / n, grads / n, optimizer / n
    elif strategy == "tp":
        # Megatron splits attention heads across GPUs; with fewer KV heads than GPUs the KV heads are replicated,
        # and an MLA latent is shared by all heads, so every GPU holds all of it (vLLM's MLA backends)
        kv_split = n if spec.shape is None else (1 if spec.shape.is_mla else min(n, spec.shape.kv_heads))
        weights, kv = weights / n, kv / kv_split
    activations = activation_bytes(spec, tensor_parallel=n if strategy == "tp" else 1)
    subtotal = weights + grads + optimizer + activations + kv
    # the CUDA context and the allocator's share are the spec's (--cuda-context-gb, --memory-overhead)
    overhead = spec.cuda_context_bytes + gathered + spec.memory_overhead * subtotal
    return MemoryEstimate(
        strategy=strategy,
        gpu_count=gpu_count,
        weights_bytes=round(weights),
        gradients_bytes=round(grads),
        optimizer_bytes=round(optimizer),
        activations_bytes=round(activations),
        kv_cache_bytes=round(kv),
        overhead_bytes=round(overhead),
    )


def fitting_estimate(spec: WorkloadSpec, gpu_count: int, gpu_memory_bytes: float) -> MemoryEstimate | None:
    """The first strategy (least communication) under which every GPU has room; None if none does."""
    for strategy in strategies_for(spec, gpu_count):
        result = estimate(spec, strategy, gpu_count)
        if result.total_bytes <= gpu_memory_bytes:
            return result
    return None
