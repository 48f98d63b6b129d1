"""docs/explain.md lists every signature the profile holds: the list is generated, and this test keeps it so."""

from __future__ import annotations

import os
from pathlib import Path

from envcheck.knowledge.signatures import load_signatures
from envcheck.render.explain import render_signature_catalog

PAGE = Path(__file__).resolve().parents[1] / "docs" / "explain.md"
BEGIN, END = "<!-- signatures:begin -->\n", "<!-- signatures:end -->"


def test_docs_list_every_signature_as_the_profile_says() -> None:
    page = PAGE.read_text()
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    expected = head + BEGIN + render_signature_catalog(load_signatures()) + END + tail
    if os.environ.get("ENVCHECK_UPDATE_GOLDEN") == "1":
        PAGE.write_text(expected)
        page = expected
    assert page == expected, "docs/explain.md is out of date: rerun with ENVCHECK_UPDATE_GOLDEN=1"
    for signature in load_signatures().signatures:
        assert f"`{signature.id}`" in page
