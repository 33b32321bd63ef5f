"""Verification: does a suspect model carry the key's fingerprint?

**What is compared.**  The key holds the module's filters through their spectra on S′, which
determine each K×K kernel exactly (:meth:`FingerprintKey.kernels`).  Every kernel — the key's
and the suspect's — is written in the orthonormal basis of :func:`freqprint.spectral.kernel_basis`
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
own layer is tried first.  Candidates are chosen from shapes alone (a safetensors file is read
lazily, one tensor at a time); when there are more than ``max_fits`` (64), each is ranked by one
cheap alignment pass (:func:`_screen`) and only the best are fully aligned, while the Bonferroni
factor still counts every candidate screened.  Linear mixing of the filters is *not* covered: it is a symmetry of the
``merge="linear"`` module only, whose failure BENCHMARKS §8 states.

**Statistics.**  For key filter d matched to suspect filter e under channel map π,
``s_d = |mean_c cos(ẑ_key[d,c], ẑ_sus[e,π(c)])|`` over the n = min(C, C′) matched channels.  A key
filter *hits* when ``s_d ≥ t``.  Under H0 (the suspect is unrelated to the key) the key's kernels
are the secret-seeded i.i.d. Gaussian initialisation — exactly so when the key holds W₀ (extracted
with the secret: :meth:`FingerprintKey.decision_kernels`); for a key of trained kernels only
while training barely moved them (SGD; Adam breaks it, SECURITY.md) — so each block's direction
is uniform on its
sphere and ``P[hit] ≤ p1 = 2·D′·bound(t)`` with the Chernoff bound of :mod:`freqprint.null`; the
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
into the layers that read it (:class:`freqprint.attacks.ResidualRotation`): the function is
unchanged and the module's kernels are mixed over their input channels, ``W[d] → Q·W[d]``, which
no permutation undoes.  So a second test runs beside the first (unless the first already decides):
Q is fitted by orthogonal Procrustes (:func:`freqprint.align.rotation_fit`; filters matched first
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

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.align import (
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
from freqprint.align import fit as align
from freqprint.checkpoint import TensorStore, all_finite, open_tensors
from freqprint.errors import FreqprintError, InvalidArgument, NoMaterial
from freqprint.key import FingerprintKey
from freqprint.null import LN10, auto_hit_threshold, format_p, hit_probability, log_binom_tail, log_injections
from freqprint.spectral import complex_cosine, kernel_basis, revised_dft_at

__all__ = ["BLOCKS", "Candidate", "VerificationReport", "candidates", "format_p", "verify"]

BLOCKS = ("visible", "hidden")
VISIBLE_GAIN = 0.1  # relative gain at or above which a kernel direction counts as visible
MAX_CANDIDATES = 100_000  # readings of one file; beyond this the file is refused
MAX_FITS = 64  # candidates fully aligned; more are ranked by a cheap screen first (the p-value pays for all)


@dataclass
class Candidate:
    """One reading of a suspect tensor as conv filters ``[D′, C′, K, K]`` (shape only until loaded)."""

    name: str
    layout: str
    shape: tuple[int, int, int, int]

    def load(self, store: TensorStore, kernel_size: int, channels: int) -> torch.Tensor:
        return read_as(store.get(self.name), self.layout, channels, kernel_size)


@dataclass
class VerificationReport:
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

    def to_dict(self, include_timing: bool = False) -> dict[str, Any]:
        """The report as plain data.  Without ``include_timing`` it is a pure function of the key
        and the suspect: the same inputs give byte-identical JSON on any run and thread count."""
        d = asdict(self)
        if not include_timing:
            d.pop("seconds")
        return d

    def summary(self) -> str:
        verdict = "FOUND" if self.found else "not found"
        described = (
            f"τ-score {self.score:.3f} (τ={self.tau}), mean S′ cosine {self.mean_cosine:.3f}, "
            if self.score is not None and self.mean_cosine is not None
            else ""
        )
        return (
            f"fingerprint {verdict}: p = {format_p(self.log10_p)} (alpha {self.alpha:g}), {self.hits}/{self.filters} filters hit "
            f"({self.block} block), {described}layer {self.layer}" + ("" if self.anchored else " [key without W₀: SECURITY.md]")
        )


# ---------------------------------------------------------------------------------------------
# finding the module by content


def candidates(store: TensorStore, key: FingerprintKey) -> list[Candidate]:
    """Every floating tensor that reads as conv filters with the key's kernel size and at least
    half its input channels; the key's own layer first.  Decided from shapes alone (nothing is
    read), so a file of any size costs only its header here."""
    c, k = key.channels, key.kernel_size
    names = sorted(store.shapes, key=lambda n: (n != key.layer, n))
    out: list[Candidate] = []
    for name in names:
        shape, floating = store.shapes[name]
        if not floating or math.prod(shape) < k * k * max(1, c // 2):
            continue
        for layout, wshape in reading_shapes(shape, c, k):
            if wshape[1] * 2 >= c and wshape[0] >= 1:
                out.append(Candidate(name, layout, wshape))
        if len(out) > MAX_CANDIDATES:
            raise FreqprintError(
                f"{store.name} has more than {MAX_CANDIDATES} tensors that read as conv filters; "
                "pass search='none' to test the key's layer alone"
            )
    return out


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


def _key_side(key: FingerprintKey, visible_gain: float) -> tuple[Any, ...]:
    """The key's half of every comparison: basis, blocks, decision kernels in the basis, their unit
    blocks and descriptors.  A pure function of the key's decision kernels, so it is kept on the key
    object (with the tensor itself and its version counter, so an edited or replaced tensor is
    recomputed): verifying
    many suspects against one key pays for it once."""
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
    cached = key.__dict__.get("_verify_side")
    if cached is not None and cached[0] is src and cached[1] == tag:  # the same tensor object, unmodified
        return cached[2]
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
    side = (v, blocks, zk, units_k, desc_k, v_blocks, ind, ucat)
    key.__dict__["_verify_side"] = (src, tag, side)
    return side


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
) -> VerificationReport:
    """Check a suspect (model, weights file or state dict) against a key.

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
            fitted (the search before issue 13): the most evidence the search finds, at its full
            cost.  The staged default stops as soon as p < alpha, so a found verdict's p can be
            larger than this one's (the verdict is the same; BENCHMARKS §12a measures both).
    """
    t0 = time.perf_counter()
    if not isinstance(key, FingerprintKey):
        key = FingerprintKey.load(key)
    tau = key.tau if tau is None else tau
    if not (0 < alpha < 1) or not (0 < tau <= 1) or (hit_cosine is not None and not 0 < hit_cosine < 1):
        raise InvalidArgument("alpha must be in (0,1), tau in (0,1] and hit_cosine in (0,1)")
    if search not in ("auto", "all", "none"):
        raise InvalidArgument(f"search must be 'auto', 'all' or 'none', got {search!r}")
    if max_fits < 1:
        raise InvalidArgument(f"max_fits must be >= 1, got {max_fits}")
    store = open_tensors(suspect)
    name = store.name
    cands = candidates(store, key)
    if search == "none":
        cands = [c for c in cands if c.name == key.layer and c.layout == "OIHW"]
    if not align_channels:
        cands = [c for c in cands if c.shape[1] == key.channels]
    if not cands:
        raise NoMaterial(
            f"suspect holds no finite tensor that reads as conv filters [*, {key.channels}, {key.kernel_size}, "
            f"{key.kernel_size}] (no {key.layer!r} either): wrong architecture, or no fingerprint module"
        )
    v, blocks, zk, units_k, desc_k, v_blocks, ind, ucat = _key_side(key, visible_gain)
    kk = key.kernel_size**2

    def load(cand: Candidate) -> torch.Tensor | None:
        w = cand.load(store, key.kernel_size, key.channels).detach().to("cpu", torch.float64)
        if not all_finite(w):
            if cand.name == key.layer:
                raise FreqprintError(f"{name}: tensor {key.layer!r}, where the key points, contains NaN or Inf values")
            return None  # NaN elsewhere cannot block the search
        return w

    n_screened = len(cands)
    log_cands = math.log(n_screened)
    log_tests = math.log(2) if align_channels else 0.0  # the permuted-channel and the rotated-channel test

    def plan(pool: list[Candidate]) -> list[Candidate]:
        """What gets the full alignment.  Of each tensor's readings under the symmetries of the
        square, the untransformed one always, and of the other seven the one the screen ranks best
        (a thief's transform is one of them); then, past ``max_fits``, the best by the screen.  The
        p-value counts every candidate either way."""
        plain = [c for c in pool if "·" not in c.layout]
        groups: dict[tuple[str, str], list[Candidate]] = {}
        for c in pool:
            if "·" in c.layout:
                groups.setdefault((c.name, c.layout.split("·")[0]), []).append(c)
        picked = []
        for group in groups.values():
            scored = [(-_screen(units_k, desc_k, w, v, blocks), j, c) for j, c in enumerate(group) if (w := load(c)) is not None]
            if scored:
                picked.append(min(scored, key=lambda x: (x[0], x[1]))[2])
        order = plain + picked
        if len(order) > max_fits:
            # the key's own layer stays first; the rest are ranked by the screen, one tensor in memory at a time
            head = [c for c in order[:1] if c.name == key.layer]
            scored = []
            for j, cand in enumerate(order[len(head) :]):
                w = load(cand)
                if w is not None:
                    scored.append((-_screen(units_k, desc_k, w, v, blocks), j, cand))
            order = head + [c for _, _, c in sorted(scored, key=lambda x: (x[0], x[1]))][: max_fits - len(head)]
        return order

    best: dict[str, Any] | None = None
    fitted = 0

    kc_filters = torch.arange(key.filters)

    def consider(cand: Candidate) -> float | None:
        """Fit one candidate, keep it if best; its log p (None if it holds NaN).  The alignment runs
        in stages of growing cost (module docstring, "Stages") and stops at the first that decides."""
        nonlocal best, fitted
        ws = load(cand)
        if ws is None:
            return None
        fitted += 1
        d_s, c_s = ws.shape[:2]
        w2 = ws.reshape(d_s, c_s, kk)
        n = min(key.channels, c_s)
        log_channels = log_injections(key.channels, c_s) if align_channels else 0.0
        extra = math.log(len(blocks)) + log_tests + log_cands
        thresholds = {
            b: hit_cosine if hit_cosine is not None else auto_hit_threshold(len(idx), n, d_s) for b, idx in blocks.items()
        }
        p1 = {b: hit_probability(thresholds[b], len(idx), n, d_s) for b, idx in blocks.items()}
        per_block: dict[str, tuple[float, Fit, float, str]] = {}

        def offer(b: str, fit: Fit, stage: str) -> None:
            t = thresholds[b]
            logp = log_binom_tail(int((fit.strength >= t).sum()), key.filters, p1[b]) + log_channels
            old = per_block.get(b)
            if old is None or (logp, -float(fit.strength.sum())) < (old[0], -float(old[1].strength.sum())):
                per_block[b] = (logp, fit, t, stage)

        def decided() -> bool:
            return min(0.0, min(x[0] for x in per_block.values()) + extra) / LN10 < math.log10(alpha)

        # the cheap stages run on the key's own layer as stored, where a derived model keeps the
        # module; every other reading (renamed, re-laid) goes to the full search, as before
        staged = not exhaustive and cand.name == key.layer and cand.layout == "OIHW"
        same = c_s == key.channels and staged
        kc = torch.arange(key.channels)
        if same and d_s >= key.filters:  # stage 1: the model as the owner left it, both blocks in a few products
            zs = w2[: key.filters] @ v
            cos = ((ucat * zs) @ ind) / ((zs * zs) @ ind).sqrt().clamp_min(1e-300)  # [D, C, blocks]
            signed = cos.mean(1)
            for j, b in enumerate(blocks):
                offer(
                    b,
                    Fit(kc_filters, kc, kc, signed[:, j].abs(), torch.where(signed[:, j] < 0, -1.0, 1.0).to(cos.dtype)),
                    "diagonal",
                )
        if not same or not (per_block and decided()):
            units_s = {b: unit(w2 @ vb) for b, vb in v_blocks.items()}  # each block's coordinates in one product
        else:
            units_s = {}
        if same and not (per_block and decided()):  # stage 2: filters in any order, channels as stored
            for b in blocks:
                match, strength, sign = greedy_filters(units_k[b], units_s[b], kc, kc)
                offer(b, Fit(match, kc, kc, strength, sign), "stored channels")
        desc_s: dict[str, torch.Tensor] = {}
        if align_channels and staged and not (per_block and decided()):  # stage 3: one descriptor-started pass
            sb = "hidden" if len(blocks["hidden"]) >= 3 else "visible"  # the block fine-tuning barely moves, if it has room
            desc_s[sb] = descriptor(units_s[sb])
            start = hungarian(desc_k[sb] @ desc_s[sb].T)
            for b in blocks:
                bkc, perm = channel_map(units_k[b], units_s[b], start, None)
                match, strength, sign = greedy_filters(units_k[b], units_s[b], bkc, perm)
                offer(b, Fit(match, perm, bkc, strength, sign), "one pass")
        if not (per_block and decided()):  # stage 4: the full alternating search
            if align_channels:
                desc_s.update({b: descriptor(u) for b, u in units_s.items() if b not in desc_s})
                desc_s["all"] = descriptor(unit(w2 @ v))
                inits = [hungarian(desc_k[b] @ desc_s[b].T) for b in ("all", *BLOCKS)]
                for b in blocks:
                    offer(b, align(units_k[b], units_s[b], inits, thresholds[b]), "full")
            else:
                for b in blocks:
                    match, strength, sign = score_filters(units_k[b], units_s[b], kc, kc)
                    offer(b, Fit(match, kc, kc, strength, sign), "full")
        blk = min(per_block, key=lambda b: (per_block[b][0], -float(per_block[b][1].strength.sum())))
        logp = min(0.0, per_block[blk][0] + extra)
        stage = per_block[blk][3]
        rotated = None
        if align_channels and key.filters >= 2 and logp / LN10 >= math.log10(alpha):  # not decided by the first test
            rlogp, rblk, zu, rfit, rt = _rotation_test(zk, w2 @ v, units_k, blocks, hit_cosine)
            rlogp = min(0.0, rlogp + log_tests + log_cands)
            if rlogp < logp:
                rotated = (rblk, (zu @ v.T).reshape(zu.shape[0], zu.shape[1], key.kernel_size, key.kernel_size), rfit, rt)
                logp, stage = rlogp, "rotation"
        if best is None or logp < best["logp"]:
            best = {
                "logp": logp,
                "cand": cand,
                "ws": ws,
                "block": blk,
                "per_block": per_block,
                "n": n,
                "rotated": rotated,
                "stage": stage,
            }
        return logp

    first = cands[0]
    done = []
    if search == "auto" and first.name == key.layer and first.layout == "OIHW":
        lp = consider(first)
        done.append(first)
        decided = lp is not None and lp / LN10 < math.log10(alpha)  # the key's own layer already decides
    else:
        decided = False
    if not decided:
        for cand in plan(cands):
            if cand not in done:
                consider(cand)
    if best is None:
        raise FreqprintError(
            f"{name}: every tensor that reads as conv filters [*, {key.channels}, {key.kernel_size}, "
            f"{key.kernel_size}] contains NaN or Inf values"
        )
    logp, blk, per_block = best["logp"], best["block"], best["per_block"]
    _, fit, t, _ = per_block[blk]
    ws_described = best["ws"]
    if best["rotated"] is not None:
        blk, ws_described, fit, t = best["rotated"]
    score = mean_cos = None
    if describe:
        score, mean_cos = _sprime_stats(key, key.kernels(), ws_described, fit, tau)  # described against the trained kernels
    extra_log = math.log(len(blocks)) + log_tests + log_cands
    log10_p = logp / LN10
    return VerificationReport(
        found=log10_p < math.log10(alpha),
        log10_p=log10_p,
        alpha=alpha,
        score=score,
        mean_cosine=mean_cos,
        hits=int((fit.strength >= t).sum()),
        filters=key.filters,
        suspect_filters=int(best["ws"].shape[0]),
        suspect_channels=int(best["ws"].shape[1]),
        matched_channels=int(best["n"]),
        tau=tau,
        hit_cosine=t,
        block=blk + ("+rotation" if best["rotated"] is not None else ""),
        log10_p_blocks={b: min(0.0, v[0] + extra_log) / LN10 for b, v in per_block.items()},
        layer=best["cand"].name,
        layout=best["cand"].layout,
        layers_searched=n_screened,
        fitted=fitted,
        channels_permuted=bool((fit.perm != fit.key_channels).any()),
        suspect=name,
        key_commitment=key.commitment,
        frequency_set=key.frequency_set,
        seconds=time.perf_counter() - t0,
        anchored=key.anchored,
        stage=best["stage"],
    )
