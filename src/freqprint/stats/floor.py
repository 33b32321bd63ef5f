"""The floor under a black-box verdict: two p-values that a learned verifier's score cannot fake.

A meta-verifier V (MetaV) is a classifier trained on the models its owner imagined; on answers
unlike any of them (a constant API, an untrained network, a model of another task) its score is
uncontrolled.  A "derived" verdict therefore also needs evidence that does not come from V's
imagination.  Two tests give it, each with its own null and its own exact p-value; the verdict's
p-value is the larger of the two (an intersection–union test: an innocent suspect is covered by
either null, and max(p₁, p₂) ≤ α has probability ≤ α under each).

**Agreement test** (:func:`agreement_pvalue`; H0: the suspect's answers carry no information
about *which* fingerprint input they answer).  With the suspect's normalised answers ``A`` and the
source's ``R`` on the N fingerprint inputs (rows, centred column-wise: ``Ã``, ``R̃``), the
statistic is their correlation

    ρ(σ) = Σ_i ⟨Ã_i, R̃_σ(i)⟩ / (‖Ã‖_F · ‖R̃‖_F),      observed: ρ = ρ(id).

If the answers ignore the input (constant, uniform, random, replayed), the rows of ``A`` are
exchangeable given ``R``, so ρ(id) has the law of ρ(σ) for a uniform random permutation σ, and the
Monte-Carlo p-value with B independent permutations

    p₁ = (1 + #{b : ρ(σ_b) ≥ ρ(id)}) / (B + 1)

is exactly valid, P(p₁ ≤ α) ≤ α (Phipson & Smyth 2010), whatever the answers' law.  Ties count
against the accuser (a constant suspect gets p₁ = 1).  It says nothing against a suspect that
does read its input (an independent model of the same task agrees with the source): that is the
second test's and V's job.

**Reference rank** (:func:`conformal_pvalue`; H0: the suspect is drawn from the population of
independent models the reference panel was drawn from).  Each answer gets the score
``g = (1[p₁ ≤ α], V)``, ordered lexicographically: an answer that passes the agreement test
outranks every one that does not, and V orders answers within each group.  With the scores of n
reference models, kept out of V's training and validation, the conformal p-value

    p₂ = (1 + #{j : g_j ≥ g}) / (n + 1)

is valid, P(p₂ ≤ α) ≤ α, when the suspect and the n reference models are exchangeable (Vovk et al.
2005), for any score fixed in advance: g is one (the permutations' seed is the claim's).  So a
reference answer without information (a constant, an untrained network) cannot outrank an
informative suspect however V scores it, and one that carries information counts against the
suspect as soon as V scores it as high.  The smallest p₂ is 1/(n + 1): α = 0.01 needs n ≥ 99.

**Closeness** (:func:`closeness`, reported beside a verdict): the same correlation ρ, without
permutations, on a set P of natural inputs of the owner's data, of the task's closeness features
(for a classifier the row-centred log-probabilities: a temperature on the served probabilities
does not move them).  It knows no recipe: a student that learnt the source's logits is closer to
the source than independent models are.  Its own conformal rank (``conformal_pvalue`` with c in
place of V) is a valid p-value too.

**Joint rank** (:func:`joint_rank_pvalue`, measured, not the verdict's): both statistics in one
full-conformal rank.  In the bag of the suspect and the n reference answers each answer's ranks
are ``r_V(i) = #{j : V_j ≤ V_i}`` and ``r_c(i) = #{j : c_j ≤ c_i}``, its score
``g_i = (1[p₁,i ≤ α], max(r_V(i), r_c(i)))`` and ``p = #{j ∈ bag : g_j ≥ g_suspect} / (n + 1)``:
valid under exchangeability, because g_i depends on answer i and on the bag as a set.  It pays
for its second route: a suspect that tops the panel in one statistic ties with the reference
that tops the other (p ≥ 2/(n + 1)), and a reference model served at several temperatures is
several tied answers in c.  docs/benchmarks.md §13 measured it on the benchmark's suspects.

**Replicate route** (:func:`replicate_rank`, a second route to a verdict where a claim holds
replicates): V knows the recipes its ensemble holds, and a student distilled by another recipe
into another family can escape it while its answers still carry its teacher's own quirks.  A
claim holds K **replicates** of the source — its training recipe (architecture, data, epochs,
learning rate) with K other seeds — as answers: each candidate j (j = 0 the source, 1…K the
replicates) by its closeness features ``R_j`` on P, every one read in one common frame (for a
generator, the latent frame of one more replicate, the *anchor*; :mod:`freqprint.stats.latent`),
and the suspect read in the same frame, ``A``:

    t_j = c(A, R_j),

so every candidate is treated alike: if the suspect was not made from the source, the source and
its replicates are exchangeable draws of one recipe, independent of it, and the source's rank

    p_r = (1 + #{k ≥ 1 : t_k ≥ t_0}) / (K + 1)

is exactly valid over draws of the source (ties count against the accuser; the smallest is
1/(K + 1)).  It is exact over draws, not for the owner's one source: suspects that resemble
"a model of the task" share that one draw's typicality (docs/benchmarks.md §13).  So the margin

    m = t_0 − max_{k ≥ 1} t_k

is also ranked among the reference answers' margins (``p_m = conformal_pvalue(m, reference
margins)``, valid for the reference population like p₂), and the route's p-value is
``max(p₁, p_m, p_r)``: valid when the suspect is an independent model of any recipe (p_r) or one
of the reference population (p_m), with the agreement test a gate.  The two routes split α
(Bonferroni): a claim with replicates reports ``p = min(1, 2·min(p_V, max(p₁, p_m, p_r)))`` with
``p_V`` the verifier route's p-value (1 when V's score is below λ), so ``p ≤ α`` has probability
≤ α when either null holds — and p_r ≤ α/2 needs K + 1 ≥ 2/α (199 replicates at α = 0.01).
The common frame is no candidate's: read in the source's own frame, the source alone carries no
alignment error and every independent model looks nearer to it than to its replicates — that
first design, with the margin's reference rank alone, accused 16 of 119 close innocents of the
benchmark with 19 replicates (docs/benchmarks.md §13).

The reference rank's population is what the panel holds (other seeds, architectures and data of the same task, models of other tasks of the same input/output shape,
untrained networks, their answers at other temperatures), and the guarantee is for a suspect
from that population *as a whole*: a family that V scores higher than the panel's average can be
flagged more often than α.  The benchmark measures that per family.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["agreement_pvalue", "closeness", "conformal_pvalue", "joint_rank_pvalue", "replicate_rank"]


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    return x - x.mean(0, keepdims=True)


def closeness(answers: np.ndarray, reference: np.ndarray) -> float:
    """ρ of the module docstring (no permutations): the correlation of the column-centred answers
    with the source's on the same inputs; 0 for an answer that does not vary."""
    a, r = _centred(answers), _centred(reference)
    if a.shape != r.shape:
        raise ValueError(f"answers {list(a.shape)} and reference {list(r.shape)} differ in shape")
    norm = float(np.linalg.norm(a) * np.linalg.norm(r))
    return 0.0 if norm == 0.0 else float((a * r).sum() / norm)


