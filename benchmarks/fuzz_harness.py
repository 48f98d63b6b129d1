"""Run mutated input files through the real envcheck command line, one forked child per case.

Spawning `python -m envcheck` costs 0.3-0.5 s per case on a small machine, most of it imports; a parent that
has imported envcheck once and forks a child per case runs the same `envcheck.launch.main` (the console
script's entry point) with the same argv in a few tens of milliseconds. Each child gets its own directory (the
input files, stdout, stderr), its own session (so a timeout kills everything it started), stdin from
/dev/null, and `XDG_DATA_HOME`/`HOME` inside its directory (so no case reads or writes the user's saved bench
results). Peak memory comes from the child's rusage (os.wait4, ru_maxrss in KiB on Linux).

What counts as a finding (issue 15, "nothing crashes, hangs or runs away"):
* traceback: an exception escaped the CLI, `Traceback (most recent call last)` was printed, or the exit
  code is not one docs/exit-codes.md documents (0, 1, 2) -- a signal included;
* hang: the case ran past its timeout and was killed;
* memory: the child's peak RSS was above the limit (500 MB by default).
Reported without failing: raw control characters on stdout/stderr (terminal escapes), `--json` output that
is not strict JSON (NaN, Infinity), and error messages longer than one line.

`bench` trains a network, far too slow for thousands of cases; its file options are checked before the run
(`--save-reference` today). The child stops at the first `import torch` (where the run begins) with the exit
code REACHED_RUN: for bench that means "the file was accepted, or not checked, before the run".
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz_mutate import mutate

REPOSITORY = Path(__file__).resolve().parent.parent
DOCUMENTED_EXIT_CODES = frozenset((0, 1, 2))
REACHED_RUN = 97  # the child imported torch: a bench run (or a probe in-process) would start here
CRASHED = 98  # an exception escaped envcheck.launch.main
OUTPUT_CAP_BYTES = 256 * 1024 * 1024  # RLIMIT_FSIZE: a case that prints without end is stopped (SIGXFSZ)
TAIL_BYTES = 64 * 1024  # how much of stdout/stderr is kept per case for the checks below
TRACEBACK_MARK = "Traceback (most recent call last)"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # C0 controls but tab and newline (CR included: it rewrites lines)
SEED_FILE = "{file}"  # placeholder in a command's argv for the mutated file's name


# --- the corpus: valid files of every format envcheck reads -------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One input format and the command lines that read it (argv with SEED_FILE where the file goes)."""

    name: str
    syntax: str  # json, toml, csv, xml, text: which structure-aware mutator applies
    file_name: str  # where the mutated file is written inside the case directory
    seeds: tuple[tuple[str, bytes], ...]
    commands: tuple[tuple[str, tuple[str, ...]], ...]
    extra_files: tuple[tuple[str, bytes], ...] = ()  # valid files the commands also need


