"""The benchmark presets as data: which network, which training recipe, which accuracy a full run should reach."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    model: str  # a name models.build_model knows
    batch_size: int
    learning_rate: float
    momentum: float
    weight_decay: float
    schedule: str  # "constant" or "one-cycle" (torch.optim.lr_scheduler.OneCycleLR, max_lr = learning_rate)
    epochs: int  # of a --full run
    normalise_mean: float  # per channel, on [0, 1] pixels
    normalise_std: float
    augment: bool  # random crop 32 with 4 px zero padding + horizontal flip
    bf16_autocast: bool  # on devices that support it (CUDA with compute capability >= 8.0)
    channels_last: bool
    target_accuracy: float  # test accuracy a --full run on real CIFAR-10 should reach
    target_source: str  # where that number comes from
    quick_steps: int  # timed steps of --quick, split into quick_windows windows
    quick_windows: int
    warmup_steps: int


PRESETS: dict[str, Preset] = {
    # The PyTorch "Training a Classifier" tutorial (pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html):
    # its Net, CrossEntropyLoss, SGD(lr=0.001, momentum=0.9), Normalize((0.5,)*3, (0.5,)*3), no augmentation.
    # The tutorial uses batch 4; the issue fixes batch 64 so the number measures training, not Python overhead.
    "tutorial-cnn": Preset(
        name="tutorial-cnn",
        model="tutorial-cnn",
        batch_size=64,
        learning_rate=0.001,
        momentum=0.9,
        weight_decay=0.0,
        schedule="constant",
        epochs=10,
        normalise_mean=0.5,
        normalise_std=0.5,
        augment=False,
        bf16_autocast=False,
        channels_last=False,
        target_accuracy=0.54,
        target_source="the PyTorch CIFAR-10 tutorial reports 54% test accuracy after 2 epochs (batch 4)",
        quick_steps=480,
        quick_windows=8,
        warmup_steps=40,
    ),
    # CIFAR-style ResNet-18 (3x3 stem, no max-pool; kuangliu/pytorch-cifar models/resnet.py) with the usual
    # crop+flip augmentation and a one-cycle schedule (Smith & Topin 2017, "Super-Convergence").
    "resnet18": Preset(
        name="resnet18",
        model="resnet18-cifar",
        batch_size=512,
        learning_rate=0.4,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="one-cycle",
        epochs=30,
        normalise_mean=0.5,
        normalise_std=0.25,
        augment=True,
        bf16_autocast=True,
        channels_last=True,
        target_accuracy=0.93,
        target_source="kuangliu/pytorch-cifar reports 93.02% for ResNet18; one-cycle reaches it in ~30 epochs",
        quick_steps=40,
        quick_windows=4,
        warmup_steps=8,
    ),
}


def preset_by_name(name: str) -> Preset | None:
    return PRESETS.get(name)
