"""Trained models on disk, keyed by the SHA-256 of their recipe: a benchmark's pools and MetaV's
ensembles share one cache format (``{kind}-{hash}.safetensors`` beside ``{kind}-{hash}.json``).

A hit loads the safetensors file (no unpickling); a miss calls ``build`` and stores what it
returns.  :meth:`ModelCache.prefill` trains the misses on an executor (:mod:`freqprint.executor`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from freqprint.errors import FreqprintError
from freqprint.io.checkpoint import load_model, save_model

__all__ = ["ModelCache", "recipe_hash"]


def recipe_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:20]


class ModelCache:
    """Trained models keyed by the hash of their recipe; a miss calls ``build`` and stores it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self.prefilled = 0  # trained by :meth:`prefill` (on an executor), then loaded as hits

    def get(self, spec: dict[str, Any], build: Callable[[], tuple[nn.Module, Mapping[str, Any]]]) -> tuple[nn.Module, str]:
        model, _, h = self.get_with_recipe(spec, build)
        return model, h

    def path(self, spec: dict[str, Any], kind: str | None = None) -> Path:
        return self.root / f"{kind or spec['kind']}-{recipe_hash(spec)}.safetensors"

    def get_with_recipe(
        self, spec: dict[str, Any], build: Callable[[], tuple[nn.Module, Mapping[str, Any]]], kind: str | None = None
    ) -> tuple[nn.Module, Mapping[str, Any], str]:
        """``(model, recipe, hash)``; files are named ``{kind}-{hash}`` (``kind``: ``spec["kind"]``)."""
        h = recipe_hash(spec)
        kind = kind or spec["kind"]
        path = self.root / f"{kind}-{h}.safetensors"
        if path.exists():
            self.hits += 1
            model, stored = load_model(path)
            return model, stored, h
        self.misses += 1
        model, recipe = build()
        save_model(model, path, recipe)
        (self.root / f"{kind}-{h}.json").write_text(json.dumps(spec, indent=1, sort_keys=True, default=str))
        return model, recipe, h

    def prefill(
        self,
        jobs: Sequence[tuple[dict[str, Any], str | None, tuple[Any, ...]]],
        fn: Callable[..., tuple[nn.Module, Mapping[str, Any]]],
        executor: Any,
        shared: Any = None,
        log: Callable[[str], None] = print,
    ) -> int:
        """Train every job whose model is not cached yet on ``executor`` (:mod:`freqprint.executor`):
        a job is ``(spec, kind, args)`` and trains as ``fn(shared, *args) -> (model, recipe)`` (a
        top-level function: it may run in another process or on another machine).  Each model comes
        back as safetensors bytes and is written here, so the next :meth:`get_with_recipe` of that
        spec is a hit.  A job that fails with a :class:`FreqprintError` is left uncached (the
        sequential pass meets the same error where it handles it).  Returns how many were trained."""
        from freqprint.executor import run_jobs

        todo: dict[Path, tuple[dict[str, Any], str | None, tuple[Any, ...]]] = {}
        for spec, kind, args in jobs:
            p = self.path(spec, kind)
            if not p.exists() and p not in todo:
                todo[p] = (spec, kind, args)
        if not todo:
            return 0
        items = list(todo.items())
        self.root.mkdir(parents=True, exist_ok=True)

        def store(i: int, result: bytes | str) -> None:
            path, (spec, _, _) = items[i]
            if isinstance(result, str):
                log(f"  {path.name}: {result}")
                return
            tmp = path.with_suffix(".part")
            tmp.write_bytes(result)
            tmp.replace(path)
            path.with_suffix(".json").write_text(json.dumps(spec, indent=1, sort_keys=True, default=str))
            self.prefilled += 1

        run_jobs(executor, _built_bytes, [(fn, *args) for _, (_, _, args) in items], shared, on_result=store)
        return sum(1 for p, _ in items if p.exists())


def _built_bytes(shared: Any, fn: Callable[..., tuple[nn.Module, Mapping[str, Any]]], *args: Any) -> bytes | str:
    """Run one training job and return the model file's bytes (or the one-line error)."""
    import tempfile

    try:
        model, recipe = fn(shared, *args)
    except FreqprintError as e:
        return f"error: {e}"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.safetensors"
        save_model(model.cpu(), path, recipe)
        return path.read_bytes()
