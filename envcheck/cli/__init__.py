"""The command line: thin commands that parse options, collect facts, run checks, render, exit.

One module per command; each registers itself on the shared Typer app when imported here.
No logic lives in this package beyond wiring; exit codes are those of docs/exit-codes.md.
"""

from __future__ import annotations

# Importing a command module registers its command on the app.
from envcheck.cli import bench, cluster, doctor, explain, info, recommend, setup
from envcheck.cli.app import app, build_command

__all__ = ["app", "bench", "build_command", "cluster", "doctor", "explain", "info", "main", "recommend", "setup"]


def main() -> None:
    from envcheck.cli.stopping import run_command_line

    run_command_line(build_command())
