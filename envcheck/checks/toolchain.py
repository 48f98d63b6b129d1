"""The toolchain that compiles CUDA extensions beside torch: nvcc's CUDA major against torch's, the host compiler
against nvcc's supported maximum, and CUDA_HOME against PATH's nvcc.

nvcc matters only when something is compiled here (checks/extensions.py says when): a machine running prebuilt
wheels needs no toolkit at all, so a missing or mismatched one is then a note, never a warning.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from envcheck.checks.common import skipped
from envcheck.checks.extensions import extensions_needing_build
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import knowledge_of, missing_of
from envcheck.facts.common import Unavailable, known
from envcheck.facts.environment import EnvironmentFacts
from envcheck.facts.toolchain import Tool, ToolchainFacts
from envcheck.finding import Finding, Severity

TOOLKIT_ARCHIVE = "https://developer.nvidia.com/cuda-toolkit-archive"
_MAJOR_MINOR = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class BuildNvcc:
    """The nvcc torch.utils.cpp_extension would build with (its _find_cuda_home order), and how it was chosen."""

    where: str  # "CUDA_HOME=/usr/local/cuda-12.6", "PATH (/usr/bin/nvcc)", "/usr/local/cuda"
    version: str | Unavailable
    variable: str | None  # CUDA_HOME or CUDA_PATH when that chose it


def _variable(environment: EnvironmentFacts, name: str) -> str | None:
    return next((v.value for v in environment.variables if v.name == name and v.value), None)


def build_nvcc(environment: EnvironmentFacts | Unavailable, toolchain: ToolchainFacts) -> BuildNvcc | None:
    """CUDA_HOME (else CUDA_PATH), else the nvcc on PATH, else /usr/local/cuda; None when none of them exists."""
    if not isinstance(environment, Unavailable):
        for name in ("CUDA_HOME", "CUDA_PATH"):
            home = _variable(environment, name)
            if home is None:
                continue
            toolkit = known(environment.cuda_toolkit)
            version = toolkit.version if toolkit is not None else Unavailable(f"the toolkit at {name} was not read")
            # the toolchain probe asks the toolkit's own nvcc when its version file is missing
            folder = next((t for t in known(toolchain.toolkits) or () if t.path == posixpath.normpath(home)), None)
            if isinstance(version, Unavailable) and folder is not None and isinstance(folder.version, str):
                version = folder.version
            return BuildNvcc(f"{name}={home}", version, name)
    if isinstance(toolchain.nvcc, Tool):
        path = known(toolchain.nvcc.path)
        return BuildNvcc(f"{path} on PATH" if path else "on PATH", toolchain.nvcc.version, None)
    toolkits = known(toolchain.toolkits) or ()
    default = next((t for t in toolkits if t.path == "/usr/local/cuda" and t.has_nvcc), None)
    if default is not None:
        return BuildNvcc("/usr/local/cuda", default.version, None)
    return None


def _major_minor(version: str) -> tuple[int, int] | None:
    match = _MAJOR_MINOR.match(version.strip().lstrip("vV"))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _toolchain(given: CheckInput, check_id: str, what: str) -> ToolchainFacts | Finding:
    toolchain = given.snapshot.toolchain
    return skipped(check_id, what, toolchain) if isinstance(toolchain, Unavailable) else toolchain


def _toolkit_fix(toolchain: ToolchainFacts, cuda: str) -> str:
    """Point CUDA_HOME at an installed toolkit of torch's CUDA, or install one."""
    wanted = _major_minor(cuda)
    versions = {t.path: (_major_minor(t.version), t.version) for t in known(toolchain.toolkits) or ()
                if t.has_nvcc and isinstance(t.version, str)}  # fmt: skip
    same = [path for path, (version, _) in versions.items() if wanted and version == wanted]
    major = [path for path, (version, _) in versions.items() if wanted and version and version[0] == wanted[0]]
    chosen = next(iter(same + major), None)
    if chosen is not None:
        return f"export CUDA_HOME={chosen} PATH={chosen}/bin:$PATH  (CUDA {versions[chosen][1]} is installed there)"
    return (
        f"install the CUDA {cuda} toolkit ({TOOLKIT_ARCHIVE}), then export CUDA_HOME=/usr/local/cuda-{cuda} "
        f"PATH=/usr/local/cuda-{cuda}/bin:$PATH"
    )


def _needing_note(needing: list[str]) -> str:
    return f"Needs compiling here: {'; '.join(needing)}." if needing else "Nothing installed needs compiling here."


