"""Model files: safetensors with a JSON *recipe* so a model can be rebuilt, and safe loading of
suspect files (safetensors, or torch files through ``torch.load(weights_only=True)``; nothing is
ever unpickled).

The recipe is typed and versioned: :class:`freqprint.io.recipe.Recipe`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument, UnreadableFile
from freqprint.io.canonical import (
    DEPTH_TO_SPACE,
    JOIN,
    PLAIN_FLOATS,
    SAFETENSORS_READABLE,
    ChannelMerge,
    all_finite,
    canonical,
    channel_merges,
    crop,
    crop_views,
    depth_to_space,
    depth_to_space_views,
    is_reindexed,
    readable,
    separable,
    separable_shape,
    separable_views,
)
from freqprint.io.gguf import is_gguf, load_gguf, open_gguf
from freqprint.io.onnx import is_onnx, load_onnx, open_onnx
from freqprint.io.recipe import Recipe

__all__ = ["TensorStore", "build_from_recipe", "load_model", "load_state_dict", "open_tensors", "save_model", "state_dict_of"]

_META_KEY = "freqprint.recipe"


def save_model(model: nn.Module, path: str | Path, recipe: Recipe | Mapping[str, Any]) -> Path:
    """Save weights (safetensors) with the recipe that rebuilds the architecture (validated and
    written with its version: :class:`~freqprint.io.recipe.Recipe`)."""
    recipe = Recipe.from_dict(recipe).to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(recipe, sort_keys=True)})
    return path


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < 100_000_000 and head[8:9] == b"{"


def _header_shapes(path: Path, handle: Any) -> dict[str, tuple[tuple[int, ...], bool]]:
    """``name -> (shape, is floating)`` from a safetensors header that ``safe_open`` has already
    validated, parsed in one JSON read rather than one slice object per tensor (a large checkpoint
    has thousands).  Falls back to the slices if the header does not read as expected."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        shapes = {
            k: (tuple(int(x) for x in v["shape"]), v["dtype"] in SAFETENSORS_READABLE)
            for k, v in header.items()
            if k != "__metadata__"
        }
        if len(shapes) == len(handle.keys()):
            return shapes
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    out = {}
    for k in handle.keys():
        sl = handle.get_slice(k)
        out[k] = (tuple(int(x) for x in sl.get_shape()), sl.get_dtype() in SAFETENSORS_READABLE)
    return out


def _flatten(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, dict):
        # common wrappers: {"state_dict": ...}, {"model": ...}
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if wrapper in obj and isinstance(obj[wrapper], dict):
                return _flatten(obj[wrapper], prefix)
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    return out


def _torch_load(path: Path, mmap: bool) -> dict[str, torch.Tensor]:
    """Tensors of a torch zip checkpoint, weights only (nothing unpickled), optionally mmapped."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnreadableFile(f"{path}: cannot load as weights-only torch checkpoint ({first[:160]})") from None
    return _flatten(obj)


def read_recipe(path: str | Path) -> Recipe | None:
    """The recipe stored in a freqprint safetensors file, or None (a recipe that is not valid JSON
    or not a valid recipe is refused: ``InvalidArgument``)."""
    path = Path(path)
    if not path.is_file() or not _is_safetensors(path):
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    if _META_KEY not in meta:
        return None
    try:
        raw = json.loads(meta[_META_KEY])
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"{path}: its recipe is not valid JSON ({e.msg})") from None
    try:
        return Recipe.from_dict(raw)
    except InvalidArgument as e:
        raise InvalidArgument(f"{path}: {e}") from None


def load_state_dict(path: str | Path, max_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, loaded without unpickling; one-line errors for bad files.
    ``max_bytes`` refuses larger files before reading them (keys, headers of known size)."""
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableFile(f"{path} is a directory, not a weights file")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile(f"{path} is empty")
    if max_bytes is not None and size > max_bytes:
        raise UnreadableFile(f"{path} is {size / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB such a file can need")
    if is_gguf(path):
        sd = load_gguf(path)
    elif is_onnx(path):
        sd = load_onnx(path)
    elif _is_safetensors(path):
        try:
            sd = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise UnreadableFile(f"{path} is a corrupt or truncated safetensors file ({str(e).splitlines()[0]})") from None
    else:
        if not zipfile.is_zipfile(path):
            raise UnreadableFile(f"{path} is neither a safetensors, a GGUF nor a torch (zip) checkpoint")
        sd = _torch_load(path, mmap=False)
    if not sd:
        raise UnreadableFile(f"{path} holds no tensors")
    return sd


