"""What a recommendation assumed that the user did not say, each with the option that changes it.

The terminal shows them in one line, `recommend --json` as a list; docs/recommend.md#assumptions has the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.advise.memory_model import NF4_BITS, WEIGHT_BYTES
from envcheck.advise.time_model import BANDWIDTH_EFFICIENCY, DEFAULT_UTILISATION
from envcheck.advise.workload_spec import WorkloadSpec


@dataclass(frozen=True, slots=True)
class Assumption:
    name: str  # stable key for the JSON: "mfu", "concurrency", ...
    value: str | float | int | bool | dict[str, float]  # what was used
    shown: str  # how the one-line summary says it
    option: str | None  # the option that sets it; None: fixed (documented, not settable)


def precision_of_parts(spec: WorkloadSpec) -> str:
    """Which parts are stored in which precision: QLoRA and GPTQ/AWQ quantise the blocks' linear layers only."""
    if spec.task == "qlora":
        return f"base linear layers NF4 ({NF4_BITS:g} bits), embeddings/lm_head/norms bf16, adapters bf16"
    if spec.task == "infer" and spec.precision in ("int4", "int8"):
        bits = WEIGHT_BYTES[spec.precision] * 8
        return f"linear layers {spec.precision} ({bits:.3g} bits with scales), embeddings/lm_head bf16, KV cache fp16"
    if spec.task == "infer":
        return f"weights {spec.precision}, KV cache fp16"
    if spec.task == "lora":
        return f"base {spec.precision} (frozen), adapters bf16"
    master = "" if spec.precision == "fp32" else ", fp32 master weights"
    return f"weights and gradients {spec.precision}{master}"


def assumptions_of(spec: WorkloadSpec) -> tuple[Assumption, ...]:
    """Every assumption the memory, time and cost figures rest on for this spec."""
    found = [Assumption("precision", precision_of_parts(spec), precision_of_parts(spec), "--precision / --task")]
    if spec.task == "infer":
        found += [
            Assumption("concurrency", spec.concurrency, f"{spec.concurrency} sequence(s) in flight", "--concurrency"),
            Assumption("context", spec.context, f"{spec.context:,} tokens each", "--context"),
            Assumption(
                "bandwidth_efficiency",
                BANDWIDTH_EFFICIENCY,
                f"decode at {BANDWIDTH_EFFICIENCY:.0%} of memory bandwidth",
                None,
            ),
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
    if spec.task in ("lora", "qlora"):
        found.append(Assumption("lora_rank", spec.lora_rank, f"LoRA rank {spec.lora_rank}", "--lora-rank"))
    return tuple(found)


def assumptions_line(spec: WorkloadSpec) -> str:
    """The one line the terminal shows."""
    return "assumed: " + "; ".join(a.shown for a in assumptions_of(spec)) + " (options: recommend --help)"
