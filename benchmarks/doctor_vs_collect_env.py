"""How long `envcheck doctor` takes next to `python -m torch.utils.collect_env`, measured in one run.

Runs each command alternately (so all see the same cache and load), several times, and prints the
median wall time of each and their ratio, beside the floor both share: `import torch` alone. Usage:

    python benchmarks/doctor_vs_collect_env.py [--runs 5] [--python PATH]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):  # doctor exits 1 when it finds a failure; that is still a run
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="the interpreter with torch")
    args = parser.parse_args()
    envcheck = str(Path(args.python).with_name("envcheck"))
    commands = {
        # the floor both share: neither can finish before torch has imported
        "python -c 'import torch'": [args.python, "-c", "import torch"],
        "collect_env": [args.python, "-m", "torch.utils.collect_env"],
        "envcheck doctor": [envcheck, "doctor", "--json"],
        "envcheck doctor --fast": [envcheck, "doctor", "--fast", "--json"],
    }
    for command in commands.values():  # warm the page cache once so the first sample is not an outlier
        timed(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            samples[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{'command':<28}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, values in samples.items():
        print(f"{name:<28}{medians[name]:>10.2f}{min(values):>10.2f}{max(values):>10.2f}")
    baseline = medians["collect_env"]
    print(f"\nenvcheck doctor takes {medians['envcheck doctor'] / baseline:.2f}x the time of collect_env")
    print(f"envcheck doctor --fast takes {medians['envcheck doctor --fast'] / baseline:.2f}x the time of collect_env")
    floor = medians["python -c 'import torch'"]
    print(
        f"beyond importing torch, collect_env spends {baseline - floor:.2f} s"
        f" and envcheck doctor {medians['envcheck doctor'] - floor:.2f} s"
    )


if __name__ == "__main__":
    main()
