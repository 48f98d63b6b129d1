"""Typed, validated reading of one TOML row: every getter names the file and field when the value is wrong.

Conventions shared by all profiles (docs/data-sources.md): ``"?"`` is a value the sources do not give
(read as ``Unavailable``), ``"n/a"`` a unit the hardware does not have (read as ``None``, never 0).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from typing import NoReturn

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envcheck.facts.common import Unavailable
from envcheck.knowledge.errors import KnowledgeError
from envcheck.knowledge.model import Provenance
from envcheck.validation import MAX_INTEGER, InvalidValue, bounded_count, non_negative_number, quoted

UNKNOWN = "?"
NOT_APPLICABLE = "n/a"
PROVENANCE_FIELDS = ("source", "as_of", "confidence", "note", "verified")


def _show(value: object) -> str:
    return quoted(value)  # one line, escaped and short: a hand-edited file may hold anything


class Row:
    """One table of a profile file (``gpu[12]`` of ``profiles/gpus.toml``) with checked getters."""

    def __init__(self, label: str, where: str, data: object) -> None:
        self.label = label
        self.where = where
        if not isinstance(data, Mapping):
            raise KnowledgeError(f"{label}: {where}: expected a table, got {_show(data)}")
        self.data: Mapping[str, object] = data

    def name(self, key: str) -> str:
        """``profiles/gpus.toml: gpu[12].memory_gb``: the file and the field, for an error."""
        prefix = f"{self.where}." if self.where else ""
        return f"{self.label}: {prefix}{key}"

    def fail(self, key: str, problem: str) -> NoReturn:
        raise KnowledgeError(f"{self.name(key)}: {problem}")

    def only(self, allowed: Iterable[str]) -> None:
        """Reject unknown fields: in hand-edited files they are almost always typos."""
        known = set(allowed) | set(PROVENANCE_FIELDS) | {"verbatim"}
        for key in self.data:
            if key not in known:
                self.fail(key if key.isidentifier() else quoted(key), "unknown field")

    def _get(self, key: str) -> object:
        if key not in self.data:
            self.fail(key, "missing")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {_show(value)}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.data else None

    def version(self, key: str) -> str:
        value = self.text(key)
        try:
            Version(value)
        except InvalidVersion:
            self.fail(key, f"expected a version, got {_show(value)}")
        return value

    def optional_version(self, key: str) -> str | None:
        return self.version(key) if key in self.data else None

    def driver(self, key: str) -> str | Unavailable:
        """A driver version (``525.60.13``), or ``"?"`` when the sources do not give one."""
        if self.data.get(key) == UNKNOWN:
            return Unavailable(f"{self.label} has no verified value for {key} (see the row's note)")
        return self.version(key)

    def optional_driver(self, key: str) -> str | Unavailable | None:
        return self.driver(key) if key in self.data else None

    def specifier(self, key: str) -> str:
        value = self.text(key)
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            self.fail(key, f'expected a version range such as ">=2.4.0,<2.6", got {_show(value)}')
        return value

    def number(self, key: str) -> float:
        """A finite number, 0 or above (TOML's nan and inf, and integers too large for a float, are refused)."""
        try:
            return non_negative_number(self._get(key), self.name(key))
        except InvalidValue as error:
            raise KnowledgeError(str(error)) from None

    def optional_number(self, key: str) -> float | None:
        return self.number(key) if key in self.data else None

    def integer(self, key: str) -> int:
        try:
            return bounded_count(self._get(key), self.name(key), MAX_INTEGER)
        except InvalidValue as error:
            raise KnowledgeError(str(error)) from None

    def optional_integer(self, key: str) -> int | None:
        return self.integer(key) if key in self.data else None

    def measure(self, key: str) -> float | Unavailable:
        """A number, or ``"?"`` (unknown)."""
        if self.data.get(key) == UNKNOWN:
            return Unavailable(f"{self.label} has no verified value for {key}")
        return self.number(key)

    def unit_measure(self, key: str) -> float | Unavailable | None:
        """A number, ``"?"`` (unknown) or ``"n/a"`` (no such unit); 0 is refused: it would read as a measurement."""
        value = self._get(key)
        if value == NOT_APPLICABLE:
            return None
        result = self.measure(key)
        if result == 0:
            self.fail(key, 'expected a positive number, "n/a" (no such unit) or "?" (unknown), got 0')
        return result

    def date(self, key: str) -> datetime.date:
        value = self._get(key)
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            self.fail(key, f"expected a date such as 2026-11-28, got {_show(value)}")
        return value

    def optional_date(self, key: str) -> datetime.date | None:
        return self.date(key) if key in self.data else None

    def texts(self, key: str, pattern: str | None = None, *, required: bool = True) -> tuple[str, ...]:
        if key not in self.data and not required:
            return ()
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, f"expected an array of strings, got {_show(value)}")
        for item in value:
            if pattern and not re.fullmatch(pattern, item):
                self.fail(key, f"unexpected entry {_show(item)}")
        return tuple(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def template(self, key: str, fields: Iterable[str]) -> str:
        """A text with {placeholders}, each one of `fields` (a typo would raise inside a check otherwise)."""
        value = self.text(key)
        for name in re.findall(r"\{([^{}]*)\}", value):
            if name not in fields:
                self.fail(key, f"unknown placeholder {{{name}}} (known: {', '.join(fields)})")
        return value

    def major_minor(self, key: str) -> tuple[int, int]:
        value = self.text(key)
        match = re.fullmatch(r"(\d+)\.(\d+)", value)
        if not match:
            self.fail(key, f'expected a major.minor version such as "12.4", got {_show(value)}')
        return int(match.group(1)), int(match.group(2))

    def count_or_unknown(self, key: str) -> int | Unavailable:
        """A whole number, or ``"?"`` (the sources do not give it)."""
        if self.data.get(key) == UNKNOWN:
            return Unavailable(f"{self.label} has no verified value for {key}")
        return self.integer(key)

    def compute_capability(self, key: str) -> tuple[int, int]:
        value = self.text(key)
        match = re.fullmatch(r"(\d+)\.(\d)", value)
        if not match:
            self.fail(key, f'expected a compute capability such as "8.6", got {_show(value)}')
        return int(match.group(1)), int(match.group(2))

    def verbatim(self) -> tuple[tuple[str, str], ...]:
        value = self.data.get("verbatim", {})
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            self.fail("verbatim", f"expected a table of strings, got {_show(value)}")
        return tuple((str(k), str(v)) for k, v in value.items())

    def provenance(self) -> Provenance:
        """``source`` and ``as_of`` are required on every row: a fact without an origin cannot be checked."""
        return Provenance(
            source=self.text("source"),
            as_of=self.date("as_of"),
            confidence=self.optional_text("confidence") or "ok",
            note=self.optional_text("note"),
            verified=self.optional_text("verified"),
        )
