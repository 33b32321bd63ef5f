"""MetaV's two learnable parts and the loop that trains them jointly.

**Adaptive fingerprint** (:class:`AdaptiveFingerprint`): N inputs ``X = lo + (hi - lo)·σ(θ)``,
so every input stays inside the task's valid domain ``[lo, hi]`` whatever the optimiser does
(the unofficial code's ``tanh`` without a clamp leaves pixels outside [0, 1]).  θ starts at the
logit of real samples of the owner's data (latent codes drawn from the prior, for a generator),
so X starts natural.

**Meta-verifier** (:class:`MetaVerifier`): ``V: concat(g(f(x₁)), …, g(f(x_N))) ↦ [0, 1]``, an MLP
``N·d → 64 → 1`` by default (``hidden``) with LeakyReLU, dropout 0.3 and weight decay (the
unofficial code has two linear layers and no non-linearity: a linear map; a wider
``128 → 64`` verifier over-fitted the ~30 training models: docs/benchmarks.md §13), where ``g`` is the
task's normalisation
(:meth:`freqprint.metav.tasks.Task.normalise`).

**Training** (:func:`fit_metav`): binary cross-entropy of V on the training ensemble, the source
counted as a positive, positives and negatives weighted equally::

    L(X, V) = − ½·mean₊ log V(f⁺(X)) − ½·mean₋ log(1 − V(f⁻(X)))

All training models are queried at every step (the ensembles are small).  ``updates`` chooses
``"simultaneous"`` (one backward pass, both Adam optimisers step: the unofficial code) or
``"alternating"`` (``v_steps`` steps on V with X fixed, then one on X: GNNFingers).  Learning
rates decay linearly to 0.  With ``augment > 0`` every step sees X through a random input
transformation (noise, a pixel shift: EOT).  Every ``eval_every`` steps the validation ensemble
is scored; the state with the best validation ARUC (ties: lower validation loss) is kept.

**The floor** (:class:`Floor`, :func:`calibrate_floor`): V's score alone is uncontrolled on
answers unlike its ensemble's, and it only knows the recipes its ensemble holds.  A claim also
holds the source's answers on X, a probe set P of natural inputs with the source's closeness
features on it, and, for a reference panel of independent models kept out of training and
validation, V's score, the closeness to the source on P and the agreement p-value of each.  A
verdict is "derived" only when V's score reaches λ **and** the verdict's p-value, the larger of
the agreement test's and the reference rank's (:mod:`freqprint.stats.floor`), is at most α
and, when the claim has one (``floor_quantile``, 0.05 by default; ``None``: none), the suspect's **probe statistic**
``t`` on P reaches the claim's **probe floor**

    t_min = Q_q({ t(f⁺) : f⁺ a training or validation positive }),   q = ``floor_quantile``

the q-quantile of the statistic of the owner's own derivatives, which no negative enters: V's
score on answers unlike its ensemble's is uncontrolled, and a far model V scores high (another
dataset's regressor, docs/benchmarks.md §13) is still far from the source on natural inputs.
``t`` is the task's (:meth:`~freqprint.metav.tasks.Task.probe_statistic`): the closeness for
regression and generation, the share of probes with the source's top label for classification
(the log-probabilities' closeness of a label-only API is capped near 0.68, and mixing noise into
served probabilities lowers it at no cost in accuracy: §13 measured both).  A conjunction can
only withhold accusations, so the p-value stays an upper bound; its price is the positives below
t_min and a thief who lowers ``t`` (§13 prices it).  The floor is a gate only: the reference rank
still counts every reference answer, those below the floor included (a rank over the answers
above it only accused students of *other* teachers far more often than α: §13, measured and not
adopted).  The closeness and
its own rank among the reference answers (``p_closeness``) are reported beside every verdict
(§13 measured the joint rule, V or closeness, and it lost more than it gained).

**Threshold** (:func:`calibrate_threshold`): never 0.5 by fiat.  On the validation ensemble, if
every positive scores above every negative, λ is the midpoint of the gap (the widest margin);
otherwise, by default, λ sits just above the highest-scoring validation negative (no false
positive on validation: a false accusation is the costly error), or with
``threshold_rule="youden"`` it maximises TPR + TNR.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.metav.tasks import Task
from freqprint.stats.aruc import aruc
from freqprint.stats.floor import agreement_pvalue, closeness, conformal_pvalue, replicate_rank

__all__ = [
    "AdaptiveFingerprint",
    "Floor",
    "MetaV",
    "MetaVConfig",
    "MetaVerifier",
    "Verdict",
    "calibrate_floor",
    "calibrate_threshold",
    "fit_metav",
]

Query = Callable[[torch.Tensor], torch.Tensor]


class AdaptiveFingerprint(nn.Module):
    """N learned inputs in ``[lo, hi]``: ``X = lo + (hi − lo)·σ(θ)``."""

    lo: torch.Tensor  # registered buffers
    hi: torch.Tensor

    def __init__(self, init: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("lo", lo.float().expand_as(init[0]).clone())
        self.register_buffer("hi", hi.float().expand_as(init[0]).clone())
        width = (self.hi - self.lo).clamp_min(1e-6)
        u = ((init.float() - self.lo) / width).clamp(1e-3, 1 - 1e-3)
        self.theta = nn.Parameter(torch.log(u) - torch.log1p(-u))

    def forward(self) -> torch.Tensor:
        return self.lo + (self.hi - self.lo) * torch.sigmoid(self.theta)


class MetaVerifier(nn.Module):
    """``in_features → hidden… → 1`` (a logit), LeakyReLU and dropout between layers."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (64,), dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.LeakyReLU(0.1), nn.Dropout(dropout)]
            prev = h
        layers.append(nn.Linear(prev, 1))
        self.net = nn.Sequential(*layers)
        self.in_features, self.hidden, self.dropout = in_features, list(hidden), dropout

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


