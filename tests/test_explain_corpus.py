"""`envcheck explain` on real error lines from public issues whose thread established the cause
(tests/fixtures/explain/index.toml): the signature is named, the cause too where the text alone decides it, and a
bug in the program is never blamed on the environment."""

from __future__ import annotations

import pytest

from benchmarks.explain_corpus import CORPUS, Case, evaluate, load_cases, read_index

CASES = load_cases()


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.known_false_alarm)] if case.known_false_alarm else []
    return pytest.param(case, id=case.file, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_explain_names_the_established_signature(case: Case) -> None:
    outcome = evaluate(case)
    assert outcome.is_hit, f"{case.file}: expected {case.signature}, found {outcome.found}"
    assert outcome.is_cause_agreed is not False, f"{case.file}: cause {outcome.cause}, expected {case.cause}"
    assert not outcome.is_false_alarm, f"{case.file}: false alarm: {outcome.found}"


def test_every_fixture_is_in_the_index_and_every_row_is_complete() -> None:
    from envcheck.knowledge.signatures import load_signatures

    rows = read_index()
    assert {row["file"] for row in rows} == {p.name for p in CORPUS.iterdir() if p.name != "index.toml"}
    known = {signature.id: signature for signature in load_signatures().signatures}
    for row in rows:
        assert row["source"].startswith("https://github.com/") and row["established"], row
        assert row["signature"] in known, row
        assert row.get("blames", "code") == "code", row
        assert "known_false_alarm" not in row or row.get("blames") == "code", row
        if "cause" in row:
            assert row["cause"] in {cause.id for cause in known[row["signature"]].causes}, row
    assert len(rows) >= 15