def replicate_rank(t: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """``(m, p_r)`` of the module docstring from ``t = [t_0, t_1, …, t_K]``: the statistic of the
    source (first) and of each of its K replicates."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2:
        raise ValueError("the replicate route needs the source's statistic and at least one replicate's")
    return float(t[0] - t[1:].max()), float((1 + int((t[1:] >= t[0]).sum())) / len(t))


def agreement_pvalue(answers: np.ndarray, reference: np.ndarray, permutations: int = 9999, seed: int = 0) -> tuple[float, float]:
    """``(ρ, p₁)``: the agreement and its permutation p-value (module docstring)."""
    a, r = _centred(answers), _centred(reference)
    if a.shape != r.shape:
        raise ValueError(f"answers {list(a.shape)} and reference {list(r.shape)} differ in shape")
    if permutations < 1:
        raise ValueError("permutations must be >= 1")
    norm = float(np.linalg.norm(a) * np.linalg.norm(r))
    if norm == 0.0:
        return 0.0, 1.0
    gram = a @ r.T / norm  # gram[i, j] = ⟨Ã_i, R̃_j⟩ / norms
    n = len(gram)
    observed = float(np.trace(gram))
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    exceed = 0
    for start in range(0, permutations, 4096):  # bounded memory: 4096 permutations at a time
        b = min(4096, permutations - start)
        perm = rng.permuted(np.broadcast_to(rows, (b, n)), axis=1)
        stats = gram[rows, perm].sum(1)
        exceed += int((stats >= observed - 1e-12).sum())  # a tie counts against the accuser
    return observed, (1 + exceed) / (permutations + 1)


def conformal_pvalue(
    score: float,
    reference: Sequence[float] | np.ndarray,
    passed: bool = True,
    reference_passed: Sequence[bool] | np.ndarray | None = None,
) -> float:
    """p₂ = (1 + #{j : g_j ≥ g}) / (n + 1) with g = (passed, score) ordered lexicographically
    (module docstring; without ``reference_passed`` every answer counts as passed); 1.0 with no
    reference."""
    ref = np.asarray(reference, dtype=np.float64)
    ok = np.ones(len(ref), bool) if reference_passed is None else np.asarray(reference_passed, bool)
    if ok.shape != ref.shape:
        raise ValueError("reference scores and their agreement flags differ in length")
    at_least = (ok & (ref >= score)) if passed else (ok | (ref >= score))
    return float((1 + int(at_least.sum())) / (len(ref) + 1))


def joint_rank_pvalue(
    score: float,
    close: float,
    passed: bool,
    reference_scores: Sequence[float] | np.ndarray,
    reference_closeness: Sequence[float] | np.ndarray,
    reference_passed: Sequence[bool] | np.ndarray,
) -> float:
    """p₂ = #{j ∈ bag : g_j ≥ g} / (n + 1), g = (passed, max(r_V, r_c)) with ranks taken in the bag
    of the suspect and the n reference answers (module docstring); 1.0 with no reference."""
    v = np.append(np.asarray(reference_scores, dtype=np.float64), float(score))
    c = np.append(np.asarray(reference_closeness, dtype=np.float64), float(close))
    ok = np.append(np.asarray(reference_passed, dtype=bool), bool(passed))
    if not (v.shape == c.shape == ok.shape):
        raise ValueError("reference scores, closeness and agreement flags differ in length")
    if len(v) == 1:
        return 1.0
    # r(i) = #{j : x_j <= x_i}: the position after the last equal value in the sorted bag
    rank = np.maximum(np.searchsorted(np.sort(v), v, side="right"), np.searchsorted(np.sort(c), c, side="right"))
    g = ok.astype(np.int64) * (len(v) + 1) + rank  # lexicographic (passed, rank) as one integer
    return float((g >= g[-1]).sum() / len(v))
