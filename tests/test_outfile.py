"""The one writer of user-named output files, against real files: regular, symlink, FIFO, device, directory, full."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from envcheck.bench.store import free_path
from envcheck.loaders import InputError
from envcheck.outfile import write_output_file


def test_a_new_file_gets_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_output_file(tmp_path / "report.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644


def test_a_symlink_is_kept_and_its_target_written(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("old")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    write_output_file(tmp_path / "link", "new")
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "target").read_text() == "new"


def test_a_character_device_is_written_in_place_not_replaced() -> None:
    write_output_file(Path("/dev/null"), "report")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)


def test_a_fifo_without_a_reader_is_one_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="pipe: cannot write"):
        write_output_file(tmp_path / "pipe", "report")
    assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        write_output_file(tmp_path, "report")


def test_a_full_disk_is_one_error() -> None:
    with pytest.raises(InputError, match="/dev/full: cannot write"):
        write_output_file(Path("/dev/full"), "report")


def test_free_path_claims_each_name_once(tmp_path: Path) -> None:
    first, second = free_path(tmp_path, "r.json"), free_path(tmp_path, "r.json")
    assert (first.name, second.name) == ("r.json", "r-2.json")
