"""CIFAR-style AlexNet: five convs (the paper attaches the fingerprint to ``conv3``) and three FC layers."""

from __future__ import annotations

import torch
from torch import nn


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        c = [max(1, int(round(x * width))) for x in (64, 192, 384, 256, 256)]
        self.conv1 = nn.Conv2d(in_channels, c[0], 3, 1, 1)
        self.conv2 = nn.Conv2d(c[0], c[1], 3, 1, 1)
        self.conv3 = nn.Conv2d(c[1], c[2], 3, 1, 1)
        self.conv4 = nn.Conv2d(c[2], c[3], 3, 1, 1)
        self.conv5 = nn.Conv2d(c[3], c[4], 3, 1, 1)
        self.pool = nn.MaxPool2d(2)
        hidden = max(16, int(round(1024 * width)))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(c[4] * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(hidden, num_classes)
        # Without BatchNorm, PyTorch's default init shrinks the signal ~3x per conv (std 0.24 ->
        # 0.016 after conv5) and SGD never leaves chance; Kaiming init (as torchvision's VGG) fixes it.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x))
        x = self.pool(torch.relu(self.conv5(x)))
        x = nn.functional.adaptive_avg_pool2d(x, 2)
        return self.fc(self.classifier(x))
