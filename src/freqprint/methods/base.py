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

from freqprint.errors import InvalidArgument
from freqprint.factory import Factory, split_specs

if TYPE_CHECKING:
    from freqprint.data import ArrayDataset
    from freqprint.verification.backbone import OwnerInit

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
METHODS: Factory[type] = Factory("method")
for _name, _target in (
    ("ours", "freqprint.methods.ours:FrequencyFingerprint"),
    ("trace", "freqprint.methods.ours:TraceVerdict"),
    ("rs", "freqprint.methods.rs:RandomizedSmoothingWatermark"),
    ("mw", "freqprint.methods.mw:MarginWatermark"),
    ("ics", "freqprint.methods.representation:InvariantTermsCosine"),
    ("cka", "freqprint.methods.representation:CKAFingerprint"),
    ("metav", "freqprint.methods.metav:MetaVMethod"),
):
    METHODS.add(_name, _target)


def register_method(name: str, target: str | type, replace: bool = False) -> None:
    """Add a method to :func:`create_methods`: a class, or ``"module:Class"`` (imported when first used)."""
    METHODS.add(name, target, replace=replace)


def available_methods() -> dict[str, type]:
    """Name -> class of every registered method (imported now)."""
    return dict(METHODS.items())


def create_methods(spec: str) -> list[Method]:
    """``"all"`` or a comma list like ``"ours,rs(sigma=0.02),cka"`` -> methods, in that order."""
    if spec.strip() == "all":
        return [create_method(n) for n in METHODS]
    out = []
    for part in split_specs(spec):
        name, kwargs, _ = METHODS.parse(part)
        if "name" in kwargs:  # the registry's key is the method's name
            raise InvalidArgument(f"method {name!r}: its name is not a knob")
        out.append(create_method(name, **kwargs))
    return out


def create_method(name: str, **kwargs: Any) -> Method:
    """``create_method("rs", sigma=0.05)``; ``InvalidArgument`` for an unknown name or knob."""
    return METHODS.build(name, **kwargs)
