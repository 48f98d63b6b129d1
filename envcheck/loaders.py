"""Reads the files `--from` accepts into a Snapshot: envcheck snapshot JSON (nvidia-smi XML and
collect_env text join as their importers land). Every failure is an InputError naming the file."""

from __future__ import annotations

from pathlib import Path

from envcheck.snapshot import Snapshot, SnapshotFormatError, from_json


class InputError(Exception):
    """Bad input from the user (a file, a flag value): shown as one line, exit code 2."""


def read_input_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None


def load_snapshot_file(path: Path) -> Snapshot:
    data = read_input_file(path)
    head = data.lstrip()[:1]
    if head == b"{":
        try:
            return from_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except SnapshotFormatError as error:
            raise InputError(f"{path}: {error}") from None
    if not data.strip():
        raise InputError(f"{path}: the file is empty")
    raise InputError(f"{path}: unknown format: expected an envcheck snapshot JSON (from `envcheck info --json`)")
