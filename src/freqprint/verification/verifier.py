"""Verification: does a suspect model carry the key's fingerprint?

**What is compared.**  The key holds the module's filters through their spectra on S′, which
determine each K×K kernel exactly (:meth:`FingerprintKey.kernels`).  Every kernel — the key's
and the suspect's — is written in the orthonormal basis of :func:`freqprint.stats.spectral.kernel_basis`
and split into two blocks:

* **hidden** (gain < ``visible_gain``, 6 of 9 coordinates on a 28×28 grid): the directions the
  module's low-pass input barely reaches.  Theorem 3.2 makes them the part fine-tuning cannot
  move — this is where the paper's S′ fingerprint lives — but for the same reason a thief who
  knows the method can redraw them at no cost;
* **visible** (gain ≥ ``visible_gain``): what the network's function actually uses.  A rewrite
  that keeps every output cannot remove it; fine-tuning moves it, but slowly.

Each block is tested on its own, and the decision takes the better of the two (paying a factor 2).

**Invariances.**  A thief holds the whole symmetry group of the module and of the file.  The test
statistic is the *per-kernel* cosine, so any positive scaling of input channels (through the
preceding BatchNorm or conv) or of filters cancels; a filter's sign is free (either sign counts);
filters and input channels are matched by Hungarian assignment (``scipy``), with as many or more
suspect channels (dead channels added) or fewer (dead ones removed); extra dummy filters only
enter through the union bound, linearly in D′.  The module is looked up by content: every
floating tensor of any dtype that can be read as ``[D′, C′, K, K]`` — PyTorch ``OIHW``, ``HWIO``,
``OHWI``, 3-D or flattened 2-D in either orientation — is a candidate, under any name; the key's
own layer is tried first.  The suspect is read canonically (:mod:`freqprint.io.canonical`,
docs/design.md): quantized storage dequantized, larger kernels cropped and read by their
low-band response (``band``), duplicated input channels merged, pieces joined, and 1×1 convs on
either side composed in — each such reading one more candidate.  Candidates are chosen from shapes alone (a safetensors file is read
lazily, one tensor at a time).  Which are fully aligned, a gate decides (:mod:`freqprint.stats.screen`,
0.11): the key's own layer always, any other reading only where a mixing-invariant Gram screen
lets it through, at most ``max_fits`` (64; past that the ones that pass are ranked by one cheap
alignment pass, :func:`_screen`), while the Bonferroni factor still counts every candidate
screened.  ``gate=None`` ranks every reading by that alignment pass instead.  Linear mixing of the filters is *not* covered: it is a symmetry of the
``merge="linear"`` module only, whose failure docs/benchmarks.md §8 states.

**Statistics.**  For key filter d matched to suspect filter e under channel map π,
``s_d = |mean_c cos(ẑ_key[d,c], ẑ_sus[e,π(c)])|`` over the n = min(C, C′) matched channels.  A key
filter *hits* when ``s_d ≥ t``.  Under H0 (the suspect is unrelated to the key) the key's kernels
are the secret-seeded i.i.d. Gaussian initialisation — exactly so when the key holds W₀ (extracted
with the secret: :meth:`FingerprintKey.decision_kernels`); for a key of trained kernels only
while training barely moved them (SGD; Adam breaks it, docs/security.md) — so each block's direction
is uniform on its
sphere and ``P[hit] ≤ p1 = 2·D′·bound(t)`` with the Chernoff bound of :mod:`freqprint.stats.null`; the
hit count is dominated by Binomial(D, p1).  The p-value is that tail, multiplied (Bonferroni) by
the number of channel maps ``C!/(C−n)!`` (or ``C′!/(C′−n)!``), by 2 for the two blocks and by the
number of candidate tensors searched.  t is the smallest value of a fixed grid with ``p1 ≤ 0.01``:
it depends on (k, n, D′) only, never on the cosines.  ``found`` is ``p < alpha`` (default 1e-6).

**Stages: a verdict costs what the suspect makes it cost.**  The statistic, for a channel map π,
is the number of key filters d with ``max_e s_d,e(π) ≥ t`` — each key filter may take whichever
suspect filter suits it, which is exactly what ``p1 = 2·D′·bound(t)`` (a union over the D′ suspect
filters) pays for; under H0 and a fixed π these events are independent across d (the key's
filters are i.i.d.), and the union over every π is the channel-map factor.  Any filter
assignment counts at most that many hits, so *any* alignment found by *any* search gives a valid
p-value, and stopping a search early can only make the reported p larger (still an upper bound).
So the key's own layer (as stored: where a derived model keeps the module) is aligned in stages
of growing cost, and the first stage whose p (with every Bonferroni factor: channel maps, blocks,
the two tests, all candidates) is below ``alpha`` ends the search; every other reading gets the
full search alone (the cheap stages would only add to an unrelated suspect's cost):

1. ``diagonal``: filter d against filter d, channels as stored — a fine-tuned model as the owner
   left it, a few matrix products;
2. ``stored channels``: each key filter's best suspect filter (one [D, D′] product, no
   assignment), channels as stored — filters reordered;
3. ``one pass``: filters matched once on the hidden block's moment descriptors (the block
   fine-tuning barely moves, and the cheaper one), one channel map (Hungarian on C×C′), then
   (2)'s filter step — a permuted model;
4. ``full``: the alternating Hungarian search from several starts.

When none decides (an unrelated suspect) every stage runs, and the best count wins.  A thief
gains nothing from the order: reordering only moves the verdict to a later stage.  The
report's ``stage`` says which one decided.

**Rotated channels (Transformer hosts).**  In a pre-LayerNorm Transformer a thief can rotate the
whole residual stream by any orthogonal Q that fixes the all-ones vector, LayerNorm scales folded
into the layers that read it (:class:`freqprint.attacks.ResidualRotation`; in a Llama decoder any
orthogonal Q and the RMSNorm gains, :class:`freqprint.attacks.DecoderRotation`): the function is
unchanged and the module's kernels are mixed over their input channels, ``W[d] → Q·W[d]``, which
no permutation undoes.  So a second test runs beside the first (unless the first already decides
before its full permutation search; a rotated model can reach α there on partial matches, with a
weaker p and a description that does not fit):
Q is fitted by orthogonal Procrustes (:func:`freqprint.stats.align.rotation_fit`; filters matched first
on their channel Grams ``W[d]ᵀW[d]``, which Q leaves unchanged) **on the even key filters only**,
and the **odd** key filters are tested against the suspect un-rotated by Qᵀ, channels in that
order — the same per-kernel statistic and null, with no channel-map factor.  Under H0 the odd
filters are independent of Q (a function of the suspect and the even filters), so the null holds
exactly; the reported p is the smaller of the two tests times 2.

The paper's τ-score (the share of (filter, S′ frequency) pairs whose complex cosine over channels
is ≥ τ) and the mean S′ cosine are reported after alignment, with each matched channel's scale
restored; they describe, they do not decide.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.io.canonical import CROP, JOIN, MERGE, compose, compositions, piece_groups, pointwise, producer_counts
from freqprint.io.checkpoint import TensorStore, all_finite, open_tensors
from freqprint.stats.align import (
    Fit,
    channel_map,
    descriptor,
    greedy_filters,
    hungarian,
    read_as,
    reading_shapes,
    rotation_fit,
    score_filters,
    unit,
)
from freqprint.stats.align import fit as align
from freqprint.stats.null import LN10, auto_hit_threshold, format_p, hit_probability, log_binom_tail, log_injections
from freqprint.stats.screen import FIRST_Z, GATE_Z, GramScreen
from freqprint.stats.spectral import band_reading, complex_cosine, kernel_basis, revised_dft_at
from freqprint.verification.key import FingerprintKey
from freqprint.verification.report import TimedReport
from freqprint.verification.search import Search, best_first

__all__ = [
    "BLOCKS",
    "Candidate",
    "CandidateFit",
    "KeySide",
    "VerificationReport",
    "Verifier",
    "candidates",
    "format_p",
    "key_side",
    "verify",
]

BLOCKS = ("visible", "hidden")
VISIBLE_GAIN = 0.1  # relative gain at or above which a kernel direction counts as visible
MAX_CANDIDATES = 100_000  # readings of one file; beyond this the file is refused
BAND = "band"  # the layout of a larger kernel read by its low-band response (stats.spectral.band_reading)
MAX_COMPOSED = 4096  # readings through inserted 1×1 convs; a file that would give more gets none (docs/design.md)
MAX_FITS = 64  # candidates fully aligned; more are ranked by a cheap screen first (the p-value pays for all)


@dataclass
class Candidate:
    """One reading of a suspect tensor as conv filters ``[D′, C′, K, K]`` (shape only until loaded)."""

    name: str  # the tensor, or a label for a composed reading ("Q∘Y⋄P")
    layout: str
    shape: tuple[int, int, int, int]
    tensor: str = ""  # the k×k tensor of a composed reading
    after: str = ""  # the 1×1 tensor that reads it
    before: str = ""  # the 1×1 tensor that feeds it

    def load(self, store: TensorStore, key: FingerprintKey) -> torch.Tensor:
        t = store.get(self.tensor or self.name)
        if self.layout == BAND:
            return band_reading(t, key.kernel_size, key.grid, key.radius, include_dc=key.merge == "linear")
        w = read_as(t, self.layout, key.channels, key.kernel_size)
        if self.tensor:
            w = compose(w, store.get(self.after) if self.after else None, store.get(self.before) if self.before else None)
        return w


@dataclass
class VerificationReport(TimedReport):
    found: bool
    log10_p: float  # log₁₀ of the p-value: a strong match's p underflows any float (1e-400), its log does not
    alpha: float
    score: float | None  # the paper's τ-score; None when not described (``describe=False``)
    mean_cosine: float | None
    hits: int
    filters: int
    suspect_filters: int
    suspect_channels: int
    matched_channels: int
    tau: float
    hit_cosine: float
    block: str
    log10_p_blocks: dict[str, float]
    layer: str
    layout: str
    layers_searched: int
    fitted: int
    channels_permuted: bool
    suspect: str
    key_commitment: str
    frequency_set: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    anchored: bool = False  # decided against the secret's W₀ (exact null) rather than the trained kernels
    stage: str = "full"  # the alignment stage that produced the verdict (module docstring, "Stages")
    # what an evidence report draws (freqprint.report): per key filter its cosine s_d and the
    # suspect filter it was matched to (-1: none), the null's per-filter hit probability p1 and the
    # log10 of every Bonferroni factor paid on top of the binomial tail (None: the rotated test,
    # whose tail runs over half the filters)
    filter_cosines: list[float] = field(default_factory=list)
    filter_match: list[int] = field(default_factory=list)
    hit_probability: float | None = None
    log10_factor: float | None = None

    def summary(self) -> str:
        if self.layers_searched == 0:
            return f"fingerprint not found: p = 1, no tensor of the suspect reads as the module's filters ({self.extra.get('reason', '')})"
        if self.fitted == 0:
            return f"fingerprint not found: p = 1, {self.layers_searched} readings screened, {self.extra.get('reason', '')}"
        verdict = "FOUND" if self.found else "not found"
        described = (
            f"τ-score {self.score:.3f} (τ={self.tau}), mean S′ cosine {self.mean_cosine:.3f}, "
            if self.score is not None and self.mean_cosine is not None
            else ""
        )
        return (
            f"fingerprint {verdict}: p = {format_p(self.log10_p)} (alpha {self.alpha:g}), {self.hits}/{self.filters} filters hit "
            f"({self.block} block), {described}layer {self.layer}"
            + ("" if self.anchored else " [key without W₀: docs/security.md]")
        )


# ---------------------------------------------------------------------------------------------
# finding the module by content


def _merge_reading(layout: str) -> bool:
    return layout.partition("·")[0] == "OIHW"  # a merged or joined view's channels are its dim 1


def candidates(store: TensorStore, key: FingerprintKey, merges: bool = True, cap: bool = True) -> list[Candidate]:
    """Every floating tensor that reads as conv filters with the key's kernel size and at least
    half its input channels; the key's own layer first.  Decided from shapes alone, so a file of
    any size costs only its header here — except the merged-channel views
    (:func:`freqprint.io.canonical.channel_merges`, read as ``OIHW`` under the symmetries of the
    square only), for which every possible producer is read once; ``merges=False`` leaves them
    out (:func:`merged_bound` counts them from shapes).  ``cap`` drops the composed readings when
    there are more than ``MAX_COMPOSED``."""
    c, k = key.channels, key.kernel_size
    if merges:
        store.add_channel_merges()
    # a module stored in pieces: channel pieces too narrow to test alone, filter pieces short of the key's D
    joins = {store.join(m, 1) for m in piece_groups(store.shapes, 1, k, (c + 1) // 2, lambda d: d >= 1)}
    joins |= {store.join(m, 0) for m in piece_groups(store.shapes, 0, k, key.filters, lambda cs: 2 * cs >= c)}
    own = store.resolve(key.layer)
    names = sorted(store.shapes, key=lambda n: (n != own, "@" in n, n))  # stored tensors before views
    out: list[Candidate] = []
    for name in names:
        shape, floating = store.shapes[name]
        if name.startswith(JOIN) and name.split(MERGE)[0] not in joins:
            continue  # joined for another test on the same store (lineage's layers)
        if floating:
            out += _readings(name, shape, key)
        if len(out) > MAX_CANDIDATES:
            raise FreqprintError(
                f"{store.name} has more than {MAX_CANDIDATES} tensors that read as conv filters; "
                "pass search='none' to test the key's layer alone"
            )
    return _capped(out + _composed(store, key, out), cap)


def candidate_count(store: TensorStore, key: FingerprintKey) -> int:
    """``len(candidates(store, key, merges=False, cap=False))`` without listing them: the readings
    of every tensor and view (:func:`_reading_shapes`, cached per shape) plus, for every
    untransformed OIHW reading ``[d, c]`` of a stored tensor, the compositions :func:`_composed`
    would list — ``(1 + #after maps [·, d]) × (#input sides with 2C′ ≥ C) − 1``.  The early path
    of :meth:`Verifier.verify` pays for this count before it reads one tensor; a test compares it
    with the listing."""
    c, k = key.channels, key.kernel_size
    joins = {store.join(m, 1) for m in piece_groups(store.shapes, 1, k, (c + 1) // 2, lambda d: d >= 1)}
    joins |= {store.join(m, 0) for m in piece_groups(store.shapes, 0, k, key.filters, lambda cs: 2 * cs >= c)}
    points = pointwise(store.shapes)
    plain = composed = 0
    for name, (shape, floating) in store.shapes.items():
        if not floating or (name.startswith(JOIN) and name.split(MERGE)[0] not in joins):
            continue
        merged = MERGE in name or name.startswith(JOIN)
        readings = _reading_shapes(shape, c, k, merged, CROP in name)
        plain += len(readings)
        if points and "@" not in name:
            for layout, (d, c_y, *_) in readings:
                if layout != "OIHW":
                    continue
                after = 1 + sum(1 for q, _, b in points if b == d and q != name)
                before = int(2 * c_y >= c) + sum(1 for p, a, b in points if a == c_y and p != name and 2 * b >= c)
                composed += after * before - int(2 * c_y >= c)
    if plain > MAX_CANDIDATES:
        raise FreqprintError(
            f"{store.name} has more than {MAX_CANDIDATES} tensors that read as conv filters; "
            "pass search='none' to test the key's layer alone"
        )
    return plain + composed


def _capped(cands: list[Candidate], cap: bool = True) -> list[Candidate]:
    """``cands`` without the composed readings when there are more than ``MAX_COMPOSED``."""
    if cap and sum(1 for c in cands if c.tensor) > MAX_COMPOSED:
        return [c for c in cands if not c.tensor]
    return cands


def _readings(name: str, shape: tuple[int, ...], key: FingerprintKey) -> list[Candidate]:
    """One tensor's (or view's) readings as ``[D′, C′, k, k]`` with ``2C′ ≥ C``: every layout
    under the symmetries of the square (a merged or joined view: OIHW ones only), and a larger
    square kernel's band reading; shapes only."""
    merged = MERGE in name or name.startswith(JOIN)
    return [
        Candidate(name, layout, wshape)
        for layout, wshape in _reading_shapes(shape, key.channels, key.kernel_size, merged, CROP in name)
    ]


