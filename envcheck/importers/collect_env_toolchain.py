"""The build toolchain and the compiled extensions a pasted collect_env output shows: nvcc's version (its
"CUDA runtime version" line is `nvcc --version`), gcc's and clang's, and the extensions in its package list."""

from __future__ import annotations

import re
from collections.abc import Callable

from envcheck.facts.common import Unavailable
from envcheck.facts.framework import Extension
from envcheck.facts.toolchain import Tool, ToolchainFacts
from envcheck.importers.collect_env_text import CollectEnvReport
from envcheck.probes.target_script import EXTENSION_MODULES
from envcheck.probes.toolchain import parse_clang_version

NOT_IN_OUTPUT = "not in collect_env output"
NO_PATH = Unavailable("collect_env prints versions, not paths")
NO_IMPORT = Unavailable("collect_env does not import extensions: whether it imports is not in the output")
# collect_env prints these when the command failed or is absent ("No CUDA": no nvcc and no GPU)
_ABSENT = ("could not collect", "no cuda", "n/a", "none", "")
_LEADING_VERSION = re.compile(r"^V?(\d+\.\d+(?:\.\d+)?)")
# collect_env keeps what follows "gcc " in `gcc --version`: "(Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0"
_GCC_VALUE = re.compile(r"\)\s*(\d+\.\d+(?:\.\d+)?)")


def toolchain_from_report(report: CollectEnvReport) -> ToolchainFacts | Unavailable:
    """What the paste shows of the toolchain; Unavailable when it has none of the three lines."""
    if not any(key in report.values for key in ("cuda_runtime", "gcc", "clang")):
        return Unavailable(f"{NOT_IN_OUTPUT}: no `CUDA runtime version`, `GCC version` or `Clang version` line")
    unread = Unavailable(NOT_IN_OUTPUT)
    return ToolchainFacts(
        nvcc=_tool(report, "cuda_runtime", lambda value: _first(_LEADING_VERSION, value)),
        toolkits=unread,
        gcc=_tool(report, "gcc", lambda value: _first(_GCC_VALUE, value) or _first(_LEADING_VERSION, value)),
        gxx=unread,
        clang=_tool(report, "clang", lambda value: parse_clang_version(f"clang version {value}")),
        ninja=unread,
    )


def _first(pattern: re.Pattern[str], value: str) -> str | None:
    match = pattern.search(value)
    return match.group(1) if match else None


def _tool(report: CollectEnvReport, key: str, parse: Callable[[str], str | None]) -> Tool | Unavailable | None:
    if key not in report.values:
        return Unavailable(NOT_IN_OUTPUT)
    value = report.values[key].strip()
    if value.lower() in _ABSENT:
        return None  # collect_env found none (or could not run it)
    version = parse(value)
    shown = Unavailable(f"collect_env printed {value!r}, which names no version") if version is None else version
    return Tool(path=NO_PATH, resolved_path=NO_PATH, version=shown)


def extensions_from_report(report: CollectEnvReport) -> tuple[Extension, ...]:
    """The compiled extensions among the pip packages it lists (collect_env lists only names matching its filter:
    torch-scatter and triton show, flash-attn does not)."""
    listed = {line.name: line for line in report.packages if line.manager == "pip" and line.name in EXTENSION_MODULES}
    return tuple(
        Extension(
            name=name,
            version=line.version,
            location=Unavailable(NOT_IN_OUTPUT),
            wheel_tags=(),
            requires_torch=(),
            pinned_by_torch=None,
            origin_url=None,
            import_error=NO_IMPORT,
            import_duration_s=NO_IMPORT,
            import_output=NO_IMPORT,
        )
        for name, line in sorted(listed.items())
    )
