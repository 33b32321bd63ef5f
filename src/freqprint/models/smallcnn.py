"""A small four-conv CNN: fast enough to train on a CPU in a minute, big enough to be a real model."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)


class SmallCNN(nn.Module):
    """conv1 → conv2 (full resolution: the fingerprint host) → pool → conv3 → pool → conv4 → fc."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.conv1, self.bn1 = _block(in_channels, width)
        self.conv2, self.bn2 = _block(width, width)
        self.conv3, self.bn3 = _block(width, 2 * width)
        self.conv4, self.bn4 = _block(2 * width, 2 * width)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = self.pool(x)
        x = torch.relu(self.bn3(self.conv3(x)))
        x = self.pool(x)
        x = torch.relu(self.bn4(self.conv4(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