@dataclass
class MetaVConfig:
    """Hyper-parameters of :func:`fit_metav` (all recorded in a claim artefact)."""

    n_inputs: int = 32
    steps: int = 400
    lr_inputs: float = 0.05
    lr_verifier: float = 1e-3
    updates: str = "simultaneous"  # or "alternating"
    v_steps: int = 3
    hidden: tuple[int, ...] = (64,)
    dropout: float = 0.3
    weight_decay: float = 1e-3
    augment: float = 0.0
    eval_every: int = 25
    threshold_rule: str = "no-false-positive"  # or "youden" (calibrate_threshold)
    n_probes: int = 256  # natural inputs of the floor's closeness (calibrate_floor)
    floor_quantile: float | None = 0.05  # the probe floor: this quantile of the fit positives' (calibrate_floor); None: none
    canonical: bool = True  # read every model in the source's frame where the task's input law has a symmetry (generation)
    frame_codes: int = 128  # prior codes the frame is measured on (2 · latent · frame_codes answers per model)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.updates not in ("simultaneous", "alternating"):
            raise InvalidArgument(f"updates must be 'simultaneous' or 'alternating', got {self.updates!r}")
        if self.n_inputs < 1 or self.steps < 1 or self.v_steps < 1 or self.eval_every < 1 or self.n_probes < 1:
            raise InvalidArgument("n_inputs, steps, v_steps, eval_every and n_probes must be >= 1")
        if not 8 <= self.frame_codes <= 100_000:
            raise InvalidArgument(f"frame_codes must be in 8..100000, got {self.frame_codes!r}")
        if self.floor_quantile is not None and not 0.0 <= self.floor_quantile < 1.0:
            raise InvalidArgument(f"floor_quantile must be in [0, 1), got {self.floor_quantile!r}")
        self.hidden = tuple(int(h) for h in self.hidden)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass
