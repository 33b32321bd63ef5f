"""The recipe: what rebuilds a model's architecture from its file, typed and versioned.

Stored as JSON in the safetensors metadata under ``freqprint.recipe``::

    {"version": 1, "model": "smallcnn", "kwargs": {...}, "input_shape": [C, H, W],
     "num_classes": n, "pseudo_class": bool,
     "fingerprint": FingerprintConfig without its secret | null,
     "init": {"scheme": "secret", "index": i} | {"scheme": "seed", "seed": s} | null,
     ...}                                   # other fields (e.g. MetaV's "task") kept as they are

``init`` says how the backbone's θ₀ was drawn (the lineage channel reads it): from the owner's
secret (:func:`freqprint.fingerprint.seeding.init_seed`) or from a plain seed.  Files written
before the version field are version 0 and read as version 1 (the same fields).  A recipe from a
newer freqprint is refused with a clear message rather than misread.

A :class:`Recipe` is also a read-only mapping of the same fields (``recipe["model"]``), so code
that reads recipes as dicts keeps working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from freqprint.errors import InvalidArgument

__all__ = ["RECIPE_VERSION", "Recipe"]

RECIPE_VERSION = 1
_INIT_SCHEMES = {"secret": "index", "seed": "seed"}


@dataclass(frozen=True, eq=True)
class Recipe(Mapping[str, Any]):
    """A model's architecture as freqprint rebuilds it (see the module docstring for the JSON)."""

    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    num_classes: int | None = None
    pseudo_class: bool = False
    fingerprint: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = RECIPE_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidArgument(f"recipe: 'model' must be a model name, got {self.model!r}")
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise InvalidArgument("recipe: 'kwargs' must be a mapping of argument names")
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        try:
            shape = tuple(int(s) for s in self.input_shape)
        except (TypeError, ValueError):
            raise InvalidArgument(f"recipe: 'input_shape' must be a list of sizes, got {self.input_shape!r}") from None
        if any(s < 1 for s in shape):
            raise InvalidArgument(f"recipe: 'input_shape' sizes must be >= 1, got {list(shape)}")
        object.__setattr__(self, "input_shape", shape)
        if self.num_classes is not None and (
            isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1
        ):
            raise InvalidArgument(f"recipe: 'num_classes' must be a positive integer, got {self.num_classes!r}")
        if not isinstance(self.pseudo_class, bool):
            raise InvalidArgument(f"recipe: 'pseudo_class' must be true or false, got {self.pseudo_class!r}")
        if self.fingerprint is not None and not isinstance(self.fingerprint, Mapping):
            raise InvalidArgument("recipe: 'fingerprint' must be a fingerprint config or null")
        if self.init is not None:
            scheme = self.init.get("scheme") if isinstance(self.init, Mapping) else None
            if scheme not in _INIT_SCHEMES or not isinstance(self.init.get(_INIT_SCHEMES[scheme]), int):
                raise InvalidArgument(
                    f"recipe: 'init' must be {{'scheme': 'secret', 'index': int}} or {{'scheme': 'seed', 'seed': int}}, got {self.init!r}"
                )
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise InvalidArgument(f"recipe: 'version' must be a non-negative integer, got {self.version!r}")
        if self.version > RECIPE_VERSION:
            raise InvalidArgument(
                f"recipe version {self.version} was written by a newer freqprint (this one reads up to {RECIPE_VERSION}); upgrade freqprint"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recipe:
        """A recipe from its JSON form (unknown fields kept in ``extra``; no version: version 0)."""
        if isinstance(d, Recipe):
            return d
        if not isinstance(d, Mapping):
            raise InvalidArgument(f"a recipe must be a JSON object, got {type(d).__name__}")
        if "model" not in d:
            raise InvalidArgument("incomplete model recipe: missing 'model'")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in known and not (k == "version" and v is None)}
        kwargs.setdefault("version", 0 if "version" not in d else RECIPE_VERSION)
        return cls(**kwargs, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``num_classes`` and ``init`` only when set)."""
        d: dict[str, Any] = {
            "model": self.model,
            "kwargs": dict(self.kwargs),
            "input_shape": list(self.input_shape),
            "pseudo_class": self.pseudo_class,
            "fingerprint": None if self.fingerprint is None else dict(self.fingerprint),
        }
        if self.num_classes is not None:
            d["num_classes"] = self.num_classes
        if self.init is not None:
            d["init"] = dict(self.init)
        d.update(self.extra)
        d["version"] = RECIPE_VERSION
        return d

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (``recipe.replace(fingerprint=None, init=None)``)."""
        return dataclasses.replace(self, **changes)

    # the read-only mapping view: recipe["model"], recipe.get("init"), {**recipe}
    def __getitem__(self, name: str) -> Any:
        return self.to_dict()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
