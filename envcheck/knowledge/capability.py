"""A GPU's compute capability from its name: the spec table's row, else a family's listed name, else a family rule.

The CUDA checks need only the capability, and NVIDIA sells far more GPUs than gpus.toml has specifications for;
profiles/gpu_capabilities.toml covers the rest, and a name found only by a family's rule is marked inferred so
that findings can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envcheck.knowledge.model import GpuFamily, Knowledge, normalise_gpu_name

# collect_env and `nvidia-smi -L` print "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-...)"
_LISTING_PREFIX = re.compile(r"^gpu\s*\d+\s*:\s*")
_UUID_SUFFIX = re.compile(r"\s*\(uuid:[^)]*\)?\s*$")


@dataclass(frozen=True, slots=True)
class GpuCapability:
    """The compute capability a GPU name resolves to, and how it was found."""

    compute_capability: tuple[int, int]
    family: str  # the gpus.toml row's name, or the family's ("GeForce RTX 50")
    architecture: str
    source: str
    is_inferred: bool  # found by a family rule, not by a listed name

    @property
    def dotted(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def inferred_from(self) -> str:
        """``inferred from the GeForce RTX 50 family`` (empty when the name is listed)."""
        return f"inferred from the {self.family} family" if self.is_inferred else ""

    @property
    def inferred_note(self) -> str:
        """``compute capability 12.0, inferred from the GeForce RTX 50 family`` (empty when the name is listed)."""
        return f"compute capability {self.dotted}, {self.inferred_from}" if self.is_inferred else ""


def fold_gpu_name(name: str) -> str:
    """The form names are compared in: ``normalise_gpu_name`` without a listing's "GPU 0: " and UUID."""
    folded = normalise_gpu_name(name)
    folded = _UUID_SUFFIX.sub("", _LISTING_PREFIX.sub("", folded))
    return normalise_gpu_name(folded)


def gpu_capability(knowledge: Knowledge, name: str) -> GpuCapability | None:
    """What ``name`` resolves to: a gpus.toml row, a family's listed name, a family's rule; None: not NVIDIA's."""
    folded = fold_gpu_name(name)
    spec = knowledge.gpu_by_name(folded)
    if spec is not None:
        return GpuCapability(
            spec.compute_capability, spec.name, spec.architecture, spec.provenance.source, is_inferred=False
        )
    listed = next((f for f in knowledge.gpu_families if any(fold_gpu_name(n) == folded for n in f.names)), None)
    if listed is not None:
        return _of(listed, is_inferred=False)
    ruled = family_by_rule(knowledge, folded)
    return _of(ruled, is_inferred=True) if ruled else None


def family_by_rule(knowledge: Knowledge, name: str) -> GpuFamily | None:
    """The first family (file order) whose rule finds ``name``."""
    folded = fold_gpu_name(name)
    return next((f for f in knowledge.gpu_families if f.rule.search(folded)), None)


def _of(family: GpuFamily, *, is_inferred: bool) -> GpuCapability:
    return GpuCapability(
        family.compute_capability, family.family, family.architecture, family.provenance.source, is_inferred
    )
