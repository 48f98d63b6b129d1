"""The toolchain probe: nvcc, gcc, g++, clang and ninja on the target's PATH, and the CUDA toolkits under /usr/local.

Command line equivalent: `nvcc --version; gcc --version; g++ --version; clang --version; ninja --version;
ls -d /usr/local/cuda*`. Each tool runs bounded (probes/bounded.py), all at once: the probe takes as long as the
slowest `--version`, a few milliseconds, and never longer than TOOL_TIMEOUT_S.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import threading
from collections.abc import Callable

from envcheck.facts.common import Unavailable
from envcheck.facts.toolchain import Tool, ToolchainFacts
from envcheck.probes.bounded import one_line_tail, run_bounded
from envcheck.probes.context import ProbeContext
from envcheck.probes.cuda_toolkit import probe_toolkit_folders

TOOL_TIMEOUT_S = 5.0  # `nvcc --version` on a cold network filesystem; the collector gives the probe 10 s
_TAIL_CHARS = 200

# nvcc: "Cuda compilation tools, release 12.6, V12.6.85" (the V form is the full version; old ones lack it)
_NVCC_FULL = re.compile(r"\bV(\d+\.\d+\.\d+)\b")
_NVCC_RELEASE = re.compile(r"release (\d+\.\d+)")
# gcc/g++: "gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0", "g++ (GCC) 13.2.1 20230801": the version after the
# parenthesised package note, not the build date after it
_GCC = re.compile(r"^\S+ \(.*\) (\d+\.\d+(?:\.\d+)?)", re.MULTILINE)
# clang (and Apple's gcc, which is clang): "Ubuntu clang version 14.0.0-1ubuntu1.1", "Apple clang version 15.0.0 (...)"
_CLANG = re.compile(r"clang version (\d+\.\d+(?:\.\d+)?)")
_NINJA = re.compile(r"^(\d+\.\d+(?:\.\d+)?)")  # "1.11.1", pip's "1.11.1.git.kitware.jobserver-1"


def parse_nvcc_version(text: str) -> str | None:
    """'12.6.85' from `nvcc --version`, else its 'release 12.6'."""
    match = _NVCC_FULL.search(text) or _NVCC_RELEASE.search(text)
    return match.group(1) if match else None


def parse_gcc_version(text: str) -> str | None:
    """'11.4.0' from `gcc --version` or `g++ --version` (also what collect_env's "GCC version:" line quotes)."""
    match = _GCC.search(text) or _CLANG.search(text)
    return match.group(1) if match else None


def parse_clang_version(text: str) -> str | None:
    match = _CLANG.search(text)
    return match.group(1) if match else None


def parse_ninja_version(text: str) -> str | None:
    match = _NINJA.match(text.strip())
    return match.group(1) if match else None


Parser = Callable[[str], str | None]

# The Tool fields of ToolchainFacts: the executable's name and the parser of its `--version`.
TOOLS: dict[str, tuple[str, Parser]] = {
    "nvcc": ("nvcc", parse_nvcc_version),
    "gcc": ("gcc", parse_gcc_version),
    "gxx": ("g++", parse_gcc_version),
    "clang": ("clang", parse_clang_version),
    "ninja": ("ninja", parse_ninja_version),
}


def probe_toolchain(context: ProbeContext) -> ToolchainFacts:
    found: dict[str, Tool | Unavailable | None] = {}
    folders = probe_toolkit_folders(context)
    # A toolkit without version.json/version.txt (a runfile install trimmed by a container build, conda's
    # cuda-nvcc) still has its nvcc: ask it, once per folder the symlinks lead to.
    unversioned = {f.resolved_path: f for f in folders if f.has_nvcc and isinstance(f.version, Unavailable)}
    asked: dict[str, str | Unavailable] = {}

    def probe_one(field: str) -> None:
        executable, parse = TOOLS[field]
        found[field] = probe_tool(executable, parse, context)

    def ask_nvcc(resolved: str) -> None:
        nvcc = context.roots.root / resolved.lstrip("/") / "bin" / "nvcc"
        asked[resolved] = tool_version(str(nvcc), parse_nvcc_version, context)

    threads = [threading.Thread(target=probe_one, args=(field,), daemon=True) for field in TOOLS]
    threads += [threading.Thread(target=ask_nvcc, args=(resolved,), daemon=True) for resolved in unversioned]
    for thread in threads:
        thread.start()
    for thread in threads:  # each run is bounded by TOOL_TIMEOUT_S, so these joins end
        thread.join()
    toolkits = tuple(
        dataclasses.replace(folder, version=_nvcc_said(folder.version, asked[folder.resolved_path]))
        if folder.resolved_path in asked
        else folder
        for folder in folders
    )
    return ToolchainFacts(
        nvcc=found["nvcc"],
        toolkits=toolkits,
        gcc=found["gcc"],
        gxx=found["gxx"],
        clang=found["clang"],
        ninja=found["ninja"],
    )


def _nvcc_said(missing: str | Unavailable, said: str | Unavailable) -> str | Unavailable:
    """The toolkit's nvcc version where its version file is missing; both reasons when nvcc gave none either."""
    if isinstance(said, str) or not isinstance(missing, Unavailable):
        return said
    return Unavailable(f"{missing.reason}; and {said.reason}", said.fix)


def probe_tool(executable: str, parse: Parser, context: ProbeContext) -> Tool | None:
    """`EXECUTABLE --version` for the first EXECUTABLE on the target's PATH; None when PATH has none."""
    path = shutil.which(executable, path=context.environ.get("PATH", os.defpath))
    if path is None:
        return None
    return Tool(path=path, resolved_path=os.path.realpath(path), version=tool_version(path, parse, context))


def tool_version(
    path: str, parse: Parser, context: ProbeContext, timeout_s: float = TOOL_TIMEOUT_S
) -> str | Unavailable:
    fix = f"{path} --version"
    try:
        finished = run_bounded([path, "--version"], timeout_s, context.environ, output_limit_bytes=64 * 1024)
    except OSError as error:
        return Unavailable(f"cannot run {path}: {error.strerror or error}", fix)
    if finished.over_limit is not None:
        return Unavailable(finished.over_limit_reason(f"{path} --version"), fix)
    if finished.returncode is None:
        return Unavailable(f"{path} --version did not finish within {timeout_s:g} s and was killed", fix)
    output = finished.stdout.decode("utf-8", "replace")
    version = parse(output) or parse(finished.stderr.decode("utf-8", "replace"))
    if finished.returncode != 0 or version is None:
        said = one_line_tail(finished.stdout + b" " + finished.stderr, _TAIL_CHARS) or "nothing"
        return Unavailable(
            f"{path} --version exited with status {finished.returncode} and printed no version: {said}", fix
        )
    return version