def check_finite(sd: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights with NaN or Inf: any score computed from them would be meaningless."""
    for k, v in sd.items():
        if v.is_floating_point() and not all_finite(v):
            raise FreqprintError(f"{source}: tensor {k!r} contains NaN or Inf values")


def build_from_recipe(recipe: Recipe | Mapping[str, Any]) -> nn.Module:
    """An untrained model with the recipe's architecture (fingerprint module and pseudo class too)."""
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.fingerprint.loss import add_pseudo_class
    from freqprint.models import create_model

    recipe = Recipe.from_dict(recipe)
    known = {f.name for f in dataclasses.fields(FingerprintConfig)} - {"secret"}
    try:
        model = create_model(recipe.model, **recipe.kwargs)
        fp = recipe.fingerprint
        if fp:
            # fields this version does not know (from a newer or older freqprint) are ignored;
            # recipes from before the merge option describe the linear merge
            cfg = {"merge": "linear", **{k: v for k, v in fp.items() if k in known}}
            if not recipe.input_shape:
                raise FreqprintError("incomplete model recipe: a fingerprinted model needs 'input_shape'")
            attach(model, FingerprintConfig(**cfg), torch.zeros(1, *recipe.input_shape))
        if recipe.pseudo_class:
            add_pseudo_class(model)
    except KeyError as e:
        raise FreqprintError(f"incomplete model recipe: missing {e}") from None
    except (TypeError, AttributeError) as e:
        raise FreqprintError(f"invalid model recipe: {e}") from None
    return model


def load_model(
    path: str | Path, recipe: Recipe | Mapping[str, Any] | None = None, device: str = "cpu"
) -> tuple[nn.Module, Recipe]:
    """Rebuild a model from a freqprint file (or from ``recipe`` + any weights file) and load it."""
    recipe = Recipe.from_dict(recipe) if recipe is not None else read_recipe(path)
    if recipe is None:
        raise FreqprintError(f"{path} carries no freqprint recipe; it can be verified but not rebuilt")
    sd = load_state_dict(path)
    check_finite(sd, str(path))
    fp = recipe.fingerprint
    if fp and "merge" not in fp:  # a recipe that does not say: the file's grid buffer does ([M,N,K,r] or [M,N,K,r,1])
        grid = sd.get(f"{fp.get('target')}.fingerprint.grid")
        recipe = recipe.replace(fingerprint={**fp, "merge": "relu" if grid is not None and grid.numel() == 5 else "linear"})
    model = build_from_recipe(recipe)
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s) e.g. {unexpected[0]!r}")
        raise FreqprintError(f"{path} does not match architecture {recipe.model!r}: " + "; ".join(parts))
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        k = bad[0]
        raise FreqprintError(f"{path}: {k!r} has shape {list(sd[k].shape)}, architecture expects {list(own[k].shape)}")
    model.load_state_dict(sd)
    return model.to(device), recipe


