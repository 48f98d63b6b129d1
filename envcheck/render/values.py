"""Turns fact values into display text, by the unit in the field's name; shared by every renderer."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from envcheck.facts.common import Unavailable
from envcheck.units import format_bytes, format_duration

# C0/C1 control characters (ESC starts terminal escapes) and the bidi overrides that reorder text on screen
# rates whose field names end in _s like durations: speed_mbit_s, rate_gbit_s
_RATE_UNITS = {"mbit": "Mb/s", "gbit": "Gb/s"}
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """TEXT with control characters shown as escapes (`\\x1b`): what a file says never drives the terminal."""
    return _INVISIBLE.sub(_escape_character, text)


def _escape_character(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def code_span(text: str) -> str:
    """TEXT as a Markdown code span whose backtick run is longer than any inside it (CommonMark)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


# Field names a heading spells otherwise (a Python name cannot hold "+").
_SPELLED = {"gxx": "g++"}


def label(name: str) -> str:
    """A field name as a heading: memory_total_bytes -> memory total."""
    if name in _SPELLED:
        return _SPELLED[name]
    words = name.split("_")
    if len(words) > 2 and words[-1] == "s" and words[-2] in _RATE_UNITS:  # speed_mbit_s -> speed
        words = words[:-2]
    for suffix in ("bytes", "s", "mhz", "watts", "c", "percent"):
        if len(words) > 1 and words[-1] == suffix:
            words = words[:-1]
            break
    if words[0] in ("is", "has") and len(words) > 1:
        words = words[1:]
    return " ".join(words)


# What None means in the fields where a bare dash would hide it (STYLE.md rule 5: every unknown with its reason).
# Elsewhere None means only "does not apply" (a CPU torch's cuda_version, an import that raised nothing): a dash.
_NONE_MEANS = {
    **dict.fromkeys(("nvcc", "gcc", "gxx", "clang", "ninja"), "not on PATH"),
    "cgroup_quota_cpus": "no quota",
    "cgroup_limit_bytes": "no limit",
    "cgroup_usage_bytes": "not counted: the root cgroup has no memory.current",
    "open_files_limit": "unlimited",
    "cuda_toolkit": "none named: CUDA_HOME and CUDA_PATH are unset",
    "cpu_smoke_test": "not run",
}


def format_value(name: str, value: Any) -> str:
    """Display text for one field; an Unavailable shows its reason, never a bare N/A."""
    return visible(_format_value(name, value))


def _format_value(name: str, value: Any) -> str:
    if isinstance(value, Unavailable):
        return f"unavailable: {value.reason}"
    if value is None:
        return _NONE_MEANS.get(name, "—")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if name.endswith("_bytes"):
            return format_bytes(value)
        for unit, text in _RATE_UNITS.items():
            if name.endswith(f"_{unit}_s"):
                return f"{value:g} {text}"
        if name.endswith("_s"):
            return format_duration(value)
        if name.endswith("_mhz"):
            return f"{value:g} MHz"
        if name.endswith("_watts"):
            return f"{value:g} W"
        if name.endswith("_c"):
            return f"{value:g} °C"
        if name.endswith("_percent"):
            return f"{value:g} %"
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, tuple):
        if not value:
            return "none"
        if name.endswith("_libraries"):
            return _by_folder(value)
        if all(not dataclasses.is_dataclass(item) for item in value):
            return ", ".join(str(item) for item in value)
        return f"{len(value)} entries"
    return str(value)


def _by_folder(paths: tuple[str, ...]) -> str:
    """Library paths grouped by folder: "/x/lib: libcudart.so.12, libcublas.so.12; /y: libcuda.so.1"."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folder, _, name = path.rpartition("/")
        folders.setdefault(folder, []).append(name)
    return "; ".join(f"{folder}: {', '.join(names)}" for folder, names in folders.items())


def scalar_fields(facts: Any) -> list[tuple[str, Any]]:
    """The fields of a fact dataclass that fit on one line (not lists of nested records)."""
    result = []
    for field in dataclasses.fields(facts):
        value = getattr(facts, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, Unavailable):
            continue
        if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            continue
        result.append((field.name, value))
    return result


def record_fields(facts: Any) -> list[tuple[str, Any]]:
    """The fields that hold nested records: tuples of dataclasses or a single dataclass."""
    result = []
    for field in dataclasses.fields(facts):
        value = getattr(facts, field.name)
        is_record = dataclasses.is_dataclass(value) and not isinstance(value, Unavailable)
        is_records = isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0])
        if is_record or is_records:
            result.append((field.name, value))
    return result
