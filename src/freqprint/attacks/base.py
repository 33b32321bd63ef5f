"""The attack protocol: an attack is an object you call on a model to get a **new** model back
(the input is never modified), as in torchattacks.  ``Compose([...])`` chains attacks.

Every attack also says how it changes a model's *recipe* (the architecture description stored
beside the weights), so an attacked model can be saved and rebuilt like any other.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

__all__ = ["Attack", "Compose"]


class Attack:
    """Base class.  Subclasses implement :meth:`apply` on a private copy of the model."""

    name: str = "attack"

    def __call__(self, model: nn.Module) -> nn.Module:
        victim = copy.deepcopy(model)
        victim.eval()
        with torch.no_grad() if self.no_grad else contextlib.nullcontext():
            out = self.apply(victim)
        return out.eval()

    no_grad: bool = True

    def apply(self, model: nn.Module) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def update_recipe(self, recipe: Mapping[str, Any]) -> Mapping[str, Any]:
        """The recipe of the attacked model (unchanged unless the attack changes the architecture)."""
        return recipe

    def config(self) -> dict[str, Any]:
        """JSON-able description (dataclass fields without data sets or models)."""
        if hasattr(self, "__dataclass_fields__"):
            out = {}
            for f in fields(self):  # type: ignore[arg-type]
                v = getattr(self, f.name)
                out[f.name] = v if isinstance(v, (int, float, str, bool, type(None), list, tuple)) else type(v).__name__
            return {"attack": self.name, **out}
        return {"attack": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "attack")
        return f"{type(self).__name__}({args})"


@dataclass(repr=False)
class Compose(Attack):
    """Apply attacks in order: ``Compose([BlockPermutation(), BlockScaling(), FineTune(...)])``."""

    attacks: list[Attack] = field(default_factory=list)
    name = "compose"
    no_grad = False

    def apply(self, model: nn.Module) -> nn.Module:
        for a in self.attacks:
            model = a(model)
        return model

    def update_recipe(self, recipe: Mapping[str, Any]) -> Mapping[str, Any]:
        for a in self.attacks:
            recipe = a.update_recipe(recipe)
        return recipe

    def config(self) -> dict[str, Any]:
        return {"attack": self.name, "attacks": [a.config() for a in self.attacks]}
