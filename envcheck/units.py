"""Human-readable sizes and durations, shared by checks (in finding titles) and renderers."""

from __future__ import annotations

GIB = 1024**3
MIB = 1024**2
_BYTE_UNITS = (("TiB", 1024**4), ("GiB", GIB), ("MiB", MIB), ("KiB", 1024))


def format_bytes(count: float) -> str:
    for unit, size in _BYTE_UNITS:
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def format_duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms"