@check("toolchain.nvcc_cuda_major", "The nvcc extensions build with has torch's CUDA major, when something is built.")
def check_nvcc_cuda_major(given: CheckInput) -> Iterator[Finding]:
    check_id = "toolchain.nvcc_cuda_major"
    toolchain = _toolchain(given, check_id, "nvcc against torch's CUDA")
    if isinstance(toolchain, Finding):
        yield toolchain
        return
    framework = given.snapshot.framework
    if isinstance(framework, Unavailable):
        yield skipped(check_id, "nvcc against torch's CUDA", framework)
        return
    torch = framework.torch
    if torch is None or torch.cuda_version is None:
        why = "torch did not import" if torch is None else f"torch {torch.version} has no CUDA"
        yield Finding(check_id, Severity.OK, f"nvcc not compared ({why})")
        return
    nvcc = build_nvcc(given.snapshot.environment, toolchain)
    if nvcc is not None and nvcc.variable is not None:  # cuda.cuda_home judges the toolkit CUDA_HOME names
        yield Finding(check_id, Severity.OK, f"extensions build with {nvcc.where}: judged by cuda.cuda_home")
        return
    needing = extensions_needing_build(given)
    evidence = ("toolchain.nvcc", "toolchain.toolkits", "framework.torch.cuda_version", "framework.extensions")
    if nvcc is None:
        if not needing:
            yield Finding(check_id, Severity.OK, "no CUDA toolkit, and nothing installed needs one")
            return
        yield Finding(
            check_id,
            Severity.WARN,
            f"no nvcc, but {len(needing)} extension(s) need compiling here: {needing[0]}",
            detail=f"{_needing_note(needing)} No nvcc on PATH, CUDA_HOME unset and no /usr/local/cuda: "
            "torch.utils.cpp_extension stops with 'CUDA_HOME environment variable is not set'.",
            fix=_toolkit_fix(toolchain, torch.cuda_version),
            evidence=evidence,
        )
        return
    if isinstance(nvcc.version, Unavailable):
        yield Finding(check_id, Severity.SKIP, "nvcc's CUDA version not checked", detail=nvcc.version.reason,
                      fix=nvcc.version.fix)  # fmt: skip
        return
    nvcc_cuda, torch_cuda = _major_minor(nvcc.version), _major_minor(torch.cuda_version)
    if nvcc_cuda is None or torch_cuda is None or nvcc_cuda[0] == torch_cuda[0]:
        yield Finding(
            check_id, Severity.OK, f"nvcc {nvcc.version} ({nvcc.where}) fits torch's CUDA {torch.cuda_version}"
        )
        return
    title = f"nvcc {nvcc.version} ({nvcc.where}) is CUDA {nvcc_cuda[0]}, torch {torch.version} is CUDA {torch_cuda[0]}"
    detail = (
        "torch.utils.cpp_extension refuses a toolkit of another CUDA major ('The detected CUDA version mismatches the "
        f"version that was used to compile PyTorch'). {_needing_note(needing)}"
    )
    yield Finding(
        check_id,
        Severity.WARN if needing else Severity.INFO,
        title + (f": compiling {needing[0].split(' (')[0]} will fail" if needing else " (only matters for compiling)"),
        detail=detail,
        fix=_toolkit_fix(toolchain, torch.cuda_version),
        evidence=evidence,
    )


