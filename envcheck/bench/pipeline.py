"""Input pipelines: the whole dataset as uint8 on the device with batched augmentation, or the classic DataLoader.

The device pipeline does no per-image Python: one gather crops a whole batch, one `where` flips it, and
normalisation is a fused multiply-add on the batch (x / 255 - mean) / std = x * scale - shift.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PADDING_PX = 4  # RandomCrop(32, padding=4): the standard CIFAR augmentation (He et al. 2016, section 4.2)


class DeviceBatches:
    """Batches from uint8 images kept on `device`: a new permutation every epoch, the last partial batch dropped."""

    def __init__(
        self, images: Any, labels: Any, batch_size: int, mean: float, std: float, augment: bool, device: str, seed: int
    ) -> None:
        import torch

        self.device = torch.device(device)
        self.images = torch.from_numpy(images).to(self.device)
        self.labels = torch.from_numpy(labels).to(self.device)
        self.batch_size = batch_size
        self.scale = 1.0 / (255.0 * std)
        self.shift = mean / std
        self.augment = augment
        self.generator = torch.Generator(device=self.device.type if self.device.type != "mps" else "cpu")
        self.generator.manual_seed(seed)

    @property
    def steps_per_epoch(self) -> int:
        return int(self.images.shape[0]) // self.batch_size

    def epoch(self) -> Iterator[tuple[Any, Any]]:
        import torch

        order = torch.randperm(self.images.shape[0], generator=self.generator, device=self.generator.device)
        order = order.to(self.device)
        for start in range(0, self.steps_per_epoch * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.prepare(self.images[index]), self.labels[index]

    def forever(self) -> Iterator[tuple[Any, Any]]:
        while True:
            yield from self.epoch()

    def close(self) -> None:
        """Nothing to stop: no worker processes."""

    def prepare(self, batch: Any) -> Any:
        """uint8 B x 3 x 32 x 32 -> normalised float32, cropped and flipped when the preset augments."""

        if self.augment:
            batch = self.crop_and_flip(batch)
        return batch.float().mul_(self.scale).sub_(self.shift)

    def crop_and_flip(self, batch: Any) -> Any:
        import torch

        count, size = batch.shape[0], batch.shape[-1]
        padded = torch.nn.functional.pad(batch, (PADDING_PX,) * 4)
        device = self.generator.device
        offsets = torch.randint(0, 2 * PADDING_PX + 1, (2, count), generator=self.generator, device=device)
        flips = torch.rand(count, generator=self.generator, device=device) < 0.5  # p of RandomHorizontalFlip
        offsets, flips = offsets.to(self.device), flips.to(self.device)
        span = torch.arange(size, device=self.device)
        rows = (offsets[0, :, None] + span)[:, None, :, None]
        columns = offsets[1, :, None] + span
        # a flipped image reads its columns right to left: flip the index, not the pixels
        columns = torch.where(flips[:, None], columns.flip(1), columns)[:, None, None, :]
        samples = torch.arange(count, device=self.device)[:, None, None, None]
        channels = torch.arange(batch.shape[1], device=self.device)[None, :, None, None]
        return padded[samples, channels, rows, columns]


class PerImageDataset:
    """A map-style dataset for torch's DataLoader: one PIL image through torchvision transforms per item."""

    def __init__(self, images: Any, labels: Any, transform: Any) -> None:
        self.images = images.transpose(0, 2, 3, 1)  # HWC, as torchvision's CIFAR10 keeps them
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def classic_transform(mean: float, std: float, augment: bool) -> Any:
    from torchvision import transforms  # type: ignore[import-untyped]

    steps: list[Any] = (
        [transforms.RandomCrop(32, padding=PADDING_PX), transforms.RandomHorizontalFlip()] if augment else []
    )
    steps += [transforms.ToTensor(), transforms.Normalize((mean,) * 3, (std,) * 3)]
    return transforms.Compose(steps)


def default_sigterm(_worker_id: int) -> None:
    """In a DataLoader worker: SIGTERM kills it, as torch expects when it stops a worker that does not answer.

    A forked worker inherits envcheck's SIGTERM handler, which raises to unwind the command line.
    """
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class LoaderBatches:
    """The classic pipeline: DataLoader(shuffle, workers) over per-image transforms, then a copy to the device."""

    def __init__(
        self,
        images: Any,
        labels: Any,
        batch_size: int,
        mean: float,
        std: float,
        augment: bool,
        device: str,
        seed: int,
        workers: int,
    ) -> None:
        import torch

        self.device = torch.device(device)
        generator = torch.Generator()
        generator.manual_seed(seed)
        self.loader: Any = torch.utils.data.DataLoader(
            PerImageDataset(images, labels, classic_transform(mean, std, augment)),  # type: ignore[arg-type]
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            worker_init_fn=default_sigterm,
            generator=generator,
        )

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def epoch(self) -> Iterator[tuple[Any, Any]]:
        is_async = self.device.type == "cuda"
        for images, labels in self.loader:
            yield images.to(self.device, non_blocking=is_async), labels.to(self.device, non_blocking=is_async)

    def forever(self) -> Iterator[tuple[Any, Any]]:
        while True:
            yield from self.epoch()

    def close(self) -> None:
        """Stop the worker processes now, on every way out of the bench (Ctrl-C, SIGTERM, an error).

        Persistent workers live as long as the loader's iterator; left to garbage collection, an interrupted
        run can leave them behind, still holding /dev/shm. `_shutdown_workers` is torch's own stop (the one
        the iterator's __del__ calls), so this needs no copy of its protocol.
        """
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader._iterator = None
