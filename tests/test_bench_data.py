"""CIFAR-10 on disk: found, checksum-verified, loaded through the real code; damage named by file, never a traceback;
a crafted pickle never runs code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from envcheck.bench.data import (
    FOLDER,
    OFFICIAL_MD5S,
    candidate_roots,
    find_cifar10,
    load_cifar10,
    resolve_dataset,
    synthetic_cifar10,
    verify_checksums,
)
from envcheck.loaders import InputError
from tests.bench_helpers import write_small_cifar10


def test_written_folder_loads_back_exactly_as_an_unverified_copy(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    expected = synthetic_cifar10(320, 64, seed=3)
    loaded = load_cifar10(folder, is_official_required=False)
    assert loaded.kind == "cifar10" and loaded.checksums == "unverified"
    assert loaded.train_images.shape == (320, 3, 32, 32) and loaded.train_images.dtype == np.uint8
    assert np.array_equal(loaded.train_images, expected.train_images)
    assert np.array_equal(loaded.test_labels, expected.test_labels)


def test_torchvision_reads_the_written_format_like_the_official_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.datasets import CIFAR10, cifar

    write_small_cifar10(tmp_path)
    monkeypatch.setattr(cifar, "check_integrity", lambda *_: True)  # synthetic bytes: official md5s cannot match
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    theirs = CIFAR10(str(tmp_path), train=True, download=False)
    ours = load_cifar10(tmp_path / FOLDER, is_official_required=False)
    assert np.array_equal(theirs.data, ours.train_images.transpose(0, 2, 3, 1))
    assert theirs.targets == ours.train_labels.tolist()
    assert theirs.classes[0] == "class_0"


def test_the_shipped_md5s_are_torchvisions() -> None:
    from torchvision.datasets import CIFAR10

    pairs = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    assert {name: md5 for name, md5 in pairs} == OFFICIAL_MD5S


def test_checksums_are_compared_with_the_given_list(tmp_path: Path) -> None:
    import hashlib

    folder = write_small_cifar10(tmp_path)
    own = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in OFFICIAL_MD5S}
    verify_checksums(folder, own)
    victim = folder / "data_batch_3"
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF
    victim.write_bytes(bytes(content))
    with pytest.raises(
        InputError, match=r"data_batch_3: corrupt, truncated or not the official file \(md5 [0-9a-f]{32}"
    ):
        verify_checksums(folder, own)


def test_a_folder_that_is_not_the_official_release_is_refused_unless_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    with pytest.raises(InputError, match=r"data_batch_1: corrupt, truncated or not the official file.*--data-dir"):
        load_cifar10(folder)
    assert load_cifar10(folder, is_official_required=False).checksums == "unverified"


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "test_batch").unlink()
    with pytest.raises(InputError, match="test_batch: missing"):
        load_cifar10(folder, is_official_required=False)


def test_a_fifo_in_place_of_a_batch_is_refused_without_blocking(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "data_batch_2").unlink()
    import os

    os.mkfifo(folder / "data_batch_2")
    with pytest.raises(InputError, match="data_batch_2: not a regular file"):
        load_cifar10(folder, is_official_required=False)


def test_bad_structure_is_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": np.zeros((4, 10), np.uint8), "labels": [0] * 4}))
    with pytest.raises(InputError, match=r"data_batch_2: 'data' is not a uint8 N x 3072 array"):
        load_cifar10(folder, is_official_required=False)


@pytest.mark.parametrize("labels", [["3"] * 4, [1.5] * 4, [10] * 4, [-1] * 4, [True] * 4])
def test_labels_that_are_not_class_numbers_are_named(tmp_path: Path, labels: list[object]) -> None:
    folder = write_small_cifar10(tmp_path)
    content = {"data": np.zeros((4, 3072), np.uint8), "labels": labels}
    (folder / "data_batch_4").write_bytes(pickle.dumps(content))
    with pytest.raises(InputError, match=r"data_batch_4: 'labels' holds values other than the integers 0..9"):
        load_cifar10(folder, is_official_required=False)


def test_garbage_and_truncated_pickles_are_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "batches.meta").write_bytes(b"\x80\x02garbage")
    with pytest.raises(InputError, match=r"batches.meta: corrupt or not a CIFAR-10 batch"):
        load_cifar10(folder, is_official_required=False)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{n}" for n in range(10)]}))
    victim = folder / "data_batch_5"
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(
        InputError, match=r"data_batch_5: corrupt or not a CIFAR-10 batch \(UnpicklingError: .*truncated"
    ):
        load_cifar10(folder, is_official_required=False)


class _RunsCode:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def _plant_crafted_folder(root: Path, marker: Path) -> Path:
    folder = write_small_cifar10(root)
    crafted = {"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 4, "x": _RunsCode(marker)}
    for name in ("batches.meta", "data_batch_1"):
        (folder / name).write_bytes(pickle.dumps(crafted, protocol=2))
    return folder


def test_a_crafted_pickle_in_a_named_folder_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _plant_crafted_folder(tmp_path / "data", marker)
    with pytest.raises(
        InputError, match=r"batches.meta: corrupt or not a CIFAR-10 batch .*refused to load posix.system"
    ):
        resolve_dataset(tmp_path / "data", download=False, force_synthetic=False, synthetic_sizes=(64, 64))
    assert not marker.exists()


def test_a_crafted_folder_in_dot_data_is_refused_before_it_is_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    _plant_crafted_folder(tmp_path / "data", marker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    with pytest.raises(InputError, match=r"not the official file"):
        resolve_dataset(None, download=False, force_synthetic=False, synthetic_sizes=(64, 64))
    assert not marker.exists()


def test_search_order_and_resolution(tmp_path: Path) -> None:
    roots = candidate_roots(None, environ={"TORCH_HOME": str(tmp_path / "th")}, home=tmp_path / "home")
    assert roots == [tmp_path / "home/.cache/envcheck", tmp_path / "th", tmp_path / "th/datasets", Path("data")]
    write_small_cifar10(tmp_path / "th" / "datasets")
    assert find_cifar10(roots) == tmp_path / "th/datasets" / FOLDER
    assert find_cifar10([tmp_path / "th/datasets" / FOLDER]) == tmp_path / "th/datasets" / FOLDER
    with pytest.raises(InputError, match="no cifar-10-batches-py folder"):
        resolve_dataset(tmp_path / "empty", download=False, force_synthetic=False, synthetic_sizes=(64, 64))
    assert resolve_dataset(tmp_path / "th/datasets", False, False, (64, 64)).checksums == "unverified"
    assert resolve_dataset(tmp_path / "th/datasets", False, True, (64, 64)).kind == "synthetic"


def test_synthetic_is_seeded_and_class_dependent() -> None:
    first, second = synthetic_cifar10(500, 10, seed=1), synthetic_cifar10(500, 10, seed=1)
    assert np.array_equal(first.train_images, second.train_images)
    means = [first.train_images[first.train_labels == c].mean(axis=0) for c in range(10)]
    # class means differ by far more than the noise left in a mean of ~50 images (48 / sqrt(50) ~ 7 grey levels)
    assert min(float(np.abs(means[a] - means[b]).mean()) for a in range(10) for b in range(a)) > 15
