"""Compression attacks: magnitude pruning (unstructured or whole filters) and int-k quantization.

Both act on every conv and linear weight and on the fingerprint filters (``include_module``), and
keep tensors in float so the result saves and loads like the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.errors import InvalidArgument
from freqprint.fingerprint import FingerprintModule

__all__ = ["Prune", "Quantize", "prunable_weights"]


def prunable_weights(model: nn.Module, include_module: bool = True) -> list[tuple[str, torch.Tensor]]:
    """Conv/linear weights (and fingerprint filters), as ``(name, tensor)``."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            out.append((f"{name}.weight", mod.weight))
        elif isinstance(mod, FingerprintModule) and include_module:
            out.append((f"{name}.weight", mod.weight))
    return out


@dataclass(repr=False)
class Prune(Attack):
    """``kind="unstructured"``: zero the ``rate`` smallest-magnitude weights over the whole model.
    ``kind="structured"``: in every layer, zero the ``rate`` share of output filters with the
    smallest L1 norm."""

    kind: str = "unstructured"
    rate: float = 0.5
    include_module: bool = True
    name = "prune"

    def apply(self, model: nn.Module) -> nn.Module:
        if not 0 <= self.rate < 1:
            raise InvalidArgument("prune rate must be in [0, 1)")
        weights = [w for _, w in prunable_weights(model, self.include_module)]
        if self.kind == "unstructured":
            flat = torch.cat([w.detach().abs().reshape(-1) for w in weights])
            k = int(self.rate * flat.numel())
            if k > 0:
                cut = flat.kthvalue(k).values
                for w in weights:
                    w.mul_((w.abs() > cut).to(w.dtype))
        elif self.kind == "structured":
            for w in weights:
                norms = w.detach().abs().reshape(w.shape[0], -1).sum(1)
                k = int(self.rate * w.shape[0])
                if k > 0:
                    w[norms.argsort()[:k]] = 0
        else:
            raise InvalidArgument(f"prune kind must be 'unstructured' or 'structured', got {self.kind!r}")
        return model


@dataclass(repr=False)
class Quantize(Attack):
    """Symmetric int-``bits`` quantization of every weight (per output channel by default),
    de-quantized back to float: what a model served in int8 looks like to a verifier."""

    bits: int = 8
    per_channel: bool = True
    name = "quantize"

    def apply(self, model: nn.Module) -> nn.Module:
        if not 2 <= self.bits <= 16:
            raise InvalidArgument("quantization bits must be in [2, 16]")
        qmax = 2 ** (self.bits - 1) - 1
        for _, w in prunable_weights(model, True):
            a = w.detach().abs()
            amax = a.reshape(w.shape[0], -1).amax(1).view(-1, *[1] * (w.ndim - 1)) if self.per_channel else a.max()
            scale = (amax / qmax).clamp_min(1e-12)
            w.copy_((w / scale).round().clamp(-qmax, qmax) * scale)
        return model
