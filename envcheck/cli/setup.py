"""`envcheck setup`: the right torch install for a machine, explained; applied (`--apply`) or checked (`--check`).

The plan and its formats live in envcheck.advise; this module parses options, prompts, runs pip and streams it.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from envcheck.cli.app import app
from envcheck.cli.options import DebugOption, FromOption, JsonOption, MarkdownOption, OutputOption, VerboseOption
from envcheck.cli.output import console, input_errors
from envcheck.outfile import write_output_file

FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="Write the plan as pip, uv, conda, requirements, dockerfile or json."),
]
_PIP_ERROR_LINES = 20
_PIP_QUERY_TIMEOUT_S = 120.0  # `pip --version` / `pip list`: a cold pip on a network home can take a while
# importing torch + torchvision and a first CUDA call (context creation, a PTX JIT of a few kernels)
_VERIFY_TIMEOUT_S = 300.0


@app.command()
def setup(
    source: FromOption = None,
    gpu: Annotated[
        list[str] | None,
        typer.Option("--gpu", help='Plan for a hypothetical GPU, e.g. "NVIDIA L4" (repeatable; none).'),
    ] = None,
    driver: Annotated[str | None, typer.Option("--driver", help="The hypothetical target's NVIDIA driver.")] = None,
    python: Annotated[
        str | None, typer.Option("--python", help="A Python version (3.10) to plan for, or an interpreter PATH.")
    ] = None,
    os_name: Annotated[
        str | None,
        typer.Option(
            "--os", help="The target's OS (linux, windows, macos): hypothetical, or what a --from file lacks."
        ),
    ] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="The target's CPU (x86_64, aarch64), as for --os.")] = None,
    torch: Annotated[str | None, typer.Option("--torch", help="Pin the torch release (2.4 = newest 2.4.x).")] = None,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    output: OutputOption = None,
    verbose: VerboseOption = False,
    apply: Annotated[bool, typer.Option("--apply", help="Install the plan with pip, then verify it.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before installing.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when installed packages differ from the plan.")
    ] = False,
    find_links: Annotated[
        Path | None, typer.Option("--find-links", help="Install from this wheel directory only (no index).")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Say exactly which torch, torchvision and torchaudio to install here, and why; install them with --apply."""
    from envcheck.advise.setup_formats import FORMATS, NoFitError, format_plan
    from envcheck.advise.setup_plan import plan_setup
    from envcheck.knowledge import load_knowledge
    from envcheck.loaders import InputError
    from envcheck.validation import quoted

    with input_errors():
        if as_json:
            output_format = output_format or "json"
        if output_format is not None and output_format not in FORMATS:
            raise InputError(f"--format {quoted(output_format)}: unknown format (known: {', '.join(FORMATS)})")
        if apply and check:
            raise InputError("--apply and --check cannot be used together")
        knowledge = load_knowledge()
        target, snapshot, interpreter = _target(knowledge, source, gpu, driver, python, os_name, arch, debug)
        if (apply or check) and snapshot is None:
            raise InputError("--apply and --check need a real environment, not a hypothetical target")
        plan = plan_setup(knowledge, target, torch)
        if check:
            _check(plan, snapshot, knowledge, as_json, interpreter)
        if apply:
            _apply(plan, knowledge, interpreter, yes, find_links, debug)
        if output_format is not None and not as_markdown:
            try:
                text = format_plan(plan, output_format, knowledge)
            except NoFitError as error:
                typer.echo(f"envcheck: {error}", err=True)
                raise typer.Exit(1) from None
            if output is not None:
                write_output_file(output, text)
            sys.stdout.write(text)
            raise typer.Exit(0 if plan.fits else 1)
        _show(plan, knowledge, output, as_markdown, verbose)
    raise typer.Exit(0 if plan.fits else 1)


def _is_version(text: str) -> bool:
    from envcheck.advise.target import PYTHON_VERSION

    return bool(PYTHON_VERSION.match(text.strip()))