def state_dict_of(suspect: nn.Module | str | Path | dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Weights of a model, a file, or a state dict, plus a name for messages."""
    if isinstance(suspect, nn.Module):
        return {k: v.detach() for k, v in suspect.state_dict().items()}, type(suspect).__name__
    if isinstance(suspect, dict):
        return suspect, "state dict"
    return load_state_dict(suspect), str(suspect)


class TensorStore:
    """Shapes of every tensor in a suspect, and the tensors themselves one at a time.

    For a safetensors file only the header is read up front and each tensor is read (memory-mapped)
    when asked for, so memory stays bounded by the largest tensor actually used, whatever the file
    holds.  Torch files are memory-mapped (``torch.load(mmap=True, weights_only=True)``); models and
    state dicts are used as they are.
    """

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], bool]], getter, name: str) -> None:
        # shapes: name -> (shape, may hold weights: a float, float8 or 8-bit integer dtype), and
        # the k×k crop views of larger kernels (io.canonical.crop_views), listed like tensors
        # and the kernels of convs run on pixel-unshuffled grids (io.canonical.depth_to_space_views),
        # which get crop views of their own
        self._d2s = {v: base for v, base in depth_to_space_views(shapes).items() if v not in shapes}
        grids = {**shapes}
        for v, base in self._d2s.items():
            (d, c, kp, _), _ok = shapes[base]
            grids[v] = ((d // 4, c // 4, 2 * kp - 1, 2 * kp - 1), True)
        self._views = {v: src for v, src in crop_views(grids).items() if v not in shapes}  # a stored name wins
        self.shapes = {**grids, **{v: ((*grids[base][0][:2], k, k), True) for v, (base, k) in self._views.items()}}
        # and the k×k kernels of k×1 / 1×k conv pairs (io.canonical.separable_views)
        self._seps = {v: pair for v, pair in separable_views(shapes).items() if v not in shapes}
        self.shapes.update({v: (separable_shape(shapes, *pair), True) for v, pair in self._seps.items()})
        self._get, self.name = getter, name
        self._refused: set[str] = set()
        self._accepted: set[str] = set()
        self._merges: dict[str, tuple[str, ChannelMerge]] | None = None
        self._copies: set[str] = set()
        self._joins: dict[str, tuple[tuple[str, ...], int]] = {}
        self._resolved: dict[str, str] = {}
        self._finite: dict[str, bool] = {}

    def resolve(self, layer: str) -> str:
        """Where a layer named by a key sits here: ``layer`` itself, else the shortest stored name
        that ends with ``"." + layer`` — the same model saved under a wrapper's prefix (peft's
        ``base_model.model.``, DDP's ``module.``, ``torch.compile``'s ``_orig_mod.``) — else
        ``layer``.  Views (names with ``@``) never count, so the answer stays valid as they are
        added; it is computed once per layer."""
        if layer not in self._resolved:
            tail = "." + layer
            hits = [n for n in self.shapes if n.endswith(tail) and "@" not in n]
            self._resolved[layer] = layer if layer in self.shapes or not hits else min(hits, key=lambda n: (len(n), n))
        return self._resolved[layer]

    @classmethod
    def of(cls, sd: dict[str, torch.Tensor], name: str) -> TensorStore:
        """A store over tensors already in memory (or memory-mapped)."""
        return cls({k: (tuple(v.shape), readable(v.dtype)) for k, v in sd.items()}, sd.__getitem__, name)

    def __contains__(self, key: str) -> bool:
        return key in self.shapes

    def get(self, key: str) -> torch.Tensor:
        """The tensor as the function reads it: int8/uint8 (with their scale and zero point) and
        float8 storage dequantized (:mod:`freqprint.io.canonical`); floats as stored."""
        if key in self._views:
            base, k = self._views[key]
            return crop(self.get(base), k)
        if key in self._d2s:
            shape = self.shapes[key][0]
            if key in self._refused:  # checked once: not a re-indexed kernel (every later reading is NaN too)
                return torch.full(shape, math.nan, dtype=torch.float64)
            out = depth_to_space(self.get(self._d2s[key]))
            if not bool(torch.isfinite(out).any()):
                self._refused.add(key)
            return out
        if key in self._seps:
            second, first = self._seps[key]
            return separable(self.get(second), self.get(first))
        if key in self._joins:
            members, dim = self._joins[key]
            return torch.cat([self.get(m).to(torch.float32) for m in members], dim)
        if self._merges and key in self._merges:
            consumer, merge = self._merges[key]
            return merge.apply(self.get(consumer))
        t = self._get(key)
        return t if t.dtype in PLAIN_FLOATS else canonical(key, t, self._get, self.shapes)

    def finite(self, key: str, values: torch.Tensor | None = None) -> bool:
        """Whether :meth:`get` of ``key`` holds no NaN or Inf (:func:`all_finite`): checked once
        per name, so the many readings of one tensor share one pass over it.  ``values``, if
        given, must be the tensor or a re-arrangement of all its values (a caller's reading of
        it), checked instead of reading the tensor again."""
        if key not in self._finite:
            self._finite[key] = all_finite(self.get(key) if values is None else values)
        return self._finite[key]

    def refused(self, name: str) -> bool:
        """Whether ``name`` is a space-to-depth view (or a view of one) whose tensor holds no
        re-indexed kernel (:func:`freqprint.io.canonical.depth_to_space`): read once, then known."""
        if DEPTH_TO_SPACE not in name:
            return False
        view = name[: name.index(DEPTH_TO_SPACE) + len(DEPTH_TO_SPACE)]
        if view not in self._d2s:
            return False
        if view not in self._refused and view not in self._accepted:
            # the check alone (no view built), as get() would make it: a NaN view is refused too
            if is_reindexed(t := self.get(self._d2s[view])) and bool(torch.isfinite(depth_to_space(t)).any()):
                self._accepted.add(view)
            else:
                self._refused.add(view)
        return view in self._refused

    def join(self, members: tuple[str, ...], dim: int) -> str:
        """A view of ``members`` concatenated along ``dim`` (a tensor stored in pieces:
        :func:`freqprint.io.canonical.piece_groups`), listed like a tensor; returns its name."""
        name = f"{JOIN}{dim}[{members[0]}+{len(members) - 1}]"
        while name in self.shapes and self._joins.get(name) != (members, dim):
            name += "'"  # a stored tensor of that name keeps it
        if name not in self._joins:
            first = self.shapes[members[0]][0]
            size = sum(self.shapes[m][0][dim] for m in members)
            self.shapes[name] = ((*first[:dim], size, *first[dim + 1 :]), True)
            self._joins[name] = (members, dim)
        return name

    def channel_merge(self, view: str) -> ChannelMerge | None:
        """The merge behind a merged-channel view, or None for any other name."""
        found = (self._merges or {}).get(view)
        return None if found is None else found[1]

    def copy_producers(self) -> set[str]:
        """The producers (tensors, or products ``q∘y``) found storing a channel twice, once the
        merged views are listed (:meth:`add_channel_merges`)."""
        return self._copies

    def add_channel_merges(self) -> list[str]:
        """List the merged-channel views (:func:`freqprint.io.canonical.channel_merges`) among the
        tensors, once: every tensor that may be a producer is read here (one at a time), so this
        is the one step of a test that reads more than it fits.  Returns the views' names."""
        if self._merges is None:
            self._merges = {v: m for v, m in channel_merges(self.shapes, self.get, self._copies).items() if v not in self.shapes}
            for view, (consumer, merge) in self._merges.items():
                shape = self.shapes[consumer][0]
                self.shapes[view] = ((shape[0], len(merge.groups), *shape[2:]), True)
        return list(self._merges)


