"""End to end through the command line on fixtures, compared with golden text (tests/golden/*.txt).

The reports people read are part of the product: a change to a finding's wording, a table's layout or a
number shows up here as a diff to review. After a deliberate change, rewrite the files with
`ENVCHECK_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` and read the diff before committing.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envcheck.cli import app
from tests.shared_fixtures import SHARED_FIXTURES, SHARED_XML, shared_fixture

GOLDEN = Path(__file__).resolve().parent / "golden"
COLLECT_ENV = Path(__file__).resolve().parent / "fixtures" / "collect_env"
EXPLAIN = Path(__file__).resolve().parent / "fixtures" / "explain"
# width 100 and no colour, as STYLE.md asks: the text a 100-column terminal shows
ENVIRONMENT = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}

CASES = {
    "doctor-collect-env-k80-sm37": ["doctor", "--from", str(COLLECT_ENV / "linux-torch2.1-cu121-tesla-k80-sm37.txt")],
    "doctor-collect-env-windows-driver526": [
        "doctor", "--from", str(COLLECT_ENV / "windows-torch2.1-cu121-driver526-rtx3080.txt"),
    ],
    "doctor-nvidia-smi-k80-ecc-retired": [
        "doctor", "--from", str(SHARED_XML / "k80x4-driver430.26-ecc-dbe-retired.xml"),
    ],
    "explain-rtx5090-sm120-from-collect-env": [
        "explain", str(EXPLAIN / "leggedlab-26-rtx5090-sm120.txt"),
        "--from", str(COLLECT_ENV / "linux-torch2.5-cu124-rtx5090-sm120.txt"),
    ],
    "explain-nccl-shm-text-alone": ["explain", str(EXPLAIN / "nccl-342-docker-shm.txt"), "--no-probe", "-v"],
    "info-nvidia-smi-a5000x2": ["info", "--from", str(SHARED_XML / "rtx-a5000x2-driver590.44.01.xml")],
    "recommend-llama-7b-lora": ["recommend", "--workload", "llama-7b-lora", "--top", "5"],
    "recommend-llama-70b-4bit-buy": ["recommend", "--workload", "llama-70b-inference-4bit", "--top", "3", "--buy"],
    "setup-rtx4090-driver535": [
        "setup", "--gpu", "NVIDIA GeForce RTX 4090", "--driver", "535.86.05", "--python", "3.11",
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_matches_its_golden_text(name: str) -> None:
    for argument in CASES[name]:
        if argument.startswith(str(SHARED_FIXTURES)):
            shared_fixture(Path(argument).relative_to(SHARED_FIXTURES).as_posix())
    result = CliRunner().invoke(app, CASES[name], env=ENVIRONMENT)
    assert result.exit_code in (0, 1), result.output
    # the fixtures' absolute paths differ between checkouts; rich pads lines that editors would strip
    text = result.stdout.replace(str(COLLECT_ENV), "<collect_env>").replace(str(SHARED_XML), "<nvidia-smi>")
    text = text.replace(str(EXPLAIN), "<explain>")
    text = "".join(line.rstrip() + "\n" for line in text.splitlines())
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("ENVCHECK_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "now"))
    assert text == expected, f"{name} differs from its golden text (see the module docstring to update):\n{diff}"
