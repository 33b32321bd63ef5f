"""The ``Method`` protocol and the method registry: what the tracing benchmark calls, and
nothing else.  A method (ours, a baseline, MetaV) imports this module; this module imports no
method (the registry holds ``"module:Class"`` strings), so there is no import cycle.

A method says

* ``prepare(model, ctx)``: change the architecture before training (attach a module),
  and ``recipe_patch()``: the same change as recipe fields, so cached models can be rebuilt;
* ``criterion(ctx)``: the training loss (``None``: plain cross-entropy) — ``prepare`` +
  training with ``criterion`` is the method's *embed* step;
* ``extract(model, ctx)``: the owner's evidence (a key, a trigger set, reference features,
  a trained MetaV ...);
* ``score(evidence, suspect)``: a dict of statistics, each "higher = more likely derived"; the
  benchmark evaluates every one of them, with the thresholds in ``fixed_thresholds`` fixed in
  advance (never fitted to the evaluated pairs).

``ctx`` (:class:`MethodContext`) is what the owner knows: the secret, the number of classes and
the training data (trigger sets and probe images are drawn from it, keyed by the secret).
``embeds`` is False for *passive* methods (ICS, CKA, MetaV) that fingerprint an unmodified model;
the tracing benchmark scores those on the models of an embedding method, so they see the very
same pairs (as in the paper, which scores every method on the same ResNet-18s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument

if TYPE_CHECKING:
    from freqprint.data import ArrayDataset
    from freqprint.lineage import OwnerInit

__all__ = [
    "METHODS",
    "Method",
    "MethodContext",
    "MethodDefaults",
    "available_methods",
    "create_method",
    "create_methods",
    "register_method",
]


@dataclass
class MethodContext:
    """What the owner knows when embedding and extracting: secret, classes, training data, and
    how the backbone was initialised (for the lineage channel; ``None`` when unknown)."""

    secret: str
    num_classes: int
    data: ArrayDataset
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

    @property
    def fixed_thresholds(self) -> dict[str, float]: ...

    def config(self) -> dict[str, Any]: ...

    def prepare(self, model: nn.Module, ctx: MethodContext) -> nn.Module: ...

    def recipe_patch(self) -> dict[str, Any]: ...

    def criterion(self, ctx: MethodContext) -> Any: ...

    def extract(self, model: nn.Module, ctx: MethodContext) -> Any: ...

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]: ...


# name -> "module:Class": resolved only when asked for, so this module imports no method and
# every method (ours, the baselines, MetaV) imports only this module: no import cycle
METHODS: dict[str, str] = {
    "ours": "freqprint.evaluation.methods:FrequencyFingerprint",
    "trace": "freqprint.evaluation.methods:TraceVerdict",
    "rs": "freqprint.baselines.rs:RandomizedSmoothingWatermark",
    "mw": "freqprint.baselines.mw:MarginWatermark",
    "ics": "freqprint.baselines.representation:InvariantTermsCosine",
    "cka": "freqprint.baselines.representation:CKAFingerprint",
    "metav": "freqprint.metav.method:MetaVMethod",
}


def register_method(name: str, target: str) -> None:
    """Add a method to :func:`create_methods` by ``"module:Class"`` (imported when first used)."""
    METHODS[name] = target


def available_methods() -> dict[str, type]:
    """Name -> class of every registered method (imported now)."""
    import importlib

    out = {}
    for name, target in METHODS.items():
        mod, _, cls = target.partition(":")
        out[name] = getattr(importlib.import_module(mod), cls)
    return out


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
            raise InvalidArgument(f"unknown method {name!r}; known: {', '.join(known)}")
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
        raise InvalidArgument(f"unknown method {name!r}; known: {', '.join(known)}")
    try:
        return known[name](**kwargs)
    except TypeError as e:
        raise FreqprintError(f"method {name!r}: {e}") from None