SKYPILOT_HEADER = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone"
)
A10G_INFO = (
    '"{""Gpus"": [{""Name"": ""A10G"", ""Manufacturer"": ""NVIDIA"", ""Count"": 1.0, ""MemoryInfo"": '
    '{""SizeInMiB"": 22888}}], ""TotalGpuMemoryInMiB"": 22888}"'
)
SKYPILOT_CSV = "\n".join(
    (
        SKYPILOT_HEADER,
        f"g5.xlarge,A10G,1.0,4,16,{A10G_INFO},1.006,0.4,us-east-1,us-east-1a",
        f"g5.12xlarge,A10G,4.0,48,192,{A10G_INFO.replace('1.0', '4.0')},5.672,2.1,us-east-1,us-east-1b",
        "p4d.24xlarge,A100,8.0,96,1152,,32.77,12.0,us-east-1,us-east-1c",
        "m5.large,,,2,8,,0.096,0.04,us-east-1,us-east-1a",
    )
).encode()
HF_CONFIGS = (
    (
        "llama",
        {
            "model_type": "llama",
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "vocab_size": 128256,
            "max_position_embeddings": 8192,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
    ),
    ("gpt2", {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}),
    (
        "mixtral",
        {
            "model_type": "mixtral",
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "vocab_size": 32000,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
        },
    ),
)
BENCH_RESULTS = (
    (
        "rtx4090-resnet18",
        {
            "schema": "envcheck.bench/1",
            "preset": "resnet18",
            "device": "cuda:0",
            "device_name": "NVIDIA GeForce RTX 4090",
            "images_per_s": 5000.0,
            "date": "2026-11-28T14:53:00Z",
            "timing": {"images_per_s": 5000.0, "cv": 0.02, "window_images_per_s": [4990.0, 5000.0, 5010.0]},
            "versions": {"torch": "2.5.1+cu124", "envcheck": "0.1.0"},
        },
    ),
    (
        "h100-resnet18",
        {
            "schema": "envcheck.bench/1",
            "preset": "resnet18",
            "device": "cuda:1",
            "device_name": "NVIDIA H100 80GB HBM3",
            "images_per_s": 14000.5,
            "date": "2026-11-29T02:53:00Z",
        },
    ),
)
SNAPSHOT_COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("info --from", ("info", "--from", SEED_FILE)),
    ("info --from --json", ("info", "--from", SEED_FILE, "--json")),
    ("info --from --markdown", ("info", "--from", SEED_FILE, "--markdown")),
    ("doctor --from", ("doctor", "--from", SEED_FILE, "--verbose")),
    ("doctor --from --json", ("doctor", "--from", SEED_FILE, "--json")),
    ("doctor --from --markdown", ("doctor", "--from", SEED_FILE, "--markdown")),
    ("doctor --from --profile", ("doctor", "--from", SEED_FILE, "--profile", "llama-7b-lora")),
    ("setup --from", ("setup", "--from", SEED_FILE)),
    (
        "setup --from --os --arch --python --json",  # what an nvidia-smi XML lacks
        ("setup", "--from", SEED_FILE, "--os", "linux", "--arch", "x86_64", "--python", "3.11", "--json"),
    ),
    ("recommend --here --from", ("recommend", "--workload", "llama-7b-lora", "--here", "--from", SEED_FILE)),
)


def _files(paths: Iterable[Path]) -> tuple[tuple[str, bytes], ...]:
    return tuple((path.name, path.read_bytes()) for path in sorted(paths))


def nvidia_smi_seeds(repository: Path = REPOSITORY) -> tuple[tuple[str, bytes], ...]:
    """The repository's nvidia-smi -q -x recordings, and ../shared's when that checkout has them."""
    shared = repository.parent / "shared" / "fixtures" / "nvidia-smi"
    paths = [*(repository / "tests" / "fixtures" / "nvidia-smi").glob("*.xml")]
    if shared.is_dir():
        paths.extend(shared.glob("*.xml"))
    return _files(paths)


def pasted_text_seeds(repository: Path = REPOSITORY) -> list[Path]:
    """Every text `--from` detects: collect_env pastes (the fixtures and the real reports of the corpus, `nvidia-smi
    -q` text among them) and detectron2's / OpenMMLab's own collect_env tables."""
    fixtures = repository / "tests" / "fixtures"
    return [
        *(fixtures / "collect_env").glob("*.txt"),
        *(fixtures / "reports").glob("*.txt"),
        *(fixtures / "framework_env").glob("*.txt"),
        *(fixtures / "nvidia-smi-q").glob("*.txt"),
    ]


