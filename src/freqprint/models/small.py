"""Small models for the MetaV ensembles (:mod:`freqprint.metav`): other architecture families for
classification (an MLP, a LeNet), a regression MLP for tabular data, and a VAE whose public
function is its decoder (latent codes in, images out).

They are registered like the paper's hosts, so a suspect file with a freqprint recipe rebuilds
into one of them (``checkpoint.load_model``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LeNet", "MLPClassifier", "RegressionMLP", "VAE"]


def _mlp(sizes: list[int], act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class MLPClassifier(nn.Module):
    """Flatten → ``depth`` hidden ReLU layers of ``hidden`` units → ``fc`` (the head)."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, hidden: int = 128, depth: int = 2
    ) -> None:
        super().__init__()
        self.body = _mlp([in_channels * image_size * image_size] + [hidden] * depth, nn.ReLU)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.body(torch.flatten(x, 1))))


class LeNet(nn.Module):
    """LeNet-5 shape: conv5×5 → pool → conv5×5 → pool → fc → fc → ``fc`` (the head)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 6) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 5, padding=2)
        self.conv2 = nn.Conv2d(width, 16 * width // 6, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * width // 6 * 25, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = nn.functional.adaptive_avg_pool2d(x, 5)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc(torch.relu(self.fc2(x)))


class RegressionMLP(nn.Module):
    """Tabular regression: ``in_features`` → ``depth`` × ``hidden`` (ReLU or tanh) → ``out_features``."""

    def __init__(
        self, in_features: int = 10, out_features: int = 1, hidden: int = 64, depth: int = 2, activation: str = "relu"
    ) -> None:
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        self.net = _mlp([in_features] + [hidden] * depth + [out_features], act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VAE(nn.Module):
    """A variational auto-encoder whose ``forward(z)`` is the **decoder**: latent codes ``[B, latent]``
    in, images ``[B, C, H, W]`` in [0, 1] out — the generative model a suspect serves.  The encoder
    only matters for training (:meth:`elbo`).  ``decoder="mlp"`` or ``"conv"`` (two transposed
    convolutions from a 7×7 map; 28×28 images only)."""

    def __init__(
        self, latent: int = 8, hidden: int = 256, in_channels: int = 1, image_size: int = 28, decoder: str = "mlp"
    ) -> None:
        super().__init__()
        self.latent, self.shape = latent, (in_channels, image_size, image_size)
        d = in_channels * image_size * image_size
        self.encoder = _mlp([d, hidden, 2 * latent], nn.ReLU)
        if decoder == "mlp":
            self.decoder = nn.Sequential(_mlp([latent, hidden, hidden, d], nn.ReLU))
        elif decoder == "conv":
            if image_size != 28:
                raise TypeError("the conv decoder makes 28x28 images")
            self.decoder = nn.Sequential(
                nn.Linear(latent, 32 * 49),
                nn.ReLU(),
                nn.Unflatten(1, (32, 7, 7)),
                nn.ConvTranspose2d(32, 16, 4, 2, 1),
                nn.ReLU(),
                nn.ConvTranspose2d(16, in_channels, 4, 2, 1),
                nn.Flatten(),
            )
        else:
            raise TypeError(f"decoder must be 'mlp' or 'conv', got {decoder!r}")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z)).view(-1, *self.shape)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """The negative ELBO per image (Bernoulli likelihood), averaged: the training loss."""
        mu, logvar = self.encoder(torch.flatten(x, 1)).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = self.decoder(z)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, torch.flatten(x, 1), reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
        return rec + kl
