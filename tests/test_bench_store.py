"""Bench results kept in the user's data directory: where, how they are named and saved, and how recommend
finds the newest per GPU model, skips broken files and uses each only for its own GPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envcheck.advise.saved_benches import newest_saved_measurements
from envcheck.bench.store import bench_results_dir, free_path, result_file_name
from envcheck.cli import app
from envcheck.datadir import user_data_dir
from envcheck.snapshot import to_json
from tests import factories

runner = CliRunner()
TINY_BENCH = ["bench", "--device", "cpu", "--steps", "4", "--warmup", "1", "--windows", "2", "--synthetic"]


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {"XDG_DATA_HOME": "/xdg", "HOME": "/home/ada"}, "/xdg/envcheck"),
        ("linux", {"HOME": "/home/ada"}, "/home/ada/.local/share/envcheck"),
        # the XDG specification: a relative path is invalid and must be ignored
        ("linux", {"XDG_DATA_HOME": "relative", "HOME": "/home/ada"}, "/home/ada/.local/share/envcheck"),
        ("darwin", {"HOME": "/Users/ada"}, "/Users/ada/Library/Application Support/envcheck"),
        ("darwin", {"XDG_DATA_HOME": "/xdg", "HOME": "/Users/ada"}, "/xdg/envcheck"),
        ("win32", {"LOCALAPPDATA": "C:\\Users\\ada\\AppData\\Local"}, "C:\\Users\\ada\\AppData\\Local/envcheck"),
        ("win32", {"USERPROFILE": "/users/ada"}, "/users/ada/AppData/Local/envcheck"),
    ],
)
def test_user_data_dir_per_platform(platform: str, environ: dict[str, str], expected: str) -> None:
    assert user_data_dir(environ, platform) == Path(expected)
    assert bench_results_dir(environ, platform) == Path(expected) / "bench"


def test_result_file_names_sort_by_time_and_keep_devices_apart(tmp_path: Path) -> None:
    document = {"date": "2026-11-29T02:53:00+00:00", "device_name": "NVIDIA H200", "device": "cuda:1",
                "preset": "resnet18"}  # fmt: skip
    name = result_file_name(document)
    assert name == "20261129T025300Z-nvidia-h200-cuda-1-resnet18.json"
    (tmp_path / name).write_text("{}")
    assert free_path(tmp_path, name).name == "20261129T025300Z-nvidia-h200-cuda-1-resnet18-2.json"


def bench_document(device_name: str, date: str, images_per_s: float = 5000.0, **changes: Any) -> dict[str, Any]:
    document = {"schema": "envcheck.bench/1", "preset": "resnet18", "device": "cuda:0", "device_name": device_name,
                "images_per_s": images_per_s, "date": date}  # fmt: skip
    return {**document, **changes}


def write(directory: Path, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / result_file_name(document)
    path.write_text(json.dumps(document))
    return path


def test_newest_result_per_gpu_model_and_broken_files_are_warnings(tmp_path: Path) -> None:
    old_h100 = write(tmp_path, bench_document("NVIDIA H100 80GB HBM3", "2026-10-01T10:00:00+00:00", 4000.0))
    new_h100 = write(tmp_path, bench_document("NVIDIA H100 80GB HBM3", "2026-11-20T10:00:00+00:00", 6000.0))
    rtx = write(tmp_path, bench_document("NVIDIA GeForce RTX 4090", "2026-11-01T10:00:00+00:00", 5000.0))
    # quietly not used: another preset (its FLOPs are unknown) and a CPU run
    write(tmp_path, bench_document("NVIDIA H100 80GB HBM3", "2026-11-28T10:00:00+00:00", preset="tutorial-cnn"))
    write(tmp_path, bench_document("AMD EPYC 9654", "2026-11-28T10:00:00+00:00", device="cpu"))
    (tmp_path / "truncated.json").write_text('{"schema": "envcheck.bench/1", "preset": "res')
    (tmp_path / "other.json").write_text('{"hello": 1}')
    write(tmp_path, bench_document("NVIDIA A10G", "2026-11-02T10:00:00+00:00", images_per_s=-1))
    (tmp_path / "notes.txt").write_text("not a result")

    measurements, warnings = newest_saved_measurements(tmp_path)

    assert [(m.device, m.images_per_s, m.source) for m in measurements] == [
        ("NVIDIA H100 80GB HBM3", 6000.0, str(new_h100)),
        ("NVIDIA GeForce RTX 4090", 5000.0, str(rtx)),
    ]
    assert str(old_h100) not in {m.source for m in measurements}
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)
    assert any("truncated.json: not JSON" in w for w in warnings)
    assert any("other.json: not an envcheck.bench/1 result" in w for w in warnings)
    assert any("nvidia-a10g" in w and "images_per_s" in w for w in warnings)


def test_no_directory_is_no_results_and_no_warning(tmp_path: Path) -> None:
    assert newest_saved_measurements(tmp_path / "never-created") == ((), ())


def test_bench_saves_each_run_and_no_save_opts_out(private_data_home: Path) -> None:
    result = runner.invoke(app, [*TINY_BENCH, "--json"])
    assert result.exit_code == 0, result.output
    saved = list((private_data_home / "envcheck" / "bench").glob("*.json"))
    assert len(saved) == 1
    document = json.loads(saved[0].read_text())
    assert document == json.loads(result.stdout)  # the same JSON as `bench --json`
    assert saved[0].name == result_file_name(document) and saved[0].name.endswith("-cpu-tutorial-cnn.json")
    assert not list(saved[0].parent.glob(".*.tmp"))  # the atomic write left no temporary file

    result = runner.invoke(app, [*TINY_BENCH, "--json", "--no-save"])
    assert result.exit_code == 0, result.output
    assert len(list(saved[0].parent.glob("*.json"))) == 1


def test_a_failure_to_save_is_one_warning_and_the_result_is_still_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the data directory cannot be created under a file")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    result = runner.invoke(app, [*TINY_BENCH, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema"] == "envcheck.bench/1"
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "bench result not saved" in warnings[0] and str(blocker) in warnings[0]


def recommend(*args: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["recommend", "--workload", "cifar10-cnn", "--top", "40", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data, result.stderr


def test_recommend_uses_saved_results_only_for_their_own_gpus(private_data_home: Path) -> None:
    directory = private_data_home / "envcheck" / "bench"
    h100 = write(directory, bench_document("NVIDIA H100 80GB HBM3", "2026-11-29T01:00:00+00:00", 9000.0))
    a10g = write(directory, bench_document("NVIDIA A10G", "2026-11-28T01:00:00+00:00", 3000.0))
    (directory / "broken.json").write_text("{")

    data, stderr = recommend()

    assert [m["file"] for m in data["measured"]] == [str(h100), str(a10g)]
    assert data["measured"][0] == {"device": "NVIDIA H100 80GB HBM3", "images_per_s": 9000.0,
                                   "date": "2026-11-29T01:00:00+00:00", "file": str(h100)}  # fmt: skip
    by_gpu: dict[str, set[str | None]] = {}
    for option in data["options"]:
        pcie = "-pcie" if option["gpu"] == "H100" and "pcie" in option["instance_type"] else ""
        by_gpu.setdefault(option["gpu"] + pcie, set()).add(option["measured_from"])
    assert by_gpu["H100"] == {str(h100)} and by_gpu["A10G"] == {str(a10g)}
    assert by_gpu["H100-pcie"] == {None}  # an H100 PCIe is another GPU model than the SXM one benched
    assert by_gpu["L4"] == {None} and by_gpu["T4"] == {None}
    one_h100 = next(o for o in data["options"] if o["gpu"] == "H100" and o["gpu_count"] == 1)
    assert one_h100["time_basis"] == "measured"
    assert one_h100["job_hours"] == pytest.approx(30 * 50_000 / 9000 / 3600)  # the measured rate, 30 epochs
    assert stderr.count("warning") == 1 and "broken.json: not JSON" in stderr

    terminal = runner.invoke(app, ["recommend", "--workload", "cifar10-cnn", "--top", "40"], env={"COLUMNS": "400"})
    assert f"time scaled from your bench of NVIDIA H100 80GB HBM3 on 2026-11-29 ({h100})" in terminal.stdout

    ignored, _ = recommend("--no-bench-results")
    assert ignored["measured"] == [] and {o["time_basis"] for o in ignored["options"]} == {"compute"}


def test_bench_results_file_overrides_the_saved_ones(private_data_home: Path, tmp_path: Path) -> None:
    write(private_data_home / "envcheck" / "bench", bench_document("NVIDIA H100 80GB HBM3", "2026-11-29T01:00:00"))
    given = tmp_path / "given.json"
    given.write_text(json.dumps(bench_document("NVIDIA L4", "2026-11-27T01:00:00", 1000.0)))
    data, _ = recommend("--bench-results", str(given))
    assert [m["file"] for m in data["measured"]] == [str(given)]
    assert {o["gpu"] for o in data["options"] if o["time_basis"] == "measured"} == {"L4"}


def test_here_uses_the_bench_of_this_machines_gpu(private_data_home: Path, tmp_path: Path) -> None:
    directory = private_data_home / "envcheck" / "bench"
    write(directory, bench_document("NVIDIA H100 80GB HBM3", "2026-11-29T01:00:00+00:00", 9000.0))
    write(directory, bench_document("NVIDIA GeForce RTX 4090", "2026-11-20T01:00:00+00:00", 5000.0))
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(to_json(factories.gpu_machine(factories.nvml_gpu("rtx4090-driver535.86.05"))))
    data, _ = recommend("--from", str(snapshot))
    assert data["here"]["job_hours"] == pytest.approx(30 * 50_000 / 5000 / 3600)  # the 4090's, not the newest


def test_buy_uses_each_gpus_own_bench_not_the_newest(private_data_home: Path) -> None:
    directory = private_data_home / "envcheck" / "bench"
    write(directory, bench_document("NVIDIA H100 80GB HBM3", "2026-11-29T01:00:00+00:00", 9000.0))
    write(directory, bench_document("NVIDIA GeForce RTX 4090", "2026-11-20T01:00:00+00:00", 5000.0))
    data, _ = recommend("--buy")
    [rtx4090] = [o for o in data["buy"]["options"] if o["gpu"].startswith("GeForce RTX 4090")]
    assert rtx4090["job_hours"] == pytest.approx(30 * 50_000 / 5000 / 3600)  # its own rate, not the newer H100's
