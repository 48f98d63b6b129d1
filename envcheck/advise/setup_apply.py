"""Applying a plan: the pip command line for the target interpreter, what an install changed, and the verdict.

Running pip, prompting and streaming its output belong to the cli layer; these are the pure parts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from envcheck.advise.setup_formats import pip_arguments
from envcheck.advise.setup_plan import SetupPlan
from envcheck.finding import Finding
from envcheck.knowledge.model import Knowledge
from envcheck.loaders import InputError
from envcheck.snapshot import Snapshot

VERIFY_AREAS = ("install", "cuda")


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    before: str | None  # None: newly installed
    after: str | None  # None: removed

    def __str__(self) -> str:
        if self.before is None:
            return f"installed {self.name} {self.after}"
        if self.after is None:
            return f"removed {self.name} {self.before}"
        return f"changed {self.name} {self.before} -> {self.after}"


def install_argv(pip: tuple[str, ...], plan: SetupPlan, find_links: str | None = None) -> tuple[str, ...]:
    """``pip`` (e.g. ``(python, "-m", "pip")``) plus ``install`` and the pinned packages.

    ``find_links``: install from a local wheel directory only (air-gapped machines, tests): the plan's index
    is replaced by ``--no-index --find-links DIR``. pip only ever removes the versions it replaces, and only
    of the packages named here (and their dependencies), so nothing outside the plan is uninstalled.
    """
    arguments = pip_arguments(plan)
    if find_links is not None:
        arguments = tuple(a for a in arguments if a not in ("--index-url", plan.index_url))
        arguments = (*arguments, "--no-index", "--find-links", find_links)
    return (*pip, *arguments)


def parse_pip_list(text: str) -> dict[str, str]:
    """``pip list --format=json`` -> {normalised name: version}."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"pip list: not JSON: {error}") from None
    if not isinstance(rows, list):
        raise InputError("pip list: expected a JSON array")
    return {
        str(row["name"]).lower().replace("_", "-"): str(row["version"])
        for row in rows
        if isinstance(row, dict) and "name" in row and "version" in row
    }


def changes(before: dict[str, str], after: dict[str, str]) -> tuple[Change, ...]:
    """What an install did to the environment, sorted by package name."""
    names = sorted(set(before) | set(after))
    return tuple(
        Change(name, before.get(name), after.get(name)) for name in names if before.get(name) != after.get(name)
    )


def verify_install(snapshot: Snapshot, knowledge: Knowledge) -> tuple[Finding, ...]:
    """The doctor's install and CUDA checks on a snapshot of the target interpreter, taken after the install."""
    from envcheck.checks.registry import CheckInput, run_checks

    return run_checks(CheckInput(snapshot, knowledge=knowledge), only_areas=VERIFY_AREAS)
