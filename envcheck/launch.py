"""The `envcheck` script: gives the torch probe a head start, then runs the command line.

The probe's `import torch` dominates `envcheck doctor`; starting it before Typer, rich and the checks are
imported takes their import time off the critical path. The guess below reads the raw arguments only to
decide whether to start early; the probe adopts the early process only if it matches the run the parsed
command asks for (envcheck.probes.head_start), so a wrong guess costs CPU, never a wrong fact.
"""

from __future__ import annotations

import os
import sys

# Commands that run the torch probe of envcheck's own interpreter unless told otherwise.
PROBING_COMMANDS = frozenset(("doctor", "info"))
# Options after which that probe does not run, or runs in another interpreter.
NON_PROBING_OPTIONS = ("--fast", "--from", "--python", "--help", "-h")


def wants_head_start(arguments: list[str]) -> bool:
    """True when the arguments name a probing command and no option that skips or redirects the probe."""
    if not arguments or arguments[0] not in PROBING_COMMANDS:
        return False
    return not any(
        argument == option or argument.startswith(option + "=")
        for argument in arguments[1:]
        for option in NON_PROBING_OPTIONS
    )


def main() -> None:
    if wants_head_start(sys.argv[1:]):
        from envcheck.probes import head_start

        head_start.start(sys.executable, "framework", os.environ)
    from envcheck.cli import main as run_command_line

    run_command_line()
