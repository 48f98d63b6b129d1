"""`envcheck doctor`: the diagnosis of a machine, with a fix per finding."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import typer

from envcheck.cli.app import app
from envcheck.cli.options import (
    DebugOption,
    FromOption,
    JsonOption,
    MarkdownOption,
    NoRedactOption,
    OutputOption,
    PathOption,
    PythonOption,
    TimeoutOption,
    VerboseOption,
)
from envcheck.cli.output import emit, input_errors
from envcheck.cli.snapshots import load_or_collect, shareable


@app.command()
def doctor(
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    output: OutputOption = None,
    python: PythonOption = None,
    path: PathOption = None,
    no_redact: NoRedactOption = False,
    verbose: VerboseOption = False,
    source: FromOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only the checks of AREA (repeatable).")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip the check ID (repeatable).")] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Skip the torch probe: package versions from metadata only.")
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME|FILE",
            help="Also check the machine against a workload profile: a shipped name (llama-7b-lora) or a TOML file.",
        ),
    ] = None,
    bench: Annotated[
        bool, typer.Option("--bench", help="Finish with `envcheck bench --quick` and judge its verdict too.")
    ] = False,
    timeout: TimeoutOption = 60.0,
    debug: DebugOption = False,
) -> None:
    """Diagnose this machine for training: every problem found, with the exact fix. Exit 1 on failures."""
    from envcheck.finding import AREA_TITLES, exit_code
    from envcheck.loaders import InputError
    from envcheck.validation import quoted

    with input_errors():
        unknown = sorted(set(only or ()) - set(AREA_TITLES))
        if unknown:
            raise InputError(f"--only {quoted(unknown[0])}: unknown area (known: {', '.join(AREA_TITLES)})")
        _check_skipped_ids(skip or ())
        workload = _workload(profile)  # before collecting: a bad profile fails fast with exit 2
        warm_up = _warm_up()
        snapshot = load_or_collect(source, python, path, no_redact, timeout, debug, skip=("framework",) if fast else ())
        warm_up.join()
        from envcheck.checks.registry import CheckInput, run_checks
        from envcheck.render.json import render_doctor_json
        from envcheck.render.markdown import render_doctor_markdown
        from envcheck.render.terminal import render_doctor

        findings = run_checks(CheckInput(snapshot, knowledge=_knowledge(), workload=workload), only or (), skip or ())
        if bench and source is None:
            findings = (*findings, *_bench_findings())
        code = exit_code(findings, strict)
        emit(
            as_json,
            as_markdown,
            output,
            lambda: shareable(render_doctor_json(snapshot, findings, code), no_redact),
            lambda: shareable(render_doctor_markdown(snapshot, findings, verbose), no_redact),
            lambda console: render_doctor(snapshot, findings, console, verbose),
        )
    raise typer.Exit(code)


def _check_skipped_ids(skip: list[str] | tuple[str, ...]) -> None:
    """A --skip that names no check is a typo that would silently skip nothing: refuse it, with close matches."""
    import difflib

    from envcheck.checks.registry import all_checks
    from envcheck.loaders import InputError
    from envcheck.validation import quoted

    known = sorted(check.id for check in all_checks())
    for check_id in skip:
        if check_id not in known:
            close = difflib.get_close_matches(check_id, known, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else "the ids are listed in docs/checks.md"
            raise InputError(f"--skip {quoted(check_id)}: no check has this id ({hint})")


def _warm_up() -> threading.Thread:
    """Load the checks, the knowledge base and the renderers while the probes run.

    The torch probe's import is doctor's critical path; this work then costs no wall time.
    """

    def work() -> None:
        from envcheck.checks.registry import all_checks
        from envcheck.render import json, markdown, terminal  # noqa: F401

        all_checks()
        _knowledge()

    thread = threading.Thread(target=work, name="doctor-warm-up", daemon=True)
    thread.start()
    return thread


def _bench_findings() -> list[Any]:
    """`envcheck bench --quick` on the best device, as findings; a skip when torch is not installed here."""
    from envcheck.finding import Finding, Severity

    try:
        from envcheck.bench.data import resolve_dataset
        from envcheck.bench.findings import bench_findings
        from envcheck.bench.presets import PRESETS
        from envcheck.bench.runner import RunOptions, resolve_devices, run_bench
        from envcheck.cli.bench import QUICK_SYNTHETIC_TEST_IMAGES, QUICK_SYNTHETIC_TRAIN_IMAGES

        device = resolve_devices(None)[0]
    except ImportError as error:
        return [
            Finding(
                "bench.speed",
                Severity.SKIP,
                "training benchmark not run",
                detail=f"torch is not importable by envcheck itself: {error}",
                fix="install torch and torchvision for this machine: `envcheck setup` prints the command",
            )
        ]
    dataset = resolve_dataset(None, False, False, (QUICK_SYNTHETIC_TRAIN_IMAGES, QUICK_SYNTHETIC_TEST_IMAGES))
    result = run_bench(RunOptions(PRESETS["tutorial-cnn"], device), dataset, _knowledge(), lambda *_: None)
    return bench_findings(result)


def _knowledge() -> Any:
    """The knowledge base, for checks that judge against it (torch/CUDA/driver tables, GPU specs)."""
    from envcheck.knowledge import load_knowledge

    return load_knowledge()


def _workload(profile: str | None) -> Any:
    """The workload profile named by --profile, or None; KnowledgeError (exit 2) when unknown or malformed."""
    if profile is None:
        return None
    from envcheck.knowledge import load_workload

    return load_workload(profile)
