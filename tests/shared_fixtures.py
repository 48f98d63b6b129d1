"""The real fixtures that live outside the repository, in ../shared/fixtures next to the checkout.

A plain clone (or the sdist) has no ../shared: every test that needs one of these files skips with a
reason saying which file, and everything else still runs. Inside a test call `shared_fixture(...)`; in a
parametrize list use `shared_param(...)` or `shared_glob(...)`, which never fail collection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SHARED_XML = SHARED_FIXTURES / "nvidia-smi"


def missing_reason(relative: str) -> str:
    return f"needs ../shared/fixtures/{relative}: not in a plain clone"


def shared_fixture(relative: str) -> Path:
    """The path of ../shared/fixtures/<relative>; skips the calling test when it is absent."""
    path = SHARED_FIXTURES / relative
    if not path.exists():
        pytest.skip(missing_reason(relative))
    return path


def shared_param(relative: str, *values: Any) -> Any:
    """A parametrize entry (path, *values) that skips when ../shared/fixtures/<relative> is absent."""
    path = SHARED_FIXTURES / relative
    return pytest.param(path, *values, marks=pytest.mark.skipif(not path.exists(), reason=missing_reason(relative)))


def shared_glob(folder: str, pattern: str) -> list[Any]:
    """The sorted matches of ../shared/fixtures/<folder>/<pattern> as parametrize entries; one skipped
    entry when there are none, so a plain clone reports the skip instead of silently testing nothing."""
    found = sorted((SHARED_FIXTURES / folder).glob(pattern))
    if found:
        return [pytest.param(path, id=path.name) for path in found]
    return [
        pytest.param(
            None, id=f"{folder}-{pattern}", marks=pytest.mark.skip(reason=missing_reason(f"{folder}/{pattern}"))
        )
    ]
