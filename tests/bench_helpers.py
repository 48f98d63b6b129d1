"""Small CIFAR-10 folders in the real on-disk format, written by the tests that need one."""

from __future__ import annotations

from pathlib import Path

from envcheck.bench.data import FOLDER, synthetic_cifar10, write_cifar10


def write_small_cifar10(root: Path, train: int = 320, test: int = 64) -> Path:
    folder = root / FOLDER
    write_cifar10(folder, synthetic_cifar10(train, test, seed=3))
    return folder
