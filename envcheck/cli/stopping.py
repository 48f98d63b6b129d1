"""How envcheck stops early: Ctrl-C and SIGTERM each end in one line on stderr and exit 130 or 143, a closed
stdout (`envcheck info | head -1`) ends quietly with exit 0, and no command envcheck started outlives it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import typer
from typer.core import TyperGroup

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, what a shell reports for a Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that finally blocks run as they do for Ctrl-C.

    A BaseException like KeyboardInterrupt: no `except Exception` may swallow it.
    """


STOPS = (KeyboardInterrupt, Terminated)


def stopped(stop: BaseException, note: str = "") -> typer.Exit:
    """Say on one line that envcheck was interrupted or terminated (and `note`); the Exit to raise."""
    word, code = ("terminated", EXIT_TERMINATED) if isinstance(stop, Terminated) else ("interrupted", EXIT_INTERRUPTED)
    typer.echo(f"envcheck: {word}{': ' + note if note else ''}", err=True)
    return typer.Exit(code)


class StoppingGroup(TyperGroup):
    """The command group: every command's interrupt and broken pipe end the same way, wherever they happen."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except STOPS as stop:
            raise stopped(stop) from None
        except BrokenPipeError:  # Typer would make this exit 1
            raise _closed_stdout() from None


def run_command_line(app: Callable[[], Any]) -> None:
    """Run the Typer app with SIGTERM handled like Ctrl-C; on the way out, kill whatever is still running."""
    from envcheck.probes.bounded import allow_starts, stop_all

    allow_starts()  # a caller that runs several command lines in one process (tests, the fuzzer) starts afresh
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        app()
    except STOPS as stop:  # outside any command (while Typer parses the arguments)
        raise SystemExit(stopped(stop).exit_code) from None
    finally:
        stop_all()
        signal.signal(signal.SIGTERM, previous)
        try:  # what is still buffered: the reader may have gone after the last write
            sys.stdout.flush()
        except BrokenPipeError:
            raise SystemExit(_closed_stdout().exit_code) from None  # the closed pipe decides the exit code


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


def _closed_stdout() -> typer.Exit:
    """The reader of stdout went away: nothing left to say, and not an error (Python's own recipe, see the
    note on SIGPIPE in the signal module docs). Stdout points at /dev/null so the flush at exit stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return typer.Exit(0)
