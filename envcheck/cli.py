"""The command line: thin commands that parse options, collect facts, run checks, render, exit.

No logic lives here beyond wiring; exit codes are those of docs/exit-codes.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from envcheck import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Pre-flight checks for machines that train ML models: hardware, drivers, CUDA and PyTorch.",
)

EXIT_USAGE = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Print Markdown for a bug report.")]
OutputOption = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="Also save the report to FILE (JSON, or Markdown with --markdown)."),
]
PythonOption = Annotated[
    str | None, typer.Option("--python", help="Inspect this interpreter's packages and torch (a venv or conda env).")
]
PathOption = Annotated[list[Path] | None, typer.Option("--path", help="Also inspect the disk behind DIR (repeatable).")]
NoRedactOption = Annotated[
    bool, typer.Option("--no-redact", help="Keep secrets (tokens, keys, URL passwords) in the output.")
]
VerboseOption = Annotated[bool, typer.Option("-v", "--verbose", help="Show every field and passing check.")]
FromOption = Annotated[
    Path | None, typer.Option("--from", help="Read facts from a file (envcheck snapshot JSON) instead of this machine.")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of probes that crashed.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds the torch probe may take.", min=1.0)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"envcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """envcheck: will this machine train the model, and if not, what exactly to change."""


@contextmanager
def _input_errors() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 2; Ctrl-C a message and 130."""
    from envcheck.knowledge_errors import input_error_types

    try:
        yield
    except input_error_types() as error:
        typer.echo(f"envcheck: error: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        typer.echo("envcheck: interrupted", err=True)
        raise typer.Exit(130) from None


def _console(file: Any = None) -> Any:
    from rich.console import Console

    return Console(file=file, highlight=False, soft_wrap=False)


def _snapshot(
    source: Path | None,
    python: str | None,
    paths: list[Path] | None,
    no_redact: bool,
    timeout: float,
    debug: bool,
    skip: tuple[str, ...] = (),
    record_nvml: Path | None = None,
) -> Any:
    if source is not None:
        from envcheck.loaders import load_snapshot_file

        return load_snapshot_file(source)
    from envcheck.collect import collect, default_probes
    from envcheck.loaders import InputError
    from envcheck.probes.context import ProbeContext

    if python is not None:
        resolved = shutil.which(python)
        if resolved is None:
            raise InputError(f"--python {python}: no such executable")
        python = resolved
    context = ProbeContext(
        python=python or sys.executable,
        paths=tuple(str(path) for path in paths or ()),
        is_redacting=not no_redact,
        framework_timeout_s=timeout,
    )
    probes = default_probes()
    if record_nvml is not None:
        probes = _recording_gpu_probe(probes, record_nvml)
    collected = collect(context, probes, skip=skip)
    if debug:
        for section, text in collected.tracebacks.items():
            typer.echo(f"--- traceback of the {section} probe ---\n{text}", err=True)
    return collected.snapshot


def _recording_gpu_probe(probes: Any, path: Path) -> Any:
    """The probes with the GPU one replaced by one that also writes every NVML answer to PATH."""
    from envcheck.collect import Probe
    from envcheck.loaders import InputError
    from envcheck.probes.nvml import record_nvml

    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise InputError(f"--record-nvml {path}: the directory does not exist or is not writable")
    return tuple(
        Probe("gpu", lambda context: record_nvml(path, context), probe.timeout_s) if probe.section == "gpu" else probe
        for probe in probes
    )


def _save(path: Path, text: str) -> None:
    """Write atomically: an interrupted or failed write never leaves a half-written report behind."""
    from envcheck.loaders import InputError

    directory = path.parent if str(path.parent) else Path()
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _emit(
    as_json: bool,
    as_markdown: bool,
    output: Path | None,
    json_text: Callable[[], str],
    markdown: Callable[[], str],
    terminal: Callable[[Any], None],
) -> None:
    if as_json and as_markdown:
        from envcheck.loaders import InputError

        raise InputError("--json and --markdown cannot be used together")
    if output is not None:
        _save(output, markdown() if as_markdown else json_text())
    if as_json:
        sys.stdout.write(json_text() + "\n")
    elif as_markdown:
        sys.stdout.write(markdown())
    else:
        terminal(_console())


@app.command()
def info(
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    output: OutputOption = None,
    python: PythonOption = None,
    path: PathOption = None,
    no_redact: NoRedactOption = False,
    verbose: VerboseOption = False,
    source: FromOption = None,
    timeout: TimeoutOption = 60.0,
    debug: DebugOption = False,
    record_nvml: Annotated[
        Path | None,
        typer.Option(
            "--record-nvml", help="Also write every NVML call and answer (anonymised) to FILE, for a bug report."
        ),
    ] = None,
) -> None:
    """Show everything envcheck knows about this machine: system, CPU, memory, disks, Python, PyTorch."""
    from envcheck.render.json import render_info_json
    from envcheck.render.markdown import render_info_markdown
    from envcheck.render.terminal import render_info

    with _input_errors():
        snapshot = _snapshot(source, python, path, no_redact, timeout, debug, record_nvml=record_nvml)
        _emit(
            as_json,
            as_markdown,
            output,
            lambda: render_info_json(snapshot),
            lambda: render_info_markdown(snapshot),
            lambda console: render_info(snapshot, console, verbose),
        )


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
    timeout: TimeoutOption = 60.0,
    debug: DebugOption = False,
) -> None:
    """Diagnose this machine for training: every problem found, with the exact fix. Exit 1 on failures."""
    from envcheck.checks.registry import CheckInput, all_checks, run_checks
    from envcheck.finding import exit_code
    from envcheck.loaders import InputError
    from envcheck.render.json import render_doctor_json
    from envcheck.render.markdown import render_doctor_markdown
    from envcheck.render.terminal import render_doctor

    with _input_errors():
        known_areas = {registered.area for registered in all_checks()}
        unknown = sorted(set(only or ()) - known_areas)
        if unknown:
            raise InputError(f"--only {unknown[0]}: unknown area (known: {', '.join(sorted(known_areas))})")
        snapshot = _snapshot(source, python, path, no_redact, timeout, debug, skip=("framework",) if fast else ())
        findings = run_checks(CheckInput(snapshot, knowledge=_knowledge()), only or (), skip or ())
        code = exit_code(findings, strict)
        _emit(
            as_json,
            as_markdown,
            output,
            lambda: render_doctor_json(snapshot, findings, code),
            lambda: render_doctor_markdown(snapshot, findings, verbose),
            lambda console: render_doctor(snapshot, findings, console, verbose),
        )
    raise typer.Exit(code)


def _knowledge() -> Any:
    """The knowledge base, for checks that judge against it (torch/CUDA/driver tables, GPU specs)."""
    from envcheck.knowledge import load_knowledge

    return load_knowledge()


def main() -> None:
    app()
