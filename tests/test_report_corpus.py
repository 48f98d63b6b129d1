"""The doctor on the corpus of real reports (issue 11 item 1): each case's established cause is named, and a
healthy environment gets no failure. A case the doctor misses today is a strict xfail carrying the index's
`known_miss`, so fixing the miss fails this test until the index says the case is now a hit."""

from __future__ import annotations

import pytest

from benchmarks.report_corpus import CORPUS, Case, evaluate, load_cases, read_index

CASES = load_cases()


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.known_miss)] if case.known_miss else []
    return pytest.param(case, id=case.file, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_doctor_names_the_established_cause(case: Case) -> None:
    outcome = evaluate(case)
    assert not outcome.is_false_alarm, f"{case.file}: a failure on a healthy environment: {outcome.said}"
    assert outcome.is_hit, f"{case.file}: expected {case.expected or 'no failure'}, the doctor said: {outcome.said}"


FORMATS = {"collect_env", "nvidia-smi-xml", "nvidia-smi-q-text", "detectron2-collect-env"}


def test_every_fixture_is_in_the_index_and_every_row_is_complete() -> None:
    rows = read_index()
    listed = {row["file"] for row in rows}
    on_disk = {path.name for path in CORPUS.iterdir() if path.name != "index.toml"}
    assert listed == on_disk
    assert len(listed) == len(rows), "a file is listed twice"
    for case in CASES:
        assert case.source.startswith("https://github.com/"), case.file
        assert 2019 <= case.year <= 2026, case.file
        assert case.format in FORMATS, case.file
        assert case.established_cause, case.file
        assert case.is_healthy == (not case.expected), f"{case.file}: healthy cases expect no finding, others one"
        if case.known_miss is not None:
            assert case.known_miss.startswith("item "), f"{case.file}: known_miss names the issue 11 item"
