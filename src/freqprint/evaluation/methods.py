"""The ``Method`` protocol: how a fingerprinting (or watermarking) scheme plugs into the tracing
benchmark.  The benchmark owns training, attacks and caching; a method says

* ``prepare(model, ctx)``: change the architecture before training (attach a module),
  and ``recipe_patch()``: the same change as recipe fields, so cached models can be rebuilt;
* ``criterion(ctx)``: the training loss (``None``: plain cross-entropy) — ``prepare`` +
  training with ``criterion`` is the method's *embed* step;
* ``extract(model, ctx)``: the owner's evidence (a key, a trigger set, reference features ...);
* ``score(evidence, suspect)``: a dict of statistics, each "higher = more likely derived"; the
  benchmark evaluates every one of them, with the thresholds in ``fixed_thresholds`` fixed in
  advance (never fitted to the evaluated pairs).

``ctx`` (:class:`MethodContext`) is what the owner knows: the secret, the number of classes and
the training data (trigger sets and probe images are drawn from it, keyed by the secret).
``embeds`` is False for *passive* methods (ICS, CKA) that fingerprint an unmodified model; the
tracing benchmark scores those on the models of an embedding method, so they see the very same
pairs (as in the paper, which scores every method on the same ResNet-18s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

from freqprint.errors import FreqprintError
from freqprint.key import extract
from freqprint.lineage import OwnerInit
from freqprint.loss import FingerprintLoss, add_pseudo_class
from freqprint.module import FingerprintConfig, attach
from freqprint.verify import verify

if TYPE_CHECKING:
    from freqprint.data import ArrayDataset

__all__ = [
    "FrequencyFingerprint", "Method", "MethodContext", "MethodDefaults", "NoFingerprint", "TraceVerdict", "available_methods",
    "create_method", "create_methods",
]


@dataclass
class MethodContext:
    """What the owner knows when embedding and extracting: secret, classes, training data, and
    how the backbone was initialised (for the lineage channel; ``None`` when unknown)."""

    secret: str
    num_classes: int
    data: "ArrayDataset"
    init: OwnerInit | None = None

    @property
    def example(self) -> torch.Tensor:
        return self.data.images[:2]


class MethodDefaults:
    """Defaults for a method that leaves the architecture alone and trains with plain CE.

    Subclass it (next to ``@dataclass``) and override what differs; ``config`` is the
    dataclass's fields, which is also what the tracing cache hashes.
    """

    def config(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def prepare(self, model: nn.Module, ctx: MethodContext) -> nn.Module:
        return model

    def recipe_patch(self) -> dict[str, Any]:
        return {}

    def criterion(self, ctx: MethodContext) -> Any:
        return None


@runtime_checkable
class Method(Protocol):
    name: str
    embeds: bool
    fixed_thresholds: dict[str, float]

    def config(self) -> dict[str, Any]: ...

    def prepare(self, model: nn.Module, ctx: MethodContext) -> nn.Module: ...

    def recipe_patch(self) -> dict[str, Any]: ...

    def criterion(self, ctx: MethodContext) -> Any: ...

    def extract(self, model: nn.Module, ctx: MethodContext) -> Any: ...

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]: ...


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
        attach(model, FingerprintConfig(target=self.target, secret=ctx.secret, filters=self.filters, radius=self.radius),
               ctx.example)
        add_pseudo_class(model)
        return model

    def recipe_patch(self) -> dict[str, Any]:
        return {"pseudo_class": True,
                "fingerprint": FingerprintConfig(target=self.target, filters=self.filters, radius=self.radius).to_dict()}

    def criterion(self, ctx: MethodContext) -> FingerprintLoss:
        return FingerprintLoss(ctx.num_classes, weight=self.attack_weight)

    def extract(self, model: nn.Module, ctx: MethodContext | None = None) -> Any:
        # anchored to W₀ when the secret is known (FingerprintKey.decision_kernels: the exact null)
        return extract(model, frequencies=self.frequencies, tau=self.tau, secret=ctx.secret if ctx is not None else None)

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        rep = verify(evidence, suspect)
        return {"neg_log10_p": min(max(0.0, -rep.log10_p), 1e4), "tau_score": rep.score, "mean_cosine": rep.mean_cosine,
                "found": float(rep.found)}


@dataclass
class TraceVerdict(MethodDefaults):
    """The combined verdict of :func:`freqprint.trace.trace`: the frequency fingerprint (when the
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
        from freqprint.module import find_fingerprint_modules

        key = extract(model, secret=ctx.secret) if find_fingerprint_modules(model) else None
        if key is None and ctx.init is None:
            raise FreqprintError("trace needs a fingerprinted source or a known initialisation")
        return {"key": key, "init": ctx.init}

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        from freqprint.trace import trace

        rep = trace(suspect, key=evidence["key"], owner_init=evidence["init"])

        def neg(x: float) -> float:
            return min(max(0.0, -x), 1e4)

        return {"neg_log10_p": neg(rep.log10_p), "lineage_neg_log10_p": neg(rep.channel("lineage").log10_p),
                "fingerprint_neg_log10_p": neg(rep.channel("fingerprint").log10_p), "found": float(rep.found)}


def available_methods() -> dict[str, type]:
    """Name -> class of every method: ours, the combined verdict and the baselines (imported
    lazily: they import us)."""
    from freqprint.baselines import BASELINES

    return {"ours": FrequencyFingerprint, "trace": TraceVerdict, **BASELINES}


def create_methods(spec: str) -> list[Method]:
    """``"all"`` or a comma list like ``"ours,rs(sigma=0.02),cka"`` -> methods, in that order."""
    import dataclasses
    import typing

    from freqprint.attacks import coerce_arg, parse_attack

    if spec.strip() == "all":
        return [create_method(n) for n in available_methods()]
    parts, depth, cur = [], 0, ""
    for ch in spec:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    known, out = available_methods(), []
    for part in filter(str.strip, parts):
        name, raw = parse_attack(part)
        if name not in known:
            raise FreqprintError(f"unknown method {name!r}; known: {', '.join(known)}")
        hints = typing.get_type_hints(known[name])
        knobs = {f.name for f in dataclasses.fields(known[name])} - {"name"}
        bad = [k for k in raw if k not in knobs]
        if bad:
            raise FreqprintError(f"method {name!r} has no knob {bad[0]!r}; it takes {', '.join(sorted(knobs))}")
        out.append(create_method(name, **{k: coerce_arg(v, hints.get(k, str), k, name) for k, v in raw.items()}))
    return out


def create_method(name: str, **kwargs: Any) -> Method:
    """``create_method("rs", sigma=0.05)``; ``FreqprintError`` for an unknown name or knob."""
    known = available_methods()
    if name not in known:
        raise FreqprintError(f"unknown method {name!r}; known: {', '.join(known)}")
    try:
        return known[name](**kwargs)
    except TypeError as e:
        raise FreqprintError(f"method {name!r}: {e}") from None


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
