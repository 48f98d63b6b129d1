"""Facts about what builds CUDA extensions beside torch: nvcc, the CUDA toolkit folders, the host compilers, ninja."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class Tool:
    """One executable found on PATH and what its `--version` printed."""

    # where PATH found it, as PATH spells it (/usr/bin/gcc); Unavailable in a collect_env import, which prints no path
    path: str | Unavailable
    resolved_path: str | Unavailable  # after symlinks (/usr/bin/x86_64-linux-gnu-gcc-12): which install it really is
    # parsed from `--version`: nvcc "12.6.85" (its "V12.6.85"), gcc/g++ "11.4.0", clang "14.0.0", ninja "1.11.1";
    # Unavailable when it hung, crashed or printed no version
    version: str | Unavailable


@dataclass(frozen=True, slots=True)
class ToolkitFolder:
    """A CUDA toolkit folder: under /usr/local (cuda, cuda-12.6, ...), where cpp_extension falls back to, or the one
    CUDA_HOME names."""

    path: str  # /usr/local/cuda-12.6
    resolved_path: str  # the folder a symlink (/usr/local/cuda -> cuda-12.6) leads to
    # version.json's cuda.version (version.txt before CUDA 11.1), else what its bin/nvcc --version says ("13.0.88")
    version: str | Unavailable
    has_nvcc: bool  # bin/nvcc exists: a runtime-only install has the libraries and no compiler


@dataclass(frozen=True, slots=True)
class ToolchainFacts:
    # the first nvcc on PATH. torch.utils.cpp_extension builds with it when CUDA_HOME and CUDA_PATH are unset (its
    # toolkit is the folder above bin/); the toolkit CUDA_HOME names is environment.cuda_toolkit
    # Every tool is None when PATH has none, Unavailable when the source cannot say (a collect_env paste shows no g++).
    nvcc: Tool | Unavailable | None
    # /usr/local/cuda and /usr/local/cuda-*, by name, then the folder CUDA_HOME (else CUDA_PATH) names if elsewhere
    toolkits: tuple[ToolkitFolder, ...] | Unavailable
    gcc: Tool | Unavailable | None
    gxx: Tool | Unavailable | None  # g++: nvcc's default host compiler on Linux
    clang: Tool | Unavailable | None
    ninja: Tool | Unavailable | None  # cpp_extension builds with ninja, and falls back to slow distutils without it


# What snapshots from before the section decode to, and what sources without it (collect_env pastes) say.
TOOLCHAIN_NOT_RECORDED = Unavailable("this snapshot does not record the build toolchain (envcheck's live probe does)")
