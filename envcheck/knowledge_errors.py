"""The exception types that mean "the user gave bad input", gathered for the CLI's one-line errors."""

from __future__ import annotations


def input_error_types() -> tuple[type[Exception], ...]:
    from envcheck.loaders import InputError

    types: list[type[Exception]] = [InputError]
    try:
        from envcheck.knowledge import KnowledgeError
    except ImportError:
        pass
    else:
        types.append(KnowledgeError)
    return tuple(types)
