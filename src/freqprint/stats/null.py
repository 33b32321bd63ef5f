"""Null laws of the verifier: what an *unrelated* suspect can score, as rigorous upper bounds.

Imported by ``module`` (to refuse hosts the test could never confirm) and by ``verify``; it
depends on nothing in freqprint, which keeps the package free of import cycles.

**Per-kernel cosine.**  Under H0 the key's module weights are the secret-seeded i.i.d. Gaussian
initialisation (training moves them little; docs/benchmarks.md §8 measures it), independent of the
suspect.  Expressed in an orthonormal basis of R^{K²}, any block of k coordinates of one kernel
is then an isotropic Gaussian in R^k, so its direction is uniform on the sphere and its cosine
with *any* fixed vector has the law of ``cos`` in R^k: ``(1+cos)/2 ~ Beta((k-1)/2, (k-1)/2)``,
independently for every (filter, channel) kernel.  The moment generating function of that law is
the von Mises–Fisher normaliser,

    M_k(λ) = E[exp(λ·cos)] = Γ(k/2) · (2/λ)^{k/2-1} · I_{k/2-1}(λ),

so the mean of n such cosines obeys the Chernoff bound

    P[(1/n)·Σ cos ≥ t] ≤ exp( min_λ  n·log M_k(λ) − λ·n·t ),

which :func:`kernel_logtail` evaluates (log domain, stable far below float range).

**Counting hits.**  A key filter *hits* when its best suspect filter (of D′, either sign) reaches
a mean cosine ≥ t: by a union bound that has probability ≤ ``p1 = 2·D′·bound(t)``, independently
for each key filter given the suspect, so the hit count is dominated by Binomial(D, p1).

**Projection onto an initialisation** (the lineage test, :mod:`freqprint.verification.backbone`).  There the
owner's side is a regenerated initialisation X whose entries are i.i.d. with a known law that is
sub-Gaussian with variance proxy v (U(−b, b): v = b²/3, since E e^{λx} = sinh(λb)/(λb) ≤
e^{λ²b²/6}; N(0, σ²): v = σ²).  For fixed unit vectors u_1..u_n (the suspect's kernels, one per
matched input channel), ``Σ_c <X[d,c], u_c> / (n·√v)`` is sub-Gaussian with proxy 1/n, so

    P[ |Σ_c <X[d,c], u_c>| / (n·√v) ≥ t ] ≤ 2·exp(−n·t²/2),

exactly, whatever the suspect; :func:`projection_hit_probability` adds the union over D′ suspect
filters.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import gammaln, ive
from scipy.stats import beta as beta_dist

__all__ = [
    "HIT_GRID",
    "auto_hit_threshold",
    "best_log10_p",
    "format_p",
    "kernel_logtail",
    "log_binom_tail",
    "log_injections",
    "null_tail",
    "projection_hit_probability",
    "projection_thresholds",
]

LN10 = math.log(10)
# Candidate thresholds on the mean per-kernel cosine; the smallest with p1 ≤ 0.01 is used.
HIT_GRID = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)


def format_p(log10_p: float) -> str:
    """A p-value for people: plain above 1e-4, ``1e-123.4`` below (p-values here go far below float range)."""
    if log10_p > -4:
        return f"{10**log10_p:.3g}"
    return f"1e{log10_p:.1f}"


def null_tail(t: float, channels: int) -> float:
    """``q(t)``: P[cos ≥ t] between a fixed vector and a random direction in ``R^channels``."""
    if channels <= 1:
        return 0.5 if t > -1 else 1.0
    a = (channels - 1) / 2
    return float(beta_dist.sf((1 + t) / 2, a, a))


def _log_mgf(lam: float, k: int) -> float:
    """``log M_k(λ)`` for the cosine in R^k (k = 1: a random sign, ``cosh λ``)."""
    nu = k / 2 - 1
    return float(gammaln(k / 2) + nu * math.log(2 / lam) + math.log(ive(nu, lam)) + lam)


@lru_cache(maxsize=4096)
def kernel_logtail(t: float, k: int, n: int) -> float:
    """Natural log of a Chernoff upper bound on ``P[mean of n i.i.d. cosines in R^k ≥ t]``."""
    if t <= 0:
        return 0.0
    if t >= 1:
        return -math.inf if k > 1 else n * math.log(0.5)
    res = minimize_scalar(
        lambda lam: n * (_log_mgf(lam, k) - lam * t), bounds=(1e-9, 1e5), method="bounded", options={"xatol": 1e-9}
    )
    return min(0.0, float(res.fun))


def log_binom_tail(k: int, n: int, p: float) -> float:
    """``log P[Binomial(n, p) ≥ k]``, stable far below float range (log-sum-exp of the pmf)."""
    if k <= 0 or p >= 1:
        return 0.0
    if p <= 0 or k > n:
        return -math.inf
    j = np.arange(k, n + 1, dtype=np.float64)
    logpmf = gammaln(n + 1) - gammaln(j + 1) - gammaln(n - j + 1) + j * math.log(p) + (n - j) * math.log1p(-p)
    top = float(logpmf.max())  # log-sum-exp by hand: scipy's costs more than the verifier's fast path
    return top + math.log(float(np.exp(logpmf - top).sum()))


def log_injections(a: int, b: int) -> float:
    """log of the number of ways to match min(a, b) channels of one side to distinct channels of
    the other: ``max!/(max−min)!`` (the Bonferroni price of the channel search)."""
    hi, lo = max(a, b), min(a, b)
    return float(gammaln(hi + 1) - gammaln(hi - lo + 1))


def hit_probability(t: float, k: int, n: int, suspect_filters: int) -> float:
    """``p1 = 2·D′·bound(t)``: chance that a random key filter hits any suspect filter, either sign."""
    return min(1.0, 2 * suspect_filters * math.exp(kernel_logtail(t, k, n)))


def auto_hit_threshold(k: int, n: int, suspect_filters: int, target: float = 0.01) -> float:
    """Smallest t of ``HIT_GRID`` with ``p1 ≤ target``; depends on (k, n, D′) only, never on data."""
    for t in HIT_GRID:
        if hit_probability(t, k, n, suspect_filters) <= target:
            return t
    return HIT_GRID[-1]


def best_log10_p(channels: int, filters: int, block_dims: int = 3, blocks: int = 2) -> float:
    """The smallest log10 p-value the test can ever give (every filter hits, channel search and
    block choice paid for): a host where this is not below alpha can never be verified."""
    t = auto_hit_threshold(block_dims, channels, filters)
    p1 = hit_probability(t, block_dims, channels, filters)
    logp = log_binom_tail(filters, filters, p1) + log_injections(channels, channels) + math.log(blocks)
    return min(0.0, logp) / LN10


def projection_hit_probability(t: float, n: int, suspect_filters: int) -> float:
    """``q = 2·D′·exp(−n·t²/2)``: chance that one row of an i.i.d. sub-Gaussian initialisation
    (n matched channels, projections normalised by n·√v) reaches ``t`` against any of D′ fixed
    suspect filters, either sign."""
    return min(1.0, 2 * suspect_filters * math.exp(-n * t * t / 2))


# Thresholds (in units of the init's standard deviation per kernel entry, averaged over channels)
# tried by the lineage test besides the smallest one with q ≤ 0.01; the p-value pays for the grid.
PROJECTION_GRID = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)


def projection_thresholds(n: int, suspect_filters: int, target: float = 0.01) -> list[float]:
    """The data-independent thresholds of the lineage test: the smallest t with q ≤ ``target``,
    then every larger value of :data:`PROJECTION_GRID`."""
    t0 = math.sqrt(2 * math.log(2 * suspect_filters / target) / n)
    return [t0] + [t for t in PROJECTION_GRID if t > t0]
