"""`envcheck explain`: what an error message, a log or a pasted issue says went wrong, judged against this machine."""

from __future__ import annotations

import sys
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
    PythonOption,
    TimeoutOption,
)
from envcheck.cli.output import emit, input_errors
from envcheck.cli.snapshots import load_or_collect, shareable

STDIN = "standard input"
USAGE = "no input: give a FILE, or pipe the error in (python train.py 2>&1 | envcheck explain)"


@app.command()
def explain(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE",
            help="The error message, log or pasted issue; `-` or nothing reads standard input.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    output: OutputOption = None,
    source: FromOption = None,
    python: PythonOption = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Skip the torch probe: package versions from metadata only.")
    ] = False,
    no_probe: Annotated[
        bool,
        typer.Option("--no-probe", help="Probe nothing: judge from the text alone (and --from FILE when given)."),
    ] = False,
    no_redact: NoRedactOption = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Also show where each signature was discussed (issue links).")
    ] = False,
    timeout: TimeoutOption = 60.0,
    debug: DebugOption = False,
) -> None:
    """Say what an error means and what to change, judged against this machine (or --from FILE).

    Reads an error message, a whole log or a pasted issue: python train.py 2>&1 | envcheck explain

    Knows the common failures of PyTorch environments (docs/explain.md lists them); never guesses.

    Exit 1: an environment failure recognised. 0: a bug in the program, or nothing recognised. 2: bad input.
    """
    from envcheck.explain import find_signatures, report_of
    from envcheck.explain.engine import no_snapshot
    from envcheck.knowledge.signatures import load_signatures
    from envcheck.loaders import InputError
    from envcheck.redaction import redact_snapshot
    from envcheck.render.explain import render_explain, render_explain_json, render_explain_markdown

    with input_errors():
        if as_json and as_markdown:
            raise InputError("--json and --markdown cannot be used together")
        text, name = _read(file)
        table = load_signatures()
        matches = find_signatures(text, table)
        pasted = _pasted_report(text) if source is None and matches else None
        if source is not None:
            snapshot = load_or_collect(source, None, None, no_redact, timeout, debug)
            facts_from = str(source)
        elif pasted is not None:
            # a pasted issue carries the failing machine's own report: judge against it, not against this machine
            snapshot, line = pasted
            snapshot = snapshot if no_redact else redact_snapshot(snapshot)
            facts_from = f"the collect_env report in the text (line {line})"
        elif no_probe or not matches:
            # nothing to judge, or asked not to probe: no probe runs (a pipe into explain stays fast)
            snapshot = no_snapshot("not collected: --no-probe" if no_probe else "not collected: nothing recognised")
            facts_from = "the text alone (--no-probe)" if no_probe else "the text alone"
        else:
            skip = ("framework",) if fast else ()
            snapshot = load_or_collect(None, python, None, no_redact, timeout, debug, skip=skip)
            facts_from = "this machine" + (" (--fast: no torch probe)" if fast else "")
        report = report_of(matches, text, snapshot, _knowledge(), table, name, facts_from)
        if not no_redact:
            report = _redacted(report)
        emit(
            as_json,
            as_markdown,
            output,
            lambda: shareable(render_explain_json(report), no_redact),
            lambda: shareable(render_explain_markdown(report), no_redact),
            lambda console: render_explain(report, console, verbose),
        )
    raise typer.Exit(report.exit_code)


def _read(file: str | None) -> tuple[str, str]:
    """The text to explain and how to name it: FILE through the one input reader, else standard input."""
    from envcheck.input_files import LOG_LIMIT, read_input_file, read_input_stream
    from envcheck.loaders import InputError

    if file is None or file == "-":
        if file is None and sys.stdin is not None and sys.stdin.isatty():
            raise InputError(USAGE)
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise InputError(USAGE)
        data, name = read_input_stream(stream, LOG_LIMIT, STDIN), STDIN
    else:
        data, name = read_input_file(file, LOG_LIMIT), file
    # logs mix encodings and binary noise: undecodable bytes become U+FFFD rather than refuse the whole log
    return data.decode("utf-8", errors="replace"), name


def _pasted_report(text: str) -> tuple[Any, int] | None:
    """The Snapshot of a `python -m torch.utils.collect_env` report inside the text, and the line it starts on."""
    import re

    from envcheck.importers.collect_env import CollectEnvError, snapshot_from_collect_env

    found = re.search(r"^.{0,40}?(?:Collecting environment information|PyTorch version\s*:)", text, re.M | re.I)
    if found is None:
        return None
    # a script printing "PyTorch version: 2.3.1" is not a report: two more of collect_env's own lines must follow
    block = text[found.start() : found.start() + 5000]
    markers = ("Is debug build:", "CUDA used to build PyTorch:", "OS:", "Python version:", "Is CUDA available:")
    if sum(marker in block for marker in markers) < 2:
        return None
    try:
        snapshot = snapshot_from_collect_env(text[found.start() :].encode("utf-8"), "the pasted report")
    except CollectEnvError:
        return None
    return snapshot, text.count("\n", 0, found.start()) + 1


def _redacted(report: Any) -> Any:
    """The report with tokens and URL passwords in the quoted log lines hidden, as every command hides them."""
    import dataclasses

    from envcheck.redaction import redact_value

    def clean(text: str) -> str:
        return redact_value("", text)[0]

    explanations = tuple(
        dataclasses.replace(
            explanation,
            quoted_line=clean(explanation.quoted_line),
            decoded=tuple(clean(line) for line in explanation.decoded),
            because=tuple(clean(line) for line in explanation.because),
        )
        for explanation in report.explanations
    )
    return dataclasses.replace(report, explanations=explanations)


def _knowledge() -> Any:
    from envcheck.knowledge import load_knowledge

    return load_knowledge()