@functools.lru_cache(maxsize=4096)
def _reading_shapes(
    shape: tuple[int, ...], c: int, k: int, merged: bool, cropped: bool
) -> tuple[tuple[str, tuple[int, int, int, int]], ...]:
    """:func:`_readings` from the shape alone (a file repeats few shapes, and the early path and
    :func:`merged_bound` ask for each several times)."""
    if math.prod(shape) < k * k * max(1, c // 2):
        return ()
    out = [
        (layout, wshape)
        for layout, wshape in reading_shapes(shape, c, k)
        if wshape[1] * 2 >= c and wshape[0] >= 1 and (not merged or _merge_reading(layout))
    ]
    if len(shape) == 4 and shape[2] == shape[3] > k and 2 * shape[1] >= c and not cropped:
        out.append((BAND, (shape[0], shape[1], k, k)))  # a larger kernel read by its response
    return tuple(out)


def _composed(store: TensorStore, key: FingerprintKey, plain: list[Candidate]) -> list[Candidate]:
    """The module factorised by 1×1 convs the thief's code inserts: ``M·W`` read by ``M⁻¹``
    before the ReLU (the output side), ``W·P⁻¹`` fed by ``P`` (the input side), or both.  Every
    untransformed OIHW reading ``Y`` of a stored tensor, composed with each 1×1 tensor of
    matching width (:func:`freqprint.io.canonical.compose`); shapes only."""
    points = pointwise(store.shapes)
    if not points:
        return []
    k = key.kernel_size
    return [
        Candidate(label, "OIHW", (d_out, c_in, k, k), y.name, q, p)
        for y in plain
        if y.layout == "OIHW" and "@" not in y.name and not y.tensor
        for label, q, p, d_out, c_in in compositions(y.name, y.shape[0], y.shape[1], points)
        if 2 * c_in >= key.channels
    ]


def merged_bound(store: TensorStore, key: FingerprintKey, listed: int | None = None) -> int:
    """An upper bound, from shapes alone, on ``len(candidates(store, key))`` once the merged views
    exist: the candidates without them (composed readings uncapped), plus, for every tensor that
    may read a producer's width, the readings of a merged view at the tensor's full width (a
    merged view is never wider, and every rule that admits a reading admits a wider one) times
    the number of possible producers of that width (:func:`producer_counts`, products ``Q·Y``
    included), plus the compositions a merged 1×1 view may join (:func:`_merged_compositions`),
    the composed ones never counted past ``MAX_COMPOSED`` (past it they are dropped).
    ``listed``: that first count, when the caller has it."""
    producers = producer_counts(store.shapes)
    total = len(candidates(store, key, merges=False, cap=False)) if listed is None else listed
    c_key, k_key = key.channels, key.kernel_size
    for name, (shape, ok) in store.shapes.items():
        if ok and len(shape) in (2, 4) and MERGE not in name and producers.get(shape[1], 0):
            total += producers[shape[1]] * len(_reading_shapes(shape, c_key, k_key, True, CROP in name))
    return total + min(MAX_COMPOSED, _merged_compositions(store, key, producers))


def _merged_compositions(store: TensorStore, key: FingerprintKey, producers: dict[int, int]) -> int:
    """How many more compositions (:func:`_composed`) the merged views of 1×1 maps may add, from
    shapes: a stored ``[a, b]`` map gains up to ``producers[b]`` merged views ``[a, g]`` with
    ``g ≤ b`` unknown, each an output side of every reading with ``g`` filters (counted for every
    reading with at most b) and an input side of every reading with a channels."""
    points = [p for p in pointwise(store.shapes) if "@" not in p[0]]
    if not points or not any(producers.get(b, 0) for _, _, b in points):
        return 0
    extra = 0
    c_key, k_key = key.channels, key.kernel_size
    memo: dict[tuple[int, int], int] = {}  # (D′, C′) -> what one OIHW reading of that shape adds
    for name, (shape, ok) in store.shapes.items():
        if not ok or "@" in name:
            continue
        merged = MERGE in name or name.startswith(JOIN)
        for layout, (d, c, *_) in _reading_shapes(shape, c_key, k_key, merged, CROP in name):
            if layout != "OIHW":
                continue
            if (d, c) not in memo:
                after = sum(1 for _, _, b in points if b == d)
                before = sum(1 for _, a, _ in points if a == c)
                more_after = sum(producers.get(b, 0) for _, _, b in points if b >= d)
                more_before = sum(producers.get(b, 0) for _, a, b in points if a == c)
                memo[(d, c)] = (1 + after + more_after) * (1 + before + more_before) - (1 + after) * (1 + before)
            extra += memo[(d, c)]
            if extra >= MAX_COMPOSED:
                return extra  # merged_bound counts no more than this
    return extra


# ---------------------------------------------------------------------------------------------


def _screen(
    units_k: dict[str, torch.Tensor],
    desc_k: dict[str, torch.Tensor],
    ws: torch.Tensor,
    v: torch.Tensor,
    blocks: dict[str, torch.Tensor],
) -> float:
    """A cheap similarity of a candidate to the key, used only to rank candidates: per block, one
    pass of the alignment (descriptor match → one channel map → filter scores), the mean filter
    strength; the larger block value.  The channel map has to be shared by all filters, so decoys
    whose filters each carry the module's kernels in their own channel order score low.  The
    p-value still pays for every candidate screened."""
    kk = v.shape[0]
    zs = ws.reshape(ws.shape[0], ws.shape[1], kk) @ v
    best = -1.0
    for b, idx in blocks.items():
        us = unit(zs[..., idx])
        match = hungarian(desc_k[b] @ descriptor(us).T)
        kc, perm = channel_map(units_k[b], us, match, None)
        _, strength, _ = score_filters(units_k[b], us, kc, perm)
        best = max(best, float(strength.mean()))
    return best


def _blocks(key: FingerprintKey, visible_gain: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    v, gain = kernel_basis(key.grid, key.kernel_size, key.radius, include_dc=key.merge == "linear")
    return v, {"visible": (gain >= visible_gain).nonzero().squeeze(1), "hidden": (gain < visible_gain).nonzero().squeeze(1)}


@dataclass(frozen=True)
class KeySide:
    """The key's half of every comparison: the kernel basis ``v`` and its blocks, the decision
    kernels in that basis (``zk``), their unit blocks and moment descriptors, each block's basis
    columns, and the coordinate → block indicator with the unit coordinates in basis order."""

    v: torch.Tensor
    blocks: dict[str, torch.Tensor]
    zk: torch.Tensor
    units_k: dict[str, torch.Tensor]
    desc_k: dict[str, torch.Tensor]
    v_blocks: dict[str, torch.Tensor]
    ind: torch.Tensor
    ucat: torch.Tensor


def _cached(key: FingerprintKey, slot: str, visible_gain: float, build: Any) -> Any:
    """``build()`` kept on the key object under ``slot``, with the decision tensor itself and its
    version counter (an edited or replaced tensor is recomputed): a pure function of the key's
    decision kernels, paid once however many suspects are verified against one key."""
    src = key.anchor if key.anchored else key.weights
    tag = (
        visible_gain,
        getattr(src, "_version", None),
        key.grid,
        key.kernel_size,
        key.radius,
        key.merge,
        key.filters,
        key.channels,
    )
    cached = key.__dict__.get(slot)
    if cached is not None and cached[0] is src and cached[1] == tag:  # the same tensor object, unmodified
        return cached[2]
    value = build()
    key.__dict__[slot] = (src, tag, value)
    return value


def key_side(key: FingerprintKey, visible_gain: float) -> KeySide:
    """The key's half of every comparison (:class:`KeySide`), computed once per key (:func:`_cached`)."""

    def build() -> KeySide:
        wk = key.decision_kernels()  # W₀ for an anchored key: the exact null (FingerprintKey.decision_kernels)
        v, blocks = _blocks(key, visible_gain)
        zk = wk.reshape(key.filters, key.channels, key.kernel_size**2) @ v
        units_k = {b: unit(zk[..., idx]) for b, idx in blocks.items()}
        desc_k = {b: descriptor(u) for b, u in units_k.items()}
        desc_k["all"] = descriptor(unit(zk))
        v_blocks = {b: v[:, idx].contiguous() for b, idx in blocks.items()}
        ind = torch.zeros(v.shape[1], len(blocks), dtype=v.dtype)  # coordinate → block indicator
        ucat = torch.zeros_like(zk)  # each block's unit key coordinates, in basis order
        for j, (b, idx) in enumerate(blocks.items()):
            ind[idx, j] = 1.0
            ucat[..., idx] = units_k[b]
        return KeySide(v, blocks, zk, units_k, desc_k, v_blocks, ind, ucat)

    return _cached(key, "_verify_side", visible_gain, build)


SCREEN_BATCH = 1 << 22  # values of readings of one shape screened together (16 MB as float32)
PENDING_BATCHES = 4  # readings waiting for their batch, over every shape: at most this many batches' values


def gram_screen(key: FingerprintKey, visible_gain: float) -> GramScreen:
    """The gate's key side (:class:`freqprint.stats.screen.GramScreen`), computed once per key."""

    def build() -> GramScreen:
        v, gain = kernel_basis(key.grid, key.kernel_size, key.radius, include_dc=key.merge == "linear")
        return GramScreen.of(key.decision_kernels(), v, gain, visible_gain)

    return _cached(key, "_gram_screen", visible_gain, build)


def _sprime_stats(key: FingerprintKey, wk: torch.Tensor, ws: torch.Tensor, fit: Fit, tau: float) -> tuple[float, float]:
    """Paper's τ-score and mean complex cosine on S′ after alignment, channel scales restored."""
    ok = fit.match >= 0
    if not ok.any():
        return 0.0, 0.0
    kc, perm = fit.key_channels, fit.perm
    al = ws[fit.match[ok]][:, perm] * fit.sign[ok, None, None, None]
    ref = wk[ok][:, kc]
    ratio = ref.flatten(2).norm(dim=-1) / al.flatten(2).norm(dim=-1).clamp_min(1e-300)
    al = al * ratio.median(0).values[None, :, None, None]
    spec_k = revised_dft_at(ref, key.grid, key.frequencies)
    spec_s = revised_dft_at(al, key.grid, key.frequencies)
    cos = complex_cosine(spec_k, spec_s, dim=1)  # [D_ok, F]
    w = torch.tensor(key.multiplicity, dtype=torch.float64)
    total = w.sum() * key.filters
    return float(((cos >= tau).double() * w).sum() / total), float((cos * w).sum() / total)


def _rotation_test(
    zk: torch.Tensor,
    zs: torch.Tensor,
    units_k: dict[str, torch.Tensor],
    blocks: dict[str, torch.Tensor],
    hit_cosine: float | None,
) -> tuple[float, str, torch.Tensor, Fit, float]:
    """The rotated-channel test (module docstring): fit Q on the even key filters, test the odd
    ones against the un-rotated suspect in that channel order.  Returns ``(log p, block, suspect
    kernels un-rotated [D′, C, k], a full-key fit for the description, t)``; log p pays for the
    two blocks."""
    c = zk.shape[1]
    q = rotation_fit(zk[0::2], zs)  # [C′, C]
    zu = torch.einsum("ec,dek->dck", q, zs)  # Qᵀ·Z per suspect filter
    test = torch.arange(1, zk.shape[0], 2)
    kc = torch.arange(c)
    best: tuple[float, str, float] | None = None
    for b, idx in blocks.items():
        k = len(idx)
        t = hit_cosine if hit_cosine is not None else auto_hit_threshold(k, c, zs.shape[0])
        _, strength, _ = score_filters(units_k[b][test], unit(zu[..., idx]), kc, kc)
        logp = log_binom_tail(int((strength >= t).sum()), len(test), hit_probability(t, k, c, zs.shape[0]))
        if best is None or logp < best[0]:
            best = (logp, b, t)
    assert best is not None
    logp, blk, t = best
    match, strength, sign = score_filters(units_k[blk], unit(zu[..., blocks[blk]]), kc, kc)
    return logp + math.log(len(blocks)), blk, zu, Fit(match, kc, kc, strength, sign), t


@dataclass(frozen=True)
class BlockFit:
    """One block's best alignment of one candidate: its log p (channel maps paid), the fit, the
    hit threshold t and the stage that produced it."""

    logp: float
    fit: Fit
    threshold: float
    stage: str
    p1: float = 0.0  # the null's per-filter hit probability the tail was taken with

    def better_than(self, other: BlockFit | None) -> bool:
        return other is None or (self.logp, -float(self.fit.strength.sum())) < (other.logp, -float(other.fit.strength.sum()))


@dataclass(frozen=True)
class RotatedFit:
    """The rotated-channel test's result: its block, the suspect's kernels un-rotated, the fit, t."""

    block: str
    kernels: torch.Tensor
    fit: Fit
    threshold: float


@dataclass(frozen=True)
class CandidateFit:
    """A fitted candidate: its log p (every correction paid), the block that gave it, every block's
    fit, the channels matched, the rotated test if it won, and the deciding stage."""

    logp: float
    candidate: Candidate
    weights: torch.Tensor
    block: str
    per_block: dict[str, BlockFit]
    matched_channels: int
    rotated: RotatedFit | None
    stage: str
    unclipped: float = 0.0  # logp before the cap at 0 (p = 1)
    log_count: float = 0.0  # the candidate count paid in it (natural log)

    def recount(self, n_candidates: int) -> CandidateFit:
        """The same fit paying for ``n_candidates`` candidates instead."""
        unclipped = self.unclipped - self.log_count + math.log(n_candidates)
        return replace(self, logp=min(0.0, unclipped), unclipped=unclipped, log_count=math.log(n_candidates))


def _logp(fit: CandidateFit) -> float:
    return fit.logp


class _BlockFits:
    """The per-block bookkeeping of one candidate's stages: thresholds, the null hit probability,
    the best fit per block so far, and whether the best already decides."""

    def __init__(
        self, thresholds: dict[str, float], p1: dict[str, float], filters: int, log_channels: float, extra: float, alpha: float
    ):
        self.thresholds, self.p1, self.filters = thresholds, p1, filters
        self.log_channels, self.extra, self.log10_alpha = log_channels, extra, math.log10(alpha)
        self.best: dict[str, BlockFit] = {}

    def offer(self, block: str, fit: Fit, stage: str) -> None:
        t = self.thresholds[block]
        logp = log_binom_tail(int((fit.strength >= t).sum()), self.filters, self.p1[block]) + self.log_channels
        new = BlockFit(logp, fit, t, stage, self.p1[block])
        if new.better_than(self.best.get(block)):
            self.best[block] = new

    def decided(self) -> bool:
        return bool(self.best) and min(0.0, min(x.logp for x in self.best.values()) + self.extra) / LN10 < self.log10_alpha

    def winner(self) -> str:
        return min(self.best, key=lambda b: (self.best[b].logp, -float(self.best[b].fit.strength.sum())))


class Verifier:
    """The fingerprint channel's test, staged (module docstring).  Built once per key and
    settings; :meth:`verify` checks one suspect.  The stages are methods: :meth:`plan` picks the
    candidates to fit, :meth:`fit` aligns one through :meth:`_diagonal`, :meth:`_stored_channels`,
    :meth:`_one_pass` and :meth:`_full` until one decides, then the rotated test; :meth:`report`
    turns the best fit into a :class:`VerificationReport`."""

    def __init__(
        self,
        key: FingerprintKey | str | Path,
        alpha: float = 1e-6,
        tau: float | None = None,
        hit_cosine: float | None = None,
        align_channels: bool = True,
        search: str = "auto",
        visible_gain: float = VISIBLE_GAIN,
        max_fits: int = MAX_FITS,
        describe: bool = True,
        exhaustive: bool = False,
        gate: float | None = GATE_Z,
    ) -> None:
        self.key = key if isinstance(key, FingerprintKey) else FingerprintKey.load(key)
        self.tau = self.key.tau if tau is None else tau
        if not (0 < alpha < 1) or not (0 < self.tau <= 1) or (hit_cosine is not None and not 0 < hit_cosine < 1):
            raise InvalidArgument("alpha must be in (0,1), tau in (0,1] and hit_cosine in (0,1)")
        if search not in ("auto", "all", "none"):
            raise InvalidArgument(f"search must be 'auto', 'all' or 'none', got {search!r}")
        if max_fits < 1:
            raise InvalidArgument(f"max_fits must be >= 1, got {max_fits}")
        if gate is not None and not math.isfinite(gate):
            raise InvalidArgument(f"gate must be a finite z-score or None, got {gate}")
        self.alpha, self.hit_cosine, self.align_channels, self.search = alpha, hit_cosine, align_channels, search
        self.visible_gain, self.max_fits, self.describe, self.exhaustive = visible_gain, max_fits, describe, exhaustive
        self.gate = gate
        self.log_tests = math.log(2) if align_channels else 0.0  # the permuted-channel and the rotated-channel test

    # -- the candidates ----------------------------------------------------------------------
    def candidates(self, store: TensorStore, merges: bool = True, cap: bool = True) -> list[Candidate]:
        """What may hold the module: every reading of every tensor (:func:`candidates`), narrowed
        by ``search="none"`` and ``align_channels=False``; possibly none."""
        key = self.key
        cands = candidates(store, key, merges=merges and self.search != "none", cap=cap)
        if self.search == "none":
            own = store.resolve(key.layer)
            cands = [c for c in cands if c.name == own and c.layout == "OIHW"]
        if not self.align_channels:
            cands = [c for c in cands if c.shape[1] == key.channels]
        return cands

    def load(self, store: TensorStore, cand: Candidate, as_read: bool = False) -> torch.Tensor | None:
        """A candidate's weights as float64 ``[D′, C′, K, K]`` (``as_read``: in the dtype read, for
        the gate's screen, which works in float32 itself); None if it holds NaN or Inf (refused
        outright where the key points)."""
        key = self.key
        w = cand.load(store, key).detach().cpu()
        w = w if as_read else w.to(torch.float64)
        # a layout or a symmetry of the square only re-arranges the tensor's values (stats.align.
        # read_as): its finiteness is the tensor's, checked once per tensor
        plain = not cand.tensor and cand.layout != BAND
        if not (store.finite(cand.name, w) if plain else all_finite(w)):
            if cand.name == store.resolve(key.layer):
                raise FreqprintError(f"{store.name}: tensor {cand.name!r}, where the key points, contains NaN or Inf values")
            return None  # NaN elsewhere cannot block the search
        return w

    def _own_layer(self, store: TensorStore) -> list[Candidate]:
        """The key's own layer's untransformed readings (the first of :meth:`candidates`: as stored
        first, then any other layout its shape reads as — a flat or 2-D tensor the thief reshaped
        to quantize it), where the early path of :meth:`verify` applies: ``search="auto"`` with
        channel alignment, the tensor present and floating; else none.  The symmetries of the
        square are left to the full search, so an innocent model with a tensor at that name pays
        one or two fits more than the plan would give it, not eight."""
        key = self.key
        name = store.resolve(key.layer)
        if self.search != "auto" or not self.align_channels or name not in store.shapes:
            return []
        shape, floating = store.shapes[name]
        return [c for c in _readings(name, shape, key) if "·" not in c.layout] if floating else []

    def plan(self, store: TensorStore, pool: list[Candidate]) -> list[Candidate]:
        """What gets the full alignment; the p-value counts every candidate either way.

        With the gate (default): each tensor's (or composed view's) readings under the symmetries
        of the square are one group, scored once on its untransformed reading by the Gram screen
        (:mod:`freqprint.stats.screen`), which also names the symmetry to align; the key's own
        layer is always aligned, any other group only at ``z ≥ gate``, best first, at most
        ``max_fits``.  An unrelated suspect then costs the reads and the screen, no alignment.

        With ``gate=None``: of each group the untransformed reading always, and of the other seven
        the one the alignment-pass screen (:func:`_screen`) ranks best; then, past ``max_fits``,
        the best by that screen."""
        if self.gate is not None:
            return self.screened_plan(store, pool)[0]
        # a tensor's transformed readings (the symmetries of the square) and its compositions with
        # 1×1 convs form one group with one fit: the best by the screen
        plain = [c for c in pool if "·" not in c.layout and not c.tensor]
        groups: dict[tuple[str, str], list[Candidate]] = {}
        for c in pool:
            if c.tensor:
                groups.setdefault((c.tensor, "OIHW"), []).append(c)
            elif "·" in c.layout:
                groups.setdefault((c.name, c.layout.split("·")[0]), []).append(c)
        picked = [ranked[0] for group in groups.values() if (ranked := self._by_alignment_pass(store, group))]
        order = plain + picked
        if len(order) > self.max_fits:
            # the key's own layer stays first; the rest are ranked by the screen, one tensor in memory at a time
            head = [c for c in order[:1] if c.name == store.resolve(self.key.layer)]
            order = head + self._by_alignment_pass(store, order[len(head) :])[: self.max_fits - len(head)]
        return order

    def _by_alignment_pass(self, store: TensorStore, cands: list[Candidate]) -> list[Candidate]:
        """``cands`` best first by one cheap alignment pass (:func:`_screen`), ties in list order;
        those holding NaN or Inf left out.  One tensor in memory at a time."""
        side = key_side(self.key, self.visible_gain)
        ranked = []
        for j, c in enumerate(cands):
            w = self.load(store, c)
            if w is not None:
                ranked.append((-_screen(side.units_k, side.desc_k, w, side.v, side.blocks), j, c))
        return [c for *_, c in sorted(ranked, key=lambda x: x[:2])]

    def screened_plan(self, store: TensorStore, pool: list[Candidate]) -> tuple[list[Candidate], float | None]:
        """:meth:`plan` with the gate: the groups whose screen passes, the key's own layer first;
        and the best z of any group (None when every reading holds NaN or Inf)."""
        screen = gram_screen(self.key, self.visible_gain)
        own = store.resolve(self.key.layer)
        groups: dict[tuple[str, str], dict[str, Candidate]] = {}
        for c in pool:
            base, _, g = c.layout.partition("·")
            groups.setdefault((c.name, base), {})[g] = c
        # each group's untransformed reading scored, readings of one shape in batches of at most
        # SCREEN_BATCH values; one of many filters first on a sample of them (stats.screen, "Two
        # stages"), and whole only where the sample's z reaches FIRST_Z
        scored: dict[int, tuple[float, str]] = {}
        pending: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}
        firsts: dict[int, tuple[Candidate, Candidate, bool]] = {}  # the group's first candidate, its reading, sampled
        variants_of = list(groups.values())

        held = [0]  # values pending over every shape: at most PENDING_BATCHES batches' worth

        def flush(shape: tuple[int, ...]) -> None:
            batch = pending.pop(shape)
            held[0] -= sum(int(w.numel()) for _, w in batch)
            for (j, _), zg in zip(batch, screen.score_many([w for _, w in batch]), strict=True):
                scored[j] = zg

        # last group first: a store that caches what it read last (a GGUF file's dequantized
        # tensors) then serves the screen what reading the merged-channel views left in it
        for j, variants in reversed(list(enumerate(variants_of))):
            first = variants.get("") or next(iter(variants.values()))
            reading = replace(first, layout=first.layout.partition("·")[0])
            w = self.load(store, reading, as_read=True)
            if w is None:
                continue
            sample = None if first.name == own else screen.rows(w.shape[0], f"{reading.name}|{reading.layout}")
            firsts[j] = (first, reading, sample is not None)
            w = w if sample is None else w[sample]
            pending.setdefault(tuple(w.shape), []).append((j, w))
            held[0] += int(w.numel())
            if sum(int(x.numel()) for _, x in pending[tuple(w.shape)]) >= SCREEN_BATCH:
                flush(tuple(w.shape))
            elif held[0] >= PENDING_BATCHES * SCREEN_BATCH:  # many shapes at once: the fullest goes first
                flush(max(pending, key=lambda sh: sum(int(x.numel()) for _, x in pending[sh])))
        for shape in list(pending):
            flush(shape)
        for j in sorted((j for j in scored if firsts[j][2] and scored[j][0] >= FIRST_Z), reverse=True):
            # the whole reading, where its sample passed
            w = self.load(store, firsts[j][1], as_read=True)
            if w is not None:
                scored[j] = screen.score(w)
        passed: list[tuple[bool, float, int, Candidate]] = []
        top: float | None = None
        for j in sorted(scored):
            (z, g), first, variants = scored[j], firsts[j][0], variants_of[j]
            top = z if top is None else max(top, z)
            if first.name == own or z >= self.gate:  # type: ignore[operator]
                passed.append((first.name != own, -z, j, variants.get(g, first)))
        order = [c for *_, c in sorted(passed, key=lambda x: x[:3])]
        head = [c for c in order if c.name == own]
        rest = order[len(head) :]
        if len(head) + len(rest) > self.max_fits:
            # more pass than get aligned: the screen is blind to each filter's own channel order,
            # so decoys built from the module's kernels (every filter's channels shuffled apart)
            # tie with it there; the alignment pass's shared channel map ranks them apart
            rest = self._by_alignment_pass(store, rest)
        return (head + rest)[: self.max_fits], top

    # -- one candidate, in stages --------------------------------------------------------------
    def fit(self, store: TensorStore, cand: Candidate, n_candidates: int) -> CandidateFit | None:
        """Align one candidate in stages of growing cost, stopping at the first that decides; None
        if it holds NaN.  ``n_candidates`` (every candidate screened) is paid in the p-value."""
        key, side = self.key, key_side(self.key, self.visible_gain)
        ws = self.load(store, cand)
        if ws is None:
            return None
        d_s, c_s = ws.shape[:2]
        w2 = ws.reshape(d_s, c_s, key.kernel_size**2)
        n = min(key.channels, c_s)
        log_cands = math.log(n_candidates)
        thresholds = {
            b: self.hit_cosine if self.hit_cosine is not None else auto_hit_threshold(len(idx), n, d_s)
            for b, idx in side.blocks.items()
        }
        fits = _BlockFits(
            thresholds,
            {b: hit_probability(thresholds[b], len(idx), n, d_s) for b, idx in side.blocks.items()},
            key.filters,
            log_injections(key.channels, c_s) if self.align_channels else 0.0,
            math.log(len(side.blocks)) + self.log_tests + log_cands,
            self.alpha,
        )
        # the cheap stages run on the key's own layer as stored, where a derived model keeps the
        # module; every other reading (renamed, re-laid) goes to the full search
        staged = not self.exhaustive and cand.name == store.resolve(key.layer) and cand.layout == "OIHW"
        same = c_s == key.channels and staged
        if same and d_s >= key.filters:
            self._diagonal(side, w2, fits)
        units_s = {b: unit(w2 @ vb) for b, vb in side.v_blocks.items()} if not (same and fits.decided()) else {}
        if same and not fits.decided():
            self._stored_channels(side, units_s, fits)
        desc_s: dict[str, torch.Tensor] = {}
        if self.align_channels and staged and not fits.decided():
            self._one_pass(side, units_s, desc_s, fits)
        if not fits.decided():
            self._full(side, w2, units_s, desc_s, fits)
        blk = fits.winner()
        unclipped = fits.best[blk].logp + fits.extra
        stage = fits.best[blk].stage
        rotated = None
        if (
            self.align_channels and key.filters >= 2 and (stage == "full" or min(0.0, unclipped) / LN10 >= math.log10(self.alpha))
        ):  # not decided by the first test, or decided only by its full permutation search
            rlogp, rblk, zu, rfit, rt = _rotation_test(side.zk, w2 @ side.v, side.units_k, side.blocks, self.hit_cosine)
            rlogp += self.log_tests + log_cands
            if min(0.0, rlogp) < min(0.0, unclipped):
                kernels = (zu @ side.v.T).reshape(zu.shape[0], zu.shape[1], key.kernel_size, key.kernel_size)
                rotated = RotatedFit(rblk, kernels, rfit, rt)
                unclipped, stage = rlogp, "rotation"
        return CandidateFit(min(0.0, unclipped), cand, ws, blk, fits.best, n, rotated, stage, unclipped, log_cands)

    def _diagonal(self, side: KeySide, w2: torch.Tensor, fits: _BlockFits) -> None:
        """Stage 1: the model as the owner left it, both blocks in a few products."""
        key = self.key
        kc, kf = torch.arange(key.channels), torch.arange(key.filters)
        zs = w2[: key.filters] @ side.v
        cos = ((side.ucat * zs) @ side.ind) / ((zs * zs) @ side.ind).sqrt().clamp_min(1e-300)  # [D, C, blocks]
        signed = cos.mean(1)
        for j, b in enumerate(side.blocks):
            fits.offer(b, Fit(kf, kc, kc, signed[:, j].abs(), torch.where(signed[:, j] < 0, -1.0, 1.0).to(cos.dtype)), "diagonal")

    def _stored_channels(self, side: KeySide, units_s: dict[str, torch.Tensor], fits: _BlockFits) -> None:
        """Stage 2: filters in any order, channels as stored."""
        kc = torch.arange(self.key.channels)
        for b in side.blocks:
            match, strength, sign = greedy_filters(side.units_k[b], units_s[b], kc, kc)
            fits.offer(b, Fit(match, kc, kc, strength, sign), "stored channels")

    def _one_pass(
        self, side: KeySide, units_s: dict[str, torch.Tensor], desc_s: dict[str, torch.Tensor], fits: _BlockFits
    ) -> None:
        """Stage 3: one descriptor-started pass (filters on the hidden block's descriptors, one
        channel map, then stage 2's filter step)."""
        sb = "hidden" if len(side.blocks["hidden"]) >= 3 else "visible"  # the block fine-tuning barely moves, if it has room
        desc_s[sb] = descriptor(units_s[sb])
        start = hungarian(side.desc_k[sb] @ desc_s[sb].T)
        for b in side.blocks:
            bkc, perm = channel_map(side.units_k[b], units_s[b], start, None)
            match, strength, sign = greedy_filters(side.units_k[b], units_s[b], bkc, perm)
            fits.offer(b, Fit(match, perm, bkc, strength, sign), "one pass")

    def _full(
        self, side: KeySide, w2: torch.Tensor, units_s: dict[str, torch.Tensor], desc_s: dict[str, torch.Tensor], fits: _BlockFits
    ) -> None:
        """Stage 4: the full alternating search from several starts."""
        if self.align_channels:
            desc_s.update({b: descriptor(u) for b, u in units_s.items() if b not in desc_s})
            desc_s["all"] = descriptor(unit(w2 @ side.v))
            inits = [hungarian(side.desc_k[b] @ desc_s[b].T) for b in ("all", *BLOCKS)]
            for b in side.blocks:
                fits.offer(b, align(side.units_k[b], units_s[b], inits, fits.thresholds[b]), "full")
        else:
            kc = torch.arange(self.key.channels)
            for b in side.blocks:
                match, strength, sign = score_filters(side.units_k[b], units_s[b], kc, kc)
                fits.offer(b, Fit(match, kc, kc, strength, sign), "full")

    # -- a suspect -----------------------------------------------------------------------------
    def verify(self, suspect: nn.Module | str | Path | dict[str, torch.Tensor] | TensorStore) -> VerificationReport:
        """Check one suspect (model, weights file, state dict or tensor store) against the key."""
        t0 = time.perf_counter()
        key = self.key
        store = open_tensors(suspect)
        found = Search[CandidateFit]()
        own = self._own_layer(store)
        if not own and not _capped(self.candidates(store, merges=False, cap=False)):
            # a readable file gets a verdict, not a refusal: nothing there is the module (nor merges
            # to it, a merged view being never wider than its consumer)
            reason = (
                f"no tensor reads as conv filters [*, {key.channels}, {key.kernel_size}, {key.kernel_size}] "
                f"(no {key.layer!r} either): wrong architecture, or no fingerprint module"
            )
            return self.nothing_to_fit(store.name, reason, time.perf_counter() - t0)
        done: list[Candidate] = []
        if own:
            # the key's own layer first, each of its readings (as stored first), paying for every
            # reading the file could give -- counted from shapes, the merged-channel readings as an
            # upper bound -- so a model as the owner left it, or with that one tensor re-laid out
            # or re-encoded (stored flat to be quantized), is decided before any other tensor is
            # read or any reading listed
            bound = merged_bound(store, key, candidate_count(store, key))
            for first in own:
                early = self.fit(store, first, bound)
                if early is not None and early.logp / LN10 < math.log10(self.alpha):
                    return self.report(early, store.name, bound, len(done) + 1, time.perf_counter() - t0)
                found.offer(early, _logp)
                done.append(first)
        cands = self.candidates(store, merges=True)  # the merged readings, now that they are needed
        found.best = None if found.best is None else found.best.recount(len(cands))
        screened: float | None = math.inf  # the best screen z (None: every reading NaN or Inf)
        if self.gate is not None:
            planned, screened = self.screened_plan(store, cands)
        else:
            planned = self.plan(store, cands)
        todo = [c for c in planned if c not in done]
        best_first(todo, lambda c: self.fit(store, c, len(cands)), _logp, search=found)
        best = found.best
        if best is None and screened is not None and not todo:
            reason = f"no reading passed the screen (best z {screened:.1f} < {self.gate:g}; --no-gate aligns the best anyway)"
            return self.nothing_to_fit(store.name, reason, time.perf_counter() - t0, len(cands))
        if best is None:
            raise FreqprintError(
                f"{store.name}: every tensor that reads as conv filters [*, {key.channels}, {key.kernel_size}, "
                f"{key.kernel_size}] contains NaN or Inf values"
            )
        return self.report(best, store.name, len(cands), found.fitted, time.perf_counter() - t0)

    def nothing_to_fit(self, name: str, reason: str, seconds: float, screened: int = 0) -> VerificationReport:
        """The verdict on a suspect none of whose tensors reads as the module's filters, or none of
        whose ``screened`` readings passed the gate: not found, p = 1, no reading aligned (a file
        that loads is answered, never refused).  Screened out and described, the τ-score and S′
        cosine are 0, as for an alignment that matches no filter."""
        key = self.key
        described = 0.0 if screened and self.describe else None
        return VerificationReport(
            found=False,
            log10_p=0.0,
            alpha=self.alpha,
            score=described,
            mean_cosine=described,
            hits=0,
            filters=key.filters,
            suspect_filters=0,
            suspect_channels=0,
            matched_channels=0,
            tau=self.tau,
            hit_cosine=1.0,
            block="",
            log10_p_blocks={},
            layer="",
            layout="",
            layers_searched=screened,
            fitted=0,
            channels_permuted=False,
            suspect=name,
            key_commitment=key.commitment,
            frequency_set=key.frequency_set,
            seconds=seconds,
            extra={"reason": reason},
            anchored=key.anchored,
            stage="screen" if screened else "none",
        )

    def report(self, best: CandidateFit, name: str, n_candidates: int, fitted: int, seconds: float) -> VerificationReport:
        """The verdict on the best candidate, described by the paper's τ-score and S′ cosine."""
        key = self.key
        bf = best.per_block[best.block]
        blk, fit, t, ws_described = best.block, bf.fit, bf.threshold, best.weights
        if best.rotated is not None:
            blk, ws_described, fit, t = best.rotated.block, best.rotated.kernels, best.rotated.fit, best.rotated.threshold
        score = mean_cos = None
        if self.describe:
            score, mean_cos = _sprime_stats(key, key.kernels(), ws_described, fit, self.tau)  # against the trained kernels
        extra_log = math.log(len(key_side(key, self.visible_gain).blocks)) + self.log_tests + math.log(n_candidates)
        log10_p = best.logp / LN10
        hits = int((fit.strength >= t).sum())
        p1 = factor = None
        if best.rotated is None:  # the tail the verdict paid: Binomial(D, p1) at the hit count, times the factors
            p1 = bf.p1
            factor = (best.unclipped - log_binom_tail(hits, key.filters, p1)) / LN10
        return VerificationReport(
            found=log10_p < math.log10(self.alpha),
            log10_p=log10_p,
            alpha=self.alpha,
            score=score,
            mean_cosine=mean_cos,
            hits=hits,
            filters=key.filters,
            suspect_filters=int(best.weights.shape[0]),
            suspect_channels=int(best.weights.shape[1]),
            matched_channels=int(best.matched_channels),
            tau=self.tau,
            hit_cosine=t,
            block=blk + ("+rotation" if best.rotated is not None else ""),
            log10_p_blocks={b: min(0.0, v.logp + extra_log) / LN10 for b, v in best.per_block.items()},
            layer=best.candidate.name,
            layout=best.candidate.layout,
            layers_searched=n_candidates,
            fitted=fitted,
            channels_permuted=bool((fit.perm != fit.key_channels).any()),
            suspect=name,
            key_commitment=key.commitment,
            frequency_set=key.frequency_set,
            seconds=seconds,
            anchored=key.anchored,
            stage=best.stage,
            filter_cosines=[round(float(v), 6) for v in fit.strength],
            filter_match=[int(v) for v in fit.match],
            hit_probability=p1,
            log10_factor=factor,
        )


def verify(
    key: FingerprintKey | str | Path,
    suspect: nn.Module | str | Path | dict[str, torch.Tensor] | TensorStore,
    alpha: float = 1e-6,
    tau: float | None = None,
    hit_cosine: float | None = None,
    align_channels: bool = True,
    search: str = "auto",
    visible_gain: float = VISIBLE_GAIN,
    max_fits: int = MAX_FITS,
    describe: bool = True,
    exhaustive: bool = False,
    gate: float | None = GATE_Z,
) -> VerificationReport:
    """Check a suspect (model, weights file or state dict) against a key:
    ``Verifier(key, ...).verify(suspect)``.

    Args:
        alpha: significance level of the decision (false-positive probability under H0).
        tau: cosine threshold of the reported τ-score (default: the key's, 0.99).
        hit_cosine: threshold t on a filter's mean per-kernel cosine; ``None`` picks the smallest
            grid value with hit probability ≤ 0.01 under H0 (data-independent).
        align_channels: also search input-channel maps (costs ``log C!`` in p); off, channels are
            taken in stored order (the suspect must then have exactly C).
        search: ``"auto"`` tries the key's layer first and, unless that already decides, every
            tensor that reads as conv filters; ``"all"`` always searches; ``"none"`` only the key's
            layer, as stored.
        visible_gain: relative gain separating the visible from the hidden kernel directions.
        max_fits: at most this many candidates get the full alignment; when a file holds more,
            all are ranked by a cheap descriptor screen first.  The p-value counts every
            candidate screened, and the report says how many were fitted (``fitted``).
        describe: also compute the paper's τ-score and mean S′ cosine (they describe, they do not
            decide).  Off, ``score`` and ``mean_cosine`` are ``None`` and a verdict costs less: a
            registry scan has no use for them.
        exhaustive: skip the cheap stages and run the full alternating search on every candidate
            fitted: the most evidence the search finds, at its full cost.  The staged default
            stops as soon as p < alpha, so a found verdict's p can be larger than this one's (the
            verdict is the same; docs/benchmarks.md §12a measures both).
        gate: a tensor other than the key's own layer is aligned only when the Gram screen
            (:mod:`freqprint.stats.screen`) gives it ``z ≥ gate``, so an unrelated suspect costs
            its reads and the screen; ``None`` ranks every reading by an alignment pass instead
            and aligns the best ``max_fits`` (slower; finds modules renamed *and* noised to a
            per-kernel cosine of 0.7 or less, docs/benchmarks.md §12f).  Power only: the p-value
            counts every reading either way.
    """
    return Verifier(
        key,
        alpha=alpha,
        tau=tau,
        hit_cosine=hit_cosine,
        align_channels=align_channels,
        search=search,
        visible_gain=visible_gain,
        max_fits=max_fits,
        describe=describe,
        exhaustive=exhaustive,
        gate=gate,
    ).verify(suspect)
