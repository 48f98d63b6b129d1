"""What a recommendation assumed that the user did not say, each with the option that changes it.

The terminal shows them in one line, `recommend --json` as a list; docs/recommend.md#assumptions has the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.advise.memory_model import NF4_BITS, WEIGHT_BYTES
from envcheck.advise.time_model import DEFAULT_UTILISATION, job_units
from envcheck.advise.workload_spec import FLASH_ATTENTION_MIN_COMPUTE_CAPABILITY, WorkloadSpec


@dataclass(frozen=True, slots=True)
class Assumption:
    name: str  # stable key for the JSON: "mfu", "concurrency", ...
    value: str | float | int | bool | dict[str, float] | list[str]  # what was used
    shown: str  # how the one-line summary says it
    option: str | None  # the option that sets it; None: fixed (documented, not settable)


def _kept_and_quantised(spec: WorkloadSpec) -> tuple[str, str]:
    """("embeddings/lm_head/norms", "") by default; --skip-modules moves embeddings and lm_head across."""
    parts = spec.unquantised_parts
    kept = "/".join([*parts, "norms"])
    quantised = "".join(f", {part}" for part in ("embeddings", "lm_head") if part not in parts)
    return kept, quantised


def precision_of_parts(spec: WorkloadSpec) -> str:
    """Which parts are stored in which precision: QLoRA and GPTQ/AWQ quantise the blocks' linear layers only,
    unless --skip-modules says the embeddings or lm_head are quantised too."""
    kept, quantised = _kept_and_quantised(spec)
    if spec.task == "qlora":
        return f"base linear layers{quantised} NF4 ({NF4_BITS:g} bits), {kept} bf16, adapters bf16"
    if spec.task == "infer" and spec.precision in ("int4", "int8"):
        bits = WEIGHT_BYTES[spec.precision] * 8
        return f"linear layers{quantised} {spec.precision} ({bits:.3g} bits with scales), {kept} bf16, KV cache fp16"
    if spec.task == "infer":
        return f"weights {spec.precision}, KV cache fp16"
    if spec.task == "lora":
        return f"base {spec.precision} (frozen), adapters bf16"
    master = "" if spec.precision == "fp32" else ", fp32 master weights"
    return f"weights and gradients {spec.precision}{master}"


def _memory_assumptions(spec: WorkloadSpec) -> list[Assumption]:
    """What every GPU loses before the job's tensors (the CUDA context) and on top of them (the allocator)."""
    return [
        Assumption(
            "cuda_context_gb",
            spec.cuda_context_bytes / 1e9,
            f"CUDA context {spec.cuda_context_bytes / 1e9:g} GB per GPU",
            "--cuda-context-gb",
        ),
        Assumption(
            "memory_overhead",
            spec.memory_overhead,
            f"{spec.memory_overhead:.0%} allocator overhead",
            "--memory-overhead",
        ),
    ]


def _attention(spec: WorkloadSpec) -> Assumption:
    """Whether attention stores its scores: FlashAttention-2 needs compute capability 8.0; below it (V100, T4)
    every figure for that GPU counts the scores, whatever the spec says."""
    major, minor = FLASH_ATTENTION_MIN_COMPUTE_CAPABILITY
    option = "--flash-attention / --no-flash-attention"
    if spec.is_flash_attention:
        shown = f"flash attention on cc {major}.{minor}+ GPUs, attention scores stored below"
        return Assumption("attention", "flash", shown, option)
    return Assumption("attention", "eager", "attention scores stored (no flash attention)", option)


def assumptions_of(spec: WorkloadSpec) -> tuple[Assumption, ...]:
    """Every assumption the memory, time and cost figures rest on for this spec."""
    found = [Assumption("precision", precision_of_parts(spec), precision_of_parts(spec), "--precision / --task")]
    units, _ = job_units(spec)  # printed on the job line; here for the JSON and its option
    found.append(Assumption("tokens", units, "", "--tokens"))
    if spec.is_quantised:  # shown in the precision line already; here for the JSON and its option
        parts = list(spec.unquantised_parts)
        found.append(Assumption("unquantised_parts", parts, "", "--skip-modules"))
    if spec.task == "infer":
        found += [
            Assumption("concurrency", spec.concurrency, f"{spec.concurrency} sequence(s) in flight", "--concurrency"),
            Assumption("context", spec.context, f"{spec.context:,} tokens each", "--context"),
            Assumption(
                "bandwidth_efficiency",
                spec.decode_efficiency,
                f"decode at {spec.decode_efficiency:.0%} of memory bandwidth",
                "--decode-efficiency",
            ),
            *_memory_assumptions(spec),
        ]
        return tuple(found)
    if spec.mfu is not None:
        mfu: float | dict[str, float] = spec.mfu
        shown = f"MFU {spec.mfu:.0%}"
    else:
        mfu = dict(DEFAULT_UTILISATION)
        shown = "MFU " + " / ".join(f"{value:.0%} {segment}" for segment, value in DEFAULT_UTILISATION.items())
    found += [
        Assumption("mfu", mfu, shown + " (a bench of the same GPU replaces it)", "--mfu"),
        Assumption("seq_len", spec.seq_len, f"sequence {spec.seq_len:,}", "--seq-len"),
        Assumption("batch", spec.batch, f"micro-batch {spec.batch}", "--batch"),
        Assumption("optimizer", spec.optimizer, spec.optimizer, "--optimizer"),
        Assumption(
            "checkpointing",
            spec.is_checkpointing,
            "activation recomputation" if spec.is_checkpointing else "no recomputation",
            "--checkpointing / --no-checkpointing",
        ),
        Assumption("overlap", spec.overlap, f"{spec.overlap:.0%} of data-parallel comms hidden", "--overlap"),
    ]
    if spec.shape is not None:
        found.append(_attention(spec))
    found += _memory_assumptions(spec)
    if spec.task in ("lora", "qlora"):
        found.append(Assumption("lora_rank", spec.lora_rank, f"LoRA rank {spec.lora_rank}", "--lora-rank"))
    return tuple(found)


def assumptions_line(spec: WorkloadSpec) -> str:
    """The one line the terminal shows."""
    return "assumed: " + "; ".join(a.shown for a in assumptions_of(spec) if a.shown) + " (options: recommend --help)"
