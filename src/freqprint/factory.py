"""One registry idiom for everything freqprint builds by name: models, attacks, methods, data sets
and executors (timm's ``_registry`` + ``create_model``, in one small class).

    MODELS: Factory[Callable[..., nn.Module]] = Factory("model")
    MODELS.add("smallcnn", SmallCNN, target="conv2")        # or @MODELS.register("smallcnn", target="conv2")
    MODELS.build("smallcnn", num_classes=10)                # keyword arguments, passed as they are
    MODELS.build_spec("smallcnn(width=8, num-classes=10)")  # a spec string, values coerced

* **Names are unique.**  Registering a taken name is a programming error (:class:`ValueError`)
  unless ``replace=True``.
* **Unknown names** raise :class:`~freqprint.errors.UnknownName` (an ``InvalidArgument`` and a
  ``KeyError``) listing the known ones.
* **One spec grammar**: ``name`` or ``name(key=value, ...)``; ``-`` in a key reads as ``_``; each
  value is coerced to the type the builder annotates for that parameter (``bool``, ``int``,
  ``float``, ``str`` and their optionals; anything else stays a string for the builder to parse).
  A key the builder does not take is refused, naming the ones it does.
* **Lazy entries**: ``"module:attribute"`` is imported on first use, so a registry can list
  things whose modules import the registry (the tracing methods).
* **Per-entry facts** (``info``): a model's fingerprint target and init law, a contract test's
  example arguments.

A factory is a read-only ``Mapping`` from name to builder: ``name in F``, ``F[name]``,
``sorted(F)``, ``F.items()``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from freqprint.errors import InvalidArgument, UnknownName

__all__ = ["Entry", "Factory", "coerce", "parse_spec", "split_specs"]

T = TypeVar("T")

_SPEC = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\((.*)\))?\s*$", re.S)


def parse_spec(spec: str, kind: str = "spec") -> tuple[str, dict[str, str]]:
    """``"name(k=v, k2=v2)"`` → ``("name", {"k": "v", "k2": "v2"})``; values stay strings."""
    m = _SPEC.match(spec)
    if not m:
        raise InvalidArgument(f"cannot parse {kind} {spec!r}; write name or name(key=value,...)")
    args: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
        if "=" not in part:
            raise InvalidArgument(f"{kind} argument {part!r} in {spec!r} is not key=value")
        k, v = part.split("=", 1)
        key = k.strip().replace("-", "_")
        if key in args:
            raise InvalidArgument(f"{kind} argument {key!r} is given twice in {spec!r}")
        args[key] = v.strip()
    return m.group(1), args


def split_specs(text: str) -> list[str]:
    """A comma list of specs, commas inside parentheses kept: ``"a,b(x=1,y=2)"`` → ``["a", "b(x=1,y=2)"]``."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def coerce(value: str, annotation: Any, key: str, where: str) -> Any:
    """``value`` as the annotated type (``Optional[X]`` / ``X | None`` as X; ``none`` as None)."""
    typ = annotation
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [t for t in typing.get_args(typ) if t is not type(None)]
        if len(args) != len(typing.get_args(typ)) and value.lower() == "none":
            return None
        typ = args[0] if len(args) == 1 else str
    try:
        if typ is bool:
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        if typ in (int, float, str):
            return typ(value)
    except ValueError:
        raise InvalidArgument(f"{where}: {key}={value!r} is not a valid {typ.__name__}") from None
    return value


@dataclass
class Entry(Generic[T]):
    """One registered name: what builds it (or ``"module:attribute"`` until first use) and its facts."""

    name: str
    builder: T | str
    info: dict[str, Any] = field(default_factory=dict)

    def load(self) -> T:
        if isinstance(self.builder, str):
            mod, _, attr = self.builder.partition(":")
            self.builder = getattr(importlib.import_module(mod), attr)
        return typing.cast(T, self.builder)


class Factory(Mapping[str, T]):
    """Builders by name (module docstring)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    # -- registering --------------------------------------------------------------------------
    def add(self, name: str, builder: T | str, /, replace: bool = False, **info: Any) -> None:
        """Register ``builder`` (or ``"module:attribute"``, imported on first use)."""
        if name in self._entries and not replace:
            raise ValueError(f"a {self.kind} named {name!r} is already registered (replace=True to override it)")
        self._entries[name] = Entry(name, builder, info)

    def register(self, name: str, /, replace: bool = False, **info: Any) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(obj: T) -> T:
            self.add(name, obj, replace=replace, **info)
            return obj

        return deco

    # -- looking up ---------------------------------------------------------------------------
    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}") from None

    def __getitem__(self, name: str) -> T:
        return self.entry(name).load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def info(self, name: str) -> dict[str, Any]:
        return self.entry(name).info

    def parameters(self, name: str) -> dict[str, Any]:
        """``parameter -> annotated type`` of a builder (a dataclass's init fields, or a function's
        or class's signature)."""
        obj: Any = self[name]
        try:
            hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) else obj)
        except (NameError, TypeError):
            hints = {}
        if dataclasses.is_dataclass(obj):
            return {f.name: hints.get(f.name, str) for f in dataclasses.fields(obj) if f.init}
        sig = inspect.signature(obj)
        return {
            p.name: hints.get(p.name, str)
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        }

    # -- building -----------------------------------------------------------------------------
    def build(self, name: str, /, **kwargs: Any) -> Any:
        """``builder(**kwargs)``; arguments it does not take are refused before it runs."""
        obj: Any = self[name]
        try:
            inspect.signature(obj).bind(**kwargs)
        except TypeError as e:
            raise InvalidArgument(f"bad arguments for {self.kind} {name!r}: {e}") from None
        except ValueError:  # no signature to check (a builtin): let the call say
            pass
        return obj(**kwargs)

    def parse(self, spec: str, skip: tuple[str, ...] = ()) -> tuple[str, dict[str, Any], dict[str, str]]:
        """``(name, coerced arguments, raw arguments in skip)`` of a spec string."""
        name, raw = parse_spec(spec, self.kind)
        self.entry(name)  # an unknown name: one error listing the known ones
        params = self.parameters(name)
        kwargs: dict[str, Any] = {}
        kept: dict[str, str] = {}
        for k, v in raw.items():
            if k in skip:
                kept[k] = v
            elif k not in params:
                raise InvalidArgument(
                    f"{self.kind} {name!r} takes no argument {k!r}; it takes {', '.join(sorted(params)) or 'none'}"
                )
            else:
                kwargs[k] = coerce(v, params[k], k, name)
        return name, kwargs, kept

    def build_spec(self, spec: str, **extra: Any) -> Any:
        """Build from ``"name(key=value, ...)"`` (values coerced); ``extra`` adds keyword arguments."""
        name, kwargs, _ = self.parse(spec)
        return self.build(name, **kwargs, **extra)
