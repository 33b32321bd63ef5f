"""The ``Method`` protocol: how a fingerprinting (or watermarking) scheme plugs into the tracing
benchmark.  The benchmark owns training, attacks and caching; a method says

* ``prepare(model, example, secret)``: change the architecture before training (attach a module),
  and ``recipe_patch()``: the same change as recipe fields, so cached models can be rebuilt;
* ``criterion(num_classes)``: the training loss (``None``: plain cross-entropy) — ``prepare`` +
  training with ``criterion`` is the method's *embed* step;
* ``extract(model)``: the owner's evidence (a key, a trigger set, reference features ...);
* ``score(evidence, suspect)``: a dict of statistics, each "higher = more likely derived"; the
  benchmark evaluates every one of them, with the thresholds in ``fixed_thresholds`` fixed in
  advance (never fitted to the evaluated pairs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from freqprint.key import extract
from freqprint.loss import FingerprintLoss, add_pseudo_class
from freqprint.module import FingerprintConfig, attach
from freqprint.verify import verify

__all__ = ["FrequencyFingerprint", "METHODS", "Method", "create_method"]


@runtime_checkable
class Method(Protocol):
    name: str
    fixed_thresholds: dict[str, float]

    def config(self) -> dict[str, Any]: ...

    def prepare(self, model: nn.Module, example: torch.Tensor, secret: str) -> nn.Module: ...

    def recipe_patch(self) -> dict[str, Any]: ...

    def criterion(self, num_classes: int) -> Any: ...

    def extract(self, model: nn.Module) -> Any: ...

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]: ...


@dataclass
class FrequencyFingerprint:
    """Ours: the frequency fingerprint with the calibrated verifier.

    Scores: ``neg_log10_p`` (decides; fixed threshold 6 = p < 1e-6), the paper's ``tau_score``
    (fixed threshold 0.5) and ``mean_cosine`` (fixed threshold 0.5).
    """

    target: str = "layer1.1.conv2"
    filters: int = 256
    radius: int = 1
    attack_weight: float = 5e-4
    tau: float = 0.99
    frequencies: str = "sprime"
    name: str = "ours"

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {"neg_log10_p": 6.0, "tau_score": 0.5, "mean_cosine": 0.5}

    def config(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def prepare(self, model: nn.Module, example: torch.Tensor, secret: str) -> nn.Module:
        attach(model, FingerprintConfig(target=self.target, secret=secret, filters=self.filters, radius=self.radius), example)
        add_pseudo_class(model)
        return model

    def recipe_patch(self) -> dict[str, Any]:
        return {"pseudo_class": True,
                "fingerprint": FingerprintConfig(target=self.target, filters=self.filters, radius=self.radius).to_dict()}

    def criterion(self, num_classes: int) -> FingerprintLoss:
        return FingerprintLoss(num_classes, weight=self.attack_weight)

    def extract(self, model: nn.Module) -> Any:
        return extract(model, frequencies=self.frequencies, tau=self.tau)

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        rep = verify(evidence, suspect)
        return {"neg_log10_p": min(max(0.0, -rep.log10_p), 1e4), "tau_score": rep.score, "mean_cosine": rep.mean_cosine,
                "found": float(rep.found)}


METHODS = {"ours": FrequencyFingerprint}


def create_method(name: str, **kwargs: Any) -> Method:
    from freqprint.errors import FreqprintError

    if name not in METHODS:
        raise FreqprintError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name](**kwargs)
