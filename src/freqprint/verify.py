"""Verification: does a suspect model carry the key's fingerprint?

**Alignment.**  A thief may permute the module's D output filters (Thm 3.6) and, to keep the
network's function after permuting the previous layer, its C **input channels** too — which the
paper does not handle (paper-notes §2.6).  We align both with Hungarian matching
(``scipy.optimize.linear_sum_assignment``):

1. filters, by a descriptor blind to input-channel order: each filter's Gram matrix across the
   key's frequencies, ``G_d[f,f'] = Σ_c conj(â_{d,c,f})·â_{d,c,f'}``;
2. input channels, given that filter matching, by the summed complex cosines;
3. filters again with the full per-frequency cosines, maximising the τ-count (the paper's score)
   with the mean cosine as tie-break; steps 2–3 repeat twice.

The identity channel order is scored as well and the better alignment kept (its p-value pays
for the choice, below).  Positive scaling needs nothing: the cosine ignores it (Thm 3.5).

**Statistics.**  ``score`` is the paper's ρ: the fraction of (filter, frequency) pairs whose
complex cosine is ≥ τ after matching.  ``mean_cosine`` is the average cosine.  Both are reported;
neither decides, because no fixed cut on them has a known error rate.

**Decision (calibrated test).**  Null hypothesis H0: the suspect is unrelated to the key.  The
key's filters are then independent draws of the secret-seeded i.i.d. Gaussian initialisation
(training barely moves their S′ components), independent of the suspect.  For one key filter and
one fixed suspect filter, the complex cosine at one frequency is the cosine between a fixed vector
and a random Gaussian vector with i.i.d. channels; we use the tail of the cosine in ``R^C``,
``q(t) = P[(1+cos)/2 ≥ (1+t)/2]`` with ``(1+cos)/2 ~ Beta((C-1)/2, (C-1)/2)`` — exact for a real
spectrum, and conservative against the circular complex case (``R^{2C}``), which holds on S′.
A key filter *hits* when at least a fraction h (0.5) of its frequencies have cosine ≥ t.
By Markov's inequality a hit against one fixed suspect filter has probability ≤ q(t)/h, and by
a union bound over the D′ suspect filters the matching may pick, ≤ ``p1 = D′·q(t)/h``.  Key
filters are independent given the suspect, so the number of hits is dominated by
``Binomial(D, p1)``; the p-value is its upper tail, multiplied (Bonferroni) by 2 for the two
alignments, by ``C!`` for the channel search and by the number of layers searched.  The p-value is
exact to the model above; a test checks it against independently initialised modules and trained
unrelated models.  ``found`` is ``p < alpha`` (default 1e-6).

**Choice of t.**  With few channels the tail q(t) is heavy (C = 8: q(0.8) = 4.8e-3), and the
union bound over D′ = 256 suspect filters would push ``p1`` to 1, so nothing could ever be
detected.  By default t is therefore the smallest value of ``HIT_COSINE_GRID`` with
``p1 ≤ 0.01``; it depends only on (C, D′, h), never on the cosines, so it costs no multiplicity.
For C ≥ 32 this is t = 0.8.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln, logsumexp
from scipy.stats import beta as beta_dist
from torch import nn

from freqprint.checkpoint import check_finite, state_dict_of
from freqprint.errors import FreqprintError
from freqprint.key import FingerprintKey
from freqprint.spectral import revised_dft_at

__all__ = ["Alignment", "VerificationReport", "align", "auto_hit_cosine", "best_log10_p", "null_tail", "verify"]

LN10 = math.log(10)
HIT_COSINE_GRID = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)


def auto_hit_cosine(channels: int, suspect_filters: int, hit_fraction: float = 0.5, target: float = 0.01) -> float:
    """Smallest t of ``HIT_COSINE_GRID`` with ``D′·q(t)/h ≤ target`` (data-independent)."""
    for t in HIT_COSINE_GRID:
        if suspect_filters * null_tail(t, channels) / hit_fraction <= target:
            return t
    return HIT_COSINE_GRID[-1]


@dataclass
class Alignment:
    filter_match: torch.Tensor  # [D] index of the suspect filter matched to each key filter (-1: none)
    channel_perm: torch.Tensor  # [C] suspect channel used for each key channel
    cosines: torch.Tensor  # [D, F] complex cosine of matched pairs (0 where unmatched)
    searched_channels: bool


@dataclass
class VerificationReport:
    found: bool
    p_value: float
    log10_p: float
    alpha: float
    score: float
    mean_cosine: float
    hits: int
    filters: int
    suspect_filters: int
    tau: float
    hit_cosine: float
    hit_fraction: float
    layer: str
    layers_searched: int
    channels_permuted: bool
    suspect: str
    key_commitment: str
    frequency_set: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "FOUND" if self.found else "not found"
        return (
            f"fingerprint {verdict}: p = {format_p(self.log10_p)} (alpha {self.alpha:g}), τ-score {self.score:.3f} "
            f"(τ={self.tau}), mean cosine {self.mean_cosine:.3f}, {self.hits}/{self.filters} filters hit, layer {self.layer}"
        )


def format_p(log10_p: float) -> str:
    if log10_p > -4:
        return f"{10 ** log10_p:.3g}"
    return f"1e{log10_p:.1f}"


def null_tail(t: float, channels: int) -> float:
    """``q(t)``: P[cos ≥ t] between a fixed vector and a random direction in ``R^channels``."""
    if channels <= 1:
        return 0.5 if t > -1 else 1.0
    a = (channels - 1) / 2
    return float(beta_dist.sf((1 + t) / 2, a, a))


def _normalise(s: torch.Tensor) -> torch.Tensor:
    return s / torch.linalg.vector_norm(s, dim=1, keepdim=True).clamp_min(1e-30)


def _hungarian(score: torch.Tensor) -> torch.Tensor:
    rows, cols = linear_sum_assignment(score.cpu().numpy(), maximize=True)
    match = torch.full((score.shape[0],), -1, dtype=torch.long)
    match[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return match


def _pair_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``cos[d, e, f] = Re Σ_c conj(a[d,c,f])·b[e,c,f]`` for unit-normalised spectra."""
    return torch.einsum("dcf,ecf->def", a.conj(), b).real


