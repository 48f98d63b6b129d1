"""The Typer application every command module registers on."""

from __future__ import annotations

from typing import Annotated

import typer

from envcheck import __version__
from envcheck.cli.stopping import StoppingGroup

app = typer.Typer(
    cls=StoppingGroup,
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Pre-flight checks for machines that train ML models: hardware, drivers, CUDA and PyTorch.",
)


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
