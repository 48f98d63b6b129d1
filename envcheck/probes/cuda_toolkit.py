"""Reads the version of the CUDA toolkit that CUDA_HOME or CUDA_PATH names, and of those under /usr/local, from the
toolkit's own version file.

Command line equivalent: `cat $CUDA_HOME/version.json` (CUDA 11.1 and later) or `cat $CUDA_HOME/version.txt`.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.facts.environment import CudaToolkit
from envcheck.facts.toolchain import ToolkitFolder
from envcheck.probes.context import ProbeContext

# The variables torch.utils.cpp_extension reads, in its order (_find_cuda_home).
TOOLKIT_VARIABLES = ("CUDA_HOME", "CUDA_PATH")
_VERSION = re.compile(r"\d+\.\d+(\.\d+)*")
# version.txt of CUDA <= 11.0: "CUDA Version 10.2.89"
_VERSION_TXT = re.compile(r"CUDA Version\s+(\d+\.\d+(?:\.\d+)*)")


def parse_version_json(text: str) -> str | None:
    """cuda.version of a toolkit's version.json: {"cuda": {"name": "CUDA SDK", "version": "12.4.1"}, ...}."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    cuda = data.get("cuda") if isinstance(data, dict) else None
    version = cuda.get("version") if isinstance(cuda, dict) else None
    return version if isinstance(version, str) and _VERSION.fullmatch(version.strip()) else None


def parse_version_txt(text: str) -> str | None:
    match = _VERSION_TXT.search(text)
    return match.group(1) if match else None


def probe_cuda_toolkit(context: ProbeContext) -> CudaToolkit | None:
    """The toolkit the first set variable names, or None when neither is set."""
    variable = next((name for name in TOOLKIT_VARIABLES if context.environ.get(name)), None)
    if variable is None:
        return None
    path = context.environ[variable]
    # relative to the working directory, as cpp_extension reads it; under the context's root, so tests replay a
    # toolkit tree (on a live machine the root is /)
    home = context.roots.root / str(Path.cwd() / path).lstrip("/")
    is_directory = home.is_dir()
    version = toolkit_version(home, path) if is_directory else Unavailable(f"{variable}={path} is not a directory")
    return CudaToolkit(variable=variable, path=path, is_directory=is_directory, version=version)


def toolkit_version(home: Path, path: str) -> str | Unavailable:
    for name, parse in (("version.json", parse_version_json), ("version.txt", parse_version_txt)):
        file = home / name
        if not file.exists():
            continue
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return Unavailable(f"cannot read {Path(path, name)}: {error.strerror or error}")
        version = parse(text)
        if version is None:
            return Unavailable(f"{Path(path, name)} names no CUDA version", f"{Path(path, 'bin/nvcc')} --version")
        return version.strip()
    return Unavailable(
        f"{path} has neither version.json nor version.txt: not a CUDA toolkit, or one packaged without them",
        f"{Path(path, 'bin/nvcc')} --version",
    )


# Where NVIDIA's installers put toolkits (cuda-12.6) and the symlink to the default one (cuda), which
# torch.utils.cpp_extension falls back to when neither CUDA_HOME nor PATH names a toolkit (_find_cuda_home).
TOOLKIT_PARENT = "usr/local"


def probe_toolkit_folders(context: ProbeContext) -> tuple[ToolkitFolder, ...]:
    """The CUDA toolkits under /usr/local (cuda, cuda-12.6, ...), by name, with the version each records, then the
    one CUDA_HOME (else CUDA_PATH) names when it is elsewhere (a conda environment, /opt/nvidia/...).

    Command line equivalent: `ls -d /usr/local/cuda* $CUDA_HOME; cat /usr/local/cuda*/version.json`.
    """
    parent = context.roots.root / TOOLKIT_PARENT
    try:
        names = sorted(entry.name for entry in parent.iterdir() if re.fullmatch(r"cuda(-\d+(\.\d+)*)?", entry.name))
    except OSError:  # no /usr/local (a minimal container) has no toolkit under it
        names = []
    folders = [_folder(parent / name, f"/{TOOLKIT_PARENT}/{name}", context) for name in names]
    variable = next((name for name in TOOLKIT_VARIABLES if context.environ.get(name)), None)
    if variable is not None:
        shown = posixpath.normpath(str(Path.cwd() / context.environ[variable]))  # relative to cwd, as cpp_extension
        home = context.roots.root / shown.lstrip("/")
        folder = _folder(home, shown, context)
        if folder is not None and all(f is None or f.resolved_path != folder.resolved_path for f in folders):
            folders.append(folder)
    return tuple(folder for folder in folders if folder is not None)


def _folder(home: Path, shown: str, context: ProbeContext) -> ToolkitFolder | None:
    if not home.is_dir():  # a dangling /usr/local/cuda symlink; a CUDA_HOME naming nothing (cuda.cuda_home says so)
        return None
    return ToolkitFolder(
        path=shown,
        resolved_path=_under_root(home.resolve(), context.roots.root.resolve()),
        version=toolkit_version(home, shown),
        has_nvcc=(home / "bin" / "nvcc").is_file(),
    )


def _under_root(path: Path, root: Path) -> str:
    """A resolved path as the machine spells it: relative to the probe's root (/ on a live machine)."""
    try:
        return "/" + str(path.relative_to(root)).removeprefix(".")
    except ValueError:  # a symlink leading out of a replayed tree
        return str(path)
