"""Options several commands share, declared once so their spelling and help never drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    Path | None,
    typer.Option(
        "--from",
        help="Read facts from a file instead of this machine: envcheck snapshot JSON, "
        "nvidia-smi -q -x XML, or pasted collect_env output.",
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of probes that crashed.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds the torch probe may take.", min=1.0)]
