"""What a judge sees: the signature found, the text around it, the Snapshot (as collected, and with torch's messages
from the text merged in), the knowledge base, and the checks' findings by id."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cached_property

from envcheck.checks.registry import CheckInput, all_checks
from envcheck.explain.match import Match
from envcheck.facts.common import Unavailable, known
from envcheck.facts.messages import RuntimeMessages
from envcheck.finding import Finding, Severity
from envcheck.importers.runtime_messages import read_messages
from envcheck.knowledge.model import Knowledge
from envcheck.knowledge.signatures import SignatureTable
from envcheck.snapshot import SECTIONS, Snapshot

PROBLEMS = (Severity.WARN, Severity.FAIL)


def merge_messages(first: RuntimeMessages, second: RuntimeMessages) -> RuntimeMessages:
    """`first`'s messages, with `second`'s wherever `first` has none."""
    changes = {}
    for item in fields(RuntimeMessages):
        mine, theirs = getattr(first, item.name), getattr(second, item.name)
        if not mine and theirs:
            changes[item.name] = theirs
    return replace(first, **changes)


@dataclass
class Context:
    match: Match
    snapshot: Snapshot
    knowledge: Knowledge | None
    table: SignatureTable
    others: tuple[Match, ...]  # every signature found in the text, this one included
    _findings: dict[tuple[str, bool], tuple[Finding, ...]] = field(default_factory=dict, repr=False)

    @cached_property
    def messages(self) -> RuntimeMessages:
        """torch's warnings and errors in the text around the match, decoded by the collect_env importer's reader."""
        return read_messages(self.match.context)

    @cached_property
    def with_messages(self) -> Snapshot:
        """The Snapshot with the text's messages merged in: the checks then read the pasted words as facts."""
        return replace(self.snapshot, messages=merge_messages(self.snapshot.messages, self.messages))

    def given(self, *, with_text: bool = False) -> CheckInput:
        """What the checks are given: the Snapshot (with the text's messages when `with_text`) and the knowledge."""
        return CheckInput(self.with_messages if with_text else self.snapshot, knowledge=self.knowledge)

    def findings(self, check_id: str, *, with_text: bool = False) -> tuple[Finding, ...]:
        """The findings of one registered check on the Snapshot (with the text's messages when `with_text`)."""
        key = (check_id, with_text)
        if key not in self._findings:
            registered = next(check for check in all_checks() if check.id == check_id)
            self._findings[key] = tuple(registered.run(self.given(with_text=with_text)))
        return self._findings[key]

    def problem(self, check_id: str, *, with_text: bool = False) -> Finding | None:
        """The check's first warning or failure, None when it passed or skipped."""
        return next((f for f in self.findings(check_id, with_text=with_text) if f.severity in PROBLEMS), None)

    def passed(self, check_id: str) -> Finding | None:
        return next((f for f in self.findings(check_id) if f.severity is Severity.OK), None)

    def has_signature(self, signature_id: str) -> bool:
        return any(other.signature.id == signature_id for other in self.others)

    @property
    def is_collected(self) -> bool:
        """Some section of the Snapshot was collected (not a --no-probe run)."""
        return any(not isinstance(getattr(self.snapshot, name), Unavailable) for name in SECTIONS)

    def variable(self, name: str) -> str | None:
        environment = known(self.snapshot.environment)
        if environment is None:
            return None
        return next((v.value for v in environment.variables if v.name == name), None)

    def package(self, name: str) -> str | None:
        python = known(self.snapshot.python)
        if python is None:
            return None
        return next((p.version for p in python.packages if p.name == name), None)
