"""The failure signatures `envcheck explain` recognises (profiles/failure_signatures.toml), typed and validated:
each signature's literal patterns, its candidate causes with their fixes, and the facts that tell them apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from envcheck.knowledge.errors import KnowledgeError
from envcheck.knowledge.loader import _read, profiles_root
from envcheck.knowledge.model import Provenance
from envcheck.knowledge.rows import Row

KINDS = ("environment", "code")
BLAMES = ("environment", "code")
RELATIVE = "failure_signatures.toml"
# A pattern opens with the real message's own words, so it can never match in the middle of unrelated text and the
# regex engine can skip ahead on its literal prefix: at least three letters, digits, spaces or `_` / `(?i:` first.
_LITERAL_START = re.compile(r"^(?:\(\?i:)?[\w\[\\ ]{3}")
_SPACE = re.compile(r"(?<!\\) ")
_ID = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """A CUDA runtime error number as messages print it (``Error 802: ...``) and what it means."""

    code: int
    name: str  # cudaErrorSystemNotReady
    message: str  # what cudaGetErrorString says: "system not yet initialized"
    meaning: str


@dataclass(frozen=True, slots=True)
class SignatureCause:
    id: str
    title: str
    fix: str
    facts: tuple[str, ...]  # Snapshot fields (or text.<number>) that show this cause
    checks: tuple[str, ...]  # check ids whose warning or failure confirms it
    blames: str  # "environment" or "code"


@dataclass(frozen=True, slots=True)
class FailureSignature:
    id: str
    rank: int
    kind: str  # "environment" or "code"
    title: str
    patterns: tuple[re.Pattern[str], ...]
    absent: tuple[re.Pattern[str], ...]  # the signature is not reported when one of these is in the text
    facts: tuple[str, ...]
    links: tuple[str, ...]
    causes: tuple[SignatureCause, ...]
    provenance: Provenance

    def cause(self, cause_id: str) -> SignatureCause:
        return next(cause for cause in self.causes if cause.id == cause_id)


@dataclass(frozen=True, slots=True)
class SignatureTable:
    signatures: tuple[FailureSignature, ...]
    error_codes: tuple[ErrorCode, ...]

    def error_code(self, code: int) -> ErrorCode | None:
        return next((entry for entry in self.error_codes if entry.code == code), None)

    def error_code_named(self, name: str) -> ErrorCode | None:
        return next((entry for entry in self.error_codes if entry.name == name), None)


def _patterns(row: Row, key: str, *, required: bool = True) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for text in row.texts(key, required=required):
        if not _LITERAL_START.match(text):
            row.fail(key, f"{text!r} must start with the message's literal words")
        try:
            # a space stands for any run of whitespace: terminals, log shippers and issue pastes wrap messages
            pattern = re.compile(_SPACE.sub(r"\\s+", text))
        except re.error as error:
            row.fail(key, f"{text!r} is not a regular expression: {error}")
        if pattern.search("") is not None:
            row.fail(key, f"{text!r} matches empty text")
        compiled.append(pattern)
    if required and not compiled:
        row.fail(key, "at least one pattern is needed")
    return tuple(compiled)


def _cause(row: Row) -> SignatureCause:
    row.only(("id", "title", "fix", "facts", "checks", "blames"))
    blames = row.optional_text("blames") or "environment"
    if blames not in BLAMES:
        row.fail("blames", f"expected one of {', '.join(BLAMES)}")
    return SignatureCause(
        id=_identifier(row, "id", r"[a-z][a-z0-9_]*"),
        title=row.text("title"),
        fix=row.text("fix"),
        facts=row.texts("facts"),
        checks=row.texts("checks", _ID, required=False),
        blames=blames,
    )


def _identifier(row: Row, key: str, pattern: str) -> str:
    value = row.text(key)
    if not re.fullmatch(pattern, value):
        row.fail(key, f"{value!r} is not an identifier of the form {pattern}")
    return value


def _signature(row: Row, provenance: Provenance) -> FailureSignature:
    row.only(("id", "rank", "kind", "title", "patterns", "absent", "facts", "links", "cause"))
    kind = row.text("kind")
    if kind not in KINDS:
        row.fail("kind", f"expected one of {', '.join(KINDS)}")
    causes_data = row.data.get("cause")
    if not isinstance(causes_data, list) or not causes_data:
        row.fail("cause", "expected a non-empty array of tables [[signature.cause]]")
    causes = tuple(_cause(Row(row.label, f"{row.where}.cause[{i}]", data)) for i, data in enumerate(causes_data))
    ids = [cause.id for cause in causes]
    if len(set(ids)) != len(ids):
        row.fail("cause", f"cause ids repeat: {', '.join(ids)}")
    links = row.texts("links", r"https?://\S+")
    if not links:
        row.fail("links", "every signature needs at least one source link")
    return FailureSignature(
        id=_identifier(row, "id", _ID),
        rank=row.integer("rank"),
        kind=kind,
        title=row.text("title"),
        patterns=_patterns(row, "patterns"),
        absent=_patterns(row, "absent", required=False),
        facts=row.texts("facts"),
        links=links,
        causes=causes,
        provenance=provenance,
    )


def _error_code(row: Row) -> ErrorCode:
    row.only(("code", "name", "message", "meaning"))
    name = _identifier(row, "name", r"cudaError\w+")
    return ErrorCode(row.integer("code"), name, row.text("message"), row.text("meaning"))


def _load(root: Path) -> SignatureTable:
    label = f"{root.name}/{RELATIVE}"
    document = _read(root / RELATIVE, label)
    top = Row(label, "", {key: value for key, value in document.items() if key in ("source", "as_of")})
    provenance = top.provenance()
    unknown = sorted(set(document) - {"source", "as_of", "signature", "error_code"})
    if unknown:
        raise KnowledgeError(f"{label}: {unknown[0]}: unknown field")
    rows = document.get("signature")
    if not isinstance(rows, list) or not rows:
        raise KnowledgeError(f"{label}: signature: expected a non-empty array of tables [[signature]]")
    signatures = tuple(_signature(Row(label, f"signature[{i}]", data), provenance) for i, data in enumerate(rows))
    codes_data = document.get("error_code", [])
    if not isinstance(codes_data, list):
        raise KnowledgeError(f"{label}: error_code: expected an array of tables [[error_code]]")
    codes = tuple(_error_code(Row(label, f"error_code[{i}]", data)) for i, data in enumerate(codes_data))
    for kind, keys in (("signature", [s.id for s in signatures]), ("error_code", [str(c.code) for c in codes])):
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise KnowledgeError(f"{label}: {kind}: {repeated[0]} appears twice")
    return SignatureTable(signatures, codes)


@lru_cache(maxsize=1)
def _default() -> SignatureTable:
    return _load(profiles_root())


def load_signatures(root: Path | None = None) -> SignatureTable:
    """The shipped failure signatures (read once per process), or those under ``root``."""
    return _default() if root is None else _load(root)
