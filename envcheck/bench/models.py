"""The benchmark networks: the PyTorch tutorial CNN and a CIFAR-style ResNet-18 (torch imported on first use)."""

from __future__ import annotations

from typing import Any


def build_model(name: str) -> Any:
    """A freshly initialised network (uses torch's global RNG: seed before calling for reproducible weights)."""
    import torch
    from torch import nn

    class TutorialNet(nn.Module):
        """conv(3->6,5) pool conv(6->16,5) pool fc 400->120->84->10, ReLU (pytorch.org CIFAR-10 tutorial)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x: Any) -> Any:
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    class BasicBlock(nn.Module):
        def __init__(self, inputs: int, outputs: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(outputs)
            self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(outputs)
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or inputs != outputs:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
                )

        def forward(self, x: Any) -> Any:
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class CifarResNet18(nn.Module):
        """ResNet-18 for 32x32 inputs: 3x3 stem, no max-pool (kuangliu/pytorch-cifar models/resnet.py)."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
            layers: list[nn.Module] = []
            inputs = 64
            for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
                inputs = outputs
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(512, 10)

        def forward(self, x: Any) -> Any:
            x = self.layers(self.stem(x))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    builders: dict[str, Any] = {"tutorial-cnn": TutorialNet, "resnet18-cifar": CifarResNet18}
    return builders[name]()
