"""Terminal and Markdown views of a setup plan (`envcheck setup`): the choice, why, and what was ruled out."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from envcheck.advise.setup_drift import Drift
from envcheck.advise.setup_plan import SetupPlan
from envcheck.codec import encode
from envcheck.finding import Finding, Severity
from envcheck.render.terminal import SEVERITY_MARKS
from envcheck.render.values import visible

# Ruled-out candidates shown without -v: the newest ones explain the choice; -v and --format json list all.
_RULED_OUT_SHOWN = 8


def _headline(plan: SetupPlan) -> str:
    if not plan.fits:
        return f"Nothing fits {plan.target.describe()}"
    extras = ", ".join(f"{name} {version}" for name, version in plan.packages[1:])
    accelerator = {"cuda": f"CUDA {plan.cuda}", "mps": "Apple MPS", "cpu": "CPU only"}[plan.accelerator or "cpu"]
    return f"torch {plan.torch} ({plan.variant}, {accelerator}) with {extras}"


def _ruled_out_lines(plan: SetupPlan, verbose: bool) -> tuple[list[str], int]:
    lines = [str(entry) for entry in plan.ruled_out]
    if verbose or len(lines) <= _RULED_OUT_SHOWN:
        return lines, 0
    return lines[:_RULED_OUT_SHOWN], len(lines) - _RULED_OUT_SHOWN


def render_setup(plan: SetupPlan, commands_text: str, console: Console, verbose: bool = False) -> None:
    """The plan for people: the choice, the commands to paste, the reasons, what was ruled out."""
    style = "bold green" if plan.fits else "bold red"
    console.print(Text(f"Target: {plan.target.describe()} ({plan.target.source})", style="dim"))
    console.print(Text(_headline(plan), style=style))
    if commands_text:
        console.print()
        console.print(Text(commands_text.rstrip("\n")), soft_wrap=True)  # a wrapped command breaks copy-paste
    console.print()
    console.print(Text("Why", style="bold"))
    for reason in plan.reasons:
        console.print(_bullet("•", reason))
    if plan.upgrades:
        console.print(Text("What to change", style="bold"))
        for upgrade in plan.upgrades:
            console.print(_bullet("→", upgrade, "yellow"))
    lines, hidden = _ruled_out_lines(plan, verbose)
    if lines:
        console.print(Text("Ruled out", style="bold"))
        for line in lines:
            console.print(_bullet("✗", line, "dim"))
        if hidden:
            console.print(Text(f"  … and {hidden} more (-v shows all)", style="dim"))


def _bullet(marker: str, text: str, style: str = "") -> Table:
    """`  • text` whose wrapped lines stay under the text, not under the margin."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column()
    grid.add_row(Text(marker, style=style), Text(text, style=style))
    return grid


def render_setup_markdown(plan: SetupPlan, commands_text: str, verbose: bool = False) -> str:
    out = [f"## envcheck setup: {_headline(plan)}", "", f"Target: {plan.target.describe()} ({plan.target.source})", ""]
    if commands_text:
        out += ["```sh", commands_text.rstrip("\n"), "```", ""]
    out += ["### Why", "", *(f"* {reason}" for reason in plan.reasons), ""]
    if plan.upgrades:
        out += ["### What to change", "", *(f"* {upgrade}" for upgrade in plan.upgrades), ""]
    lines, hidden = _ruled_out_lines(plan, verbose)
    if lines:
        out += ["### Ruled out", "", *(f"* {line}" for line in lines)]
        if hidden:
            out.append(f"* … and {hidden} more")
        out.append("")
    return "\n".join(out)


def render_drift(drifts: tuple[Drift, ...], plan: SetupPlan, console: Console) -> None:
    if not drifts:
        console.print(Text(f"✓ installed packages match the plan: {_headline(plan)}", style="green"))
        return
    console.print(Text(f"✗ {len(drifts)} package(s) differ from the plan", style="bold red"))
    for drift in drifts:
        console.print(Text(f"  {drift.message}"))


def render_verification(findings: tuple[Finding, ...], interpreter: str, device: str, console: Console) -> None:
    """What the install does in the target interpreter, then one line: verified, or not and why."""
    console.print(Text(f"Verifying in {interpreter} on {device}", style="bold"))
    for finding in findings:
        mark, style = SEVERITY_MARKS[finding.severity]
        console.print(Text.assemble((f"  {mark} ", style), visible(finding.title)))
        if finding.detail and finding.severity is not Severity.OK:
            console.print(Text("      " + visible(finding.detail), style="dim"))
        if finding.fix and finding.severity is Severity.FAIL:
            console.print(Text.assemble(("      fix: ", "bold"), visible(finding.fix)), soft_wrap=True)
    failed = sum(finding.severity is Severity.FAIL for finding in findings)
    if failed:
        console.print(Text(f"✗ not verified: {failed} problem(s) in {interpreter}", style="bold red"))
    else:
        console.print(Text(f"✓ verified: torch and torchvision work on {device} as planned", style="bold green"))


def verification_to_list(findings: tuple[Finding, ...]) -> list[dict[str, object]]:
    """The verification findings in the JSON form `doctor --json` uses for findings."""
    return [encode(finding) | {"severity": finding.severity.value} for finding in findings]
