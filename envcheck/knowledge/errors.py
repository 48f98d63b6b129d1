"""The one error the knowledge layer raises: a profile file that is missing, unreadable or malformed."""

from __future__ import annotations


class KnowledgeError(ValueError):
    """A profile that cannot be used, with a one-line message naming the file and the field.

    Example: ``profiles/gpus.toml: gpu[12].memory_gb: expected a number, got "16 or 32"``.
    """
