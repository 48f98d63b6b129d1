"""Small CIFAR-10 folders in the real on-disk format, written by the tests that need one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from envcheck.bench.data import FOLDER, Dataset, synthetic_cifar10, write_cifar10


def write_small_cifar10(root: Path, train: int = 320, test: int = 64, is_learnable: bool = True) -> Path:
    """``is_learnable=False``: the labels are shuffled, so no network can beat chance (10%) on the test split."""
    folder = root / FOLDER
    write_cifar10(folder, small_cifar10(train, test, is_learnable))
    return folder


def small_cifar10(train: int = 320, test: int = 64, is_learnable: bool = True) -> Dataset:
    dataset = synthetic_cifar10(train, test, seed=3)
    if is_learnable:
        return dataset
    rng = np.random.default_rng(5)
    return dataclasses.replace(
        dataset,
        train_labels=rng.permutation(dataset.train_labels),
        test_labels=rng.permutation(dataset.test_labels),
    )
