"""`envcheck bench` end to end: JSON keys, real on-disk data, damaged data, -o, --save-reference, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from envcheck.cli import app
from tests.bench_helpers import write_small_cifar10

TINY = ["--device", "cpu", "--steps", "4", "--warmup", "1", "--windows", "2"]


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["bench", *TINY, *args], env={"COLUMNS": "200"})


def test_json_on_synthetic_data(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = invoke("--synthetic", "--json", "-o", str(out))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["data"] == "synthetic" and document["preset"] == "tutorial-cnn" and document["device"] == "cpu"
    assert document["images_per_s"] > 0 and document["correctness"]["passed"] is True
    assert document["calibration"]["kind"] in {"measured", "none"} and document["versions"]["torch"]
    assert json.loads(out.read_text()) == document
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temporary left behind


def test_real_format_data_is_used_and_labelled(tmp_path: Path) -> None:
    write_small_cifar10(tmp_path)
    result = invoke("--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["data"] == "cifar10" and document["data_checksums"] == "unverified"


def test_truncated_dataset_is_one_line_exit_2(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    victim = folder / "data_batch_5"
    victim.write_bytes(victim.read_bytes()[:1000])
    result = invoke("--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "data_batch_5: corrupt or not a CIFAR-10 batch" in lines[0]
        and "Traceback" not in result.output
    )


def test_bad_options_are_exit_2() -> None:
    assert invoke("--preset", "vgg").exit_code == 2
    assert invoke("--loader", "magic").exit_code == 2
    result = CliRunner().invoke(app, ["bench", "--device", "cuda:7"])
    assert result.exit_code == 2 and "cuda:7" in result.stderr


def test_saved_reference_calibrates_the_next_run(tmp_path: Path) -> None:
    references = tmp_path / "mine.toml"
    first = invoke("--synthetic", "--json", "--save-reference", str(references))
    assert first.exit_code == 0, first.output
    assert "[[reference]]" in references.read_text() and "envcheck bench --quick" in references.read_text()
    second = invoke("--synthetic", "--json", "--calibration", str(references))
    calibration = json.loads(second.stdout)["calibration"]
    assert calibration["kind"] == "measured" and calibration["score"] > 0


def test_dataloader_pipeline_and_terminal_table() -> None:
    result = invoke("--synthetic", "--loader", "dataloader", "--workers", "0")
    assert result.exit_code == 0, result.output
    assert "images/s" in result.stdout and "dataloader loader" in result.stdout and "synthetic" in result.stdout


def test_ctrl_c_leaves_no_files_and_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "envcheck", "bench", "--device", "cpu", "--synthetic", "--steps", "1000000",
               "--json", "-o", "out.json", "--save-reference", "ref.toml"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(6)  # torch import, data, correctness: then it is training
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "envcheck: interrupted" and stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_keeps_the_measured_result(tmp_path: Path) -> None:
    result = invoke("--synthetic", "--json", "--no-save", "-o", str(tmp_path))  # a directory: cannot be written
    assert result.exit_code == 2
    assert json.loads(result.stdout)["images_per_s"] > 0  # the run is printed, not lost
    assert result.stderr.strip() == f"envcheck: error: not saved: {tmp_path}: is a directory"


def test_save_reference_to_a_file_that_is_not_toml_is_refused_before_the_run(tmp_path: Path) -> None:
    notes = tmp_path / "notes.toml"
    notes.write_text("my notes, not TOML = = \n")
    result = invoke("--synthetic", "--json", "--save-reference", str(notes))
    assert result.exit_code == 2 and result.stdout == ""  # refused before any training
    assert len(result.stderr.strip().splitlines()) == 1 and str(notes) in result.stderr
    assert notes.read_text() == "my notes, not TOML = = \n"


def test_without_torch_bench_is_one_line_and_exit_2() -> None:
    import subprocess
    import sys

    # sys.modules["torch"] = None makes `import torch` raise ImportError, as in an install without the bench extra
    script = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['envcheck', 'bench']; "
        "from envcheck.launch import main; main()"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "envcheck bench needs torch and torchvision" in lines[0] and "Traceback" not in ran.stderr
    )


def test_full_run_that_misses_its_target_exits_1_with_the_total_time(tmp_path: Path) -> None:
    write_small_cifar10(tmp_path, is_learnable=False)  # shuffled labels: 54% cannot be reached
    result = invoke("--data-dir", str(tmp_path), "--full", "--no-save", "--no-ceiling")
    assert result.exit_code == 1, result.output
    assert "target 54% NOT reached after 10 epochs: FAILED" in result.stdout
    assert "total time" in result.stdout and "training, the rest testing" in result.stdout
    document = json.loads(invoke("--data-dir", str(tmp_path), "--full", "--no-save", "--no-ceiling", "--json").stdout)
    assert document["recipe"]["target_reached"] is False
    assert document["recipe"]["total_s"] >= document["recipe"]["training_s"] > 0


def test_a_dataloader_run_is_not_scored_against_a_device_loader_reference(tmp_path: Path) -> None:
    references = tmp_path / "mine.toml"
    assert invoke("--synthetic", "--no-save", "--save-reference", str(references)).exit_code == 0
    assert 'loader = "device"' in references.read_text()
    other = invoke("--synthetic", "--no-save", "--json", "--loader", "dataloader", "--workers", "0",
                   "--calibration", str(references))  # fmt: skip
    calibration = json.loads(other.stdout)["calibration"]
    assert (calibration["verdict"], calibration["score"]) == ("not scored", None)
    assert "this device has one for the device loader only" in calibration["basis"]
