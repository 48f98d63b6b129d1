"""The exception types that mean "the user gave bad input", gathered for the CLI's one-line errors."""

from __future__ import annotations


def input_error_types() -> tuple[type[Exception], ...]:
    from envcheck.knowledge import KnowledgeError
    from envcheck.loaders import InputError

    return (InputError, KnowledgeError)
