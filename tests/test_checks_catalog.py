"""docs/checks.md is generated from the check registry; this keeps the committed page in step with the code."""

from __future__ import annotations

from pathlib import Path

from envcheck.checks.catalog import render_catalog

CHECKS_DOC = Path(__file__).resolve().parents[1] / "docs" / "checks.md"


def test_docs_checks_md_is_the_registry_as_generated() -> None:
    expected = render_catalog()
    assert CHECKS_DOC.read_text(encoding="utf-8") == expected, (
        "docs/checks.md is stale: regenerate it with `python -m envcheck.checks.catalog > docs/checks.md`"
    )