class Floor:
    """What a verdict's p-value is computed from (:mod:`freqprint.stats.floor`).

    ``answers``: the source's normalised answers on X, ``[N, feature_dim]``; ``probes``: the
    natural inputs P, ``[M, *input_shape]``; ``probe_answers``: the source's closeness features
    on P, ``[M, k]``; ``scores``: V's scores of the reference panel, ascending; ``closeness`` and
    ``agreement_p``: each one's closeness on P and agreement p-value (same order);
    ``population``: its families and their counts (what the conformal p-value's population is);
    ``alpha``: the level a verdict needs; ``permutations``: B of the agreement test; ``seed``:
    its permutations' seed; ``probe_floor``: the probe statistic a derived verdict needs
    (``None``: none), the ``floor_quantile`` of the statistic of the ``probe_positives``
    training and validation positives it came from; ``candidates``: the closeness features on P
    of the source (row 0) and its K replicates, ``[K + 1, M, k]`` (float16; ``None``: no
    replicate route), each read in ``replicate_frame``, the latent frame of one more replicate
    (the anchor; float32; ``None`` for a task without a frame), and ``margins``: the reference
    answers' replicate margins (:func:`freqprint.stats.floor.replicate_rank`, in the order of
    ``scores``)."""

    answers: torch.Tensor
    probes: torch.Tensor
    probe_answers: torch.Tensor
    scores: torch.Tensor
    closeness: torch.Tensor
    agreement_p: torch.Tensor
    population: dict[str, int]
    alpha: float = 0.01
    permutations: int = 9999
    seed: int = 0
    probe_floor: float | None = None
    floor_quantile: float | None = None
    probe_positives: int = 0
    candidates: torch.Tensor | None = None
    margins: torch.Tensor | None = None
    replicate_frame: torch.Tensor | None = None
    _unit: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.candidates is None) != (self.margins is None):
            raise InvalidArgument("a floor's replicates and the reference margins come together")
        if self.candidates is not None and self.margins is not None:
            c = self.candidates
            if c.ndim != 3 or len(c) < 2 or c.shape[1:] != self.probe_answers.shape:
                raise InvalidArgument("the candidates' answers must be [K + 1, M, k] like the source's on the probes")
            if self.margins.numel() != self.scores.numel():
                raise InvalidArgument("the floor needs one replicate margin per reference answer")
            self.candidates = c.half()
            self.replicate_frame = None if self.replicate_frame is None else self.replicate_frame.float()
            # each candidate column-centred and scaled to norm 1: t = that · the suspect's, likewise
            x = self.candidates.double().numpy()
            x = (x - x.mean(1, keepdims=True)).reshape(len(x), -1)
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            self._unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        elif self.replicate_frame is not None:
            raise InvalidArgument("a floor's replicate frame comes with its replicates")

        if not 0.0 < self.alpha < 1.0:
            raise InvalidArgument(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.probe_floor is not None and not -1.0 - 1e-9 <= self.probe_floor <= 1.0 + 1e-9:
            raise InvalidArgument(f"the probe floor is a statistic in [-1, 1], got {self.probe_floor!r}")
        if self.permutations < 1:
            raise InvalidArgument("the agreement test needs at least one permutation")
        scores, p = self.scores.double().reshape(-1), self.agreement_p.double().reshape(-1)
        close = self.closeness.double().reshape(-1)
        if not scores.shape == p.shape == close.shape:
            raise InvalidArgument("the reference scores, closeness values and agreement p-values differ in length")
        if len(self.probes) != len(self.probe_answers):
            raise InvalidArgument("the floor's probe inputs and the source's answers on them differ in number")
        order = torch.argsort(scores, stable=True)
        self.scores, self.closeness, self.agreement_p = scores[order], close[order], p[order]
        if self.margins is not None:
            self.margins = self.margins.double().reshape(-1)[order]

    @property
    def replicates(self) -> int:
        """K: how many replicates of the source the replicate route compares against (0: none)."""
        return 0 if self.candidates is None else len(self.candidates) - 1

    def rank_p(self, score: float, p_agreement: float, alpha: float, by: str = "scores") -> float:
        """p₂: the conformal p-value of (1[p₁ ≤ α], V) among the reference answers; with
        ``by="closeness"``, of (1[p₁ ≤ α], closeness) (reported beside a verdict)."""
        ref = self.scores if by == "scores" else self.closeness
        return conformal_pvalue(score, ref.numpy(), p_agreement <= alpha, (self.agreement_p <= alpha).numpy())


@dataclass(frozen=True)
class Verdict:
    """One suspect's verdict: V's score against λ, the two p-values, their max against α, the
    task's probe statistic against the claim's probe floor (both ``None``: a claim without one);
    and, reported beside it, the closeness on the probes and its own rank among the reference
    answers — part of the max when the suspect was read in the source's latent frame
    (``in_frame``: a generator's claim, :mod:`freqprint.stats.latent`).  A claim with
    ``replicates`` adds the replicate route: ``margin``, its rank ``p_margin`` among the
    reference answers' margins and the source's exact rank ``p_replicates`` among its
    replicates, and ``p_value`` is then the two routes' Bonferroni union
    (:mod:`freqprint.stats.floor`); ``p_reference`` and ``p_closeness`` are ranked at α/2."""

    score: float
    threshold: float
    agreement: float
    p_agreement: float
    p_reference: float
    reference_n: int
    p_value: float
    alpha: float
    derived: bool
    closeness: float
    p_closeness: float
    probe_statistic: float | None = None
    probe_floor: float | None = None
    in_frame: bool = False
    margin: float | None = None
    p_margin: float | None = None
    p_replicates: float | None = None
    replicates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MetaV:
    """A trained MetaV: fingerprint inputs, verifier, threshold λ and the task's preprocessing,
    and (once :func:`calibrate_floor` ran) the floor a verdict needs."""

    task: Task
    inputs: torch.Tensor
    verifier: MetaVerifier
    threshold: float
    config: MetaVConfig
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    floor: Floor | None = None
    frame: torch.Tensor | None = None  # the source's frame (Task.frame); every suspect is read in it

    def query(self, query: Query | nn.Module) -> Query:
        """A suspect as the verifier reads it: in the source's frame, where the claim has one."""
        return self.task.canonical(_as_query(self.task, query), self.frame, self.config.frame_codes)

    def features(self, query: Query | nn.Module) -> torch.Tensor:
        """The verifier's input for one suspect: its normalised outputs on X, concatenated."""
        fn = self.query(query)
        with torch.no_grad():
            raw = fn(self.inputs)
        return _features(self.task, raw, len(self.inputs))

    def score(self, query: Query | nn.Module) -> float:
        """V's probability that the suspect derives from the source."""
        return self._score(self.features(query))

    def _score(self, features: torch.Tensor) -> float:
        self.verifier.eval()
        with torch.no_grad():
            return float(torch.sigmoid(self.verifier(features[None]))[0])

    def _agreement(self, features: torch.Tensor, answers: torch.Tensor, permutations: int, seed: int) -> tuple[float, float]:
        """(ρ, p₁) of a suspect's features against the source's ``answers`` on X."""
        rows = features.reshape(len(self.inputs), -1).double().numpy()
        return agreement_pvalue(rows, answers.double().numpy(), permutations, seed)

    def _answers(
        self, query: Query | nn.Module, probes: torch.Tensor, own: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One query on X and the probes together: (V's features on X, closeness features on P)."""
        fn = self.task.canonical(_as_query(self.task, query), self.frame, self.config.frame_codes, own=own)
        n = len(self.inputs)
        with torch.no_grad():
            raw = _checked(self.task, fn(torch.cat([self.inputs, probes.to(self.inputs)])), n + len(probes))
        return self.task.normalise(raw[:n]).reshape(-1), self.task.closeness_features(raw[n:])

    def verdict(self, query: Query | nn.Module, alpha: float | None = None) -> Verdict:
        """Derived iff V's score ≥ λ, p = max(p_agreement, p_reference) ≤ α (the claim's α
        unless given) and the probe statistic ≥ the claim's probe floor, if it has one.  A claim
        that reads suspects in the source's frame (:mod:`freqprint.stats.latent`) also takes the
        closeness rank into p.  The suspect is queried once on X and the probes together (and
        once more for its frame)."""
        if self.floor is None:
            raise FreqprintError("this MetaV has no floor (source answers and reference scores): run calibrate_floor")
        a = self.floor.alpha if alpha is None else float(alpha)
        if not 0.0 < a < 1.0:
            raise InvalidArgument(f"alpha must be in (0, 1), got {a!r}")
        fl = self.floor
        routes = 2 if fl.replicates else 1  # the verifier's route, and the replicates' (α split in two)
        base = _as_query(self.task, query)
        # the suspect's own latent frame, measured once for the two frames it is read in
        own = self.task.frame(base, self.config.frame_codes) if self.frame is not None else None
        feats, probe_feats = self._answers(base, fl.probes, own)
        s = self._score(feats)
        pf, src = probe_feats.double().numpy(), fl.probe_answers.double().numpy()
        c = closeness(pf, src)
        rho, p1 = self._agreement(feats, fl.answers, fl.permutations, fl.seed)
        p2 = fl.rank_p(s, p1, a / routes)
        n = len(fl.scores)
        pc = fl.rank_p(c, p1, a / routes, by="closeness")
        # read in the source's frame, independents of other families come near the source and V
        # extrapolates on them (docs/benchmarks.md §13): the closeness rank, a statistic no one
        # trained, must agree (the larger of valid p-values is a valid p-value)
        p = max(p1, p2, pc) if self.frame is not None else max(p1, p2)
        m = pm = pr = None
        if fl.replicates and fl.margins is not None:
            m, pr = replicate_rank(self.replicate_statistics(base, own))
            pm = conformal_pvalue(m, fl.margins.numpy())
            # the union of the two routes: V's (valid only with s ≥ λ) and the replicates' (the
            # agreement test a gate), each at α/2
            p = min(1.0, 2.0 * min(p if s >= self.threshold else 1.0, max(p1, pm, pr)))
        cf = fl.probe_floor
        t = None if cf is None else self.task.probe_statistic(pf, src)
        route = p <= a if routes == 2 else (s >= self.threshold and p <= a)
        derived = route and (cf is None or (t is not None and t >= cf))
        k = fl.replicates
        return Verdict(s, self.threshold, rho, p1, p2, n, p, a, bool(derived), c, pc, t, cf, self.frame is not None, m, pm, pr, k)

    def replicate_statistics(self, query: Query | nn.Module, own: torch.Tensor | None = None) -> np.ndarray:
        """``t = [t_0, t_1, …, t_K]`` of :mod:`freqprint.stats.floor`: the suspect's closeness
        on the probes, read in the claim's replicate frame, with the source's and each replicate's
        answers read in the same frame (``own``: the suspect's frame, if measured already)."""
        fl = self.floor
        assert fl is not None and fl._unit is not None
        fn = self.task.canonical(_as_query(self.task, query), fl.replicate_frame, self.config.frame_codes, own=own)
        with torch.no_grad():
            raw = _checked(self.task, fn(fl.probes), len(fl.probes))
        x = self.task.closeness_features(raw).double().numpy()
        x = (x - x.mean(0, keepdims=True)).reshape(-1)
        norm = float(np.linalg.norm(x))
        return fl._unit @ (x / norm) if norm > 0 else np.zeros(len(fl._unit))

    def verify(self, query: Query | nn.Module, alpha: float | None = None) -> dict[str, Any]:
        return self.verdict(query, alpha).to_dict()


def _as_query(task: Task, obj: Query | nn.Module) -> Query:
    if isinstance(obj, nn.Module):
        model = obj.eval()
        return lambda x: task.outputs(model, x)
    if callable(obj):
        return obj
    raise FreqprintError(f"a suspect is a model or a callable from inputs to outputs, got {type(obj).__name__}")


def _features(task: Task, raw: Any, n: int) -> torch.Tensor:
    """Normalised, flattened outputs; one error line for an answer of the wrong shape or NaN."""
    return task.normalise(_checked(task, raw, n)).reshape(-1)


def _checked(task: Task, raw: Any, n: int) -> torch.Tensor:
    """Raw outputs as a float ``[n, output_dim]`` tensor; one error line for an answer of the
    wrong shape or NaN."""
    if not isinstance(raw, torch.Tensor):
        try:
            raw = torch.as_tensor(np.asarray(raw, dtype=np.float32))
        except (TypeError, ValueError):
            raise FreqprintError(f"the suspect returned {type(raw).__name__}, not an array of outputs") from None
    raw = raw.float().reshape(n, -1) if raw.numel() % n == 0 else raw
    if raw.ndim != 2 or raw.shape[0] != n or raw.shape[1] != task.output_dim:
        raise FreqprintError(f"the suspect's outputs have shape {list(raw.shape)}; this task expects [{n}, {task.output_dim}]")
    if not bool(torch.isfinite(raw).all()):
        raise FreqprintError("the suspect returned NaN or Inf outputs")
    return raw


def calibrate_floor(
    mv: MetaV,
    source: Query | nn.Module,
    reference: Sequence[tuple[Query | nn.Module, str]],
    probes: torch.Tensor,
    alpha: float = 0.01,
    permutations: int = 9999,
    positives: Sequence[Query | nn.Module] = (),
    replicates: Sequence[Query | nn.Module] = (),
) -> Floor:
    """Give ``mv`` its floor: the source's answers on X and on ``probes`` (natural inputs of the
    owner's data, :meth:`~freqprint.metav.tasks.Task.real_inputs`), and V's scores and the
    closeness of ``reference`` (pairs of an independent model or API and its family), which must
    be disjoint from the models V was trained and validated on; with ``positives`` (the
    training and validation positives: the owner's derivatives) and ``mv.config.floor_quantile``
    set, the probe floor, that quantile of their probe statistic (module docstring; none
    otherwise); with ``replicates`` (the source's training recipe with other seeds: the
    manifest's ``replicate`` split), the replicate route (:mod:`freqprint.stats.floor`): the
    source's and the replicates' closeness features on the probes, every one read in the frame
    of the first replicate (the anchor, where the task has a frame: it is no candidate), and
    the reference answers' margins.
    Refuses a panel too small for ``alpha`` (n + 1 < 1/α; with replicates, for α/2, and too few
    replicates for the source's rank among them to reach α/2)."""
    need = (2.0 if replicates else 1.0) / alpha
    anchored = bool(replicates) and mv.frame is not None
    k = len(replicates) - anchored
    if replicates and k + 1 < need - 1e-9:
        raise FreqprintError(
            f"{len(replicates)} replicates cannot give the replicate route a p-value of {alpha / 2} (α split between "
            f"two routes; it needs at least {math.ceil(need - 1e-9) - 1 + anchored}"
            + (", one of them the anchor of the frame" if anchored else "")
            + "): add replicates or raise alpha"
        )
    if len(reference) + 1 < need - 1e-9:
        raise FreqprintError(
            f"a reference panel of {len(reference)} models cannot give a p-value of {alpha}"
            + (" split between two routes" if replicates else "")
            + f" (it needs at least {math.ceil(need - 1e-9) - 1}): add reference models or raise alpha"
        )
    probes = probes.detach().float().clone()
    feats, probe_answers = mv._answers(source, probes)
    answers = feats.reshape(len(mv.inputs), -1).detach().clone()
    cands = anchor = None
    if replicates:  # the source and the replicates, each read in the anchor's frame
        codes = mv.config.frame_codes
        anchor = mv.task.frame(_as_query(mv.task, replicates[0]), codes) if anchored else None
        anchor = None if anchor is None else anchor.float()
        ans = []
        for q in [source, *replicates[int(anchored) :]]:
            with torch.no_grad():
                raw = _checked(mv.task, mv.task.canonical(_as_query(mv.task, q), anchor, codes)(probes), len(probes))
            ans.append(mv.task.closeness_features(raw))
        cands = torch.stack(ans).half()
    src_np = probe_answers.double().numpy()
    scores, close, p_agree = [], [], []
    population: dict[str, int] = {}
    for q, fam in reference:
        feats, probe_feats = mv._answers(q, probes)
        pf = probe_feats.double().numpy()
        scores.append(mv._score(feats))
        close.append(closeness(pf, src_np))
        p_agree.append(mv._agreement(feats, answers, permutations, mv.config.seed)[1])
        population[fam] = population.get(fam, 0) + 1
    q_floor = mv.config.floor_quantile
    floor_t: float | None = None
    pos_stat: list[float] = []
    if q_floor is not None and positives:
        ref_answers = probe_answers.double().numpy()
        pos_stat = [mv.task.probe_statistic(mv._answers(q, probes)[1].double().numpy(), ref_answers) for q in positives]
        floor_t = float(np.quantile(np.asarray(pos_stat), q_floor))
    mv.floor = Floor(
        answers,
        probes,
        probe_answers.detach().clone(),
        torch.tensor(scores, dtype=torch.float64),
        torch.tensor(close, dtype=torch.float64),
        torch.tensor(p_agree, dtype=torch.float64),
        dict(sorted(population.items())),
        alpha,
        permutations,
        mv.config.seed,
        floor_t,
        q_floor if pos_stat else None,
        len(pos_stat),
        cands,
        torch.zeros(len(scores), dtype=torch.float64) if cands is not None else None,
        anchor,
    )
    if cands is not None:  # the reference answers' margins, by the verdict's own reading
        fl = mv.floor
        m = torch.tensor([replicate_rank(mv.replicate_statistics(q))[0] for q, _ in reference], dtype=torch.float64)
        fl.margins = m[torch.argsort(torch.tensor(scores, dtype=torch.float64), stable=True)]  # the floor's order
    return mv.floor


def calibrate_threshold(pos: Sequence[float], neg: Sequence[float], rule: str = "no-false-positive") -> float:
    """λ from validation scores (module docstring).

    If every positive scores above every negative: the midpoint of the gap, whatever the rule.
    Otherwise ``"no-false-positive"`` (the default: a false accusation is the costly error) puts
    λ between the highest negative and the next positive above it (just above the highest
    negative when none is), and ``"youden"`` maximises TPR + TNR, at the middle of the widest
    run of best cuts."""
    p, n = np.sort(np.asarray(pos, float)), np.sort(np.asarray(neg, float))
    if len(p) == 0 or len(n) == 0:
        raise FreqprintError("calibrating the threshold needs validation positives and negatives")
    if rule not in ("no-false-positive", "youden"):
        raise InvalidArgument(f"threshold rule must be 'no-false-positive' or 'youden', got {rule!r}")
    if p[0] > n[-1]:
        return float((p[0] + n[-1]) / 2)
    if rule == "no-false-positive":
        above = p[p > n[-1]]
        return float((above[0] + n[-1]) / 2) if len(above) else float(np.nextafter(n[-1], np.inf))
    cuts = np.unique(np.concatenate([p, n]))
    mids = np.concatenate([[cuts[0] - 1e-9], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1e-9]])
    youden = np.array([(p >= t).mean() + (n < t).mean() for t in mids])
    best = np.flatnonzero(youden == youden.max())
    return float(mids[best[len(best) // 2]])


def fit_metav(
    task: Task,
    train: Sequence[tuple[Query, int]],
    val: Sequence[tuple[Query, int]],
    init: torch.Tensor,
    domain: tuple[torch.Tensor, torch.Tensor],
    cfg: MetaVConfig | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> MetaV:
    """Train X and V jointly on ``train`` (query, label) pairs; keep the best state on ``val``
    (ARUC); calibrate λ on ``val``.  ``init``: the N starting inputs."""
    cfg = cfg or MetaVConfig()
    labels = torch.tensor([y for _, y in train], dtype=torch.float32)
    if labels.min() == labels.max():
        raise FreqprintError("the training ensemble needs positives and negatives")
    if not any(y for _, y in val) or all(y for _, y in val):
        raise FreqprintError("the validation ensemble needs positives and negatives")
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    fp = AdaptiveFingerprint(init[: cfg.n_inputs], *domain)
    n = len(fp())
    v = MetaVerifier(n * task.feature_dim, cfg.hidden, cfg.dropout)
    opt_x = torch.optim.Adam(fp.parameters(), lr=cfg.lr_inputs)
    opt_v = torch.optim.Adam(v.parameters(), lr=cfg.lr_verifier, weight_decay=cfg.weight_decay)
    w = torch.where(labels > 0, 0.5 / labels.sum(), 0.5 / (1 - labels).sum())

    def loss_on(x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([_features_grad(task, q(x), n) for q, _ in train])
        return (F.binary_cross_entropy_with_logits(v(feats), labels, reduction="none") * w).sum()

    def evaluate(x: torch.Tensor) -> tuple[float, float, list[float], list[float]]:
        v.eval()
        with torch.no_grad():
            s = [float(torch.sigmoid(v(_features(task, q(x), n)[None]))[0]) for q, _ in val]
        v.train()
        yv = np.array([y for _, y in val])
        sv = np.array(s)
        pos, neg = sv[yv == 1], sv[yv == 0]
        bce = float(-(np.log(np.clip(pos, 1e-7, 1)).mean() + np.log(np.clip(1 - neg, 1e-7, 1)).mean()) / 2)
        return aruc(pos, neg), bce, list(pos), list(neg)

    best: tuple[float, float] | None = None
    best_state: dict[str, Any] = {}
    history: list[dict[str, float]] = []
    v.train()
    for step in range(1, cfg.steps + 1):
        decay = 1 - (step - 1) / cfg.steps  # linear decay to 0
        for o, lr in ((opt_x, cfg.lr_inputs), (opt_v, cfg.lr_verifier)):
            for group in o.param_groups:
                group["lr"] = lr * decay
        if cfg.updates == "simultaneous" or step % (cfg.v_steps + 1) == 0:
            x = fp()
            if cfg.augment > 0:
                x = task.augment(x, g, cfg.augment)
            loss = loss_on(x)
            opt_x.zero_grad(set_to_none=True)
            opt_v.zero_grad(set_to_none=True)
            loss.backward()
            opt_x.step()
            if cfg.updates == "simultaneous":
                opt_v.step()
        else:
            with torch.no_grad():
                x = fp()
                if cfg.augment > 0:
                    x = task.augment(x, g, cfg.augment)
                feats = torch.stack([_features(task, q(x), n) for q, _ in train])
            loss = (F.binary_cross_entropy_with_logits(v(feats), labels, reduction="none") * w).sum()
            opt_v.zero_grad(set_to_none=True)
            loss.backward()
            opt_v.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                x = fp()
            a, bce, _, _ = evaluate(x)
            history.append({"step": step, "train_loss": float(loss.detach()), "val_aruc": a, "val_bce": bce})
            log(f"  step {step}: loss {float(loss.detach()):.4f}, val ARUC {a:.3f}, val BCE {bce:.3f}")
            if best is None or (a, -bce) > best:
                best = (a, -bce)
                best_state = {"x": x.detach().clone(), "v": copy.deepcopy(v.state_dict()), "step": step}
    v.load_state_dict(best_state["v"])
    v.eval()
    x = best_state["x"]
    _, _, pos, neg = evaluate(x)
    v.eval()
    lam = calibrate_threshold(pos, neg, cfg.threshold_rule)
    history.append({"best_step": best_state["step"], "threshold": lam})
    return MetaV(task, x, v, lam, cfg, history, time.time() - t0)


def _features_grad(task: Task, raw: torch.Tensor, n: int) -> torch.Tensor:
    return task.normalise(raw.reshape(n, -1)).reshape(-1)


def logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))
