"""Shared building blocks of the fact model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A fact that could not be collected, with why and (when known) what to do about it."""

    reason: str
    fix: str | None = None


def known(value: T | Unavailable) -> T | None:
    """The value when it was collected, else None (for code that only wants collected values)."""
    return None if isinstance(value, Unavailable) else value
