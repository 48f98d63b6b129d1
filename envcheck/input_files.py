"""The one reader of user-named input files: --from, --catalog, --workload, --profile, --hf-config,
--bench-results, --calibration, the saved bench results, the shipped profiles, and explain's log (a file or
standard input).

Only regular files (or symlinks to them) are read, and each with a size limit that fits its format: a FIFO
or a device would block or never end (`--from /dev/zero`), and nothing envcheck reads is larger than a few
MiB. Every failure is one InputError line that names the file. Standard library only, so every layer may
use it.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only; tomli is the same parser, vendored into 3.11 as tomllib
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

_MIB = 1024 * 1024
_CHUNK_BYTES = _MIB


class InputError(Exception):
    """Bad input from the user (a file, a flag value): shown as one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class SizeLimit:
    """The most bytes a file of one format may hold, and how the refusal names the format."""

    max_bytes: int
    what: str  # "a snapshot file", in "larger than 64 MiB, the limit for a snapshot file"


# A 16-GPU `nvidia-smi -q -x` file or an `info --json` snapshot is about 1 MiB, a collect_env paste a few KiB:
# 64 MiB is far beyond any real one, yet small enough to hold in memory without harm.
SNAPSHOT_LIMIT = SizeLimit(64 * _MIB, "a snapshot file")
# Catalogs, workloads, calibration, GPU prices, bench results, the shipped profiles: the largest real one
# (profiles/gpus.toml) is under 100 KiB.
CONFIG_LIMIT = SizeLimit(16 * _MIB, "a TOML or JSON file")
# SkyPilot's vms.csv for AWS, every region and instance type, is tens of MiB and grows with each release.
CATALOG_CSV_LIMIT = SizeLimit(128 * _MIB, "a catalog CSV")
# A Hugging Face config.json is a few KiB; one with a 21k-class id2label table is under 1 MiB.
HF_CONFIG_LIMIT = SizeLimit(4 * _MIB, "a Hugging Face config.json")
# `envcheck explain` reads an error message, a whole training log or a pasted issue: days of a chatty log are tens of
# MiB; past that, the tail holds the error (`tail -c 10M train.log | envcheck explain`).
LOG_LIMIT = SizeLimit(64 * _MIB, "a log")

_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# O_NONBLOCK: opening a FIFO that appeared after the stat returns at once instead of waiting for a writer.
# O_NOCTTY: a terminal opened in that race never becomes the controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def read_input_file(path: str | os.PathLike[str], limit: SizeLimit, name: str | None = None) -> bytes:
    """The bytes of the regular file at `path`, at most `limit.max_bytes` of them; InputError otherwise.

    `name` is how messages call the file (default: the path as given).
    """
    label = str(path) if name is None else name
    try:
        _refuse_special(Path(path).stat().st_mode, label)  # before opening: opening a device can have effects
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        raise InputError(_os_error_line(label, error)) from None
    try:
        status = os.fstat(descriptor)  # the file actually opened, should the path have changed since the stat
        _refuse_special(status.st_mode, label)
        if status.st_size > limit.max_bytes:  # a sparse or huge file is refused without reading it
            raise _too_large(label, limit)
        data = _read_at_most(descriptor, limit.max_bytes + 1)
    except OSError as error:
        raise InputError(_os_error_line(label, error)) from None
    finally:
        os.close(descriptor)
    if len(data) > limit.max_bytes:  # the file grew after the fstat
        raise _too_large(label, limit)
    return data


def read_input_stream(stream: BinaryIO, limit: SizeLimit, name: str) -> bytes:
    """At most `limit.max_bytes` bytes of an open binary stream (standard input) up to its end; InputError otherwise."""
    try:
        data = stream.read(limit.max_bytes + 1)
    except OSError as error:
        raise InputError(_os_error_line(name, error)) from None
    if len(data) > limit.max_bytes:
        raise _too_large(name, limit)
    return data


def read_text_file(path: str | os.PathLike[str], limit: SizeLimit, name: str | None = None) -> str:
    """The UTF-8 text of the regular file at `path`; InputError when it cannot be read or is not UTF-8."""
    label = str(path) if name is None else name
    data = read_input_file(path, limit, label)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{label}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})") from None


def load_toml_file(
    path: str | os.PathLike[str], limit: SizeLimit = CONFIG_LIMIT, name: str | None = None
) -> dict[str, Any]:
    """The TOML document at `path`; InputError naming the file (and the line) when it is not valid TOML."""
    label = str(path) if name is None else name
    text = read_text_file(path, limit, label)
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{label}: not valid TOML: {_one_line(error)}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table: 500 `[` are enough
        raise InputError(f"{label}: not valid TOML: nested too deeply") from None
    except ValueError as error:  # an integer of more than 4,300 digits: Python's int-to-text limit
        raise InputError(f"{label}: not valid TOML: {_one_line(error)}") from None
    return document


def load_json_file(path: str | os.PathLike[str], limit: SizeLimit = CONFIG_LIMIT, name: str | None = None) -> Any:
    """The JSON value at `path`; InputError naming the file (and the line and column) when it is not JSON."""
    label = str(path) if name is None else name
    text = read_text_file(path, limit, label)
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(f"{label}: not JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, and the int-to-text limit of a number with 5,000 digits
        raise InputError(f"{label}: not JSON: {_one_line(error)}") from None


def _refuse_special(mode: int, label: str) -> None:
    for is_kind, kind in _NOT_REGULAR:
        if is_kind(mode):
            raise InputError(f"{label}: is {kind}, expected a regular file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{label}: is not a regular file")


def _read_at_most(descriptor: int, count: int) -> bytes:
    chunks, remaining = [], count
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, _CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(label: str, limit: SizeLimit) -> InputError:
    size = f"{limit.max_bytes // _MIB} MiB" if limit.max_bytes % _MIB == 0 else f"{limit.max_bytes:,} bytes"
    return InputError(f"{label}: larger than {size}, the limit for {limit.what}")


def _os_error_line(label: str, error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return f"{label}: no such file"
    if isinstance(error, PermissionError):
        return f"{label}: permission denied"
    return f"{label}: cannot read: {error.strerror or error}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
