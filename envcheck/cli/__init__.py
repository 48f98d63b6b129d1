"""The command line: thin commands that parse options, collect facts, run checks, render, exit.

One module per command; each registers itself on the shared Typer app when imported here.
No logic lives in this package beyond wiring; exit codes are those of docs/exit-codes.md.
"""

from __future__ import annotations

from envcheck.cli import doctor, info
from envcheck.cli.app import app

__all__ = ["app", "doctor", "info", "main"]


def main() -> None:
    app()
