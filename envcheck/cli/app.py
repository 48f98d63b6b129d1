"""The Typer application every command module registers on."""

from __future__ import annotations

from typing import Annotated, Any

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


# Typer shows every option's Python type (`--json <bool>`, `--path <list[Path]>`), which reads as if a flag took
# a value (`--json true` is a usage error). Flags show none; the rest show click's plain metavars.
_PLAIN_METAVARS = {
    "<path>": "PATH",
    "<list[Path]>": "PATH",
    "<str>": "TEXT",
    "<list[str]>": "TEXT",
    "<int>": "N",
    "<int range>": "N",
    "<float>": "NUMBER",
    "<float range>": "NUMBER",
}


def build_command() -> Any:
    """The click command the `envcheck` script runs: the Typer app with plain help metavars."""
    command = typer.main.get_command(app)
    _plain_help(command)
    return command


def _plain_help(command: Any) -> None:
    make_help_option = command.get_help_option

    def help_option(context: Any) -> Any:  # click makes -h/--help per context, after our walk
        option = make_help_option(context)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for param in command.params:
        if getattr(param, "param_type_name", "") == "argument":
            # Typer's help shows an argument's Python type (`<str>`) beside its name: the name (FILE) says enough
            param.display_type_rich = lambda ctx: None
            continue
        if getattr(param, "param_type_name", "") != "option" or param.metavar is not None:
            continue
        if param.is_flag:
            param.metavar = ""
        elif hasattr(param, "display_type"):
            param.metavar = _PLAIN_METAVARS.get(param.display_type(None), param.metavar)
    for child in getattr(command, "commands", {}).values():
        _plain_help(child)