def build_targets(snapshot_seeds: Sequence[tuple[str, bytes]], repository: Path = REPOSITORY) -> tuple[Target, ...]:
    """Every importer and every file option, each with its valid seeds (snapshot JSON is made by the caller)."""
    profiles = repository / "profiles"
    xml_seeds = nvidia_smi_seeds(repository)
    doctor_profile_base = (("machine.xml", xml_seeds[0][1]),)
    workloads = _files((profiles / "workloads").glob("*.toml"))
    return (
        Target("snapshot-json", "json", "snapshot.json", tuple(snapshot_seeds), SNAPSHOT_COMMANDS),
        Target("nvidia-smi-xml", "xml", "nvidia-smi.xml", xml_seeds, SNAPSHOT_COMMANDS),
        Target(
            "collect-env-text",
            "text",
            "collect_env.txt",
            _files(pasted_text_seeds(repository)),
            SNAPSHOT_COMMANDS,
        ),
        Target(
            "catalog-toml",
            "toml",
            "catalog.toml",
            _files((profiles / "clouds").glob("*.toml")),
            (
                ("recommend --catalog", ("recommend", "--workload", "llama-7b-lora", "--catalog", SEED_FILE)),
                (
                    "recommend --catalog --spot --json",
                    ("recommend", "--workload", "llama-7b-full", "--catalog", SEED_FILE, "--spot", "--json"),
                ),
                (
                    "recommend --catalog --sort hourly --markdown --emit",
                    (
                        "recommend",
                        "--params",
                        "1B",
                        "--catalog",
                        SEED_FILE,
                        "--sort",
                        "hourly",
                        "--markdown",
                        "--emit",
                        "skypilot",
                        "--emit-file",
                        "sky.yaml",
                    ),
                ),
            ),
        ),
        Target(
            "catalog-csv",
            "csv",
            "aws/vms.csv",
            (("vms.csv", SKYPILOT_CSV),),
            (
                ("recommend --catalog vms.csv", ("recommend", "--workload", "llama-7b-lora", "--catalog", SEED_FILE)),
                (
                    "recommend --catalog vms.csv --spot --json",
                    ("recommend", "--params", "7B", "--catalog", SEED_FILE, "--spot", "--json"),
                ),
            ),
        ),
        Target(
            "workload-toml",
            "toml",
            "workload.toml",
            workloads,
            (
                ("recommend --workload", ("recommend", "--workload", SEED_FILE)),
                ("recommend --workload --json --buy", ("recommend", "--workload", SEED_FILE, "--json", "--buy")),
                ("doctor --profile", ("doctor", "--from", "machine.xml", "--profile", SEED_FILE)),
            ),
            doctor_profile_base,
        ),
        Target(
            "hf-config-json",
            "json",
            "model/config.json",
            tuple((f"{name}.json", json.dumps(config, indent=2).encode()) for name, config in HF_CONFIGS),
            (
                ("recommend --hf-config", ("recommend", "--hf-config", SEED_FILE)),
                (
                    "recommend --hf-config --task lora --json",
                    ("recommend", "--hf-config", SEED_FILE, "--task", "lora", "--json", "--buy"),
                ),
            ),
        ),
        Target(
            "bench-results-json",
            "json",
            "bench.json",
            tuple((f"{name}.json", json.dumps(result, indent=2).encode()) for name, result in BENCH_RESULTS),
            (
                (
                    "recommend --bench-results",
                    ("recommend", "--workload", "resnet50-imagenet", "--bench-results", SEED_FILE),
                ),
                (
                    "recommend --bench-results --buy --json",
                    ("recommend", "--workload", "resnet50-imagenet", "--bench-results", SEED_FILE, "--buy", "--json"),
                ),
            ),
        ),
        Target(
            "saved-bench-results",
            "json",
            "data/envcheck/bench/20261128T145300Z-nvidia-geforce-rtx-4090-cuda0-resnet18.json",
            tuple((f"{name}.json", json.dumps(result, indent=2).encode()) for name, result in BENCH_RESULTS),
            (("recommend (saved results dir)", ("recommend", "--workload", "resnet50-imagenet")),),
        ),
        Target(
            "explain-log",
            "text",
            "train.log",
            _files((repository / "tests" / "fixtures" / "explain").glob("*.txt")),
            (
                ("explain FILE --no-probe", ("explain", SEED_FILE, "--no-probe")),
                ("explain FILE --no-probe --json", ("explain", SEED_FILE, "--no-probe", "--json")),
                ("explain FILE --no-probe --markdown", ("explain", SEED_FILE, "--no-probe", "--markdown")),
                ("explain FILE --from machine.xml", ("explain", SEED_FILE, "--from", "machine.xml", "--json")),
            ),
            doctor_profile_base,
        ),
        Target(
            "calibration-toml",
            "toml",
            "calibration.toml",
            _files([profiles / "calibration.toml"]),
            (
                ("bench --save-reference", ("bench", "--save-reference", SEED_FILE, "--no-save", "--no-ceiling")),
                ("bench --calibration", ("bench", "--calibration", SEED_FILE, "--no-save", "--no-ceiling")),
            ),
        ),
    )


