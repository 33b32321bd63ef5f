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

import functools
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

import numpy as np
import torch

__all__ = [
    "COMPOSE",
    "DEPTH_TO_SPACE",
    "FED_BY",
    "JOIN",
    "MERGE",
    "PLAIN_FLOATS",
    "SAFETENSORS_READABLE",
    "SEPARABLE",
    "ChannelMerge",
    "all_finite",
    "canonical",
    "channel_merges",
    "companion",
    "copy_groups",
    "depth_to_space",
    "depth_to_space_views",
    "compose",
    "composed_producers",
    "compositions",
    "piece_groups",
    "pointwise",
    "producer_counts",
    "readable",
    "separable",
    "separable_views",
    "space_to_depth_kernel",
]

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


# ---------------------------------------------------------------------------------------------
# a k×k conv stored as a k×1 conv then a 1×k conv (or the other way round)

SEPARABLE = "@sep:"  # a view's name: "<second>@sep:<first>" is the k×k kernel of <first> then <second>
MAX_SEPARABLE = 4096


def separable_views(shapes: dict[str, tuple[tuple[int, ...], bool]]) -> dict[str, tuple[str, str]]:
    """``view name -> (second, first)``: every pair of readable tensors ``first`` ``[M, C, k, 1]``
    and ``second`` ``[D, M, 1, k]`` (or ``[M, C, 1, k]`` then ``[D, M, k, 1]``), k ≥ 2, as one
    ``[D, C, k, k]`` kernel.  Any k×k conv W is exactly a k×1 conv into M = C·k channels (one per
    input channel and row of taps) followed by a 1×k conv, ``W[d,c,u,v] = Σ_m S[d,m,v]·F[m,c,u]``,
    and stays so under any invertible mixing of the M middle channels (``F → R·F``,
    ``S → S·R⁻¹``): the thief pays about twice the MACs, the stored tensors keep neither W's
    kernels nor its shape.  The view is the product, whatever the mixing (:func:`separable`).
    Shapes only, at most ``MAX_SEPARABLE`` views, in name order."""
    firsts: dict[tuple[int, int, bool], list[str]] = {}  # (M, k, taps along H first) -> tensors
    for name, (shape, ok) in sorted(shapes.items()):
        if ok and len(shape) == 4 and "@" not in name and shape[0] >= 2 and min(shape[2:]) == 1 and max(shape[2:]) >= 2:
            firsts.setdefault((shape[0], max(shape[2:]), shape[3] == 1), []).append(name)
    out: dict[str, tuple[str, str]] = {}
    for name, (shape, ok) in sorted(shapes.items()):
        if not (ok and len(shape) == 4 and "@" not in name and min(shape[2:]) == 1 and max(shape[2:]) >= 2):
            continue
        k, vertical_second = max(shape[2:]), shape[2] > 1  # a k×1 second conv follows a 1×k first one
        for first in firsts.get((shape[1], k, not vertical_second), []):
            if first != name and len(out) < MAX_SEPARABLE:
                out[f"{name}{SEPARABLE}{first}"] = (name, first)
    return out


def separable_shape(shapes: dict[str, tuple[tuple[int, ...], bool]], second: str, first: str) -> tuple[int, int, int, int]:
    k = max(shapes[second][0][2:])
    return (shapes[second][0][0], shapes[first][0][1], k, k)