def _match_filters(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    cos = _pair_cosines(a, b)
    count = ((cos >= tau).double() * w).sum(-1)
    mean = (cos * w).sum(-1) / w.sum()
    # lexicographic: maximise the τ-count (paper's ρ), break ties by mean cosine
    match = _hungarian(count * (2 * a.shape[0] + 1) + mean)
    matched = torch.zeros(a.shape[0], a.shape[2], dtype=cos.dtype)
    ok = match >= 0
    matched[ok] = cos[ok.nonzero().squeeze(1), match[ok]]
    return match, matched


def align(key_spectra: torch.Tensor, suspect_spectra: torch.Tensor, weights: torch.Tensor, tau: float, channels: bool) -> Alignment:
    """Match suspect filters (and, if ``channels``, input channels) to the key's; see module doc."""
    a = _normalise(key_spectra.to(torch.complex128))
    b = _normalise(suspect_spectra.to(torch.complex128))
    w = weights.double()
    c = a.shape[1]
    perm = torch.arange(c)
    searched = channels and c > 1
    if not searched:
        match, matched = _match_filters(a, b, w, tau)
    else:
        ga = torch.einsum("dcf,dcg->dfg", a.conj(), a)
        gb = torch.einsum("dcf,dcg->dfg", b.conj(), b)
        eye = torch.eye(a.shape[2], dtype=torch.bool)
        ga, gb = ga[:, ~eye], gb[:, ~eye]
        ga = ga / torch.linalg.vector_norm(ga, dim=1, keepdim=True).clamp_min(1e-30)
        gb = gb / torch.linalg.vector_norm(gb, dim=1, keepdim=True).clamp_min(1e-30)
        match = _hungarian((ga.conj() @ gb.T).real)
        for _ in range(3):
            ok = match >= 0
            cost = torch.einsum("dcf,dkf,f->ck", a[ok].conj(), b[match[ok]], w.to(a.dtype)).real
            perm = _hungarian(cost)
            match, matched = _match_filters(a, b[:, perm], w, tau)  # the last pass is the result
    return Alignment(match, perm, matched, searched)


def _log_binom_tail(k: int, n: int, p: float) -> float:
    """``log P[Binomial(n, p) ≥ k]``, stable far below float range (log-sum-exp of the pmf)."""
    if k <= 0 or p >= 1:
        return 0.0
    if p <= 0:
        return -math.inf
    j = np.arange(k, n + 1, dtype=np.float64)
    logpmf = gammaln(n + 1) - gammaln(j + 1) - gammaln(n - j + 1) + j * math.log(p) + (n - j) * math.log1p(-p)
    return float(logsumexp(logpmf))


def best_log10_p(channels: int, filters: int, hit_fraction: float = 0.5) -> float:
    """The smallest log10 p-value the test can ever give (every filter hits, with the channel
    search): a fingerprint whose best case is not below alpha can never be verified."""
    t = auto_hit_cosine(channels, filters, hit_fraction)
    p1 = min(1.0, filters * null_tail(t, channels) / hit_fraction)
    logp = _log_binom_tail(filters, filters, p1) + math.log(2) + (float(gammaln(channels + 1)) if channels > 1 else 0.0)
    return min(0.0, logp) / LN10


def _candidates(sd: dict[str, torch.Tensor], key: FingerprintKey, search: str) -> list[str]:
    def fits(t: torch.Tensor) -> bool:
        return t.ndim == 4 and t.shape[1] == key.channels and tuple(t.shape[2:]) == (key.kernel_size, key.kernel_size)

    if search not in ("auto", "all", "none"):
        raise FreqprintError(f"search must be 'auto', 'all' or 'none', got {search!r}")
    if search != "all" and key.layer in sd and fits(sd[key.layer]):
        return [key.layer]
    if search == "none":
        raise FreqprintError(f"suspect has no tensor {key.layer!r} of shape [*, {key.channels}, {key.kernel_size}, {key.kernel_size}]")
    cands = [k for k, v in sd.items() if v.is_floating_point() and fits(v)]
    if not cands:
        raise FreqprintError(
            f"suspect holds no conv weight of shape [*, {key.channels}, {key.kernel_size}, {key.kernel_size}] "
            f"(no {key.layer!r} either): wrong architecture, or no fingerprint module"
        )
    return cands


def verify(
    key: FingerprintKey | str | Path,
    suspect: nn.Module | str | Path | dict[str, torch.Tensor],
    alpha: float = 1e-6,
    tau: float | None = None,
    hit_cosine: float | None = None,
    hit_fraction: float = 0.5,
    align_channels: bool = True,
    search: str = "auto",
) -> VerificationReport:
    """Check a suspect (model, weights file or state dict) against a key.

    Args:
        alpha: significance level of the decision (false-positive probability under H0).
        tau: cosine threshold of the reported τ-score (default: the key's, 0.99).
        hit_cosine, hit_fraction: the per-filter hit rule of the test (see module docstring);
            ``hit_cosine=None`` picks t from (C, D′) with :func:`auto_hit_cosine`.
        align_channels: also search input-channel permutations (costs ``log10 C!`` in p).
        search: ``"auto"`` uses the key's layer and searches every compatible conv weight only
            when it is missing or has the wrong shape; ``"all"`` always searches; ``"none"`` never.
    """
    if not isinstance(key, FingerprintKey):
        key = FingerprintKey.load(key)
    tau = key.tau if tau is None else tau
    if not (0 < alpha < 1 and (hit_cosine is None or -1 < hit_cosine < 1) and 0 < hit_fraction <= 1):
        raise FreqprintError("alpha must be in (0,1), hit_cosine in (-1,1) and hit_fraction in (0,1]")
    sd, name = state_dict_of(suspect)
    check_finite(sd, name)
    cands = _candidates(sd, key, search)
    w = torch.tensor(key.multiplicity, dtype=torch.float64)
    log_layers = math.log(len(cands))
    best: tuple[float, Alignment, str, int, float] | None = None
    for layer in cands:
        weight = sd[layer].detach().double().cpu()
        spec = revised_dft_at(weight, key.grid, key.frequencies)
        t = hit_cosine if hit_cosine is not None else auto_hit_cosine(key.channels, weight.shape[0], hit_fraction)
        p1 = min(1.0, weight.shape[0] * null_tail(t, key.channels) / hit_fraction)
        options = [align(key.spectra, spec, w, tau, channels=False)]
        if align_channels and key.channels > 1:
            options.append(align(key.spectra, spec, w, tau, channels=True))
        for al in options:
            frac = ((al.cosines >= t).double() * w).sum(-1) / w.sum()
            hits = int((frac >= hit_fraction).sum())
            logp = _log_binom_tail(hits, key.filters, p1) + log_layers + math.log(len(options))
            if al.searched_channels:
                logp += float(gammaln(key.channels + 1))
            logp = min(0.0, logp)
            if best is None or logp < best[0] or (logp == best[0] and al.cosines.mean() > best[1].cosines.mean()):
                best = (logp, al, layer, weight.shape[0], t)
    assert best is not None
    logp, al, layer, d_suspect, t = best
    frac = ((al.cosines >= t).double() * w).sum(-1) / w.sum()
    score = float(((al.cosines >= tau).double() * w).sum() / (w.sum() * key.filters))
    mean_cos = float((al.cosines * w).sum() / (w.sum() * key.filters))
    log10_p = logp / LN10
    return VerificationReport(
        found=log10_p < math.log10(alpha),
        p_value=float(math.exp(logp)),
        log10_p=log10_p,
        alpha=alpha,
        score=score,
        mean_cosine=mean_cos,
        hits=int((frac >= hit_fraction).sum()),
        filters=key.filters,
        suspect_filters=int(d_suspect),
        tau=tau,
        hit_cosine=t,
        hit_fraction=hit_fraction,
        layer=layer,
        layers_searched=len(cands),
        channels_permuted=bool((al.channel_perm != torch.arange(key.channels)).any()),
        suspect=name,
        key_commitment=key.commitment,
        frequency_set=key.frequency_set,
    )