def _target(
    knowledge: Any,
    source: Path | None,
    gpu: list[str] | None,
    driver: str | None,
    python: str | None,
    os_name: str | None,
    arch: str | None,
    debug: bool,
) -> tuple[Any, Any, str | None]:
    """(target, snapshot or None when hypothetical, target interpreter path for --apply)."""
    from envcheck.advise.target import Gaps, hypothetical_target, target_from_snapshot
    from envcheck.cli.snapshots import load_or_collect
    from envcheck.loaders import InputError

    python_version = python if python is not None and _is_version(python) else None
    if source is not None and (gpu or driver):
        raise InputError("--from cannot be combined with --gpu/--driver: the file names the GPUs and the driver")
    if source is not None:
        if python is not None and python_version is None:
            raise InputError(
                f"--python {python}: with --from, give the target's Python 3 version (3.11), not an interpreter"
            )
        # --os/--arch/--python VERSION fill what the file lacks (an nvidia-smi XML names no OS, CPU or Python)
        snapshot = load_or_collect(source, None, None, False, 60.0, debug, skip=("framework",))
        gaps = Gaps(os=os_name, arch=arch, python=python_version)
        return target_from_snapshot(knowledge, snapshot, str(source), gaps), snapshot, None
    if gpu or driver or os_name or arch or python_version:
        if python_version is None:
            raise InputError("a hypothetical target needs --python VERSION (e.g. --python 3.11)")
        gpus = tuple(name for name in gpu or () if name.lower() != "none")
        target = hypothetical_target(
            knowledge, gpus=gpus, driver=driver, python=python_version, os=os_name or "linux", arch=arch or "x86_64"
        )
        return target, None, None
    snapshot = load_or_collect(None, python, None, False, 60.0, debug, skip=("framework",))
    executable = getattr(snapshot.python, "executable", None)
    target = replace(target_from_snapshot(knowledge, snapshot, "this machine"), interpreter=executable or python)
    return target, snapshot, executable


def _show(plan: Any, knowledge: Any, output: Path | None, as_markdown: bool, verbose: bool) -> None:
    from envcheck.advise.setup_formats import format_json, format_pip
    from envcheck.render.setup import render_setup, render_setup_markdown

    commands = format_pip(plan) if plan.fits else ""
    if as_markdown:
        text = render_setup_markdown(plan, commands, verbose)
        if output is not None:
            write_output_file(output, text)
        sys.stdout.write(text)
        return
    if output is not None:
        write_output_file(output, format_json(plan) + "\n")
    render_setup(plan, commands, console(), verbose)


def _verify(plan: Any, interpreter: str) -> tuple[Any, ...]:
    """The install probe in the target interpreter, judged against the plan; a run that fails is a finding."""
    from envcheck.advise.setup_verify import plan_device, verify_plan
    from envcheck.finding import Finding, Severity
    from envcheck.probes.errors import ProbeError
    from envcheck.probes.install import probe_install

    try:
        facts = probe_install(interpreter, plan_device(plan), _VERIFY_TIMEOUT_S, os.environ)
    except ProbeError as error:
        return (Finding("setup.verify", Severity.FAIL, "the verification run in the target interpreter failed",
                        detail=str(error)),)  # fmt: skip
    return verify_plan(plan, facts)


def _check(plan: Any, snapshot: Any, knowledge: Any, as_json: bool, interpreter: str | None) -> None:
    import json

    from envcheck.advise.setup_drift import check_drift
    from envcheck.advise.setup_formats import plan_to_dict
    from envcheck.advise.setup_verify import is_verified, plan_device
    from envcheck.facts.common import Unavailable
    from envcheck.loaders import InputError
    from envcheck.render.setup import render_drift, render_verification, verification_to_list

    if isinstance(snapshot.python, Unavailable):
        raise InputError(f"the python section was not collected: {snapshot.python.reason}")
    if not plan.fits:
        typer.echo(f"envcheck: no plan to compare with: {'; '.join(plan.reasons + plan.upgrades)}", err=True)
        raise typer.Exit(1)
    drifts = check_drift(plan, snapshot.python.packages, knowledge)
    # a --from file can only be compared: running torch needs the interpreter itself
    findings = _verify(plan, interpreter) if interpreter is not None else None
    failed = bool(drifts) or (findings is not None and not is_verified(findings))
    if as_json:
        document = {
            "plan": plan_to_dict(plan),
            "drift": [drift.message for drift in drifts],
            "verification": None if findings is None else verification_to_list(findings),
            "verified": None if findings is None else is_verified(findings),
        }
        sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    else:
        render_drift(drifts, plan, console())
        if findings is not None and interpreter is not None:
            render_verification(findings, interpreter, plan_device(plan), console())
    raise typer.Exit(1 if failed else 0)


def _pip_prefix(interpreter: str) -> tuple[str, ...]:
    """pip of the target interpreter; for one without pip (uv venvs), this pip driving it with ``--python``."""
    code, _, _ = _query_pip([interpreter, "-m", "pip", "--version"])
    if code == 0:
        return (interpreter, "-m", "pip")
    return (sys.executable, "-m", "pip", "--python", interpreter)