@check("toolchain.host_compiler", "g++ is no newer than the nvcc that builds extensions accepts (NVIDIA's limits).")
def check_host_compiler(given: CheckInput) -> Iterator[Finding]:
    check_id = "toolchain.host_compiler"
    toolchain = _toolchain(given, check_id, "host compiler against nvcc")
    if isinstance(toolchain, Finding):
        yield toolchain
        return
    knowledge = knowledge_of(given)
    if knowledge is None:
        yield skipped(check_id, "host compiler against nvcc", missing_of())
        return
    nvcc = build_nvcc(given.snapshot.environment, toolchain)
    if nvcc is None or isinstance(nvcc.version, Unavailable):
        yield Finding(check_id, Severity.OK, "no nvcc whose host compiler limit applies")
        return
    host_name, host = next(
        ((name, tool) for name, tool in (("g++", toolchain.gxx), ("gcc", toolchain.gcc)) if isinstance(tool, Tool)),
        ("g++", None),
    )
    nvcc_cuda = _major_minor(nvcc.version)
    host_version = known(host.version) if host is not None else None
    if host is None or host_version is None or nvcc_cuda is None:
        yield Finding(check_id, Severity.OK, f"no {host_name} version to compare with nvcc {nvcc.version}")
        return
    limit = knowledge.host_compiler_limit(nvcc_cuda)
    gcc_max = known(limit.gcc_max) if limit is not None else None
    if gcc_max is None:
        detail = f"nvcc {nvcc_cuda[0]}.{nvcc_cuda[1]} has no GCC limit in profiles/compat/host_compilers.toml"
        yield Finding(check_id, Severity.SKIP, "host compiler against nvcc not checked", detail=detail)
        return
    host_major = int(host_version.split(".")[0])
    if host_major <= gcc_max:
        yield Finding(
            check_id, Severity.OK, f"{host_name} {host_version} is within nvcc {nvcc.version}'s limit (GCC {gcc_max})"
        )
        return
    needing = extensions_needing_build(given)
    yield Finding(
        check_id,
        Severity.WARN if needing else Severity.INFO,
        f"{host_name} {host_version} is newer than nvcc {nvcc.version} accepts (GCC {gcc_max} at most)",
        detail=f"Every CUDA compile stops with '#error -- unsupported GNU version! gcc versions later than {gcc_max} "
        f"are not supported!'. {_needing_note(needing)}",
        fix=f"install gcc-{gcc_max} and g++-{gcc_max}, then export CC=gcc-{gcc_max} CXX=g++-{gcc_max}  "
        "(torch.utils.cpp_extension passes $CC to nvcc as -ccbin)",
        evidence=("toolchain.gxx", "toolchain.gcc", "toolchain.nvcc", "environment.cuda_toolkit"),
    )


@check("toolchain.cuda_home_nvcc", "CUDA_HOME and the nvcc on PATH are the same toolkit.")
def check_cuda_home_nvcc(given: CheckInput) -> Iterator[Finding]:
    check_id = "toolchain.cuda_home_nvcc"
    toolchain = _toolchain(given, check_id, "CUDA_HOME against PATH's nvcc")
    environment = given.snapshot.environment
    if isinstance(toolchain, Finding):
        yield toolchain
        return
    if isinstance(environment, Unavailable):
        yield skipped(check_id, "CUDA_HOME against PATH's nvcc", environment)
        return
    name = next((n for n in ("CUDA_HOME", "CUDA_PATH") if _variable(environment, n)), None)
    nvcc = toolchain.nvcc
    if name is None or not isinstance(nvcc, Tool) or isinstance(nvcc.path, Unavailable):
        why = "CUDA_HOME not set" if name is None else "no nvcc on PATH"
        yield Finding(check_id, Severity.OK, f"nothing to compare ({why})")
        return
    home = posixpath.normpath(_variable(environment, name) or "")
    resolved = {t.path: t.resolved_path for t in known(toolchain.toolkits) or ()}
    homes = {home, resolved.get(home, home)}
    nvcc_homes = {posixpath.dirname(posixpath.dirname(path)) for path in (nvcc.path, known(nvcc.resolved_path)) if path}
    if homes & nvcc_homes:
        yield Finding(check_id, Severity.OK, f"{name} and PATH's nvcc are one toolkit ({home})")
        return
    toolkit = known(environment.cuda_toolkit)
    home_version = known(toolkit.version) if toolkit is not None else None
    nvcc_version = known(nvcc.version)
    same = home_version and nvcc_version and _major_minor(home_version) == _major_minor(nvcc_version)
    seen = f"{name}={home} (CUDA {home_version or '?'}), PATH's nvcc is {nvcc.path} (CUDA {nvcc_version or '?'})"
    if same:
        yield Finding(check_id, Severity.OK, f"two toolkits of one CUDA version: {seen}")
        return
    yield Finding(
        check_id,
        Severity.WARN,
        f"{name} and PATH's nvcc are different toolkits: {seen}",
        detail="torch.utils.cpp_extension builds with the toolkit CUDA_HOME names, while build scripts that call nvcc "
        "from PATH (CMake's default, setup.py files that run `nvcc --version`) use the other: one extension ends up "
        "compiled by two CUDA versions, or a version check passes against the toolkit that does not build.",
        fix=f"export PATH={home}/bin:$PATH  (or point {name} at {posixpath.dirname(posixpath.dirname(nvcc.path))})",
        evidence=(f"environment.{name}", "environment.cuda_toolkit", "toolchain.nvcc"),
    )
