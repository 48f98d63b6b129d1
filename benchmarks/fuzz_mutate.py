"""Deterministic mutations of valid input files: bytes, and the structure of JSON, TOML, CSV, XML and text.

Every mutator takes the valid bytes and a seeded `random.Random` and returns the mutated bytes plus a label that
says what it did (the label goes into the fuzz report and the reproducer). The same seed gives the same bytes on
every machine: only the stdlib's Mersenne Twister drives the choices, never hashing or the clock.

The hostile values are those that broke envcheck before (issue 15): integers past float range, infinities and
NaN, zero and denormals, negatives, control characters (terminal escapes), wrong types, missing keys,
500-deep nesting and very long strings.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable
from typing import Any

HUGE_INT_TEXT = "1" + "0" * 400  # 10**400: past float range, so int -> float conversions overflow
DEEP = 500  # levels of nesting: enough to exhaust a recursive parser or walker, 1 KB of text
LONG = 100_000  # characters of a "very long string"
MAX_FILE_BYTES = 24 * 1024 * 1024  # mutated files are cut here: big enough to find runaways, small for the disk


def _fitting(times: int, unit_bytes: int) -> int:
    """At most `times` copies of a `unit_bytes` piece that still fit in MAX_FILE_BYTES: multiplying an
    already large file first and cutting after ran the fuzzing parent out of memory (24 GB)."""
    return max(1, min(times, MAX_FILE_BYTES // max(1, unit_bytes)))


ESCAPES = "line1\nline2\r\x1b[2J\x1b]0;title\x07\x00\x08tail"

# Hostile values as each format writes them. (label, literal text)
JSON_VALUES = (
    ("huge-int", HUGE_INT_TEXT),
    ("1e999", "1e999"),
    ("-1e999", "-1e999"),
    ("Infinity", "Infinity"),
    ("NaN", "NaN"),
    ("-1", "-1"),
    ("0", "0"),
    ("0.0", "0.0"),
    ("1e-320", "1e-320"),
    ("escapes", json.dumps(ESCAPES)),
    ("list", "[1, 2, 3]"),
    ("dict", '{"a": 1}'),
    ("null", "null"),
    ("true", "true"),
    ("empty-string", '""'),
    ("numeric-string", '"12"'),
    ("deep-list", "[" * DEEP + "]" * DEEP),
    ("deep-dict", '{"a":' * DEEP + "1" + "}" * DEEP),
    ("long-string", json.dumps("x" * LONG)),
)
TOML_VALUES = (
    ("huge-int", HUGE_INT_TEXT),
    ("1e999", "1e999"),
    ("inf", "inf"),
    ("-inf", "-inf"),
    ("nan", "nan"),
    ("-1", "-1"),
    ("0", "0"),
    ("0.0", "0.0"),
    ("1e-320", "1e-320"),
    ("escapes", json.dumps(ESCAPES)),  # a JSON string is a valid TOML basic string
    ("list", "[1, 2, 3]"),
    ("inline-table", "{ a = 1 }"),
    ("true", "true"),
    ("date", "1979-05-27"),
    ("empty-string", '""'),
    ("numeric-string", '"12"'),
    ("deep-list", "[" * DEEP + "]" * DEEP),
    ("long-string", json.dumps("x" * LONG)),
)
TEXT_VALUES = (
    ("huge-int", HUGE_INT_TEXT),
    ("1e999", "1e999"),
    ("inf", "inf"),
    ("nan", "nan"),
    ("-1", "-1"),
    ("0", "0"),
    ("1e-320", "1e-320"),
    ("escapes", ESCAPES.replace("\n", " ")),
    ("empty", ""),
    ("N/A", "N/A"),
    ("json", '{"a": [1, 2]}'),
    ("deep", "[" * DEEP + "]" * DEEP),
    ("long-string", "x" * LONG),
    ("unicode", "\u202e\ufeff\U0001f600 \u00e9"),
)

Mutator = Callable[[bytes, random.Random], tuple[bytes, str]]


# --- bytes: any format -------------------------------------------------------------------------------------------


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buffer = bytearray(data or b"\0")
    count = rng.randint(1, 8)
    for _ in range(count):
        buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    return bytes(buffer), f"flip {count} bits"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.randrange(len(data) + 1)
    return data[:cut], f"truncate at {cut}"


def delete_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    start = rng.randrange(len(data) + 1)
    end = min(len(data), start + rng.randint(1, 64))
    return data[:start] + data[end:], f"delete bytes {start}:{end}"


def duplicate_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    start = rng.randrange(len(data) + 1)
    end = min(len(data), start + rng.randint(1, 256))
    times = _fitting(rng.choice((1, 2, 10, 1000)), end - start)
    return data[:end] + data[start:end] * times + data[end:], f"duplicate bytes {start}:{end} x{times}"


def insert_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data) + 1)
    junk = rng.choice((b"\x00", b"\xff\xfe", b"\x1b[2J", b"\xef\xbb\xbf", b"\r\n", b"\xc3\x28", bytes(range(32))))
    return data[:at] + junk + data[at:], f"insert {junk!r} at {at}"


def repeat_whole(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    times = _fitting(rng.choice((2, 3, 50)), len(data))
    return data * times, f"whole file x{times}"


BYTE_MUTATORS: tuple[Mutator, ...] = (flip_bytes, truncate, delete_range, duplicate_range, insert_bytes, repeat_whole)


# --- JSON ---------------------------------------------------------------------------------------------------------


class _Raw:
    """A literal to write into JSON as is (1e999, NaN, 10**400 digits): json.dumps cannot spell them."""

    def __init__(self, text: str) -> None:
        self.text = text


def _dump(value: Any) -> str:
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    return json.dumps(value)


def _containers(value: Any, path: str = "$") -> list[tuple[Any, Any, str]]:
    """Every (container, key or index, path) in a parsed JSON tree, depth first."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((value, key, f"{path}.{key}"))
            found.extend(_containers(child, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((value, index, f"{path}[{index}]"))
            found.extend(_containers(child, f"{path}[{index}]"))
    return found


def mutate_json(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Replace, delete or multiply one node of the document; a document that does not parse gets bytes mutated.

    A document nested too deep for this (recursive) mutator, after an earlier deep-nesting mutation, gets bytes
    mutated too: the recursion limit is left alone, because the forked cases inherit it.
    """
    try:
        return _mutate_json_tree(json.loads(data), rng)
    except (ValueError, RecursionError):
        return rng.choice(BYTE_MUTATORS)(data, rng)


def _mutate_json_tree(document: Any, rng: random.Random) -> tuple[bytes, str]:
    slots = _containers(document)
    if not slots:
        label, text = rng.choice(JSON_VALUES)
        return text.encode(), f"whole document -> {label}"
    container, key, path = rng.choice(slots)
    action = rng.random()
    if action < 0.15:
        del container[key]
        return _dump(document).encode(), f"delete {path}"
    if action < 0.22 and isinstance(container, list):
        piece = len(_dump(container[key]))
        times = _fitting(rng.choice((100, 5000)) if piece < 1000 else 20, piece)  # files stay below ~5 MB
        container.extend([container[key]] * times)
        return _dump(document).encode(), f"{path} repeated x{times}"
    label, text = rng.choice(JSON_VALUES)
    container[key] = _Raw(text)
    return _dump(document).encode(), f"{path} -> {label}"


# --- TOML (line-wise, so that comments, tables and arrays of tables keep their layout) ----------------------------

_TOML_ASSIGNMENT = re.compile(rb"^(\s*[A-Za-z0-9_.\"'-]+\s*=\s*)(.+)$", re.MULTILINE)
_TOML_TABLE_BLOCK = re.compile(rb"^\[\[[^\]]+\]\]\n(?:(?!\[).*\n?)*", re.MULTILINE)


def mutate_toml(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    assignments = list(_TOML_ASSIGNMENT.finditer(data))
    if not assignments:
        return rng.choice(BYTE_MUTATORS)(data, rng)
    match = rng.choice(assignments)
    key = match.group(1).split(b"=")[0].strip().decode("utf-8", "replace")
    action = rng.random()
    if action < 0.15:
        return data[: match.start()] + data[match.end() :], f"delete {key}"
    if action < 0.2:
        return data[: match.end()] + b"\n" + match.group(0) + data[match.end() :], f"duplicate {key}"
    if action < 0.27:
        blocks = list(_TOML_TABLE_BLOCK.finditer(data))
        if blocks:
            block = rng.choice(blocks)
            times = max(1, min(rng.choice((100, 3000)), MAX_FILE_BYTES // 2 // max(1, len(block.group(0)))))
            return data[: block.end()] + b"\n" + block.group(0) * times + data[block.end() :], f"table x{times}"
    label, text = rng.choice(TOML_VALUES)
    return data[: match.start(2)] + text.encode() + data[match.end(2) :], f"{key} -> {label}"


# --- CSV ----------------------------------------------------------------------------------------------------------


def mutate_csv(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return rng.choice(BYTE_MUTATORS)(data, rng)
    if len(rows) < 2:
        return rng.choice(BYTE_MUTATORS)(data, rng)
    header, body = rows[0], rows[1:]
    action = rng.random()
    if action < 0.1:
        column = rng.randrange(len(header))
        rows = [row[:column] + row[column + 1 :] for row in rows]
        label = f"drop column {header[column]}"
    elif action < 0.17:
        times = _fitting(rng.choice((100, 20000)), len(data))
        rows = [header, *body * times]
        label = f"rows x{times}"
    elif action < 0.22:
        row = rng.randrange(1, len(rows))
        rows[row] = rows[row][: rng.randrange(len(rows[row]) + 1)]
        label = f"short row {row}"
    else:
        row = rng.randrange(1, len(rows))
        column = rng.randrange(len(rows[row])) if rows[row] else 0
        cell = rows[row][column] if rows[row] else ""
        if cell.startswith(("{", "[")):  # SkyPilot's GpuInfo holds JSON: mutate it as JSON
            mutated, what = mutate_json(cell.encode(), rng)
            value, label = mutated.decode("utf-8", "replace"), f"row {row} {header[column]} JSON: {what}"
        else:
            what, value = rng.choice(TEXT_VALUES)
            label = f"row {row} {header[column] if column < len(header) else column} -> {what}"
        if rows[row]:
            rows[row][column] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode(), label


# --- XML (text-wise: values, elements, nesting, entities) ---------------------------------------------------------

_XML_LEAF = re.compile(rb"<([A-Za-z_][\w.-]*)>([^<]*)</\1>")
_XML_GPU = re.compile(rb"<gpu [^>]*>.*?</gpu>", re.DOTALL)


def _xml_escape(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8", "replace")


def mutate_xml(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    leaves = list(_XML_LEAF.finditer(data))
    action = rng.random()
    if action < 0.05:
        gpus = list(_XML_GPU.finditer(data))
        if gpus:
            gpu = rng.choice(gpus)
            times = _fitting(rng.choice((50, 2000)), len(gpu.group(0)))
            return data[: gpu.end()] + gpu.group(0) * times + data[gpu.end() :], f"<gpu> x{times}"
    if action < 0.08:
        at = data.find(b"<nvidia_smi_log>")
        if at >= 0:
            deep = b"<a>" * DEEP + b"</a>" * DEEP
            return data[: at + 16] + deep + data[at + 16 :], f"{DEEP}-deep elements"
    if action < 0.1:
        entity = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        return data.replace(b"<nvidia_smi_log>", entity + b"<nvidia_smi_log>&e;", 1), "external entity"
    if not leaves:
        return rng.choice(BYTE_MUTATORS)(data, rng)
    leaf = rng.choice(leaves)
    tag = leaf.group(1).decode()
    if action < 0.2:
        return data[: leaf.start()] + data[leaf.end() :], f"delete <{tag}>"
    if action < 0.25:
        return data[: leaf.end()] + leaf.group(0) * 3 + data[leaf.end() :], f"<{tag}> x3"
    label, value = rng.choice(TEXT_VALUES)
    return data[: leaf.start(2)] + _xml_escape(value) + data[leaf.end(2) :], f"<{tag}> -> {label}"


# --- line-oriented text (collect_env output) ----------------------------------------------------------------------


def mutate_text(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    row = rng.randrange(len(lines))
    action = rng.random()
    if action < 0.15:
        del lines[row]
        return b"\n".join(lines), f"delete line {row + 1}"
    if action < 0.22:
        times = _fitting(rng.choice((3, 1000)), len(lines[row]))
        lines[row:row] = [lines[row]] * times
        return b"\n".join(lines), f"line {row + 1} x{times}"
    if action < 0.27:
        return data.replace(b"\n", b"\r\n"), "CRLF"
    label, value = rng.choice(TEXT_VALUES)
    head, colon, _ = lines[row].partition(b":")
    lines[row] = head + colon + b" " + value.encode("utf-8") if colon else value.encode("utf-8")
    return b"\n".join(lines), f"line {row + 1} value -> {label}"


STRUCTURE_MUTATORS: dict[str, Mutator] = {
    "json": mutate_json,
    "toml": mutate_toml,
    "csv": mutate_csv,
    "xml": mutate_xml,
    "text": mutate_text,
}


def mutate(data: bytes, syntax: str, rng: random.Random) -> tuple[bytes, tuple[str, ...]]:
    """1 to 3 stacked mutations: mostly structure-aware for `syntax` (json, toml, csv, xml, text), some bytes."""
    labels = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutator = STRUCTURE_MUTATORS[syntax] if rng.random() < 0.75 else rng.choice(BYTE_MUTATORS)
        data, label = mutator(data, rng)
        labels.append(label)
        if len(data) > MAX_FILE_BYTES:
            data = data[:MAX_FILE_BYTES]
            labels.append(f"cut to {MAX_FILE_BYTES} bytes")
    return data, tuple(labels)
