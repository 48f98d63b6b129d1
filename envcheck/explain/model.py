"""What `envcheck explain` concluded: per signature found, the cause chosen (or the candidates in order), the facts
that decided it, and the fix. Frozen records; the renderers read them."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.knowledge.signatures import SignatureCause


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's answer for one signature: a cause id when facts decide it, and what it saw."""

    cause: str | None = None
    because: tuple[str, ...] = ()  # the facts that decided (or ruled out), with their numbers
    fix: str | None = None  # sharper than the cause's own fix: the wheel, the process, the package to change
    decoded: tuple[str, ...] = ()  # numbers read from the text, in words
    evidence: tuple[str, ...] = ()  # Snapshot fact paths used


@dataclass(frozen=True, slots=True)
class Explanation:
    signature: str  # the signature's id
    kind: str  # "environment" or "code"
    title: str
    line_number: int
    quoted_line: str
    occurrences: int
    cause: SignatureCause | None  # None: no fact decides; `candidates` in order
    because: tuple[str, ...]
    fix: str  # the chosen cause's fix (sharpened by the facts), or every candidate's fix in order
    is_fix_specific: bool  # the fix was made for this machine (a wheel, a process, a size), not the cause's general one
    candidates: tuple[SignatureCause, ...]  # every cause in order of likelihood (the chosen one first)
    decoded: tuple[str, ...]
    evidence: tuple[str, ...]
    links: tuple[str, ...]

    @property
    def blames_environment(self) -> bool:
        """A failure of the machine or the install (exit 1), not a bug in the program."""
        return self.kind == "environment" and (self.cause is None or self.cause.blames == "environment")


@dataclass(frozen=True, slots=True)
class ExplainReport:
    explanations: tuple[Explanation, ...]
    input_name: str  # the file, or "standard input"
    input_bytes: int
    input_lines: int
    snapshot_source: str  # "live", the --from file, or "none (--no-probe)"

    @property
    def is_recognised(self) -> bool:
        return bool(self.explanations)

    @property
    def exit_code(self) -> int:
        """1 when an environment failure was recognised; 0 for a code bug or unrecognised text (never a guess)."""
        return 1 if any(explanation.blames_environment for explanation in self.explanations) else 0