# --- cases --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    number: int
    target: str
    option: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...]
    seed_name: str
    mutations: tuple[str, ...]  # empty: the valid seed itself (a baseline)


def command_matrix(targets: Sequence[Target]) -> tuple[tuple[Target, str, tuple[str, ...]], ...]:
    return tuple((target, label, argv) for target in targets for label, argv in target.commands)


def make_case(matrix: Sequence[tuple[Target, str, tuple[str, ...]]], seed: int, number: int) -> Case:
    """Case `number` of run `seed`: the same bytes every time (its own Random, seeded by text, not by hash())."""
    rng = random.Random(f"envcheck-fuzz:{seed}:{number}")
    target, label, argv = matrix[number % len(matrix)]  # round robin: every file option gets its share
    seed_name, data = rng.choice(target.seeds)
    mutations: tuple[str, ...] = ()
    if number >= len(matrix):  # the first pass runs each command on a valid file
        data, mutations = mutate(data, target.syntax, rng)
    return Case(
        number,
        target.name,
        label,
        tuple(target.file_name if part == SEED_FILE else part for part in argv),
        ((target.file_name, data), *target.extra_files),
        seed_name,
        mutations,
    )


def make_cases(targets: Sequence[Target], seed: int, count: int, start: int = 0) -> Iterator[Case]:
    matrix = command_matrix(targets)
    return (make_case(matrix, seed, number) for number in range(start, start + count))


# --- running a case in a forked child -----------------------------------------------------------------------------


class _ReachedRun(BaseException):
    """Raised at `import torch` in a child: not an Exception, so no `except Exception` in envcheck swallows it."""


