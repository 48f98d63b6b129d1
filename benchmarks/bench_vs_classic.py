"""envcheck bench's input pipeline against the classic tutorial way, side by side in one run, on the same data.

Both train the tutorial CNN (preset tutorial-cnn: batch 64, SGD lr 0.001 momentum 0.9, mean/std 0.5) on the
CPU from the same cifar-10-batches-py folder (synthetic images written in the real format to a temp dir).
envcheck: uint8 tensor in memory, batched normalisation. Classic: torchvision CIFAR10 + ToTensor/Normalize +
DataLoader(batch 64, shuffle), with 0 and 2 workers. Prints images/s of each and the ratio (target >= 1.5x).

    .venv/bin/python benchmarks/bench_vs_classic.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from envcheck.bench.data import FOLDER, load_cifar10, synthetic_cifar10, write_cifar10
from envcheck.bench.loop import build_trainer, measure
from envcheck.bench.models import build_model
from envcheck.bench.pipeline import DeviceBatches
from envcheck.bench.presets import PRESETS

PRESET = PRESETS["tutorial-cnn"]
WARMUP, WINDOWS, PER_WINDOW = 40, 6, 80


def classic_batches(root: Path, workers: int) -> Any:
    import torch
    from torchvision import datasets, transforms
    from torchvision.datasets import cifar

    # the images are synthetic, so torchvision's md5s of the official files cannot match; everything else
    # (unpickling, PIL conversion, transforms, DataLoader) is torchvision's own code path
    cifar.check_integrity = lambda *_: True

    class LocalCIFAR10(datasets.CIFAR10):
        def _check_integrity(self) -> bool:
            return True

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    dataset = LocalCIFAR10(str(root), train=True, download=False, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)  # fmt: skip

    def forever() -> Any:
        while True:
            yield from loader

    return forever()


def throughput(batches: Any, seed: int) -> float:
    import torch

    torch.manual_seed(seed)
    trainer = build_trainer(PRESET, build_model(PRESET.model), torch.device("cpu"), 0)
    return measure(trainer, batches, WARMUP, WINDOWS, PER_WINDOW, PRESET.batch_size, lambda *_: None).images_per_s


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        write_cifar10(root / FOLDER, synthetic_cifar10(10240, 1024))
        dataset = load_cifar10(root / FOLDER, is_official_required=False)
        rates: dict[str, list[float]] = {
            "envcheck (device uint8)": [],
            "classic, 0 workers": [],
            "classic, 2 workers": [],
        }
        for round_number in range(rounds):  # interleaved, so a busy spell on the machine hits every variant
            started = time.perf_counter()
            device = DeviceBatches(dataset.train_images, dataset.train_labels, 64, 0.5, 0.5, False, "cpu", seed=0)
            rates["envcheck (device uint8)"].append(throughput(device.forever(), round_number))
            rates["classic, 0 workers"].append(throughput(classic_batches(root, 0), round_number))
            rates["classic, 2 workers"].append(throughput(classic_batches(root, 2), round_number))
            print(f"round {round_number + 1}: {time.perf_counter() - started:.1f} s")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"{name:<26} {value:>9,.0f} images/s  (rounds: {', '.join(f'{v:,.0f}' for v in rates[name])})")
    best_classic = max(medians["classic, 0 workers"], medians["classic, 2 workers"])
    print(f"ratio envcheck / best classic: {medians['envcheck (device uint8)'] / best_classic:.2f}x (target >= 1.5x)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
