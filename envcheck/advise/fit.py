"""One judgement of "does this workload fit these GPUs": `recommend --here` and `doctor --profile` both call it.

It uses the GPUs as the job would find them: the compute capability the precision needs, and the memory left
after what other processes already hold, sized by the memory model (per-GPU need under each sharding).
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.advise.memory_model import MemoryEstimate, estimate, fitting_estimate, strategies_for
from envcheck.advise.workload_spec import DTYPE_MIN_COMPUTE_CAPABILITY, WorkloadSpec, on_gpu
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu
from envcheck.knowledge import Knowledge
from envcheck.knowledge.capability import gpu_capability
from envcheck.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Seat:
    """One GPU as a new job finds it."""

    index: int
    name: str
    total_bytes: int  # what one process can allocate: the largest MIG device's memory when MIG is on
    used_bytes: int  # held by other processes already
    compute_capability: tuple[int, int] | None  # None: not known
    capability_note: str = ""  # "inferred from the GeForce RTX 40 family" when the name's family gave it

    @property
    def free_bytes(self) -> int:
        return max(0, self.total_bytes - self.used_bytes)

    @property
    def label(self) -> str:
        return f"GPU {self.index} ({self.name})"


@dataclass(frozen=True, slots=True)
class FitJudgement:
    """The verdict and what it rests on; ``memory`` is under the first sharding that fits (None: none does)."""

    seats: tuple[Seat, ...]
    need_compute_capability: tuple[int, int]
    capable: tuple[Seat, ...]  # meeting the compute capability (or not known: not held against them)
    memory: MemoryEstimate | None
    used: tuple[Seat, ...]  # the GPUs the fitting estimate runs on
    smallest_need_bytes: int  # per GPU, under the sharding that needs least over the capable GPUs

    @property
    def is_capable(self) -> bool:
        return bool(self.capable)

    @property
    def fits(self) -> bool:
        return self.is_capable and self.memory is not None

    @property
    def reason(self) -> str | None:
        """Why it does not fit, with the numbers; None when it fits."""
        if not self.seats:
            return "no GPU with a known memory size"
        if not self.is_capable:
            major, minor = self.need_compute_capability
            groups: dict[tuple[str, tuple[int, int]], list[str]] = {}
            for seat in self.seats:
                if seat.compute_capability is not None:
                    groups.setdefault((seat.name, seat.compute_capability), []).append(str(seat.index))
            found = ", ".join(
                f"GPU {', '.join(indices)} ({name}) {'is' if len(indices) == 1 else 'are'} {cc[0]}.{cc[1]}"
                for (name, cc), indices in groups.items()
            )
            return f"needs compute capability {major}.{minor}+; {found}"
        if self.memory is None:
            pool = self.capable
            roomiest = max(pool, key=lambda seat: seat.free_bytes)
            held = max(seat.used_bytes for seat in pool)
            note = f", other processes hold up to {held / 1e9:.1f} GB per GPU" if held else ""
            return (
                f"needs {self.smallest_need_bytes / 1e9:.1f} GB per GPU over {len(pool)} GPU(s); "
                f"at most {roomiest.free_bytes / 1e9:.1f} GB free on one{note}"
            )
        return None

    @property
    def free_bytes(self) -> int:
        """Per GPU: the least free memory among the GPUs used."""
        return min((seat.free_bytes for seat in self.used), default=0)


def required_compute_capability(spec: WorkloadSpec) -> tuple[int, int]:
    """The compute capability the job needs: its own floor (a profile's, or 7.0 for a job described ad hoc),
    raised to what its precision's units need (bf16: 8.0; int8/int4: 7.5; DTYPE_MIN_COMPUTE_CAPABILITY). The one
    judgement: `recommend` filters catalog GPUs and purchases with it, `--here` and `doctor --profile` seats."""
    return max(spec.min_compute_capability, DTYPE_MIN_COMPUTE_CAPABILITY.get(spec.precision, (0, 0)))


def meets(seat: Seat, need: tuple[int, int]) -> bool:
    return seat.compute_capability is None or seat.compute_capability >= need


def judge_fit(spec: WorkloadSpec, seats: tuple[Seat, ...]) -> FitJudgement:
    """Capable GPUs first; then, from all of them down to the single roomiest, the k GPUs with the most free
    memory and the least-communication sharding whose per-GPU need fits the least free among them. A GPU that
    other processes fill is left out (CUDA_VISIBLE_DEVICES) rather than sinking the whole job."""
    need = required_compute_capability(spec)
    capable = tuple(seat for seat in seats if meets(seat, need))
    pool = capable or seats  # without a capable GPU, memory is still judged, so both reasons are shown
    roomiest = sorted(pool, key=lambda seat: seat.free_bytes, reverse=True)
    memory: MemoryEstimate | None = None
    used: tuple[Seat, ...] = ()
    for count in range(len(roomiest), 0, -1):
        chosen = tuple(roomiest[:count])
        memory = fitting_estimate(on_gpu(spec, _oldest(chosen)), count, chosen[-1].free_bytes)
        if memory is not None:
            used = tuple(sorted(chosen, key=lambda seat: seat.index))
            break
    least = _least_need(on_gpu(spec, _oldest(pool)), len(pool)) if pool else 0
    return FitJudgement(seats, need, capable, memory, used, least)


def _oldest(seats: tuple[Seat, ...] | list[Seat]) -> tuple[int, int] | None:
    """The lowest known compute capability among the GPUs a job runs on: its kernels are the ones every rank has
    (no flash attention on any rank if one is a V100); None when none is known."""
    return min((seat.compute_capability for seat in seats if seat.compute_capability is not None), default=None)


def _least_need(spec: WorkloadSpec, count: int) -> int:
    """The smallest per-GPU memory any sharding over ``count`` GPUs needs (what "needs N GB" reports)."""
    return min(estimate(spec, strategy, count).total_bytes for strategy in strategies_for(spec, count))


def _usable_bytes(gpu: Gpu) -> int | Unavailable:
    if gpu.is_mig_enabled is True and isinstance(gpu.mig_devices, tuple) and gpu.mig_devices:
        sizes = [device.memory_total_bytes for device in gpu.mig_devices if isinstance(device.memory_total_bytes, int)]
        return max(sizes) if sizes else Unavailable("MIG device memory not reported")
    return gpu.memory_total_bytes


def _used_bytes(gpu: Gpu) -> int:
    """Memory other processes hold: their own figures when listed, else the framebuffer's used total."""
    processes = gpu.processes
    if isinstance(processes, tuple) and all(isinstance(p.used_memory_bytes, int) for p in processes):
        return sum(p.used_memory_bytes for p in processes if isinstance(p.used_memory_bytes, int))
    return gpu.memory_used_bytes if isinstance(gpu.memory_used_bytes, int) else 0


def compute_capability_of(
    gpu: Gpu, snapshot: Snapshot, knowledge: Knowledge | None
) -> tuple[tuple[int, int] | None, str]:
    """The GPU's compute capability (from the driver, else the knowledge base by name, else torch) and, when a
    family rule inferred it from the name, that family."""
    text = gpu.compute_capability if isinstance(gpu.compute_capability, str) else None
    if text is None and isinstance(gpu.name, str) and knowledge is not None:
        found = gpu_capability(knowledge, gpu.name)
        if found is not None:
            return found.compute_capability, found.inferred_from
    framework = snapshot.framework
    if text is None and not isinstance(framework, Unavailable) and framework.torch is not None:
        # torch numbers devices in its own order (CUDA_DEVICE_ORDER), so match by name, not index.
        text = next(
            (
                device.compute_capability
                for device in framework.torch.devices
                if device.name == gpu.name and isinstance(device.compute_capability, str)
            ),
            None,
        )
    if text is None:
        return None, ""
    major, _, minor = text.partition(".")
    if major.isdigit() and (minor or "0").isdigit():
        return (int(major), int(minor or 0)), ""
    return None, ""


def seats_of(snapshot: Snapshot, knowledge: Knowledge | None) -> tuple[Seat, ...]:
    """The snapshot's GPUs whose memory is known, as seats (a GPU of unknown size cannot be counted on)."""
    gpu_facts = snapshot.gpu
    if isinstance(gpu_facts, Unavailable):
        return ()
    seats = []
    for gpu in gpu_facts.gpus:
        total = _usable_bytes(gpu)
        if isinstance(total, Unavailable):
            continue
        capability, note = compute_capability_of(gpu, snapshot, knowledge)
        name = gpu.name if isinstance(gpu.name, str) else "unknown GPU"
        seats.append(Seat(gpu.index, name, total, _used_bytes(gpu), capability, note))
    return tuple(seats)
