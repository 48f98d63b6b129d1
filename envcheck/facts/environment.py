"""Facts about the environment variables that change how ML code behaves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    name: str
    value: str  # "<redacted>" (whole or in part) when it held a secret and redaction is on
    is_redacted: bool


@dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    variables: tuple[EnvironmentVariable, ...]