MAX_INDEX_BYTES = 64 * 2**20


def _open_sharded(path: Path) -> TensorStore:
    """A sharded safetensors checkpoint: ``model.safetensors.index.json`` (or a folder holding
    exactly one ``*.safetensors.index.json``, or else exactly one ``*.safetensors``).  The index's
    ``weight_map`` must name shards by plain file names in the index's own folder: a path that
    leaves it (``..``, absolute, a sub-folder) is refused."""
    if path.is_dir():
        indexes = sorted(path.glob("*.safetensors.index.json"))
        if len(indexes) == 1:
            path = indexes[0]
        else:
            files = sorted(path.glob("*.safetensors"))
            if len(indexes) == 0 and len(files) == 1:
                return open_tensors(files[0])
            raise FreqprintError(
                f"{path}: a model folder needs exactly one *.safetensors.index.json "
                f"or one *.safetensors file (found {len(indexes)} and {len(files)})"
            )
    from freqprint.io.files import read_small_text

    text = read_small_text(path, MAX_INDEX_BYTES, "shard index")  # a regular file of at most 64 MiB
    try:
        index = json.loads(text)
    except (ValueError, RecursionError):
        raise FreqprintError(f"{path} is not a JSON shard index") from None
    wmap = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wmap, dict) or not wmap or not all(isinstance(k, str) and isinstance(v, str) for k, v in wmap.items()):
        raise FreqprintError(f"{path}: 'weight_map' must be a non-empty object of tensor name -> shard file")
    folder = path.parent
    shards: dict[str, TensorStore] = {}
    for shard in sorted(set(wmap.values())):
        if Path(shard).name != shard or shard in (".", ".."):
            raise UnreadableFile(f"{path}: shard {shard!r} is not a file name in the index's folder")
        f = folder / shard
        if not f.is_file() or not _is_safetensors(f):
            raise FreqprintError(f"{path}: shard {shard!r} is missing or not a safetensors file")
        shards[shard] = open_tensors(f)
    shapes = {}
    for name, shard in wmap.items():
        if name not in shards[shard].shapes:
            raise FreqprintError(f"{path}: tensor {name!r} is not in shard {shard!r}")
        shapes[name] = shards[shard].shapes[name]
    return TensorStore(shapes, lambda k: shards[wmap[k]].get(k), str(path))