def _installed(pip: tuple[str, ...]) -> dict[str, str]:
    from envcheck.advise.setup_apply import parse_pip_list
    from envcheck.loaders import InputError

    code, stdout, stderr = _query_pip([*pip, "list", "--format=json"])
    if code != 0:
        raise InputError(f"{' '.join(pip)} list failed: {stderr.strip() or stdout.strip()}")
    return parse_pip_list(stdout)


def _query_pip(argv: list[str]) -> tuple[int, str, str]:
    """Run a short pip query: (exit status, stdout, stderr). One that hangs, prints without end or cannot
    start is an InputError (exit 2), not a traceback."""
    from envcheck.loaders import InputError
    from envcheck.probes.bounded import run_bounded

    try:
        finished = run_bounded(argv, _PIP_QUERY_TIMEOUT_S, os.environ)
    except OSError as error:
        raise InputError(f"{' '.join(argv)}: cannot run: {error.strerror or error}") from None
    if finished.over_limit is not None:
        raise InputError(finished.over_limit_reason(" ".join(argv)))
    if finished.returncode is None:
        raise InputError(f"{' '.join(argv)}: no answer within {_PIP_QUERY_TIMEOUT_S:g} s")
    return finished.returncode, finished.stdout.decode("utf-8", "replace"), finished.stderr.decode("utf-8", "replace")


def _stream(argv: tuple[str, ...], interpreter: str) -> tuple[int, list[str]]:
    """Run pip, echo its output line by line as it comes, keep the tail for the error report.

    pip runs in its own session and its group is killed if envcheck is interrupted: left running, it would
    go on changing the environment after envcheck said it stopped.
    """
    from envcheck.cli.stopping import STOPS, stopped
    from envcheck.loaders import InputError
    from envcheck.probes.bounded import stream_bounded

    tail: deque[str] = deque(maxlen=_PIP_ERROR_LINES)

    def show(line: str) -> None:
        typer.echo(line)
        tail.append(line)

    try:
        code = stream_bounded(argv, os.environ, show)
    except OSError as error:
        raise InputError(f"{argv[0]}: cannot run: {error.strerror or error}") from None
    except STOPS as stop:
        raise stopped(stop, f"pip was stopped; the packages of {interpreter} may be partly changed") from None
    return code, list(tail)


def _apply(plan: Any, knowledge: Any, interpreter: str | None, yes: bool, find_links: Path | None, debug: bool) -> None:
    from envcheck.advise.setup_apply import changes, install_argv, verify_install
    from envcheck.advise.setup_verify import is_verified, plan_device
    from envcheck.cli.snapshots import load_or_collect
    from envcheck.finding import exit_code
    from envcheck.loaders import InputError
    from envcheck.render.setup import render_verification
    from envcheck.render.terminal import render_doctor

    if interpreter is None:
        raise InputError("--apply installs into this machine's interpreters (--python PATH), not a --from file")
    _show(plan, knowledge, None, False, False)
    if not plan.fits:
        raise typer.Exit(1)
    pip = _pip_prefix(interpreter)
    argv = install_argv(pip, plan, str(find_links) if find_links is not None else None)
    typer.echo(f"\n$ {' '.join(argv)}")
    if not yes and not typer.confirm("Install these packages?", default=False):
        typer.echo("aborted: nothing was installed")
        raise typer.Exit(1)
    before = _installed(pip)
    code, tail = _stream(argv, interpreter)
    done = changes(before, _installed(pip))
    changed = "; ".join(str(change) for change in done) or "nothing"
    if code != 0:
        errors = [line for line in tail if line.startswith("ERROR")] or tail[-5:]
        typer.echo(f"\nenvcheck: pip failed (exit {code}):", err=True)
        for line in errors:
            typer.echo(f"  {line}", err=True)
        typer.echo(f"envcheck: what changed in {interpreter}: {changed}", err=True)
        raise typer.Exit(1)
    typer.echo(f"\nchanged in {interpreter}: {changed}")
    typer.echo("verifying with the doctor's install and CUDA checks …")
    snapshot = load_or_collect(None, interpreter, None, False, 120.0, debug)
    findings = verify_install(snapshot, knowledge)
    render_doctor(snapshot, findings, console())
    verification = _verify(plan, interpreter)
    render_verification(verification, interpreter, plan_device(plan), console())
    raise typer.Exit(max(exit_code(findings), 0 if is_verified(verification) else 1))