class _StopAtTorch:
    """A meta path finder that ends the case where the long work (training, an in-process probe) would begin."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise _ReachedRun(name)


@dataclass(frozen=True)
class Outcome:
    case: Case
    exit_code: int | None  # None when killed by a signal
    signal_number: int | None
    is_hang: bool
    duration_s: float
    peak_rss_kib: int
    crash: dict[str, Any] | None  # type, message, frames of an exception that escaped main
    stdout: str  # the first TAIL_BYTES
    stderr: str
    directory: Path


def preload_envcheck() -> None:
    """Import every envcheck module in the parent and run two valid command lines there, so that each child starts
    with the imports (envcheck's and Typer's lazy ones) and the shipped knowledge already loaded.

    Only envcheck's own data is cached this way; every case's input files are read by the child itself.
    """
    import envcheck

    package = Path(envcheck.__file__).parent
    skipped = {"envcheck.__main__", "envcheck.probes.target_script"}  # scripts: they run when imported
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in skipped:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    xml = nvidia_smi_seeds()[0]
    with tempfile.TemporaryDirectory() as folder:
        machine = Path(folder) / xml[0]
        machine.write_bytes(xml[1])
        for argv in (("doctor", "--from", str(machine), "--json"), ("recommend", "--params", "1B", "--json")):
            _run_in_process(argv)
    from envcheck.probes.bounded import allow_starts

    allow_starts()  # each command line ends with stop_all(); the process that imported the harness goes on


def _run_in_process(argv: Sequence[str]) -> None:
    from envcheck.launch import main

    saved = sys.argv
    sys.argv = ["envcheck", *argv]
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            main()
    except SystemExit:
        pass
    finally:
        sys.argv = saved


def _child(case: Case, directory: Path, memory_cap_bytes: int) -> None:
    """In the forked child: set up the case, run the CLI, and leave with os._exit (never return to the parent)."""
    code = CRASHED
    try:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap_bytes, memory_cap_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP_BYTES, OUTPUT_CAP_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.chdir(directory)
        for number, name, flags in ((0, "/dev/null", os.O_RDONLY), (1, "stdout", 0), (2, "stderr", 0)):
            descriptor = os.open(name, flags | os.O_CREAT | os.O_WRONLY | os.O_TRUNC if number else flags)
            os.dup2(descriptor, number)
            os.close(descriptor)
        # new streams on the new descriptors: the parent's may be a test runner's capture, not fds 0-2
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 -- lives until os._exit
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
        os.environ.update(
            HOME=str(directory),
            XDG_DATA_HOME=str(directory / "data"),
            COLUMNS="100",
            TERM="dumb",
            NO_COLOR="1",
        )
        sys.meta_path.insert(0, _StopAtTorch())
        sys.argv = ["envcheck", *case.argv]
        from envcheck.launch import main

        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except _ReachedRun:
            code = REACHED_RUN
        except BaseException as error:
            frames = [(frame.filename, frame.lineno, frame.name) for frame in traceback.extract_tb(error.__traceback__)]
            record = {"type": type(error).__name__, "message": str(error)[:500], "frames": frames}
            Path("crash.json").write_text(json.dumps(record))
            traceback.print_exc()
            code = CRASHED
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _head(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return file.read(TAIL_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


@dataclass
class Runner:
    """Runs cases `jobs` at a time; each child is killed (with its session) past `timeout_s`."""

    work: Path
    timeout_s: float = 10.0
    jobs: int = 1
    memory_cap_bytes: int = 4 * 1024**3  # RLIMIT_AS: a runaway case fails there instead of taking the machine

    def run(self, cases: Iterable[Case]) -> Iterator[Outcome]:
        pending = iter(cases)
        running: dict[int, tuple[Case, Path, float, bool]] = {}
        exhausted = False
        while running or not exhausted:
            while not exhausted and len(running) < self.jobs:
                case = next(pending, None)
                if case is None:
                    exhausted = True
                    break
                directory = self._prepare(case)
                # the child starts with the parent's resident pages: drop the input bytes before the fork
                case = dataclasses.replace(case, files=())
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(case, directory, self.memory_cap_bytes)
                running[pid] = (case, directory, time.monotonic(), False)
            if not running:
                break
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                self._kill_overdue(running)
                time.sleep(0.002)
                continue
            case, directory, started, is_hang = running.pop(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # whatever the case started and left behind
            yield self._outcome(case, directory, status, usage, time.monotonic() - started, is_hang)

    def _prepare(self, case: Case) -> Path:
        directory = self.work / f"case-{case.number}"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        (directory / "data").mkdir()
        for name, data in case.files:
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return directory

    def _kill_overdue(self, running: dict[int, tuple[Case, Path, float, bool]]) -> None:
        now = time.monotonic()
        for pid, (case, directory, started, is_hang) in list(running.items()):
            if not is_hang and now - started > self.timeout_s:
                for kill in (os.killpg, os.kill):  # killpg: the child and its children; kill: before its setsid
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(pid, signal.SIGKILL)
                running[pid] = (case, directory, started, True)

    @staticmethod
    def _outcome(case: Case, directory: Path, status: int, usage: Any, duration: float, is_hang: bool) -> Outcome:
        crash_file = directory / "crash.json"
        crash = json.loads(crash_file.read_text()) if crash_file.is_file() else None
        return Outcome(
            case,
            os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
            os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            is_hang,
            duration,
            usage.ru_maxrss,
            crash,
            _head(directory / "stdout"),
            _head(directory / "stderr"),
            directory,
        )


# --- judging and reporting ----------------------------------------------------------------------------------------


def traceback_key(outcome: Outcome) -> str | None:
    """'ExceptionType at file:line in function' (the last envcheck frame) when the case crashed, else None."""
    if outcome.is_hang:
        return None
    if outcome.crash is not None:
        frames = outcome.crash["frames"]
        ours = [f for f in frames if "/envcheck/" in f[0]] or frames
        where = f"{_short(ours[-1][0])}:{ours[-1][1]} in {ours[-1][2]}" if ours else "?"
        return f"{outcome.crash['type']} at {where}"
    if TRACEBACK_MARK in outcome.stderr or TRACEBACK_MARK in outcome.stdout:
        text = outcome.stderr if TRACEBACK_MARK in outcome.stderr else outcome.stdout
        places = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', text)
        last_line = [line for line in text.strip().splitlines() if line.strip()][-1:]
        where = f"{_short(places[-1][0])}:{places[-1][1]} in {places[-1][2]}" if places else "?"
        return f"printed traceback {last_line[0][:80] if last_line else ''} at {where}"
    if outcome.signal_number is not None:
        return f"killed by signal {signal.Signals(outcome.signal_number).name}"
    if outcome.exit_code not in DOCUMENTED_EXIT_CODES | {REACHED_RUN}:
        return f"undocumented exit code {outcome.exit_code}"
    return None


def _short(filename: str) -> str:
    marker = filename.rfind("/envcheck/")
    return filename[marker + 1 :] if marker >= 0 else filename


def notes(outcome: Outcome) -> list[str]:
    """Output problems that are not crashes: raw control characters, non-strict JSON, multi-line errors."""
    found = []
    if CONTROL.search(outcome.stdout) or CONTROL.search(outcome.stderr):
        found.append("raw control characters in the output")
    if "--json" in outcome.case.argv and outcome.exit_code in (0, 1) and outcome.stdout.strip():
        try:
            json.loads(outcome.stdout, parse_constant=_refuse_constant)
        except ValueError as error:
            if len(outcome.stdout) < TAIL_BYTES:  # a cut-off head is not a verdict on the JSON
                found.append(f"--json output is not strict JSON ({str(error)[:40]})")
    if outcome.exit_code == 2 and len([line for line in outcome.stderr.splitlines() if line.strip()]) > 1:
        found.append("error message longer than one line")
    return found


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass
class Summary:
    memory_limit_kib: int
    cases: int = 0
    by_option: Counter[tuple[str, str]] = field(default_factory=Counter)
    exits_by_option: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    tracebacks: dict[str, list[Outcome]] = field(default_factory=lambda: defaultdict(list))
    hangs: list[Outcome] = field(default_factory=list)
    over_memory: list[Outcome] = field(default_factory=list)
    notes: dict[str, list[Outcome]] = field(default_factory=lambda: defaultdict(list))
    baseline_errors: list[Outcome] = field(default_factory=list)
    peak: Outcome | None = None
    slowest: Outcome | None = None

    def add(self, outcome: Outcome) -> bool:
        """Count the outcome; True when it is a finding (its directory should be kept as a reproducer)."""
        full = outcome
        option = (outcome.case.target, outcome.case.option)
        self.cases += 1
        self.by_option[option] += 1
        exit_label = "hang" if outcome.is_hang else str(outcome.exit_code if outcome.signal_number is None else
                                                        f"signal {outcome.signal_number}")  # fmt: skip
        self.exits_by_option[option][exit_label] += 1
        if self.peak is None or outcome.peak_rss_kib > self.peak.peak_rss_kib:
            self.peak = outcome
        if not outcome.is_hang and (self.slowest is None or outcome.duration_s > self.slowest.duration_s):
            self.slowest = outcome
        finding = False
        key = traceback_key(outcome)
        outcome = _light(outcome)  # what is kept: the parent's memory is every forked child's starting RSS
        if key is not None:
            self.tracebacks[key].append(outcome)
            finding = True
        if outcome.is_hang:
            self.hangs.append(outcome)
            finding = True
        if outcome.peak_rss_kib > self.memory_limit_kib:
            self.over_memory.append(outcome)
            finding = True
        for note in notes(full):
            self.notes[note].append(outcome)
        if not outcome.case.mutations and outcome.exit_code not in (0, 1, REACHED_RUN):
            self.baseline_errors.append(outcome)
            finding = True
        return finding

    @property
    def is_clean(self) -> bool:
        return not (self.tracebacks or self.hangs or self.over_memory)

    def report(self, wall_s: float, reproducers: dict[str, Path]) -> str:
        lines = [f"envcheck fuzz: {self.cases} cases in {wall_s:.1f} s ({self.cases / max(wall_s, 1e-9):.1f}/s)", ""]
        lines.append("cases per format and option (exit codes):")
        for option, count in sorted(self.by_option.items()):
            exits = ", ".join(f"{code}: {n}" for code, n in sorted(self.exits_by_option[option].items()))
            lines.append(f"  {option[0]:<20} {option[1]:<52} {count:>6}  ({exits})")
        lines.append("")
        total_tracebacks = sum(len(v) for v in self.tracebacks.values())
        lines.append(f"tracebacks: {total_tracebacks} in {len(self.tracebacks)} groups")
        for key, outcomes in sorted(self.tracebacks.items(), key=lambda item: -len(item[1])):
            first = outcomes[0]
            options = sorted({o.case.option for o in outcomes})
            lines.append(f"  {len(outcomes):>5} x {key}")
            lines.append(f"          options: {'; '.join(options)[:200]}")
            lines.append(f"          first: case {first.case.number} ({first.case.seed_name}: "
                         f"{'; '.join(first.case.mutations)[:160]})")  # fmt: skip
            if first.crash is not None:
                lines.append(f"          message: {first.crash['message'][:160]!r}")
            if key in reproducers:
                lines.append(f"          reproducer: {reproducers[key]}")
        lines.append(f"hangs (killed at the timeout): {len(self.hangs)}")
        lines.extend(self._listing(self.hangs, reproducers, "hang"))
        limit_mb = self.memory_limit_kib / 1024
        lines.append(f"cases above {limit_mb:.0f} MB peak RSS: {len(self.over_memory)}")
        lines.extend(self._listing(self.over_memory, reproducers, "memory"))
        if self.peak is not None:
            peak = self.peak
            what = "; ".join(peak.case.mutations)[:100] or "valid seed"
            lines.append(f"peak RSS max: {peak.peak_rss_kib / 1024:.1f} MB (case {peak.case.number}, "
                         f"{peak.case.option}, {what})")  # fmt: skip
        parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines.append(f"fuzzing parent's peak RSS: {parent_mb:.1f} MB (each forked case starts with it)")
        if self.slowest is not None:
            lines.append(f"slowest case: {self.slowest.duration_s:.2f} s (case {self.slowest.case.number}, "
                         f"{self.slowest.case.option})")  # fmt: skip
        if self.baseline_errors:
            lines.append(f"valid seeds refused (exit 2 or worse): {len(self.baseline_errors)}")
            lines.extend(f"  case {o.case.number} {o.case.option} {o.case.seed_name}: {o.stderr.strip()[:160]}"
                         for o in self.baseline_errors)  # fmt: skip
        lines.append("")
        lines.append("notes (reported, not failing):")
        for note, outcomes in sorted(self.notes.items()):
            options = Counter(o.case.option for o in outcomes).most_common(3)
            example = outcomes[0]
            lines.append(f"  {len(outcomes):>5} x {note}: e.g. case {example.case.number} ({example.case.option}); "
                         f"most in {', '.join(f'{o} ({n})' for o, n in options)}")  # fmt: skip
        lines.append("")
        lines.append("RESULT: " + ("clean" if self.is_clean else "FINDINGS (tracebacks, hangs or memory)"))
        return "\n".join(lines)

    @staticmethod
    def _listing(outcomes: list[Outcome], reproducers: dict[str, Path], kind: str) -> list[str]:
        lines = []
        for o in outcomes[:10]:
            saved = reproducers.get(f"{kind}:{o.case.number}")
            lines.append(f"  case {o.case.number} {o.case.option} ({'; '.join(o.case.mutations)[:120]}), "
                         f"{o.duration_s:.1f} s, {o.peak_rss_kib / 1024:.0f} MB"
                         + (f" reproducer: {saved}" if saved else ""))  # fmt: skip
        return lines


def _light(outcome: Outcome) -> Outcome:
    """The outcome without its input bytes and with short output heads: enough for the report."""
    return dataclasses.replace(
        outcome,
        case=dataclasses.replace(outcome.case, files=()),
        stdout=outcome.stdout[:2000],
        stderr=outcome.stderr[:2000],
    )


def save_reproducer(outcome: Outcome, destination: Path) -> Path:
    """The case's files, its stdout/stderr and a `repro.sh` that runs the same command line from that folder."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(outcome.directory, destination, symlinks=True)
    argv = " ".join(_quote(part) for part in outcome.case.argv)
    (destination / "repro.sh").write_text(
        "#!/bin/sh\n"
        f"# case {outcome.case.number}: {outcome.case.target} / {outcome.case.option}\n"
        f"# seed file {outcome.case.seed_name}; mutations: {'; '.join(outcome.case.mutations)}\n"
        'cd "$(dirname "$0")" && HOME="$PWD" XDG_DATA_HOME="$PWD/data" COLUMNS=100 '
        f"${{PYTHON:-python}} -m envcheck {argv}\n"
    )
    (destination / "repro.sh").chmod(0o755)
    return destination


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80]