def open_tensors(suspect: nn.Module | str | Path | dict[str, torch.Tensor] | TensorStore) -> TensorStore:
    """A :class:`TensorStore` over a model, a state dict or a weights file (lazily for files);
    a store is returned as is, so one opened file can serve several tests."""
    if isinstance(suspect, TensorStore):
        return suspect
    if isinstance(suspect, (nn.Module, dict)):
        sd, name = state_dict_of(suspect)
        return TensorStore.of(sd, name)
    path = Path(suspect)
    if path.is_dir() or path.name.endswith(".index.json"):
        return _open_sharded(path)
    if path.is_file() and is_gguf(path):
        return open_gguf(path)
    if path.is_file() and is_onnx(path):
        return open_onnx(path)
    if path.is_file() and path.stat().st_size > 0 and _is_safetensors(path):
        try:
            handle = safe_open(str(path), framework="pt")  # validates the header (sizes, offsets, dtypes)
            shapes = _header_shapes(path, handle)
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise UnreadableFile(f"{path} is a corrupt or truncated safetensors file ({str(e).splitlines()[0]})") from None
        if not shapes:
            raise UnreadableFile(f"{path} holds no tensors")

        def get(k: str) -> torch.Tensor:
            try:
                return handle.get_tensor(k)
            except (SafetensorError, OSError, ValueError, RuntimeError) as e:
                raise UnreadableFile(f"{path}: cannot read tensor {k!r} ({str(e).splitlines()[0]})") from None

        return TensorStore(shapes, get, str(path))
    if path.is_file() and zipfile.is_zipfile(path):
        sd = _torch_load(path, mmap=True)
        if not sd:
            raise UnreadableFile(f"{path} holds no tensors")
        return TensorStore.of(sd, str(path))
    sd = load_state_dict(path)  # every other case: its one-line error
    return TensorStore.of(sd, str(path))
