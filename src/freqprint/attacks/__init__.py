"""Attacks a model thief would use; each is an object you call on a model to get a new model.

    from freqprint.attacks import Compose, BlockPermutation, BlockScaling, FineTune
    stolen = Compose([BlockPermutation(seed=1), BlockScaling(seed=2), FineTune(data=digits, lr=0.1)])(model)

From strings (the CLI): ``create_attack("finetune(lr=0.1,epochs=2,data=mnist-digits)")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from freqprint.attacks.base import Attack, Compose
from freqprint.attacks.compress import Prune, Quantize
from freqprint.attacks.decoder import DecoderPermutation, DecoderRotation, NormScaling, RotatedFeatures
from freqprint.attacks.equivariance import BlockPermutation, BlockScaling, ModulePermutation, ModuleScaling, conv_pairs
from freqprint.attacks.overwrite import OVERWRITE_KINDS, BackboneNoise, Overwrite, RemoveModule
from freqprint.attacks.reparam import (
    LAYOUTS,
    ChannelPadding,
    ChannelScaling,
    Collapse,
    DummyFilters,
    Factorize,
    FilterMixing,
    GridTranspose,
    InvisibleRedraw,
    NullSpaceRedraw,
    Separate,
    SpaceToDepth,
    Widen,
    relayout_state_dict,
)
from freqprint.attacks.residual import ResidualRotation
from freqprint.attacks.training_attacks import Distill, FineTune, LowRankDelta
from freqprint.errors import InvalidArgument
from freqprint.factory import Factory

__all__ = [
    "ATTACKS",
    "Attack",
    "BackboneNoise",
    "BlockPermutation",
    "BlockScaling",
    "ChannelPadding",
    "ChannelScaling",
    "Collapse",
    "Compose",
    "DecoderPermutation",
    "DecoderRotation",
    "Distill",
    "DummyFilters",
    "Factorize",
    "FilterMixing",
    "FineTune",
    "GridTranspose",
    "InvisibleRedraw",
    "LAYOUTS",
    "LowRankDelta",
    "ModulePermutation",
    "ModuleScaling",
    "NormScaling",
    "NullSpaceRedraw",
    "OVERWRITE_KINDS",
    "Overwrite",
    "Prune",
    "Quantize",
    "RemoveModule",
    "ResidualRotation",
    "RotatedFeatures",
    "Separate",
    "SpaceToDepth",
    "Widen",
    "conv_pairs",
    "create_attack",
    "relayout_state_dict",
]

ATTACKS: Factory[type[Attack]] = Factory("attack")
for _cls in (
    FineTune,
    Distill,
    BlockScaling,
    BlockPermutation,
    ModuleScaling,
    ModulePermutation,
    Overwrite,
    RemoveModule,
    Prune,
    Quantize,
    ChannelScaling,
    ChannelPadding,
    DummyFilters,
    FilterMixing,
    Collapse,
    NullSpaceRedraw,
    InvisibleRedraw,
    BackboneNoise,
    Factorize,
    Separate,
    SpaceToDepth,
    GridTranspose,
    ResidualRotation,
    DecoderRotation,
    DecoderPermutation,
    NormScaling,
    Widen,
):
    ATTACKS.add(_cls.name, _cls)


def create_attack(
    spec: str,
    data_root: str | Path | None = None,
    device: str = "cpu",
    recipe: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> Attack:
    """Build an attack from a spec string.  ``data=NAME`` loads that data set (train split) from
    ``data_root``; ``student=same`` (distill) builds the victim's ``recipe`` without its module."""
    from freqprint.data import load_dataset

    name, kwargs, kept = ATTACKS.parse(spec, skip=("data", "student"))
    fields = ATTACKS.parameters(name)
    for k, v in kept.items():
        if k == "student" and name == "distill":
            if recipe is None:
                raise InvalidArgument("distill(student=...) needs the victim's recipe")
            kwargs["student_recipe"] = _student_recipe(recipe, v)
        elif k == "data" and "data" in fields:
            kwargs[k] = load_dataset(v, "train", root=data_root, limit=limit)
        else:
            raise InvalidArgument(f"attack {name!r} takes no argument {k!r}; it takes {', '.join(sorted(fields))}")
    if "device" in fields and "device" not in kwargs:
        kwargs["device"] = device
    if name == "distill" and "student_recipe" not in kwargs and recipe is not None:
        kwargs["student_recipe"] = _student_recipe(recipe, "same")
    return ATTACKS.build(name, **kwargs)


def _student_recipe(recipe: Mapping[str, Any], student: str) -> dict[str, Any]:
    """``same``: the victim's architecture without the fingerprint module; else a model name."""
    base = {**recipe, "fingerprint": None, "pseudo_class": False}
    if student == "same":
        return base
    kwargs = {k: v for k, v in recipe.get("kwargs", {}).items() if k in ("num_classes", "in_channels")}
    return {**base, "model": student, "kwargs": kwargs}