def snapshot_seeds(runner: Runner, repository: Path = REPOSITORY, live: bool = False) -> tuple[tuple[str, bytes], ...]:
    """Valid snapshot JSON: `info --json --from` every recording (and this machine's `info --json` when live)."""
    sources = [
        ("nvidia-smi.xml", name, data) for name, data in nvidia_smi_seeds(repository)
    ] + [("collect_env.txt", path.name, path.read_bytes())
         for path in sorted((repository / "tests" / "fixtures" / "collect_env").glob("*.txt"))]  # fmt: skip
    cases = [
        Case(-1 - number, "seed", "info --json --from", ("info", "--json", "--from", file_name), ((file_name, data),),
             name, ())
        for number, (file_name, name, data) in enumerate(sources)
    ]  # fmt: skip
    if live:
        cases.append(Case(-1 - len(cases), "seed", "info --json", ("info", "--json"), (), "this machine", ()))
    seeds = []
    saved_timeout = runner.timeout_s
    runner.timeout_s = max(runner.timeout_s, 120.0)  # the live snapshot runs the torch probe
    try:
        for outcome in runner.run(cases):
            if outcome.exit_code == 0 and outcome.stdout.startswith("{") and len(outcome.stdout) < TAIL_BYTES:
                seeds.append((f"snapshot-of-{outcome.case.seed_name}.json", outcome.stdout.encode()))
            shutil.rmtree(outcome.directory, ignore_errors=True)
    finally:
        runner.timeout_s = saved_timeout
    return tuple(seeds)


