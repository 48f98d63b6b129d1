"""Checks for the numbers and values read from user files, once they are parsed: the same rules everywhere.

JSON and TOML both carry values Python arithmetic cannot survive: integers with hundreds of digits (float()
raises OverflowError), NaN and infinity (``NaN``/``Infinity`` in JSON, ``nan``/``inf`` in TOML, or ``1e999``),
denormals such as ``1e-320`` that turn a later division into ZeroDivisionError or infinity. Every loader runs
its numbers through these helpers so that such a value is a one-line error naming the file and the field.

``where`` names the value: ``"catalog.toml: instance[3]: gpu_count"``. Stdlib only: the facts model uses it.
"""

from __future__ import annotations

import math

# No quantity envcheck reads is smaller than this (a price in dollars, images/s, GB, seconds) yet meaningful,
# and any positive double above it survives being divided into: 1 / 1e-9 is far from overflow.
MIN_POSITIVE = 1e-9
# Integers beyond int64 come from no real tool (JSON writers in C, Go and Rust cannot produce them).
MAX_INTEGER = 2**63 - 1
# Values shown in an error are cut to this many characters so that the error stays one readable line.
SHOWN_CHARS = 60


class InvalidValue(ValueError):
    """A parsed value that cannot be used; the message is ``"<where>: <what is wrong>"``, on one line."""


def quoted(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` for an error message, on one line and short: text in double quotes with newlines, control
    characters and quotes escaped (``"a\\nb"``), a table or an array by its kind, a huge integer by its size."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        # str() of an int of 4,300 digits or more raises ValueError: its size is what matters anyway
        return f"an integer of about {math.ceil(value.bit_length() * math.log10(2))} digits"
    if not isinstance(value, str):
        return "".join(_escaped(c) for c in str(value)[:limit])
    shown = '"' + "".join(_escaped(c) for c in value[:limit]) + '"'
    return shown if len(shown) <= limit else shown[: limit - 4] + '..."'


def _escaped(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    return char if char.isprintable() else repr(char)[1:-1]  # \n, \x1b, \u2028


def finite_number(value: object, where: str) -> float:
    """``value`` as a float: an int or float, not a boolean, not NaN or infinite, not too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{where}: expected a number, got {quoted(value)}")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        raise InvalidValue(f"{where}: {quoted(value)} is too large")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidValue(f"{where}: expected a finite number, got {quoted(value)}")
    return number


def positive_number(value: object, where: str, *, minimum: float = MIN_POSITIVE, maximum: float | None = None) -> float:
    """A finite number of at least ``minimum`` (0, negatives and denormals are refused) and at most ``maximum``."""
    number = finite_number(value, where)
    if number <= 0:
        raise InvalidValue(f"{where}: expected a positive number, got {quoted(value)}")
    if number < minimum:
        raise InvalidValue(f"{where}: {quoted(value)} is too small (at least {minimum:g})")
    if maximum is not None and number > maximum:
        raise InvalidValue(f"{where}: {quoted(value)} is too large (at most {maximum:g})")
    return number


def non_negative_number(value: object, where: str, *, maximum: float | None = None) -> float:
    """A finite number, 0 or above (at most ``maximum``)."""
    number = finite_number(value, where)
    if number < 0:
        raise InvalidValue(f"{where}: must not be negative, got {quoted(value)}")
    if maximum is not None and number > maximum:
        raise InvalidValue(f"{where}: {quoted(value)} is too large (at most {maximum:g})")
    return number


def bounded_count(value: object, where: str, maximum: int, *, minimum: int = 0) -> int:
    """A whole number (an int, not a boolean or a float) from ``minimum`` to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{where}: expected a whole number, got {quoted(value)}")
    if not minimum <= value <= maximum:
        raise InvalidValue(f"{where}: expected a whole number from {minimum} to {maximum}, got {quoted(value)}")
    return value
