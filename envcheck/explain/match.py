"""Finds every failure signature in a text (one message, a whole log, a pasted issue): where it first appears,
how often, and the surrounding text its numbers are decoded from. Pure: text in, matches out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from envcheck.importers.runtime_messages import source_line
from envcheck.knowledge.signatures import FailureSignature, SignatureTable

# colours a terminal log may carry ("\x1b[31mRuntimeError\x1b[0m"): matched text must read as plain words
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# how much text around a match its numbers are read from: a traceback names the library above the error, and
# torch's warnings run on for a few wrapped lines below it
CONTEXT_BEFORE = 3000
CONTEXT_AFTER = 3000
# a quoted line starts this close to its match when the line is longer (a whole log on one line)
_QUOTE_LEAD = 60
MAX_QUOTE_CHARS = 240


@dataclass(frozen=True, slots=True)
class Match:
    """One signature found in the text: its first occurrence, quoted, and the text around it."""

    signature: FailureSignature
    line_number: int  # 1-based, of the first occurrence
    quoted_line: str  # that line, control characters escaped, shortened around the match
    occurrences: int  # of all its patterns together
    context: str  # the text around every occurrence's first few, for the decoders


def prepare(text: str) -> str:
    """The text as the patterns see it: terminal colour codes removed, Windows line ends made plain."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.replace("\r\n", "\n") if "\r" in text else text


def quote_line(text: str, start: int, end: int) -> str:
    """The line holding text[start:end], shortened to begin near the match, escaped and on one line."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    lead = ""
    if start - line_start > _QUOTE_LEAD:
        line_start, lead = start - _QUOTE_LEAD // 2, "..."
    line = lead + text[line_start : min(line_end, line_start + 4 * MAX_QUOTE_CHARS)]
    quoted = source_line(line)
    return quoted if len(quoted) <= MAX_QUOTE_CHARS else quoted[: MAX_QUOTE_CHARS - 3] + "..."


def find_signatures(text: str, table: SignatureTable, context_occurrences: int = 3) -> tuple[Match, ...]:
    """Every signature of `table` present in `text`, in the order they first appear."""
    prepared = prepare(text)
    found: list[tuple[int, Match]] = []
    for signature in table.signatures:
        if any(pattern.search(prepared) for pattern in signature.absent):
            continue
        spans: list[tuple[int, int]] = []
        lines: set[int] = set()  # two patterns on one line (the error's type and its words) are one occurrence
        for pattern in signature.patterns:
            for index, hit in enumerate(pattern.finditer(prepared)):
                lines.add(prepared.rfind("\n", 0, hit.start()))
                if index < context_occurrences:
                    spans.append(hit.span())
        if not spans:
            continue
        count = len(lines)
        spans.sort()
        start, end = spans[0]
        context = _context(prepared, spans)
        line_number = prepared.count("\n", 0, start) + 1
        found.append((start, Match(signature, line_number, quote_line(prepared, start, end), count, context)))
    return tuple(match for _, match in sorted(found, key=lambda item: (item[0], item[1].signature.rank)))


def _context(text: str, spans: list[tuple[int, int]]) -> str:
    """The text around the first few occurrences of each pattern (a capability warning printed at start-up and the
    "no kernel image" error hours later both), overlapping windows merged."""
    windows: list[list[int]] = []
    for start, end in spans:  # sorted by start
        low, high = max(0, start - CONTEXT_BEFORE), end + CONTEXT_AFTER
        if windows and low <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], high)
        else:
            windows.append([low, high])
    return "\n".join(text[low:high] for low, high in windows)
