"""Overwriting the fingerprint module (the rebuttal's three kinds) and removing it.

``Overwrite(kind="replace")`` draws fresh random filters from the module's own initial
distribution; ``"spectral"`` adds complex Gaussian noise on the full M×N spectrum, mapped back
to K×K kernels by the inverse revised DFT (its least-squares projection); ``"weights"`` adds
Gaussian noise on the weights.  Both noises have ``‖noise‖ = scale·‖W‖`` (default 0.5, as
L_attack's ε).  ``RemoveModule`` deletes the module and restores the bare host conv.
``BackboneNoise`` is the knowing thief's answer to the lineage test (:mod:`freqprint.verification.backbone`):
Gaussian noise on every conv and linear weight *outside* the module, ``‖noise‖ = scale·‖W‖`` per
tensor, to wash out the initialisation before fine-tuning repairs the accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.errors import InvalidArgument
from freqprint.fingerprint import FingerprintModule, detach, get_fingerprint_module
from freqprint.stats.spectral import inverse_revised_dft

__all__ = ["OVERWRITE_KINDS", "BackboneNoise", "Overwrite", "RemoveModule"]

OVERWRITE_KINDS = ("replace", "spectral", "weights")


@dataclass(repr=False)
class Overwrite(Attack):
    kind: str = "replace"
    scale: float = 0.5
    seed: int = 0
    name = "overwrite"

    def apply(self, model: nn.Module) -> nn.Module:
        if self.kind not in OVERWRITE_KINDS:
            raise InvalidArgument(f"overwrite kind must be one of {', '.join(OVERWRITE_KINDS)}, got {self.kind!r}")
        _, fp = get_fingerprint_module(model)
        g = torch.Generator().manual_seed(self.seed)
        w = fp.weight
        if self.kind == "replace":
            std = 1.0 / math.sqrt(fp.in_channels * fp.kernel_size**2)
            w.copy_(torch.randn(w.shape, generator=g).to(w) * std)
            if fp.bias is not None:
                fp.bias.copy_(torch.randn(fp.bias.shape, generator=g).to(w) * std)
            return model
        if self.kind == "spectral":
            m, n = fp.grid_size
            z = torch.complex(
                torch.randn(*w.shape[:2], m, n, generator=g, dtype=torch.float64),
                torch.randn(*w.shape[:2], m, n, generator=g, dtype=torch.float64),
            )
            noise = inverse_revised_dft(z, fp.kernel_size)
        else:
            noise = torch.randn(w.shape, generator=g, dtype=torch.float64)
        noise = noise.to(w) * (self.scale * w.norm() / noise.norm().clamp_min(1e-30))
        w.add_(noise)
        return model


@dataclass(repr=False)
class RemoveModule(Attack):
    """Delete the fingerprint module (the host conv stays; the network loses the module's signal)."""

    name = "remove-module"

    def apply(self, model: nn.Module) -> nn.Module:
        get_fingerprint_module(model)  # clear error when there is none
        return detach(model)

    def update_recipe(self, recipe: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**recipe, "fingerprint": None}


@dataclass(repr=False)
class BackboneNoise(Attack):
    """Add ``scale·‖W‖`` of Gaussian noise to every conv / linear weight of the backbone (the
    fingerprint module, if any, untouched)."""

    scale: float = 1.0
    seed: int = 0
    name = "noise-backbone"

    def apply(self, model: nn.Module) -> nn.Module:
        if not self.scale >= 0:
            raise InvalidArgument(f"noise-backbone scale must be >= 0, got {self.scale}")
        g = torch.Generator().manual_seed(self.seed)
        inside = {id(p) for m in model.modules() if isinstance(m, FingerprintModule) for p in m.parameters()}
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m.weight) not in inside:
                w = m.weight
                noise = torch.randn(w.shape, generator=g, dtype=torch.float64)
                w.add_((noise * (self.scale * float(w.norm()) / float(noise.norm().clamp_min(1e-30)))).to(w))
        return model
