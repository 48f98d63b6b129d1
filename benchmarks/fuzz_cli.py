"""Fuzz envcheck's command line: thousands of mutated input files through every importer and every file option.

    PYTHONPATH=. python benchmarks/fuzz_cli.py --cases 10000 --jobs 2 --out /tmp/envcheck-fuzz

Prints the cases per format and option with their exit codes, the tracebacks grouped by exception type and
last envcheck frame (one reproducer folder per group under --out, with a repro.sh), the hangs, the peak RSS
and the wall time. Exits 1 when any case gave a traceback, hung, or went above --memory-limit-mb; 0 when
clean. The same --seed gives the same cases on every machine; --start/--cases pick a slice of them.
See docs/security.md ("Fuzzing") for what is covered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000, help="how many cases (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="run seed: the same seed gives the same cases")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    parser.add_argument("--memory-limit-mb", type=float, default=500.0, help="peak RSS above this is a finding")
    parser.add_argument("--out", type=Path, default=None, help="where reproducers go (default: a new temp folder)")
    parser.add_argument("--target", action="append", default=None, help="only this format (repeatable)")
    parser.add_argument("--no-live-snapshot", action="store_true", help="do not seed with this machine's info --json")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    options = parser.parse_args(argv)

    out = options.out or Path(tempfile.mkdtemp(prefix="envcheck-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    fuzz_harness.preload_envcheck()
    runner = fuzz_harness.Runner(out / "work", options.timeout, options.jobs)
    seeds = fuzz_harness.snapshot_seeds(runner, live=not options.no_live_snapshot)
    targets = fuzz_harness.build_targets(seeds)
    if options.target:
        unknown = set(options.target) - {target.name for target in targets}
        if unknown:
            parser.error(f"unknown --target {', '.join(sorted(unknown))} (known: {', '.join(t.name for t in targets)})")
        targets = tuple(target for target in targets if target.name in options.target)
    print(f"seeded with {len(seeds)} snapshots; {len(fuzz_harness.command_matrix(targets))} command lines;"
          f" reproducers under {out}", file=sys.stderr)  # fmt: skip
    fuzz_started = time.monotonic()
    progress = _progress(options.cases, fuzz_started) if not options.quiet else None
    summary, reproducers = fuzz_harness.fuzz(
        runner, targets, options.seed, options.cases, out, options.memory_limit_mb, progress
    )
    if progress is not None:
        print(file=sys.stderr)
    report = summary.report(time.monotonic() - fuzz_started, reproducers)
    print(report)
    print(f"total wall time (seeding included): {time.monotonic() - started:.1f} s")
    (out / "report.txt").write_text(report + "\n")
    return 0 if summary.is_clean else 1


def _progress(total: int, started: float):  # type: ignore[no-untyped-def]
    done = [0]

    def show(outcome: fuzz_harness.Outcome) -> None:
        done[0] += 1
        if done[0] % 50 == 0 or done[0] == total:
            rate = done[0] / max(time.monotonic() - started, 1e-9)
            print(f"\r{done[0]}/{total} cases, {rate:.1f}/s", end="", file=sys.stderr, flush=True)

    return show


if __name__ == "__main__":
    raise SystemExit(main())
