"""Generates docs/checks.md from the registry, so the catalogue cannot drift from the code.

Regenerate with `python -m envcheck.checks.catalog > docs/checks.md`; a test compares the two.
"""

from __future__ import annotations

import sys

from envcheck.checks.registry import all_checks
from envcheck.finding import AREA_TITLES


def render_catalog() -> str:
    lines = [
        "# Checks",
        "",
        "Every check `envcheck doctor` runs, by area. Each finding carries the check's id, so",
        "`--skip ID` silences one and `--only AREA` runs one area. Generated from the check registry",
        "(`python -m envcheck.checks.catalog > docs/checks.md`); a test keeps it in step.",
        "",
    ]
    checks = sorted(
        all_checks(), key=lambda c: (list(AREA_TITLES).index(c.area) if c.area in AREA_TITLES else 99, c.id)
    )
    area = None
    for registered in checks:
        if registered.area != area:
            area = registered.area
            lines += [f"## {AREA_TITLES.get(area, area)} (`--only {area}`)", "", "| id | what it checks |", "|---|---|"]
        lines.append(f"| `{registered.id}` | {registered.summary} |")
        if registered is checks[-1] or checks[checks.index(registered) + 1].area != area:
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_catalog())
