"""Attacks a model thief would use; each is an object you call on a model to get a new model.

    from freqprint.attacks import Compose, BlockPermutation, BlockScaling, FineTune
    stolen = Compose([BlockPermutation(seed=1), BlockScaling(seed=2), FineTune(data=digits, lr=0.1)])(model)

From strings (the CLI): ``create_attack("finetune(lr=0.1,epochs=2,data=mnist-digits)")``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

from freqprint.attacks.base import Attack, Compose
from freqprint.attacks.compress import Prune, Quantize
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
    relayout_state_dict,
)
from freqprint.attacks.residual import ResidualRotation
from freqprint.attacks.training_attacks import Distill, FineTune, LowRankDelta
from freqprint.errors import FreqprintError, InvalidArgument

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
    "NullSpaceRedraw",
    "OVERWRITE_KINDS",
    "Overwrite",
    "Prune",
    "Quantize",
    "RemoveModule",
    "ResidualRotation",
    "coerce_arg",
    "conv_pairs",
    "create_attack",
    "parse_attack",
    "relayout_state_dict",
]

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
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
        GridTranspose,
        ResidualRotation,
    )
}

_SPEC = re.compile(r"^\s*([a-z0-9-]+)\s*(?:\((.*)\))?\s*$")


def parse_attack(spec: str) -> tuple[str, dict[str, str]]:
    """``"name(k=v,k2=v2)"`` → ``("name", {"k": "v", ...})``."""
    m = _SPEC.match(spec)
    if not m:
        raise FreqprintError(f"cannot parse attack {spec!r}; write name or name(key=value,...)")
    args: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
        if "=" not in part:
            raise FreqprintError(f"attack argument {part!r} in {spec!r} is not key=value")
        k, v = part.split("=", 1)
        args[k.strip().replace("-", "_")] = v.strip()
    return m.group(1), args


def coerce_arg(value: str, annotation: Any, key: str, name: str) -> Any:
    typ = annotation if not isinstance(annotation, str) else eval(annotation, vars(typing))
    if typing.get_origin(typ) is typing.Union:
        typ = next(t for t in typing.get_args(typ) if t is not type(None))
    try:
        if typ is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if typ in (int, float, str):
            return typ(value)
    except ValueError:
        raise FreqprintError(f"{name}: {key}={value!r} is not a valid {typ.__name__}") from None
    return value


def create_attack(
    spec: str, data_root: str | Path | None = None, device: str = "cpu", recipe: dict | None = None, limit: int | None = None
) -> Attack:
    """Build an attack from a spec string.  ``data=NAME`` loads that data set (train split) from
    ``data_root``; ``student=same`` (distill) builds the victim's ``recipe`` without its module."""
    from freqprint.data import load_dataset

    name, raw = parse_attack(spec)
    if name not in ATTACKS:
        raise InvalidArgument(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
    cls = ATTACKS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "student" and name == "distill":
            if recipe is None:
                raise FreqprintError("distill(student=...) needs the victim's recipe")
            kwargs["student_recipe"] = _student_recipe(recipe, v)
            continue
        if k not in fields:
            raise FreqprintError(
                f"{name} has no argument {k!r}; it takes {', '.join(f for f in fields if f != 'student_recipe')}"
            )
        if k == "data":
            kwargs[k] = load_dataset(v, "train", root=data_root, limit=limit)
        else:
            kwargs[k] = coerce_arg(v, hints.get(k, str), k, name)
    if "device" in fields and "device" not in kwargs:
        kwargs["device"] = device
    if name == "distill" and "student_recipe" not in kwargs and recipe is not None:
        kwargs["student_recipe"] = _student_recipe(recipe, "same")
    return cls(**kwargs)


def _student_recipe(recipe: dict, student: str) -> dict:
    """``same``: the victim's architecture without the fingerprint module; else a model name."""
    base = {**recipe, "fingerprint": None, "pseudo_class": False}
    if student == "same":
        return base
    kwargs = {k: v for k, v in recipe.get("kwargs", {}).items() if k in ("num_classes", "in_channels")}
    return {**base, "model": student, "kwargs": kwargs}
