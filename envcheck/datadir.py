"""The user's data directory, where envcheck keeps what it measured (bench results) between runs.

Linux and other Unix: ``$XDG_DATA_HOME`` (XDG Base Directory specification; a relative value is ignored, as the
specification says), else ``~/.local/share``; macOS: ``~/Library/Application Support`` unless ``XDG_DATA_HOME``
is set; Windows: ``%LOCALAPPDATA%``. The same places platformdirs' ``user_data_dir`` picks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

APP_NAME = "envcheck"


def user_data_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """``<data home>/envcheck``; RuntimeError when no home directory can be found (Path.home())."""
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    if system == "win32":
        local = env.get("LOCALAPPDATA", "")
        base = Path(local) if local and PureWindowsPath(local).is_absolute() else _home(env) / "AppData" / "Local"
        return base / APP_NAME
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / APP_NAME
    if system == "darwin":
        return _home(env) / "Library" / "Application Support" / APP_NAME
    return _home(env) / ".local" / "share" / APP_NAME


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else Path.home()