def fuzz(
    runner: Runner,
    targets: Sequence[Target],
    seed: int,
    count: int,
    out: Path | None,
    memory_limit_mb: float = 500.0,
    on_outcome: Callable[[Outcome], None] | None = None,
    only: Callable[[Case], bool] | None = None,
) -> tuple[Summary, dict[str, Path]]:
    """Run `count` cases; keep one reproducer per traceback group (and per hang / memory case) under `out`."""
    summary = Summary(int(memory_limit_mb * 1024))
    reproducers: dict[str, Path] = {}
    cases: Iterable[Case] = make_cases(targets, seed, count)
    if only is not None:
        cases = filter(only, cases)
    for outcome in runner.run(cases):
        is_finding = summary.add(outcome)
        if is_finding and out is not None:
            key = traceback_key(outcome)
            is_over = outcome.peak_rss_kib > summary.memory_limit_kib
            for name in (key, f"hang:{outcome.case.number}" if outcome.is_hang else None,
                         f"memory:{outcome.case.number}" if is_over else None):  # fmt: skip
                if name is not None and name not in reproducers:
                    folder = f"{len(reproducers) + 1:03d}-{slug(name)}"
                    reproducers[name] = save_reproducer(outcome, out / "reproducers" / folder)
        if on_outcome is not None:
            on_outcome(outcome)
        shutil.rmtree(outcome.directory, ignore_errors=True)
    return summary, reproducers
