"""What the benchmarks share: the one timing helper, and their profiles read from JSON data.

A figure of speed is a ratio measured in one run (the project's rule): :func:`timings` gives the
raw times of repeated calls after a warm-up, :func:`median_seconds` their median, and each
benchmark reports ratios of medians taken in the same process.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["load_profiles", "median_seconds", "timings"]

T = TypeVar("T")


def timings(fn: Callable[[], Any], repeats: int, sync: Callable[[], Any] | None = None) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after one warm-up call; ``sync`` (e.g.
    ``torch.cuda.synchronize``) runs before and after each timed call."""
    fn()  # warm-up
    return _repeat(fn, repeats, sync)


def median_seconds(fn: Callable[[], Any], repeats: int = 5, once_above: float | None = None) -> float:
    """Median of ``repeats`` calls after a warm-up; with ``once_above``, the warm-up's own time when
    it took longer than that many seconds (a slow call needs no repeats, and they would cost
    minutes)."""
    t0 = time.perf_counter()
    fn()  # warm-up
    warm = time.perf_counter() - t0
    if once_above is not None and warm > once_above:
        return warm
    return statistics.median(_repeat(fn, repeats))


def _repeat(fn: Callable[[], Any], repeats: int, sync: Callable[[], Any] | None = None) -> list[float]:
    out = []
    for _ in range(repeats):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out.append(time.perf_counter() - t0)
    return out


def load_profiles(kind: str, cls: type[T], name_field: str | None = None) -> dict[str, T]:
    """The named profiles of a benchmark, from ``profiles/<kind>.json`` (data, not code): each is
    a set of field overrides of ``cls``'s defaults (lists become tuples where the field is one;
    ``about`` describes it); ``name_field``, if given, receives the profile's name."""
    raw = json.loads((Path(__file__).parent / "profiles" / f"{kind}.json").read_text())
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    out: dict[str, T] = {}
    for name, values in raw.items():
        kwargs = {
            k: tuple(v) if isinstance(v, list) and fields.get(k, "").startswith("tuple") else v
            for k, v in values.items()
            if k != "about"
        }
        unknown = set(kwargs) - set(fields)
        if unknown:
            raise ValueError(f"profiles/{kind}.json: {name}: unknown fields {sorted(unknown)}")
        if name_field is not None:
            kwargs[name_field] = name
        out[name] = cls(**kwargs)
    return out
