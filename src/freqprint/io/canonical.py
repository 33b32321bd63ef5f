"""Read what a tensor means, not how it is stored: the storage re-encodings a thief gets for free.

A weight stored as int8 or uint8 with a separate scale (and zero point), or as float8, computes
the same function as its float original up to rounding: the network's own loader (or the thief's
two-line forward) dequantizes it.  So every test reads such a tensor dequantized:

    W = (q − z) · s

with ``q`` the stored integers, ``z`` the zero point and ``s`` the scale, each taken from a
*companion* tensor when the file has one under a name the common formats use
(``<name>_scale`` / ``<prefix>.weight_scale`` / ``<prefix>.scale`` / ``<name>.scale`` /
``<name>._scale``, and the same with ``zero_point``); a scale is applied only where it broadcasts
to the tensor (per tensor, per output or input channel, per kernel).  Without a zero point an
unsigned tensor is centred on its median (the zero point of any symmetric quantizer).  float8
tensors are read as floats.

Why this keeps the p-value an upper bound: the reading depends on the suspect file alone, never
on the key, so the verifier's null (the key's secret-seeded W₀ independent of the suspect) holds
for the dequantized tensor as for any other; each tensor still gives one reading, so the
candidate count the p-value pays does not change.  And the per-kernel cosines the verifier tests
ignore any positive scale per kernel, so a scale the reader misses (a name no format uses) costs
nothing there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch

__all__ = ["PLAIN_FLOATS", "SAFETENSORS_READABLE", "canonical", "companion", "readable"]

PLAIN_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_FLOAT8 = tuple(
    getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz") if hasattr(torch, n)
)
_INTEGERS = (torch.int8, torch.uint8)
# safetensors dtype names of the tensors a test may read as weights
SAFETENSORS_READABLE = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I8", "U8"})


def readable(dtype: torch.dtype) -> bool:
    """Whether a tensor of this dtype may hold weights: floats, float8, and 8-bit integers."""
    return dtype in PLAIN_FLOATS or dtype in _FLOAT8 or dtype in _INTEGERS


def companion(name: str, names: Collection[str], what: str) -> str | None:
    """The tensor holding ``what`` ("scale" or "zero_point") for the tensor ``name``, if any."""
    prefix, _, leaf = name.rpartition(".")
    stem = f"{prefix}." if prefix else ""
    for cand in (
        f"{name}_{what}",
        f"{stem}{leaf}_{what}",
        f"{stem}{what}",
        f"{name}.{what}",
        f"{name}._{what}",
        f"{name}_{what}s",
    ):
        if cand != name and cand in names:
            return cand
    if leaf == "_data":  # quanto-style: <name>._data beside <name>._scale
        cand = f"{prefix}._{what}"
        if cand in names:
            return cand
    return None


def _broadcast(v: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """``v`` shaped to multiply a tensor of ``shape`` (per tensor, per dim-0 or dim-1 channel, or
    already broadcastable), else None."""
    v = v.to(torch.float64)
    if v.numel() == 1:
        return v.reshape(())
    ones = [1] * len(shape)
    if v.ndim == 1 and len(shape) >= 1 and v.numel() == shape[0]:
        return v.reshape([shape[0], *ones[1:]])
    if v.ndim == 1 and len(shape) >= 2 and v.numel() == shape[1]:
        return v.reshape([1, shape[1], *ones[2:]])
    try:
        fits = len(torch.broadcast_shapes(v.shape, shape)) == len(shape) and v.ndim <= len(shape)
    except RuntimeError:
        return None
    return v if fits else None


def canonical(name: str, t: torch.Tensor, get: Callable[[str], torch.Tensor], names: Collection[str]) -> torch.Tensor:
    """The tensor ``name`` as the function reads it (module docstring); plain floats unchanged."""
    if t.dtype in PLAIN_FLOATS or not readable(t.dtype):
        return t
    w = t.to(torch.float64)
    if t.dtype in _INTEGERS:
        zp = companion(name, names, "zero_point")
        z = _broadcast(get(zp), t.shape) if zp is not None else None
        if z is not None:
            w = w - z
        elif t.dtype == torch.uint8 and t.numel():
            w = w - w.flatten().median()
    sc = companion(name, names, "scale")
    s = _broadcast(get(sc), t.shape) if sc is not None else None
    if s is not None and bool(torch.isfinite(s).all()):
        w = w * s
    return w.to(torch.float32)


CROP = "@crop"  # a view's name: "<tensor>@crop3" is <tensor>'s best 3×3 window


def crop_views(shapes: dict[str, tuple[tuple[int, ...], bool]]) -> dict[str, tuple[str, int]]:
    """``view name -> (tensor, k)``: for every readable ``[D, C, K′, K′]`` tensor with odd K′ ≥ 5,
    one k×k view per odd k from 3 to K′ − 2.  A kernel zero-padded to a larger size computes the
    same function as the kernel itself (the conv's padding grows with it), so a thief can store
    a 3×3 module as 5×5 for free; the view reads it back (:func:`crop`).  Shapes only: nothing is
    read until a view is used."""
    out: dict[str, tuple[str, int]] = {}
    for name, (shape, ok) in shapes.items():
        if ok and len(shape) == 4 and shape[2] == shape[3] and shape[2] >= 5 and shape[2] % 2 == 1:
            for k in range(3, shape[2] - 1, 2):
                out[f"{name}{CROP}{k}"] = (name, k)
    return out


def crop(t: torch.Tensor, k: int) -> torch.Tensor:
    """The k×k window of ``t`` [D, C, K′, K′] that holds the most of its energy over all filters
    and channels (the first such window on a tie): the whole kernel when the rest is zero
    padding.  Chosen from the suspect alone (never from the key), one view per tensor and k."""
    e = (t.to(torch.float64) ** 2).sum((0, 1))
    size = t.shape[-1]
    best, where = -1.0, (0, 0)
    for a in range(size - k + 1):
        for b in range(size - k + 1):
            inside = float(e[a : a + k, b : b + k].sum())
            if inside > best:
                best, where = inside, (a, b)
    a, b = where
    return t[:, :, a : a + k, b : b + k].contiguous()
