"""CIFAR-10 on disk: found, checksum-verified, loaded through the real code; damage named by file, never a traceback."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from envcheck.bench.data import (
    FOLDER,
    MANIFEST,
    candidate_roots,
    find_cifar10,
    load_cifar10,
    read_manifest,
    resolve_dataset,
    synthetic_cifar10,
    verify_checksums,
)
from envcheck.loaders import InputError
from tests.bench_helpers import write_small_cifar10


def test_written_folder_loads_back_exactly(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    expected = synthetic_cifar10(320, 64, seed=3)
    loaded = load_cifar10(folder)
    assert loaded.kind == "cifar10" and loaded.checksums == "manifest-md5"
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
    ours = load_cifar10(tmp_path / FOLDER)
    assert np.array_equal(theirs.data, ours.train_images.transpose(0, 2, 3, 1))
    assert theirs.targets == ours.train_labels.tolist()
    assert theirs.classes[0] == "class_0"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_batch_is_named(tmp_path: Path, damage: str) -> None:
    folder = write_small_cifar10(tmp_path)
    victim = folder / "data_batch_3"
    content = bytearray(victim.read_bytes())
    if damage == "flip":
        content[len(content) // 2] ^= 0xFF
    else:
        del content[len(content) // 3 :]
    victim.write_bytes(bytes(content))
    with pytest.raises(InputError, match=r"data_batch_3: corrupt or truncated \(md5 [0-9a-f]{32}, expected"):
        load_cifar10(folder)


def test_without_manifest_the_official_checksums_apply(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path, with_manifest=False)
    with pytest.raises(InputError, match=r"data_batch_1: corrupt or truncated .*official file \(torchvision\)"):
        verify_checksums(folder)


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "test_batch").unlink()
    with pytest.raises(InputError, match="test_batch: missing"):
        load_cifar10(folder)


def _rewrite_manifest(folder: Path) -> None:
    import hashlib

    lines = [
        f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(folder.iterdir()) if p.name != MANIFEST
    ]
    (folder / MANIFEST).write_text("".join(lines))


def test_bad_structure_with_valid_checksums_is_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": np.zeros((4, 10), np.uint8), "labels": [0] * 4}))
    _rewrite_manifest(folder)
    with pytest.raises(InputError, match=r"data_batch_2: 'data' is not a uint8 N x 3072 array"):
        load_cifar10(folder)


def test_garbage_pickle_with_valid_checksums_is_named(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / "batches.meta").write_bytes(b"\x80\x02garbage")
    _rewrite_manifest(folder)
    with pytest.raises(InputError, match=r"batches.meta: not a CIFAR-10 batch"):
        load_cifar10(folder)


def test_malformed_manifest_line(tmp_path: Path) -> None:
    folder = write_small_cifar10(tmp_path)
    (folder / MANIFEST).write_text("nonsense\n")
    with pytest.raises(InputError, match=r"md5sums.txt:1: expected"):
        read_manifest(folder)


def test_search_order_and_resolution(tmp_path: Path) -> None:
    roots = candidate_roots(None, environ={"TORCH_HOME": str(tmp_path / "th")}, home=tmp_path / "home")
    assert roots == [tmp_path / "home/.cache/envcheck", tmp_path / "th", tmp_path / "th/datasets", Path("data")]
    write_small_cifar10(tmp_path / "th" / "datasets")
    assert find_cifar10(roots) == tmp_path / "th/datasets" / FOLDER
    assert find_cifar10([tmp_path / "th/datasets" / FOLDER]) == tmp_path / "th/datasets" / FOLDER
    with pytest.raises(InputError, match="no cifar-10-batches-py folder"):
        resolve_dataset(tmp_path / "empty", download=False, force_synthetic=False, synthetic_sizes=(64, 64))
    assert resolve_dataset(tmp_path / "th/datasets", False, False, (64, 64)).kind == "cifar10"
    assert resolve_dataset(tmp_path / "th/datasets", False, True, (64, 64)).kind == "synthetic"


def test_synthetic_is_seeded_and_class_dependent() -> None:
    first, second = synthetic_cifar10(500, 10, seed=1), synthetic_cifar10(500, 10, seed=1)
    assert np.array_equal(first.train_images, second.train_images)
    means = [first.train_images[first.train_labels == c].mean(axis=0) for c in range(10)]
    # class means differ by far more than the noise left in a mean of ~50 images (48 / sqrt(50) ~ 7 grey levels)
    assert min(float(np.abs(means[a] - means[b]).mean()) for a in range(10) for b in range(a)) > 15
