"""The one writer of user-named output files: -o, --emit-file, --save-reference, --record-nvml, saved results."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_output_file(path: Path, text: str) -> None:
    """Write `text` to the user-named `path`, the one writer of every output file.

    A regular file (or a symlink to one, written at its target) or a missing path is written atomically: a
    temporary file beside it renamed over it, so an interrupted or failed write never leaves half a report.
    A character device or FIFO is written in place, never replaced (a FIFO without a reader is an error, not a
    hang). A directory is refused. Every failure is one InputError line naming the path.
    """
    from envcheck.loaders import InputError

    try:
        target = Path(os.path.realpath(path))
        try:
            mode = target.stat().st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise InputError(f"{path}: is a directory")
        if mode is not None and not stat.S_ISREG(mode):
            flags = os.O_WRONLY | (os.O_NONBLOCK if stat.S_ISFIFO(mode) else 0)
            descriptor = os.open(target, flags)
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
            return
        _replace_atomically(target, text, None if mode is None else stat.S_IMODE(mode))
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror or error}") from None


def _replace_atomically(target: Path, text: str, mode: int | None) -> None:
    if mode is None:  # what a plain open() would give the new file
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            os.fchmod(stream.fileno(), mode)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
