"""A fixed-seed slice of benchmarks/fuzz_cli.py in the test suite: every importer and every file option on mutated
input through the real command line; no traceback, no hang, no case above 500 MB.

The first pass runs each command line on a valid file, the rest on mutated ones (benchmarks/fuzz_mutate.py).
A failure prints the fuzzer's report; rerun one case with `python benchmarks/fuzz_cli.py --seed 15 --cases N`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import fuzz_harness  # noqa: E402 -- benchmarks/ is not a package
from fuzz_mutate import mutate  # noqa: E402

SEED = 15
CASES = 600  # ~13 per command line; about 45 s on two cores


def test_mutations_are_the_same_for_the_same_seed() -> None:
    import random

    data = b'{"a": [1, 2, {"b": "c"}], "d": 1.5}'
    first = mutate(data, "json", random.Random("x:1"))
    assert first == mutate(data, "json", random.Random("x:1"))
    assert first != mutate(data, "json", random.Random("x:2"))


def test_every_file_option_is_fuzzed() -> None:
    targets = fuzz_harness.build_targets((("snapshot.json", b"{}"),))
    options = {(target.name, label) for target, label, _ in fuzz_harness.command_matrix(targets)}
    flags = {flag for _, _, argv in fuzz_harness.command_matrix(targets) for flag in argv if flag.startswith("--")}
    assert {"--from", "--catalog", "--workload", "--profile", "--hf-config", "--bench-results"} <= flags
    assert {"--calibration", "--save-reference"} <= flags
    assert ("saved-bench-results", "recommend (saved results dir)") in options
    assert ("explain-log", "explain FILE --no-probe") in options  # explain's FILE argument
    assert len({name for name, _ in options}) == 11


@pytest.mark.skipif(sys.platform != "linux", reason="the harness forks and reads ru_maxrss in KiB (Linux)")
def test_mutated_inputs_give_no_traceback_hang_or_runaway_memory(tmp_path: Path) -> None:
    # In a fresh process, as a user runs the script: forked cases inherit their parent's memory, and pytest's
    # process holds torch and every other test's modules, which would count against each case's 500 MB.
    import os
    import subprocess

    script = BENCHMARKS / "fuzz_cli.py"
    arguments = ["--cases", str(CASES), "--seed", str(SEED), "--timeout", "20", "--out", str(tmp_path), "--quiet"]
    environ = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)}
    ran = subprocess.run(
        [sys.executable, str(script), *arguments], capture_output=True, text=True, env=environ, timeout=900, check=False
    )
    assert f"envcheck fuzz: {CASES} cases" in ran.stdout, ran.stdout + ran.stderr
    assert ran.returncode == 0, ran.stdout
