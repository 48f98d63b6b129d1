"""What every probe is given: the target interpreter, the paths to inspect, and the roots it reads.

The roots are injectable so tests replay recorded /proc, /sys and /etc trees through the same code
that reads the live ones.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class HostRoots:
    """Where the probes find the kernel's and the distribution's files."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    etc: Path = Path("/etc")
    root: Path = Path("/")  # for markers such as /.dockerenv and /dev/shm


@dataclass(frozen=True, slots=True)
class ProbeContext:
    python: str = sys.executable  # the interpreter whose packages and torch are inspected
    paths: tuple[str, ...] = ()  # extra directories to inspect (--path)
    is_redacting: bool = True  # redact secrets from environment variables
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    roots: HostRoots = field(default_factory=HostRoots)
    framework_timeout_s: float = 60.0  # importing torch cold from a network filesystem can take this long
