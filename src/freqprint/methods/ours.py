"""The tracing benchmark's own methods: the frequency fingerprint (``ours``), the combined
verdict (``trace``) and plain training (``plain``).  The protocol and the registry live in
:mod:`freqprint.methods.base` (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from freqprint.errors import FreqprintError
from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
from freqprint.methods.base import MethodContext, MethodDefaults
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify

__all__ = [
    "FrequencyFingerprint",
    "NoFingerprint",
    "TraceVerdict",
]


@dataclass
class FrequencyFingerprint(MethodDefaults):
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
    embeds = True

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {"neg_log10_p": 6.0, "tau_score": 0.5, "mean_cosine": 0.5}

    def prepare(self, model: nn.Module, ctx: MethodContext) -> nn.Module:
        attach(
            model, FingerprintConfig(target=self.target, secret=ctx.secret, filters=self.filters, radius=self.radius), ctx.example
        )
        add_pseudo_class(model)
        return model

    def recipe_patch(self) -> dict[str, Any]:
        return {
            "pseudo_class": True,
            "fingerprint": FingerprintConfig(target=self.target, filters=self.filters, radius=self.radius).to_dict(),
        }

    def criterion(self, ctx: MethodContext) -> FingerprintLoss:
        return FingerprintLoss(ctx.num_classes, weight=self.attack_weight)

    def extract(self, model: nn.Module, ctx: MethodContext | None = None) -> Any:
        # anchored to W₀ when the secret is known (FingerprintKey.decision_kernels: the exact null)
        return extract(model, frequencies=self.frequencies, tau=self.tau, secret=ctx.secret if ctx is not None else None)

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        rep = verify(evidence, suspect)
        return {
            "neg_log10_p": min(max(0.0, -rep.log10_p), 1e4),
            "tau_score": rep.score if rep.score is not None else math.nan,  # always described here
            "mean_cosine": rep.mean_cosine if rep.mean_cosine is not None else math.nan,
            "found": float(rep.found),
        }


@dataclass
class TraceVerdict(MethodDefaults):
    """The combined verdict of :func:`freqprint.verification.provenance.trace`: the frequency fingerprint (when the
    source carries a module) and backbone lineage (from ``ctx.init``), Bonferroni-combined.

    Passive: it scores the models of the embedding method it runs beside (``--method ours,trace``),
    so it sees the very same pairs.  Scores: ``neg_log10_p`` (combined; decides at 6),
    ``lineage_neg_log10_p`` and ``fingerprint_neg_log10_p`` (each channel alone)."""

    name: str = "trace"
    embeds = False

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {"neg_log10_p": 6.0, "lineage_neg_log10_p": 6.0, "fingerprint_neg_log10_p": 6.0}

    def extract(self, model: nn.Module, ctx: MethodContext) -> Any:
        from freqprint.fingerprint import find_fingerprint_modules

        key = extract(model, secret=ctx.secret) if find_fingerprint_modules(model) else None
        if key is None and ctx.init is None:
            raise FreqprintError("trace needs a fingerprinted source or a known initialisation")
        return {"key": key, "init": ctx.init}

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        from freqprint.verification.provenance import trace

        rep = trace(suspect, key=evidence["key"], owner_init=evidence["init"])

        def neg(x: float) -> float:
            return min(max(0.0, -x), 1e4)

        return {
            "neg_log10_p": neg(rep.log10_p),
            "lineage_neg_log10_p": neg(rep.channel("lineage").log10_p),
            "fingerprint_neg_log10_p": neg(rep.channel("fingerprint").log10_p),
            "found": float(rep.found),
        }


@dataclass
class NoFingerprint(MethodDefaults):
    """Plain training, no fingerprint: the pool that passive methods score when no embedding
    method is run, and the "without fingerprint" row of the accuracy-cost table."""

    name: str = "plain"
    embeds = True

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {}

    def extract(self, model: nn.Module, ctx: MethodContext) -> None:
        return None

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        return {}
