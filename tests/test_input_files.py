"""The one reader of input files: regular files only, a size limit per format, one line naming the file.

Unit tests of envcheck.input_files, then every file option through the real CLI with a FIFO where the file
should be: before the reader each of them blocked forever.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.input_files import (
    SNAPSHOT_LIMIT,
    InputError,
    SizeLimit,
    load_json_file,
    load_toml_file,
    read_input_file,
    read_text_file,
)

TINY = SizeLimit(1024, "a test file")
COLLECT_ENV = Path(__file__).parent / "fixtures" / "collect_env" / "linux-torch2.1-cu121-a100x8-conda.txt"
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")
needs_dev = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero and /dev/null here")


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_a_regular_file_and_a_symlink_to_one_are_read(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"x" * TINY.max_bytes)  # exactly at the limit is allowed
    (tmp_path / "link").symlink_to(target)
    assert read_input_file(target, TINY) == read_input_file(tmp_path / "link", TINY) == b"x" * TINY.max_bytes


@needs_fifo
def test_a_fifo_is_refused_at_once_without_waiting_for_a_writer(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"x\.json: is a FIFO, expected a regular file$"):
        read_input_file(fifo(tmp_path / "x.json"), TINY)


@needs_fifo
def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link.toml").symlink_to(fifo(tmp_path / "pipe"))
    with pytest.raises(InputError, match=r"link\.toml: is a FIFO"):
        load_toml_file(tmp_path / "link.toml")


@needs_dev
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_character_devices_are_refused(device: str) -> None:
    with pytest.raises(InputError, match=f"^{device}: is a character device, expected a regular file$"):
        read_input_file(Path(device), SNAPSHOT_LIMIT)


def test_a_directory_and_a_missing_file_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r": is a directory, expected a regular file$"):
        read_input_file(tmp_path, TINY)
    with pytest.raises(InputError, match=r"absent\.json: no such file$"):
        read_input_file(tmp_path / "absent.json", TINY)
    (tmp_path / "dangling").symlink_to(tmp_path / "absent.json")
    with pytest.raises(InputError, match=r"dangling: no such file$"):
        read_input_file(tmp_path / "dangling", TINY)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files of mode 000")
def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text("a = 1\n")
    path.chmod(0)
    with pytest.raises(InputError, match=r"secret\.toml: permission denied$"):
        load_toml_file(path)


def test_a_file_over_the_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * (TINY.max_bytes + 1))
    with pytest.raises(InputError, match=r"big\.json: larger than 1,024 bytes, the limit for a test file$"):
        read_input_file(path, TINY)


def test_a_sparse_terabyte_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "sparse.json"
    with path.open("wb") as stream:
        try:
            stream.truncate(2**40)  # reading it all would take hours: the size is checked before the read
        except OSError:
            pytest.skip("this filesystem has no sparse files of 1 TiB")
    with pytest.raises(InputError, match=r"sparse\.json: larger than 64 MiB, the limit for a snapshot file$"):
        read_input_file(path, SNAPSHOT_LIMIT)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="no /proc")
def test_a_file_that_says_size_zero_is_still_cut_at_the_limit() -> None:
    # /proc files report st_size 0 and yet have content: the read itself stops at the limit
    with pytest.raises(InputError, match="larger than 10 bytes"):
        read_input_file(Path("/proc/self/status"), SizeLimit(10, "a test file"))


def test_text_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(InputError, match=r"latin1\.toml: not UTF-8 text \(byte 0xe9 at offset 11\)$"):
        read_text_file(path, TINY)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("deep.toml", "a = " + "[" * 500 + "]" * 500, "not valid TOML: nested too deeply"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "not JSON: nested too deeply"),
        ("bad.toml", "a = 1\nb = ?\n", r"not valid TOML: Invalid value \(at line 2, column 5\)$"),
        ("bad.json", '{"a": 1,\n}', "not JSON: .*line 2 column 1"),
        ("huge.json", "1" * 5000, "not JSON: Exceeds the limit"),  # int() of 5,000 digits is a ValueError
    ],
)
def test_parse_errors_are_one_line_naming_the_file(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    load = load_toml_file if name.endswith(".toml") else load_json_file
    with pytest.raises(InputError, match=f"^{re.escape(str(path))}: {message}") as caught:
        load(path)
    assert "\n" not in str(caught.value)


def test_toml_and_json_load(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[[row]]\nname = "x"\n')
    (tmp_path / "a.json").write_text('{"deep": ' + "[" * 500 + "]" * 500 + "}")  # 500 deep is valid JSON
    assert load_toml_file(tmp_path / "a.toml") == {"row": [{"name": "x"}]}
    assert set(load_json_file(tmp_path / "a.json")) == {"deep"}


# --- through the command line ----------------------------------------------------------------------


def envcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *args], capture_output=True, text=True, timeout=20, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("envcheck: error: "), result.stderr
    assert all(text in line for text in expected), line


@needs_fifo
@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("x.json", ["info", "--from"]),
        ("x.json", ["setup", "--from"]),
        ("x.toml", ["doctor", "--from", str(COLLECT_ENV), "--profile"]),
        ("x.toml", ["recommend", "--from", str(COLLECT_ENV), "--params", "7B", "--catalog"]),
        ("x.csv", ["recommend", "--from", str(COLLECT_ENV), "--params", "7B", "--catalog"]),
        ("x.toml", ["recommend", "--from", str(COLLECT_ENV), "--workload"]),
        ("config.json", ["recommend", "--from", str(COLLECT_ENV), "--hf-config"]),
        ("x.json", ["recommend", "--from", str(COLLECT_ENV), "--params", "7B", "--bench-results"]),
        ("x.toml", ["bench", "--calibration"]),  # checked before the run, so no bench runs here
        ("x.toml", ["bench", "--save-reference"]),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(a for a in value if not a.startswith("/")),
)
def test_a_fifo_for_any_file_option_is_a_one_line_error(tmp_path: Path, name: str, command: list[str]) -> None:
    path = fifo(tmp_path / name)
    assert_one_line_error(envcheck(*command, str(path)), str(path), "is a FIFO")


@needs_dev
def test_from_dev_zero_is_refused_not_read_until_memory_runs_out() -> None:
    assert_one_line_error(envcheck("info", "--from", "/dev/zero"), "/dev/zero: is a character device")


def test_a_missing_calibration_file_is_refused_before_the_bench_runs(tmp_path: Path) -> None:
    assert_one_line_error(envcheck("bench", "--calibration", str(tmp_path / "absent.toml")), "no such file")


@needs_fifo
def test_a_fifo_among_the_saved_bench_results_is_skipped_with_a_warning(private_data_home: Path) -> None:
    saved = private_data_home / "envcheck" / "bench"
    saved.mkdir(parents=True)
    fifo(saved / "x.json")
    result = envcheck("recommend", "--from", str(COLLECT_ENV), "--params", "7B")
    assert result.returncode == 0, result.stderr
    assert f"skipped saved bench result {saved / 'x.json'}: is a FIFO" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("suffix", "text"), [(".toml", "x = 1{}\n"), (".json", '{{"schema": 1{}}}')])
def test_an_integer_too_long_for_python_is_a_one_line_error(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"huge{suffix}"
    path.write_text(text.format("0" * 5000))
    loader = load_toml_file if suffix == ".toml" else load_json_file
    with pytest.raises(InputError, match="huge"):
        loader(path)


def test_a_snapshot_holding_a_5000_digit_integer_is_refused(tmp_path: Path) -> None:
    from envcheck.loaders import load_snapshot_file

    path = tmp_path / "snap.json"
    path.write_text('{"schema": 1' + "0" * 5000 + "}")
    with pytest.raises(InputError, match=r"snap\.json: not valid JSON"):
        load_snapshot_file(path)
