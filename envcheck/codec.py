"""Turns fact dataclasses into JSON-able values and back, driven by their type hints.

One generic codec instead of a to_dict/from_dict pair per class: a new fact field is serialised
the moment it is declared, and decoding checks every value against its declared type, so a
hand-edited or truncated snapshot fails with the path of the bad field instead of deep inside a check.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from envcheck.facts.common import Unavailable
from envcheck.validation import MAX_INTEGER, InvalidValue, finite_number, quoted

T = TypeVar("T")

_UNAVAILABLE_KEY = "unavailable"


class DecodeError(ValueError):
    """A JSON value does not fit the fact model; the message names the field's path."""


def encode(value: Any) -> Any:
    """A dataclass tree as plain JSON values (dicts, lists, str, int, float, bool, None)."""
    if isinstance(value, Unavailable):
        return {_UNAVAILABLE_KEY: value.reason, "fix": value.fix}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: encode(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    return value


def decode(cls: type[T], data: Any, path: str = "$") -> T:
    """Build `cls` from JSON values, checking every field against its type hint."""
    return typing.cast(T, _decode(cls, data, path))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(hint: Any, data: Any, path: str) -> Any:
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return _decode_union(get_args(hint), data, path)
    if origin is tuple:
        item_hint = get_args(hint)[0]
        if not isinstance(data, list):
            raise DecodeError(f"{path}: expected a list, got {_kind(data)}")
        return tuple(_decode(item_hint, item, f"{path}[{index}]") for index, item in enumerate(data))
    if hint is Unavailable:
        return _decode_unavailable(data, path)
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(typing.cast(type, hint), data, path)
    if hint is Any:
        return data
    if hint is type(None):
        if data is not None:
            raise DecodeError(f"{path}: expected null, got {_kind(data)}")
        return None
    return _decode_scalar(hint, data, path)


def _decode_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(f"{path}: expected an object, got {_kind(data)}")
    values = {}
    for field in dataclasses.fields(cls):
        field_path = f"{path}.{field.name}"
        if field.name in data:
            values[field.name] = _decode(_hints(cls)[field.name], data[field.name], field_path)
        elif field.default is not dataclasses.MISSING:
            values[field.name] = field.default
        else:
            raise DecodeError(f"{field_path}: missing")
    return cls(**values)


def _decode_unavailable(data: Any, path: str) -> Unavailable:
    if not isinstance(data, dict) or not isinstance(data.get(_UNAVAILABLE_KEY), str):
        raise DecodeError(f"{path}: expected an unavailable marker, got {_kind(data)}")
    fix = data.get("fix")
    if fix is not None and not isinstance(fix, str):
        raise DecodeError(f"{path}.fix: expected a string, got {_kind(fix)}")
    return Unavailable(data[_UNAVAILABLE_KEY], fix)


def _decode_union(options: tuple[Any, ...], data: Any, path: str) -> Any:
    if data is None:
        if type(None) in options:
            return None
        raise DecodeError(f"{path}: must not be null")
    if isinstance(data, dict) and _UNAVAILABLE_KEY in data and Unavailable in options:
        return _decode_unavailable(data, path)
    concrete = [option for option in options if option not in (type(None), Unavailable)]
    errors = []
    for option in concrete:
        try:
            return _decode(option, data, path)
        except DecodeError as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    raise DecodeError(f"{path}: {_kind(data)} fits none of the expected types")


def _decode_scalar(hint: Any, data: Any, path: str) -> Any:
    # bool is a subclass of int in Python; JSON true must never pass for a count.
    if hint is bool:
        if isinstance(data, bool):
            return data
    elif hint is int:
        if isinstance(data, int) and not isinstance(data, bool):
            if abs(data) > MAX_INTEGER:  # later arithmetic with floats would raise OverflowError
                raise DecodeError(f"{path}: {quoted(data)} is too large")
            return data
    elif hint is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            try:
                return finite_number(data, path)  # NaN, Infinity and 1e999 are not facts anyone measured
            except InvalidValue as error:
                raise DecodeError(str(error)) from None
    elif hint is str:
        if isinstance(data, str):
            return data
    else:
        raise DecodeError(f"{path}: unsupported type {hint!r} in the fact model")
    raise DecodeError(f"{path}: expected {hint.__name__}, got {_kind(data)}")


def _kind(data: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    if type(data) in names:
        return names[type(data)]
    return f"{type(data).__name__} {quoted(data)}"
