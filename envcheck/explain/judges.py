"""The judges' registry and what they share: one judge per failure signature decodes the numbers of its message and
picks the cause the Snapshot's facts show (judges_gpu.py: CUDA, drivers and GPUs; judges_runtime.py: installs,
libraries, processes and the network).

A judge returns a Verdict: a cause id only when a fact decides it, and always the numbers it read. Where no fact
decides, the engine lists the signature's causes in order; where one of a cause's checks warns, that settles it
(envcheck.explain.engine). The judgement reuses the checks' own rules: arch support, driver minimums, wheels.
"""

from __future__ import annotations

from collections.abc import Callable

from packaging.version import InvalidVersion, Version

from envcheck.explain import decode
from envcheck.explain.context import PROBLEMS, Context
from envcheck.explain.model import Verdict
from envcheck.facts.common import known
from envcheck.facts.framework import TorchFacts
from envcheck.finding import Finding

Judge = Callable[[Context], Verdict]
JUDGES: dict[str, Judge] = {}


def judge(signature_id: str) -> Callable[[Judge], Judge]:
    def register(function: Judge) -> Judge:
        JUDGES[signature_id] = function
        return function

    return register


def torch_of(context: Context) -> TorchFacts | None:
    framework = known(context.snapshot.framework)
    return framework.torch if framework else None


def version_of(text: str | None) -> Version | None:
    try:
        return Version(text.split("+", 1)[0]) if text else None
    except InvalidVersion:
        return None


def system_value(context: Context, name: str) -> object:
    system = known(context.snapshot.system)
    return None if system is None else known(getattr(system, name))


def physical_gpu(context: Context, index: int) -> int | None:
    """The nvidia-smi index of the GPU torch calls `index`: CUDA_VISIBLE_DEVICES renumbers them (None: a UUID there,
    or an index past its list). Without the variable (or the environment's facts) the numbers are the same."""
    value = context.variable("CUDA_VISIBLE_DEVICES")
    if value is None:
        return index
    listed = [part.strip() for part in value.split(",") if part.strip()]
    return int(listed[index]) if index < len(listed) and listed[index].isdigit() else None


def processes_on(context: Context, index: int | None) -> Finding | None:
    """gpu.other_processes' warning for the GPU the message names (any GPU when the message names none)."""
    problems = [f for f in context.findings("gpu.other_processes") if f.severity in PROBLEMS]
    physical = physical_gpu(context, index) if index is not None else None
    if physical is None:
        return problems[0] if problems else None
    return next((f for f in problems if f"gpu.gpus[{physical}].processes" in f.evidence), None)


def error_code_words(context: Context) -> tuple[str, ...]:
    return tuple(
        f"error {c.code} = {c.name}: {c.meaning}" for c in decode.error_codes(context.match.context, context.table)
    )


def shm_of(context: Context) -> tuple[int | None, int | None]:
    storage = known(context.snapshot.storage)
    if storage is None:
        return None, None
    return known(storage.shm_total_bytes), known(storage.shm_free_bytes)


def all_judges() -> dict[str, Judge]:
    """Every judge, by signature id; importing the judge modules registers them."""
    from envcheck.explain import judges_gpu, judges_runtime  # noqa: F401

    return JUDGES
