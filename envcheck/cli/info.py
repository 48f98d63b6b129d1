"""`envcheck info`: the whole snapshot of a machine, readable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    """Show everything envcheck knows about this machine: system, CPU, memory, disks, Python, PyTorch, GPUs."""
    from envcheck.render.json import render_info_json
    from envcheck.render.markdown import render_info_markdown
    from envcheck.render.terminal import render_info

    with input_errors():
        snapshot = load_or_collect(source, python, path, no_redact, timeout, debug, record_nvml=record_nvml)
        emit(
            as_json,
            as_markdown,
            output,
            lambda: shareable(render_info_json(snapshot), no_redact),
            lambda: shareable(render_info_markdown(snapshot), no_redact),
            lambda console: render_info(snapshot, console, verbose),
        )
