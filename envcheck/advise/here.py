"""Does the workload fit on this machine (or the one a snapshot describes), and with which settings?"""

from __future__ import annotations

from dataclasses import dataclass, replace

from envcheck.advise.fit import FitJudgement, judge_fit, seats_of
from envcheck.advise.memory_model import MemoryEstimate
from envcheck.advise.recommend import job_time
from envcheck.advise.time_model import JobTime, Measured
from envcheck.advise.workload_spec import WorkloadSpec
from envcheck.facts.common import Unavailable
from envcheck.knowledge import Knowledge
from envcheck.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class HereResult:
    gpu_name: str | None  # None: no usable GPU in the snapshot
    gpu_count: int
    gpu_memory_bytes: int  # the smallest GPU's, since every rank needs room
    no_gpu_reason: str | None
    memory: MemoryEstimate | None  # under the first settings that fit; None if none does
    settings: str  # what had to change ("as given", "--checkpointing --batch 1", ...)
    job_time: JobTime | None
    as_given: FitJudgement | None = None  # the judgement `doctor --profile` makes too (advise/fit.py)

    @property
    def used_bytes(self) -> int:
        """The most memory other processes hold on any one GPU."""
        return max((seat.used_bytes for seat in self.as_given.seats), default=0) if self.as_given else 0


def _adjustments(spec: WorkloadSpec) -> list[tuple[str, WorkloadSpec]]:
    """Settings to try, least intrusive first: as given, recompute activations, smaller batches, QLoRA."""
    tries = [("as given", spec)]
    if spec.task == "infer":
        concurrency = spec.concurrency
        while concurrency > 1:
            concurrency //= 2
            tries.append((f"--concurrency {concurrency}", replace(spec, concurrency=concurrency)))
        return tries
    base = spec
    if not spec.is_checkpointing and spec.shape is not None:
        base = replace(spec, is_checkpointing=True)
        tries.append(("--checkpointing", base))
    batch = spec.batch
    while batch > 1:
        batch //= 2
        flag = "--checkpointing " if base.is_checkpointing and not spec.is_checkpointing else ""
        tries.append((f"{flag}--batch {batch}", replace(base, batch=batch)))
    if spec.task in ("train", "finetune", "lora") and spec.shape is not None:
        tries.append(("--task qlora", replace(base, task="qlora", precision="int4", lora_rank=64, batch=1)))
    return tries


def recommend_here(
    spec: WorkloadSpec, snapshot: Snapshot, knowledge: Knowledge, measured: Measured = None
) -> HereResult:
    gpu_facts = snapshot.gpu
    if isinstance(gpu_facts, Unavailable):
        return HereResult(None, 0, 0, f"GPU facts unavailable: {gpu_facts.reason}", None, "", None)
    seats = seats_of(snapshot, knowledge)
    if not seats:
        return HereResult(None, 0, 0, gpu_facts.no_gpu_reason or "no GPU with a known memory size", None, "", None)
    name, memory_bytes, count = seats[0].name, min(seat.total_bytes for seat in seats), len(seats)
    as_given = judge_fit(spec, seats)
    for label, candidate in _adjustments(spec):
        judgement = as_given if label == "as given" else judge_fit(candidate, seats)
        if judgement.fits and judgement.memory is not None:
            gpu = knowledge.gpu_by_name(judgement.used[0].name)
            timing = None if gpu is None else job_time(candidate, gpu, judgement.memory, measured)
            return HereResult(name, count, memory_bytes, None, judgement.memory, label, timing, as_given)
    return HereResult(name, count, memory_bytes, None, None, "", None, as_given)