def separable(second: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """The k×k kernel of a k×1 conv ``first`` ``[M, C, k, 1]`` followed by a 1×k conv ``second``
    ``[D, M, 1, k]`` — ``W[d,c,u,v] = Σ_m second[d,m,0,v]·first[m,c,u,0]`` — or of the transposed
    pair (``first`` ``[M, C, 1, k]``, ``second`` ``[D, M, k, 1]``: ``Σ_m second[d,m,u,0]·first[m,c,0,v]``)."""
    s, f = second.to(torch.float64), first.to(torch.float64)
    if f.shape[3] == 1:
        return torch.einsum("dmv,mcu->dcuv", s[:, :, 0, :], f[:, :, :, 0])
    return torch.einsum("dmu,mcv->dcuv", s[:, :, :, 0], f[:, :, 0, :])


# ---------------------------------------------------------------------------------------------
# a conv run on space-to-depth inputs (pixel-unshuffled by 2, the outputs shuffled back)

DEPTH_TO_SPACE = "@d2s"  # a view's name: "<tensor>@d2s" is <tensor> read back on the original grid


def _s2d_offsets(k: int, sub: int = 0) -> tuple[int, list[tuple[int, int, int]]]:
    """For a k×k kernel (stride 1, padding k//2) on a grid unshuffled by 2: the block padding
    ``p′`` and, per kernel row u, ``(u, a, q)`` — the block row a of the re-indexed kernel and the
    sub-row q of the input it reads, for output sub-row ``sub``."""
    h = k // 2
    low = math.floor(-h / 2)
    return -low, [(u, (sub + u - h) // 2 - low, (sub + u - h) % 2) for u in range(k)]


def depth_to_space_views(shapes: dict[str, tuple[tuple[int, ...], bool]]) -> dict[str, str]:
    """``view name -> tensor``: every readable ``[4D, 4C, k′, k′]`` tensor (k′ odd ≥ 3), read as
    the ``[D, C, 2k′−1, 2k′−1]`` kernel it computes when the thief's forward pixel-unshuffles its
    input by 2 and shuffles its output back (a k×k conv, stride 1, padding k//2, is exactly such a
    conv with ``W′[(d,py,px),(c,qy,qx),a,b] = W[d, c, 2a+qy−py−2p′+k//2, …]``, and zero where that
    falls outside: ×16·k′²/k² parameters).  A 3×3 original reads as a 5×5 with a zero ring (its
    crop views read it back).  Shapes only; :func:`depth_to_space` refuses (NaN) a tensor without
    the zeros every re-indexed kernel has, so an ordinary conv whose widths happen to divide by
    4 costs one read and no fit (the count still pays for its view)."""
    return {
        f"{name}{DEPTH_TO_SPACE}": name
        for name, (shape, ok) in shapes.items()
        if ok
        and "@" not in name
        and len(shape) == 4
        and shape[2] == shape[3] >= 3
        and shape[2] % 2 == 1
        and shape[0] % 4 == 0
        and shape[1] % 4 == 0
    }


def _reindexed(t: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int, int]]] | None:
    """``(w6, rows)`` for :func:`depth_to_space`: the tensor's sub-position (0, 0) as
    ``[D, C, qy, qx, a, b]`` (a view, as stored) and the kernel rows' offsets; None when the
    tensor lacks the zeros every re-indexed kernel has (the block rows and sub-rows no kernel row
    reaches).  Checked in the stored precision (an absolute maximum is exact in it), so a tensor
    that is not a re-indexed kernel, the common case, is refused without a float64 copy."""
    ds, cs, kp = t.shape[0], t.shape[1], t.shape[2]
    d, c, size = ds // 4, cs // 4, 2 * kp - 1
    w6 = t.reshape(d, 2, 2, c, 2, 2, kp, kp)[:, 0, 0]
    _, rows = _s2d_offsets(size)
    used = torch.zeros(2, kp, dtype=torch.bool)  # [q, a] reached by some kernel row
    for _, a, q in rows:
        used[q, a] = True
    reached = used[:, None, :, None] & used[None, :, None, :]  # [qy, qx, a, b]
    top = w6.abs().amax((0, 1)) if w6.numel() else torch.zeros(reached.shape)  # [qy, qx, a, b]: one pass
    scale = float(top.max())
    if scale == 0.0 or float(top[~reached].max()) > 1e-6 * scale:
        return None
    return w6, rows


def is_reindexed(t: torch.Tensor) -> bool:
    """Whether :func:`depth_to_space` reads ``t`` as a kernel (and not as all NaN)."""
    return _reindexed(t) is not None


def depth_to_space(t: torch.Tensor) -> torch.Tensor:
    """The ``[D, C, K, K]`` kernel (K = 2k′−1) a ``[4D, 4C, k′, k′]`` conv on a grid unshuffled
    by 2 computes on the original grid (:func:`depth_to_space_views`), read from its output
    sub-position (0, 0); all NaN when the tensor lacks the zeros every re-indexed kernel has there
    (the block rows and sub-rows no kernel row reaches)."""
    d, c, size = t.shape[0] // 4, t.shape[1] // 4, 2 * t.shape[2] - 1
    found = _reindexed(t)
    if found is None:
        return torch.full((d, c, size, size), math.nan, dtype=torch.float64)
    w6, rows = found[0].to(torch.float64), found[1]
    out = torch.zeros(d, c, size, size, dtype=torch.float64)
    for u, a, qy in rows:
        for v, b, qx in rows:
            out[:, :, u, v] = w6[:, :, qy, qx, a, b]
    return out


def space_to_depth_kernel(w: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(W′, p′)``: the k×k kernel ``w`` ``[D, C, k, k]`` (k odd, stride 1, padding k//2) as the
    conv on a grid pixel-unshuffled by 2 whose pixel-shuffled output is the original's
    (``[4D, 4C, k′, k′]``, padding p′).  The inverse of :func:`depth_to_space`."""
    d, c, k = w.shape[0], w.shape[1], w.shape[2]
    pad, _ = _s2d_offsets(k)
    kp = 2 * pad + 1  # the block rows reached run from −p′ to p′ (k odd)
    out = torch.zeros(d, 2, 2, c, 2, 2, kp, kp, dtype=torch.float64)
    rows = [_s2d_offsets(k, sub)[1] for sub in range(2)]
    for py in range(2):
        for u, a, qy in rows[py]:
            for px in range(2):
                for v, b, qx in rows[px]:
                    out[:, py, px, :, qy, qx, a, b] = w[:, :, u, v].to(torch.float64)
    return out.reshape(4 * d, 4 * c, kp, kp), pad


# ---------------------------------------------------------------------------------------------
# 1×1 maps composed into their neighbours

COMPOSE = "∘"  # "<1×1 tensor>∘<k×k tensor>": the 1×1 conv applied after the k×k one
FED_BY = "⋄"  # "<k×k tensor>⋄<1×1 tensor>": the k×k conv read after the 1×1 conv that feeds it


def pointwise(shapes: dict[str, tuple[tuple[int, ...], bool]]) -> list[tuple[str, int, int]]:
    """Every readable tensor that reads as a 1×1 conv (or linear map) ``[a, b]`` or
    ``[a, b, 1, 1]`` with both sides ≥ 2: the maps a thief can insert inside a linear segment
    (crop and join views excluded; merged-channel views of 1×1 maps included, once they exist:
    a network widened and then factorised feeds each conv through a 1×1 ``P`` whose input copies
    must be summed before the product ``Q·Y·P`` is the original conv)."""
    return [
        (name, shape[0], shape[1])
        for name, (shape, ok) in shapes.items()
        if ok
        and ("@" not in name or _merged_only(name))
        and (len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1)))
        and min(shape[:2]) >= 2
    ]


def _merged_only(name: str) -> bool:
    """A merged-channel view of a stored tensor (no crop or join inside): a 1×1 map whose input
    copies are summed is still a 1×1 map the thief's code may run (a widened ``P``)."""
    return name.count("@") == 1 and MERGE in name and not name.startswith(JOIN)


def compositions(name: str, d: int, c: int, points: list[tuple[str, int, int]]) -> list[tuple[str, str, str, int, int]]:
    """``(label, after, before, D″, C′)``: every way the k×k tensor ``name`` ``[d, c, k, k]`` may
    be read with the 1×1 maps of :func:`pointwise` around it — ``after`` ``[D″, d]`` on the output
    side, ``before`` ``[c, C′]`` on the input side, or both (``""``: none); never with itself.
    Labels read ``after∘name⋄before``; shapes only."""
    afters = [("", d)] + [(q, a) for q, a, b in points if b == d and q != name]
    befores = [("", c)] + [(p, b) for p, a, b in points if a == c and p != name]
    return [
        (f"{q}{COMPOSE if q else ''}{name}{FED_BY if p else ''}{p}", q, p, d_out, c_in)
        for q, d_out in afters
        for p, c_in in befores
        if q or p
    ]


def compose(y: torch.Tensor, after: torch.Tensor | None = None, before: torch.Tensor | None = None) -> torch.Tensor:
    """A k×k conv ``y`` [D, C″, k, k] read together with the 1×1 convs around it: ``before``
    [C″, C] feeds it, ``after`` [D″, D] reads it, so the composed conv is ``after · y · before``
    [D″, C, k, k] (float64) — a layer factorised ``M⁻¹·(M·W·P⁻¹)·P`` is W again."""
    w = y.to(torch.float64)
    if before is not None:
        w = torch.einsum("dahw,ab->dbhw", w, before.to(torch.float64).reshape(before.shape[0], before.shape[1]))
    if after is not None:
        w = torch.einsum("ab,bchw->achw", after.to(torch.float64).reshape(after.shape[0], after.shape[1]), w)
    return w


# ---------------------------------------------------------------------------------------------
# duplicated and split channels (Net2Wider): the consumer's columns summed over each copy group

MERGE = "@merge:"  # a view's name: "<consumer>@merge:<producer>" is <consumer> with its input copies summed
_MIN_ROW = 4  # rows shorter than this are parallel too easily (a 1×1 conv on one channel)
_PARALLEL = 1e-6  # 1 − cosine below which two producer rows count as one channel stored twice
MAX_MERGED_VIEWS = 65_536  # views per file (in file order), so a file of crafted copies cannot exhaust memory
MAX_PRODUCTS = 4096  # products Q·Y screened for copies per file (in file order): bounded work on a crafted file


@dataclass(frozen=True)
class ChannelMerge:
    """The channels a producer stores more than once.

    If two rows of a producer are positively proportional, ``F_b = λ·F_a`` (after the BatchNorm
    that follows it, when the file has one), then after any positively homogeneous activation
    (ReLU, max-pool) the two channels carry one signal, ``y_b = λ·y_a``, and every consumer ``T``
    reads it through ``λ·T[:, b] + T[:, a]`` only.  So a thief can duplicate every channel and give
    each consumer ``[W + N, −N]`` over the pair: the network computes exactly what it did, and no
    stored kernel is ``W``.  The merged reading undoes it: column ``j`` of the view is
    ``Σ_{c ∈ G_j} s_c·T[:, c]`` over the copy group ``G_j``, with ``s_c`` the scale of the
    producer's row c (its norm times the BatchNorm's ``γ/√(var + ε)``); rows that are all zero
    (channels that carry nothing) are dropped.  ``groups`` lists the kept groups, ``weights`` the
    s_c of every channel."""

    producer: str
    groups: tuple[tuple[int, ...], ...]
    weights: tuple[float, ...]

    def translate(self, channels: torch.Tensor) -> torch.Tensor:
        """Channel indices of the unmerged tensor as indices of the merged one (−1: dropped)."""
        where = torch.full((len(self.weights),), -1, dtype=torch.long)
        for j, g in enumerate(self.groups):
            where[list(g)] = j
        ok = (channels >= 0) & (channels < len(where))
        return torch.where(ok, where[channels.clamp(0, len(where) - 1)], torch.full_like(channels, -1))

    def apply(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` [D, n, …] read with its input channels merged: [D, len(groups), …]."""
        members = torch.tensor([c for g in self.groups for c in g], dtype=torch.long)
        column = torch.tensor([j for j, g in enumerate(self.groups) for _ in g], dtype=torch.long)
        w = torch.tensor(self.weights, dtype=torch.float64)[members]
        x = t.to(torch.float64)[:, members] * w.reshape([1, -1] + [1] * (t.dim() - 2))
        out = torch.zeros((t.shape[0], len(self.groups), *t.shape[2:]), dtype=torch.float64)
        out.index_add_(1, column, x)
        return out.to(t.dtype if t.is_floating_point() else torch.float32)


WINDOW = 64  # a producer's rows are screened for copies on this many of their entries (all, when shorter)


@functools.lru_cache(maxsize=64)
def _window(m: int) -> torch.Tensor | None:
    """The entries of a row of ``m`` that the copy screen reads (sorted; a pure function of m):
    every entry up to :data:`WINDOW`, else :data:`WINDOW` of them drawn by a fixed seed.  Rows
    proportional on all their entries are proportional on any subset of them, so the screen
    misses no copy and no dead row; a row zero on the window alone, or two rows proportional on
    it alone, only send the producer to :func:`copy_groups`, which decides on whole rows."""
    if m <= WINDOW:
        return None
    return torch.randperm(m, generator=torch.Generator().manual_seed(m))[:WINDOW].sort().values


def _windowed(x: torch.Tensor) -> torch.Tensor:
    """``x`` [n, m] on its rows' :func:`_window` [n, min(m, WINDOW)]."""
    cols = _window(x.shape[-1])
    return x if cols is None else x.index_select(-1, cols)


@functools.lru_cache(maxsize=64)
def _directions(m: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The 3 fixed random directions [m, 3] rows are screened on (seeded: a pure function of m;
    one shared tensor per (m, dtype), never written to)."""
    return torch.randn(m, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)


_FINITE_CHUNK = 1 << 20


def _dense(v: torch.Tensor) -> bool:
    """Whether ``v``'s entries are exactly ``numel`` consecutive entries of its storage (a
    contiguous tensor, or a permutation or transpose of one), in some order."""
    expect = 1
    for stride, size in sorted((st, sz) for st, sz in zip(v.stride(), v.shape, strict=True) if sz > 1):
        if stride != expect:
            return False
        expect *= size
    return True


def all_finite(v: torch.Tensor) -> bool:
    """No NaN or Inf in ``v``: its smallest and largest entries, which a NaN anywhere makes NaN,
    are finite.  One pass over the entries in storage order when they are dense (a permuted
    view too), else a million entries at a time; no temporary the size of ``v``."""
    if not v.is_floating_point() or v.numel() == 0:
        return True
    if v.ndim == 0 or _dense(v):
        chunks: tuple[torch.Tensor, ...] | list[torch.Tensor] = (v.as_strided((v.numel(),), (1,)),)
    else:
        chunks = v.split(max(1, _FINITE_CHUNK // max(1, v[0].numel())))
    return all(bool(torch.isfinite(torch.stack(torch.aminmax(c))).all()) for c in chunks)


def _near(coords: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Index pairs (into ``coords`` [n, 3], unit rows' coordinates on :func:`_directions`) that
    may be parallel: rows sorted by the first coordinate, each compared with its 8 successors,
    kept where all 3 coordinates agree within 1e-4."""
    order = torch.sort(coords[:, 0], stable=True).indices  # ties in file order (as :func:`_near_any`)
    n = len(order)
    steps = min(8, n - 1)
    if steps < 1:
        return []
    # all 8 successors at once: position p against p + step, for p + step < n
    pos = torch.arange(n - 1)[:, None] + torch.arange(1, steps + 1)[None, :]  # [n − 1, steps]
    valid = pos < n
    s = coords[order]
    near = ((s[: n - 1, None, :] - s[pos.clamp_max(n - 1)]).abs().amax(2) <= 1e-4) & valid
    p, step = near.T.nonzero().unbind(1)[::-1]  # step-major order, as the loop over steps gave
    if len(p) == 0:
        return []
    return [(order[p], order[p + step + 1])]


def _may_copy_each(coords: torch.Tensor) -> list[bool]:
    """Whether each product ``Q·Y`` whose rows' coordinates on :func:`_directions` are
    ``coords[i]`` ``[3, a]`` (``coords`` ``[n, 3, a]``, the n products of one Q, coordinate-major)
    may hold a copy group or a dead row: positively proportional rows have positively
    proportional coordinates, so the unit coordinate vectors are compared — sorted by the first,
    each with its 8 successors, all 3 within 1e-4 (:func:`_near`'s rule, batched: one sort for the
    n products, numpy's; the other two coordinates compared only where the first agrees).  The
    cheap test before a product is formed: ``coords = (Y·r)ᵀ·Qᵀ`` costs ``3·a·b``."""
    n, a = coords.shape[0], coords.shape[2]
    if a < 2:
        return [False] * n
    size = coords.square().sum(1).sqrt()  # [n, a] (norm(dim=1) is 40× slower on this layout)
    dead = ~(size > 1e-12 * size.amax(1, keepdim=True).clamp_min(1e-300)).all(1)
    u = coords / size.clamp_min(1e-300)[:, None, :]
    order = torch.from_numpy(np.argsort(u[:, 0].numpy(), axis=1))
    first = u[:, 0].gather(1, order)
    near = torch.zeros(n, dtype=torch.bool)
    for step in range(1, min(9, a)):
        # sorted, so a pair within 1e-4 on the first coordinate at this step is one at every
        # smaller step too: the other two coordinates only where the first agrees, and no
        # further step once none does
        i, p = ((first[:, step:] - first[:, :-step]) <= 1e-4).nonzero().unbind(1)
        if len(i) == 0:
            break
        ok = (u[i, :, order[i, p + step]] - u[i, :, order[i, p]]).abs().amax(1) <= 1e-4
        near[i[ok]] = True
    return (dead | near).tolist()


def _near_any(coords: list[torch.Tensor]) -> list[bool]:
    """For each tensor's unit coordinates ``coords[i]`` [n_i, 3], whether :func:`_near` would list
    a pair in it: one sort and one comparison for all of them (rows sorted by tensor, then by the
    first coordinate, both stably, so each tensor's rows fall in :func:`_near`'s order; pairs
    across tensors are discarded)."""
    if not coords:
        return []
    c = torch.cat(coords)
    pid = torch.repeat_interleave(torch.arange(len(coords)), torch.tensor([len(x) for x in coords]))
    first = torch.sort(c[:, 0], stable=True).indices
    order = first[torch.sort(pid[first], stable=True).indices]
    s, p = c[order], pid[order]
    n = len(order)
    steps = min(8, n - 1)
    hit = torch.zeros(len(coords), dtype=torch.bool)
    if steps >= 1:
        pos = torch.arange(n - 1)[:, None] + torch.arange(1, steps + 1)[None, :]
        at = pos.clamp_max(n - 1)
        near = ((s[: n - 1, None, :] - s[at]).abs().amax(2) <= 1e-4) & (pos < n) & (p[: n - 1, None] == p[at])
        hit[p[: n - 1][near.any(1)]] = True
    return hit.tolist()


@dataclass
class _Rows:
    """:func:`copy_groups`' one pass over a tensor's rows: the rows (float), their norms, which are
    alive, and the live rows' unit coordinates on :func:`_directions`."""

    x: torch.Tensor
    norm: torch.Tensor
    alive: torch.Tensor
    idx: torch.Tensor
    coords: torch.Tensor


def _row_pass(rows: torch.Tensor) -> _Rows | None:
    """:func:`copy_groups`' first pass, or None where it returns None before comparing any rows
    (fewer than 2 rows, rows too short, every row zero)."""
    n = rows.shape[0]
    if n < 2 or rows[0].numel() < _MIN_ROW:
        return None
    x = rows.reshape(n, -1)
    x = x if x.dtype in (torch.float32, torch.float64) else x.to(torch.float32)
    norm = x.norm(dim=1).to(torch.float64)
    alive = norm > 1e-12 * float(norm.max().clamp_min(1e-300))
    idx = alive.nonzero().squeeze(1)
    if len(idx) == 0:
        return None  # nothing is carried: no view (a consumer of it reads nothing)
    # screening coordinates in the stored precision; the cosine that decides in float64
    coords = (x @ _directions(x.shape[1], x.dtype)).to(torch.float64)  # every row's, then the live ones' (no copy of x)
    coords = (coords if len(idx) == n else coords[idx]) / norm[idx, None]
    return _Rows(x, norm, alive, idx, coords)


def _row_screen(rows: torch.Tensor) -> tuple[torch.Tensor, bool] | None:
    """:func:`_row_pass` on the rows' :func:`_window` (the screen of :func:`channel_merges`): the
    live window rows' unit coordinates and whether every window row is alive, or None where
    :func:`copy_groups` returns None unread (fewer than 2 rows, rows too short) or the window
    holds nothing (the producer goes to :func:`copy_groups` then: ``(empty, False)``)."""
    n = rows.shape[0]
    if n < 2 or rows[0].numel() < _MIN_ROW:
        return None
    first = _row_pass(_windowed(rows.reshape(n, -1)))
    if first is None:
        return torch.zeros(0, 3, dtype=torch.float64), False
    return first.coords, bool(first.alive.all())


def copy_groups(rows: torch.Tensor) -> tuple[tuple[tuple[int, ...], ...], tuple[float, ...]] | None:
    """Groups of positively proportional rows of ``rows`` [n, m] (:class:`ChannelMerge`) and each
    row's scale, or None when every row is its own group and none is zero.  Two rows are linked
    when their cosine is within 1e-6 of 1.  Candidates come from one pass: every unit row's
    coordinates on 3 fixed random directions; rows are sorted by the first and each is compared
    with its 8 successors, full cosines only where all 3 coordinates agree — O(n log n + n·m), a
    pure function of the rows."""
    first = _row_pass(rows)
    if first is None:
        return None
    n, x, norm, alive, idx, coords = rows.shape[0], first.x, first.norm, first.alive, first.idx, first.coords
    pairs = []
    for a, b in _near(coords):
        a, b = idx[a], idx[b]
        ua, ub = x[a].to(torch.float64) / norm[a, None], x[b].to(torch.float64) / norm[b, None]
        ok = (ua * ub).sum(1) >= 1 - _PARALLEL
        pairs += list(zip(a[ok].tolist(), b[ok].tolist(), strict=True))
    if not pairs and bool(alive.all()):
        return None
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for c in idx.tolist():
        groups.setdefault(find(c), []).append(c)
    return tuple(tuple(v) for _, v in sorted(groups.items())), tuple(norm.tolist())


def _batchnorm_of(producer: str, n: int, shapes: dict[str, tuple[tuple[int, ...], bool]]) -> str | None:
    """The BatchNorm (the prefix of a ``running_var`` of n entries) whose name is nearest the
    producer's: the longest shared dotted prefix, then the most similar rest."""
    from difflib import SequenceMatcher

    stem = producer.rpartition(".")[0]
    best: tuple[tuple[int, float], str] | None = None
    for name, (shape, ok) in shapes.items():
        if ok and name.endswith("running_var") and shape == (n,):
            bn = name[: -len("running_var")].rstrip(".")
            a, b = stem.split("."), bn.split(".")
            common = next((i for i, (p, q) in enumerate(zip(a, b, strict=False)) if p != q), min(len(a), len(b)))
            score = (common, SequenceMatcher(None, ".".join(a[common:]), ".".join(b[common:])).ratio())
            if best is None or score > best[0]:
                best = (score, bn)
    return None if best is None else best[1]


def _producer(name: str, shape: tuple[int, ...], ok: bool) -> bool:
    """Whether a tensor may be a producer whose rows are channels (views are read through their
    tensors, so they never are)."""
    return ok and len(shape) in (2, 4) and shape[0] >= 2 and math.prod(shape[1:]) >= _MIN_ROW and "@" not in name


def composed_producers(shapes: dict[str, tuple[tuple[int, ...], bool]]) -> list[tuple[str, str, str, int]]:
    """``(label, q, y, a)``: every product ``Q·Y`` of a stored 1×1 map Q ``[a, b]``
    (:func:`pointwise`) and another producer Y with b rows, labelled ``q∘y``.  A network widened
    and then factorised stores each conv as ``M·W·P⁻¹`` between 1×1 maps: its copied channels
    exist only in the product ``M⁻¹·(M·W·P⁻¹)``, whose rows are proportional exactly where W's
    are (a right factor never changes which rows are parallel).  Shapes only."""
    by_rows: dict[int, list[str]] = {}  # the producers of each row count, in file order
    for name, (shape, ok) in shapes.items():
        if _producer(name, shape, ok):
            by_rows.setdefault(shape[0], []).append(name)
    return [
        (f"{q}{COMPOSE}{name}", q, name, a)
        for q, a, b in pointwise(shapes)
        if "@" not in q
        for name in by_rows.get(b, ())
        if name != q
    ]


def producer_counts(shapes: dict[str, tuple[tuple[int, ...], bool]]) -> dict[int, int]:
    """``width -> number of tensors (or products Q·Y) that may produce channels of that width``:
    from shapes alone, so a test can bound the merged views :func:`channel_merges` may add before
    reading anything (each producer gives at most one view per consumer)."""
    out: dict[int, int] = {}
    rows: dict[int, int] = {}
    for name, (shape, ok) in shapes.items():
        if _producer(name, shape, ok):
            rows[shape[0]] = rows.get(shape[0], 0) + 1
    out.update(rows)
    for q, a, b in pointwise(shapes):  # the products of composed_producers, counted without listing them
        if "@" not in q:
            n = rows.get(b, 0) - (_producer(q, *shapes[q]) and shapes[q][0][0] == b)
            if n:
                out[a] = out.get(a, 0) + n
    return out


def _relative(groups: tuple[tuple[int, ...], ...], weights: tuple[float, ...]) -> tuple[float, ...]:
    """Each channel's scale relative to its group's largest: two merges with the same groups and
    the same relative scales give views that differ by one positive scale per column, which
    every test here ignores (per-kernel cosines), so they are one reading."""
    rel = [0.0] * len(weights)
    for g in groups:
        top = max(weights[c] for c in g) or 1.0
        for c in g:
            rel[c] = round(weights[c] / top, 6)
    return tuple(rel)


def channel_merges(
    shapes: dict[str, tuple[tuple[int, ...], bool]], get: Callable[[str], torch.Tensor], copies: set[str] | None = None
) -> dict[str, tuple[str, ChannelMerge]]:
    """``view name -> (consumer, merge)`` for every producer that stores a channel twice (or a
    dead one) and every other tensor whose dim 1 has the producer's width.  Producers are the
    readable 2-D and 4-D tensors, read one at a time (rows dim 0), and the products ``Q·Y`` of
    :func:`composed_producers` (the first ``MAX_PRODUCTS`` in file order, each screened on 3
    projections before the product is formed); merges
    that differ only by a scale per column are one (:func:`_relative`).  A pure function of the
    file.  ``copies``, if given, receives every producer found storing a channel twice (also
    those whose merge was another's)."""
    widths = {s[1] for s, ok in shapes.values() if ok and len(s) in (2, 4)}
    # per width, each distinct merge (the first producer's) with every producer that has it: any
    # of them may label the view, and a consumer never reads through a merge labelled by itself
    merges: dict[int, list[tuple[ChannelMerge, list[str]]]] = {}
    seen: dict[tuple[int, tuple[tuple[int, ...], ...], tuple[float, ...]], list[str]] = {}

    def rows(name: str) -> torch.Tensor:
        return get(name).reshape(shapes[name][0][0], -1)

    def record(producer: str, last: str, n: int, found: tuple[tuple[tuple[int, ...], ...], tuple[float, ...]]) -> None:
        groups, weights = found
        if copies is not None:
            copies.add(producer)
        bn = _batchnorm_of(last, n, shapes)  # the BatchNorm after the producer's last linear map
        if bn is not None and f"{bn}.weight" in shapes and shapes[f"{bn}.weight"][0] == (n,):
            var = get(f"{bn}.running_var").to(torch.float64)
            scale = get(f"{bn}.weight").to(torch.float64) / (var.clamp_min(0) + 1e-5).sqrt()
            weights = tuple(w * abs(float(v)) for w, v in zip(weights, scale, strict=True))
        tag = (n, groups, _relative(groups, weights))
        if tag not in seen:
            seen[tag] = []
            merges.setdefault(n, []).append((ChannelMerge(producer, groups, weights), seen[tag]))
        seen[tag].append(producer)

    products = [(label, q, y, a) for label, q, y, a in composed_producers(shapes)[:MAX_PRODUCTS] if a in widths]
    ys = {y for _, _, y, _ in products if math.prod(shapes[y][0][1:]) >= _MIN_ROW}
    proj: dict[str, torch.Tensor] = {}  # each Y's projections [rows, 3], taken while Y is read
    passes: list[tuple[str, int, torch.Tensor, bool]] = []  # each producer's first pass: coordinates kept, rows not
    for name, (shape, ok) in shapes.items():
        producer = _producer(name, shape, ok) and shape[0] in widths  # else not a producer, or nothing reads its width
        if not producer and name not in ys:
            continue
        r = rows(name)  # one tensor in memory at a time, each read once here
        if producer and (first := _row_screen(r)) is not None:
            passes.append((name, shape[0], *first))
        if name in ys:  # (Q·Y) on the window is Q·(Y on the window)
            ry = _windowed(r).to(torch.float64)
            proj[name] = ry @ _directions(ry.shape[1])
        del r
    # the candidate pairs of every producer in one comparison; copy_groups (the tensor read again)
    # only for a producer with a candidate pair or a dead row, the rare case: as if each were run
    for (name, n, _, all_alive), near in zip(passes, _near_any([c for _, _, c, _ in passes]), strict=True):
        if (near or not all_alive) and (found := copy_groups(rows(name))) is not None:
            record(name, name, n, found)
    by_q: dict[str, list[int]] = {}
    for i, (_, q, y, _) in enumerate(products):
        if y in proj:
            by_q.setdefault(q, []).append(i)
    hits: dict[int, tuple[tuple[tuple[int, ...], ...], tuple[float, ...]]] = {}
    for q, uses in by_q.items():  # each Q read and checked once; Y again only where a copy may be
        qm = get(q).reshape(products[uses[0]][3], -1)
        if not all_finite(qm):
            continue
        qm = qm.to(torch.float64)
        coords = (torch.cat([proj[products[i][2]] for i in uses], 1).T @ qm.T).reshape(len(uses), 3, qm.shape[0])
        for i, maybe in zip(uses, _may_copy_each(coords), strict=True):  # one product and one sort per Q
            y = products[i][2]
            if maybe:
                found = copy_groups(qm @ rows(y).to(torch.float64))
                if found is not None:
                    hits[i] = found
    for i in sorted(hits):  # recorded in file order, as if read one product at a time
        label, q, _, a = products[i]
        record(label, q, a, hits[i])
    out: dict[str, tuple[str, ChannelMerge]] = {}
    for name, (shape, ok) in shapes.items():
        if ok and len(shape) in (2, 4):
            for m, producers in merges.get(shape[1], []):
                via = next((p for p in producers if p != name), None)
                if via is not None and len(out) < MAX_MERGED_VIEWS:
                    out[f"{name}{MERGE}{via}"] = (name, m if via == m.producer else replace(m, producer=via))
    return out


# ---------------------------------------------------------------------------------------------
# a tensor stored in pieces

JOIN = "@join"  # a view's name: "@join0[a.weight+3]" is a.weight and 3 more tensors stacked along dim 0
MAX_PIECES = 256


def piece_groups(
    shapes: dict[str, tuple[tuple[int, ...], bool]], dim: int, k: int, narrow: int, keep: Callable[[int], bool]
) -> list[tuple[str, ...]]:
    """Tensors a thief may have cut one ``[D, C, k, k]`` tensor into, along ``dim`` (0: filters,
    whose outputs the thief's code concatenates; 1: input channels, whose outputs it sums): every
    readable ``[·, ·, k, k]`` tensor whose size along ``dim`` is below ``narrow`` (too small to be
    tested alone), grouped by its size along the other dim (which ``keep`` must accept); groups
    of 2 to 256 pieces adding up to at least ``narrow``, members in name order.  Shapes only, and
    views are never pieces."""
    groups: dict[int, list[str]] = {}
    for name, (shape, ok) in shapes.items():
        if ok and "@" not in name and len(shape) == 4 and shape[2:] == (k, k) and shape[dim] < narrow and keep(shape[1 - dim]):
            groups.setdefault(shape[1 - dim], []).append(name)
    out = []
    for _, members in sorted(groups.items()):
        if 2 <= len(members) <= MAX_PIECES and sum(shapes[m][0][dim] for m in members) >= narrow:
            out.append(tuple(sorted(members)))
    return out
