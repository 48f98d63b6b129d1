"""Secrets and the user's home out of what people share: by a variable's name, by the shape of its value (tokens,
URL passwords), and home paths replaced with `~`. Used by the environment probe and on every render of a snapshot."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from envcheck.facts.environment import EnvironmentFacts

REDACTED = "<redacted>"

# A name containing any of these holds a secret (HF_TOKEN, AWS_SECRET_ACCESS_KEY, NCCL_IB_PASS...).
_SECRET_NAME_PARTS = ("TOKEN", "KEY", "SECRET", "PASS", "PWD", "CREDENTIAL", "AUTH")
# Values that are secrets whatever the name: Hugging Face, OpenAI-style, GitHub, Slack and AWS keys, and JWTs.
_TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{8,}"
    r"|github_pat_[A-Za-z0-9_]{8,}|xox[bpas]-[A-Za-z0-9-]{8,}|AKIA[0-9A-Z]{16}"
    r"|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# what follows the userinfo: a host (name, IPv4, [IPv6]) with an optional port, then the end or a path
_HOST = re.compile(r"[A-Za-z0-9._~\[\]-]+(?::[0-9]*)?(?:[/?#]|$)")
_PIECES = re.compile(r"(\s+|[,;])")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in _SECRET_NAME_PARTS)


def _redact_userinfo(piece: str) -> str:
    """`scheme://user:pass@host` or `user:pass@host`, the userinfo everything up to the last `@` (so a password
    may hold `/` and `@`)."""
    match = _SCHEME.match(piece)
    prefix = match.group() if match else ""
    rest = piece[len(prefix) :]
    at = rest.rfind("@")
    if at <= 0 or not _HOST.match(rest[at + 1 :]):
        return piece
    userinfo = rest[:at]
    # after a scheme a bare token counts too (https://TOKEN@host); without one, only user:password
    is_credential = ":" in userinfo or (bool(prefix) and "/" not in userinfo)
    return f"{prefix}{REDACTED}@{rest[at + 1 :]}" if is_credential else piece


def redact_value(name: str, value: str) -> tuple[str, bool]:
    """The value with secrets replaced, and whether anything was replaced."""
    if is_secret_name(name):
        return (REDACTED, True) if value else (value, False)
    redacted = "".join(_redact_userinfo(piece) for piece in _PIECES.split(value))
    redacted = _TOKEN_SHAPES.sub(REDACTED, redacted)
    return redacted, redacted != value


def redact_snapshot(snapshot: Any) -> Any:
    """The snapshot with every environment variable redacted again: a file saved with --no-redact, or by an older
    envcheck, is redacted on every render unless that render asks for --no-redact."""
    environment = snapshot.environment
    if not isinstance(environment, EnvironmentFacts):
        return snapshot
    variables = []
    for variable in environment.variables:
        value, changed = redact_value(variable.name, variable.value)
        variables.append(dataclasses.replace(variable, value=value, is_redacted=variable.is_redacted or changed))
    return dataclasses.replace(
        snapshot, environment=dataclasses.replace(environment, variables=tuple(variables)), is_redacted=True
    )


def _home_pattern(home: str | None) -> re.Pattern[str]:
    prefixes = [r"/home/[^/\s:;,'\"\\]+", r"/Users/[^/\s:;,'\"\\]+", r"/root", r"[A-Za-z]:\\+Users\\+[^\\\s:;,'\"]+"]
    if home and home not in ("/", ""):
        prefixes.insert(0, re.escape(home.rstrip("/")))
    return re.compile(r"(?<![\w./~-])(?:" + "|".join(prefixes) + r")(?=[/\\\s:;,'\"]|$)", re.MULTILINE)


def anonymise_home(text: str, home: str | None = None) -> str:
    """TEXT with the user's home directory (this one's, and /home/<user>, /Users/<user>, /root) shown as `~`."""
    if home is None:
        home = os.environ.get("HOME") or str(Path.home())
    return _home_pattern(home).sub("~", text)
