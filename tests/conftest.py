"""Shared test set-up: no test reads or writes the real user's data directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`envcheck bench` saves its results and `envcheck recommend` reads them from the user's data directory:
    point it (XDG_DATA_HOME, and LOCALAPPDATA on Windows) at an empty folder of this test."""
    home = tmp_path_factory.mktemp("data-home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("LOCALAPPDATA", str(home))
    return home
