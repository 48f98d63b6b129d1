"""How commands turn bad input into exit code 2 and write their output (stdout, a file, a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from envcheck.outfile import write_output_file
from envcheck.render.values import visible

EXIT_USAGE = 2


@contextmanager
def input_errors() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 2 (Ctrl-C and SIGTERM: envcheck.cli.stopping)."""
    from envcheck.knowledge import KnowledgeError
    from envcheck.loaders import InputError

    try:
        yield
    except (InputError, KnowledgeError) as error:
        typer.echo(f"envcheck: error: {one_line(str(error))}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def one_line(message: str) -> str:
    """MESSAGE with control characters escaped and line breaks shown as \\n: an error is one line."""
    return visible(message).replace("\r", "\\r").replace("\n", "\\n")


def console(file: Any = None) -> Any:
    """A rich console that shows control characters in any text it prints as escapes (`\\x1b`), so a name
    read from a catalog, a saved result or another interpreter's output never drives the terminal."""
    from rich.console import Console
    from rich.segment import Segment

    class EscapingConsole(Console):
        def render_str(self, text: str, **options: Any) -> Any:
            return super().render_str(visible(text), **options)  # before layout, so wrapping sees the escapes

        def render(self, renderable: Any, options: Any = None) -> Any:
            # and for Text built by a renderer: rich's own styling is in Segment.style, never in the text
            for segment in super().render(renderable, options):
                is_text = segment.control is None and segment.text
                yield Segment(visible(segment.text), segment.style) if is_text else segment

        def on_broken_pipe(self) -> None:
            # rich exits 1 here; the command group ends a closed stdout with 0 (envcheck.cli.stopping)
            self.quiet = True
            raise BrokenPipeError

    return EscapingConsole(file=file, highlight=False, soft_wrap=False)


def emit(
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
        write_output_file(output, visible(markdown()) if as_markdown else json_text())
    if as_json:
        sys.stdout.write(json_text() + "\n")
    elif as_markdown:
        sys.stdout.write(visible(markdown()))
    else:
        terminal(console())
