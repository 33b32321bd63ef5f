"""Lineage trees: which of a set of decoders derives from which (MoTHer's question, Horwitz et al. 2025).

:func:`~freqprint.verification.parent.parent_lineage` answers "is B derived from A?" with a
p-value.  A hub holding many uploads asks for the tree: the *direct* parent of each.  No test gives
that an exact error probability — it is an estimate, and this module says which evidence it
weighs and where it fails (docs/benchmarks.md §14e measures it).

1. **Families.**  Models are joined when ``parent_lineage`` finds one derived from the other (in
   either direction); each connected component is a family, and each family gets its own tree.
2. **Common coordinates.**  Every member is brought into the basis of the family's reference
   (the member related to most others): the residual rotation from the shared vocabulary's
   embeddings, each sampled reference unit's best-scoring unit (``s`` of ``parent.py``) with its
   up/down scale fitted back, then the rotation refitted by Procrustes on the matched MLP rows.
   A member whose stored coordinates are as close as the fitted ones (within ``SNAP``) keeps
   them: a fine-tune does not rotate its parent, and a fitted rotation only adds noise.  A member
   of other depth has its blocks mapped one-to-one to the reference blocks they match best.
3. **Distance.**  ``d(u, v) = ‖x_u − x_v‖ / ‖x_ref‖`` over the blocks both have (MLP gate, up and
   down rows, norm gains folded).  A pair with a *fitted* member is aligned directly, one into
   the other's coordinates: two rotations fitted to the reference each carry their own error,
   which can exceed a rotated copy's true distance to its source (zero).
4. **Merges.**  ``m`` is a linear merge of ``p`` and ``q`` when ``x_m = α·x_p + (1 − α)·x_q + r``
   with ``α ∈ [0.1, 0.9]`` and ``‖r‖ ≤ MERGE_RESIDUAL·min_j d(m, j)`` over the members j that
   are not copies of m (the smallest residual; among exact ties, the nearer pair: a linear and a
   task-arithmetic merge of one pair make a parallelogram whose two diagonals both pass through
   m).  ``p`` and ``q`` are in m's basis and no copies of it: a merge across a rotation computes
   nothing, and a symmetry copy of a merge is the merge's child.  ``MERGE_RESIDUAL`` (0.2) sits
   above what bf16 storage leaves of a merge of 150- and 400-step fine-tunes (≤ 0.035,
   ``scripts/tree_siblings.py``; shorter fine-tunes' changes are nearer bf16's rounding and leave
   more) and below the 0.5 at which fine-tunes trained on a sibling's text read as merges of it
   and their parent (held-out seed 2028, docs/benchmarks.md §14e).
   Its parents are then ``p`` and ``q``, its in-edge may come from them only, and it is a parent
   of another member only if that member is ``MERGE_CHILD`` times nearer to it than to any other
   (not counting the members known to derive from that member, step 6): a midpoint is near every
   relative of its parents, so nearness alone makes it a false hub.  A shallower member is exempt
   (a student distilled from the merge): distillation moves a student far from every member
   alike, ``d(s, x)² ≈ ‖N‖² + d(m, x)²`` with ``‖N‖`` its own large change, so no ratio singles
   its teacher out — the rule charged every merge's student — while the depth cue orders the
   two and a student of one of the merge's parents is still nearer to that parent than to the
   midpoint (``scripts/tree_rescore.py``: seeds 2026–2051, 7 more students of merges placed,
   nothing lost).  A fine-tune of the merge is exempt where the *shape* of its difference says
   so (0.38.0): ``v − m`` is one optimiser run, while v's difference from a relative of the
   merge's parents made without the merge is that run plus the merge's own change, or plus the
   run that relative made and v did not — so ``v − m`` has both the lower effective rank and the
   lighter tail (:func:`_shape`, step 9's statistic) than ``v − w`` for every rival w of m's basis
   and depth within ``d(m, v) / MERGE_CHILD`` of v (the rivals that made the rule bite; one in
   another basis costs an event of its own).  0.34.0's exemption by geometry (an offset from the
   merge near orthogonal to the parents' line) placed 3 such fine-tunes and put 2 fine-tunes of
   a merge's parent under the merge — no measured gain, withdrawn in 0.35.0.  Without the
   exemption a short fine-tune of a merge of an under-trained root and its pruning, on the
   root's text, was taken for the root (held-out seeds 2056, 2062, 2064: the fine-tune is
   heavier-tailed than such a root, step 5, and its true in-edge cost the hub event).  A
   merge's copies (a GGUF export, a pruning, a symmetry rewrite of a merge) are hubs too — they
   are midpoints as well — except for their own exact children and low-rank updates (the shape
   exemption is read for the merge itself only, and in its basis: a permuted copy of the
   fine-tune is a fitted member, and the exemption is silent — ``scripts/tree_merge_attack.py``).  The rule spreads downstream only: a member is a
   merge's copy when its own source (the nearest member it is a pruning or rounding of) is a
   merge or a copy, or when it is one at distance ≤ ``COPY`` — a Q4_0 export of a short
   fine-tune is a rounding of its relatives too, the merge among them, and they are no copies of
   the merge.  A **task-arithmetic** merge ``x_m = x_p + x_q − x_o`` lies beyond its parents, on
   no segment: four members of one basis, none a copy of another, whose diagonals have equal
   sums, ``‖x_a + x_b − x_c − x_d‖ ≤ TASK_RESIDUAL`` (0.05) times the quad's shortest side (not
   zero: the rows carry folded norm gains, and a merge of the stored weights is not a merge of
   their products).  Each corner of a parallelogram is the same combination of the other
   three, so the cues choose: the reading
   (which diagonal joins origin and merge, which end is the origin) whose cues of o→p, o→q, p→m
   and q→m agree most (an exact cue counts twice), none when two readings tie; per merge, the
   quad of smallest residual.  Its parents are p and q (o is reported); it is no hub — it is as
   far from each parent as the other is from o, not a midpoint.
5. **Direction cues**, each read only where it means something: *depth* (a member with more
   distinct blocks comes first — a layer-dropped student keeps a subset of its teacher's blocks;
   duplicated blocks, as depth up-scaling makes, do not count); *pruning* (between members read
   in their stored coordinates: v has more exact zeros and every other sampled weight
   bit-identical to u's — a fine-tune of the pruned model moves them all, so it is not taken
   for the parent); then *excess kurtosis* of the stored weights, gains folded: a fine-tune
   adds a change N lighter-tailed than the weights X, and for independent X and N
   ``κ(X + N) = (κ_X·σ_X⁴ + κ_N·σ_N⁴)/(σ_X² + σ_N²)²``, below κ_X when κ_N < κ_X — the child is
   flatter (a quantization adds uniform noise, κ = −1.2: flatter too).  Across a change of basis
   the same statistic says which copy is in the basis training made: Adam's per-coordinate
   steps leave a trained decoder heavy-tailed in its own basis, and a random rotation of the
   residual stream makes the copy's weights more Gaussian.  The premise fails for a parent in its
   first steps of training (its fine-tune goes on the same trajectory: N is not independent of
   X); ``scripts/tree_kurtosis.py`` measures where.  A freshly distilled student is such a
   parent, so between two members of the same basis and depth, both shallower than another
   member, the *anchor* decides before kurtosis: the one nearer to the deeper members (their
   teacher's line) came first.  A fine-tune F of a student S adds an independent change N, so
   ``a_F² ≈ a_S² + ‖N‖² = a_S² + d(S, F)²`` with ``a`` a member's distance to the nearest deeper
   member; it is read when ``|a_u² − a_v²| > ANCHOR_CUE · d(u, v)²`` (else kurtosis).
6. **Exact relations** single out a member's parent among nearer candidates: a pruning or a
   rounding (step 5) of u, and a **low-rank update** — a merged LoRA is ``W + B·A``, so the
   difference of its stored gate and up rows from its parent's has rank r (≤ 1/8 of the matrix's)
   to float32 rounding, while any fine-tune's difference is full rank.  The update's side is the
   later one by the pair's direction cue (kurtosis: a merged LoRA is flatter than its parent, as
   step 5 expects); among several such partners, those of the smallest rank (a LoRA's sibling is
   2r away).  A sibling fine-tuned on the same text can sit nearer to a LoRA than its parent does.
   A merge is no exact parent of its own parent: a pruning P of u and the merge
   ``M = (u + P)/2`` agree wherever P is not zero, so P reads as a pruning of M as well; M, the
   nearer, would become P's source and P a merge's copy, a hub (step 7).  A merge is the earlier
   side of a low-rank update (a LoRA of the merge) and never the later (a merge of u with u's
   LoRA is half an update from each parent).
7. **Events.**  An edge costs its distance plus the family's largest distance for each event it
   needs: against its direction cue, a change of basis (members whose coordinates were fitted
   form classes of equal transforms), a merge as a far parent (not when the edge is an exact
   relation or a low-rank update: a GGUF of a merge is the merge rounded), a parent other than
   the member's exact relations of step 6, and a parent of the member's own depth, both shallower
   than another member, in its basis, when the anchor cue is silent and no exact relation joins
   them: two students distilled by one recipe from near-identical teachers are nearer to each
   other than to any teacher, and a fine-tune of a student would have moved away from the
   teacher's line by about its own length (step 5) — co-students go under deeper members.  A
   thief's rotation is one event, and the tree with the fewest events is preferred.  Among
   equally near parents the one in the most native (heaviest-tailed) basis comes first, by a
   tie-break of 10⁻⁶ of the family's largest distance.  **Copies** (members within ``COPY`` of
   each other: symmetry rewrites, which no cue orders) are ordered by their rounding: each
   rewrite stored in float32 adds its own error ε, so a copy of a copy is ε from its source and
   about √2·ε from its source's source.  The sampled float32 alignment of step 3 adds noise of
   ε's size (``scripts/tree_copy_order.py``: 3 % apart), so copy pairs are refitted in float64 on
   every unit (:func:`_copy_distance`: 4.1–4.4·10⁻⁸ for one rewrite, 5.8–6.2·10⁻⁸ for two); an
   edge between copies costs that distance, plus ``COPY`` when it is off the copies' minimum
   spanning tree by it — a copy of a copy goes under its source, whatever the tie-break says.
8. The **minimum spanning arborescence** (Edmonds, ``networkx``) of these costs, from a node above
   the family whose edge into any member costs more than any other edge (so one root), plus one
   event into a member with a known parent (a merge, a pruning or rounding, a low-rank update):
   each member's parent, and the root — the member whose every in-edge needs an event.
9. **Siblings.**  Two fine-tunes of one parent P on correlated text are nearer to each other than
   the later one is to P: distance puts v under its sibling S.  The difference's *shape* tells
   the two apart where its length cannot: a fine-tune's change is one optimiser run from its
   parent, a sibling's difference two runs with one undone, and on the stored gate and up rows
   the latter has both a higher effective rank (``exp(H(σ²/Σσ²))`` per block, H the entropy of
   the normalised squared singular values) and a heavier tail (excess kurtosis) than the change
   from P (``scripts/tree_sibling_spectra.py``: in all 21 such triangles of the development
   seeds).  So where the tree found v under u under w — three plain members of one basis and
   depth, v and u neither merges, their copies, roundings, prunings nor low-rank updates, w no
   merge — v goes under w when ``v − u`` is both of higher effective rank and heavier-tailed
   than ``v − w``.  A chain on one text fails it as well (a second run on the text of the first
   reads as one longer run: 8 true parents lost against 19 siblings found on seeds 2026–2055,
   docs/benchmarks.md §14e).

What it cannot see: the direction between function-identical copies in different bases (no cue
is read across a basis change; parsimony puts the copy under its source, and of a chain of
copies with no other relative the heaviest-tailed is taken for the first — on near-Gaussian
weights a rotated copy can be heavier-tailed than the original); a fine-tune that passed near
a sibling trained on the same text where step 9's shapes do not say so (it reads as the
sibling's child — ``scripts/tree_siblings.py`` measures it), one trained on its parent's own
text where they do (it reads as its parent's sibling), or one that went back toward its
grandparent's text (it reads as its parent's parent); an early-training parent (step 5; a short
fine-tune of a merge on an under-trained root's text was taken for the root through 0.37.0, and
still can be where step 4's shapes do not speak); a chain of fine-tunes from such a root (a
fine-tune or a pruning of a fine-tune read as the root's child — 8 of the 19 misses of held-out
seeds 2072–2081 — or the two read in reverse, 2 more); a fine-tune of a 0.5/0.5 merge of two
children where the shapes do not speak (3 more: under the root); identical
copies (no order); an exact relation once any full-rank noise covers it (a GGUF export of a LoRA is no longer a
low-rank update of anything: distance decides); which of several members a coarse rounding
rounds when they differ by far less than its step (the nearest is taken, and the rounding's own
noise can make that the source's parent); a LoRA's direction where the weights have no heavy
tails to lose (a rotated copy of a near-Gaussian model: the update, a product of two factors, is
heavier-tailed than the copy, and the LoRA reads as its parent's parent); a LoRA on the
attention projections only (the MLP rows read here do not move: it reads as a copy of its
parent, with no direction); a task-arithmetic merge whose quad's readings tie (of two nested
prunings of one model, the heavier is also a pruning of the merge: two readings score alike, and
it is left to distance); and anything made without inheriting weights (distillation into a
fresh student).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from freqprint.errors import InvalidArgument
from freqprint.verification.parent import (
    DecoderWeights,
    _counterparts,
    _polar,
    _procrustes,
    _scores,
    _unit_rows,
    parent_lineage,
    read_decoder,
    residual_rotation,
)
from freqprint.verification.report import TimedReport

__all__ = ["LineageTree", "TreeEdge", "lineage_tree"]

SNAP = 1.05  # keep the stored coordinates when they are within 5 % of the fitted ones
MERGE_RESIDUAL = 0.2  # a merge's residual, relative to its nearest member (step 4)
TASK_RESIDUAL = 0.05  # a task-arithmetic merge's residual, relative to its quad's shortest side (step 4)
COPY = 1e-4  # a distance this small is a copy (a symmetry's rewrite aligned back), not a neighbour
ZERO_CUE = 1e-3  # a pruned child has at least this fraction more exact zeros than its parent
KURTOSIS_CUE = 1e-6  # a relative difference in excess kurtosis that decides it (float64 sums: far above rounding)
KURTOSIS_BASIS_CUE = 0.25  # ... between two bases (two random rotations of one model differ by 10 % and more by chance)
KURTOSIS_BASIS_FLOOR = 0.1  # ... and at least this much (near-Gaussian weights: no native basis to tell)
MERGE_CHILD = 0.5  # a merge is a parent only of a member this much nearer to it than to any other
ANCHOR_CUE = 0.25  # the anchor cue's margin, as a fraction of the pair's d² (its premise: a fraction of 1)
LOW_RANK_TOL = 1e-4  # a low-rank update's residual past its rank, relative to the update
LOW_RANK_FRACTION = 8  # ... whose rank is at most this fraction of the matrix's
_ROOT = ("root",)  # the node above every family's root (no model name is a tuple)


@dataclass
class TreeEdge:
    parent: str
    child: str
    distance: float
    cue: str  # "depth", "pruning", "quantization", "anchor", "kurtosis", "merge" or "" (none): what says the parent came first
    merge: bool = False  # the child is a linear merge of this parent and another


@dataclass
class LineageTree(TimedReport):
    families: list[list[str]]  # connected by parent_lineage's verdicts; singletons included
    parents: dict[str, list[str]]  # each model's direct parents (two for a merge); [] for a root
    edges: list[TreeEdge]
    distances: dict[str, dict[str, float]]  # within each family
    reference: dict[str, str]  # each model's family reference
    fitted: list[str]  # members brought into the reference's basis by a fitted transform
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def roots(self) -> list[str]:
        return [n for n, p in self.parents.items() if not p]

    def summary(self) -> str:
        lines = []
        for fam in self.families:
            lines.append(f"family of {len(fam)} (reference {self.reference[fam[0]]}):")
            for n in fam:
                p = self.parents[n]
                origin = self.detail.get("task_arithmetic", {}).get(n)
                over = f" - {origin} (task arithmetic)" if origin else ""
                lines.append(f"  {n}  <-  {' + '.join(p) if p else '(root)'}{over}")
        return "\n".join(lines)


@dataclass
class _Member:
    name: str
    blocks: dict[int, torch.Tensor]  # reference block -> [m, 3H] aligned rows of the sampled units
    zeros: dict[int, float]  # per reference block, of the stored MLP weights
    kurtosis: dict[int, float]  # as stored
    kurtosis_folded: dict[int, float]  # norm gains folded
    fitted: bool
    distinct: int  # blocks that are not copies of another of its blocks
    raw: dict[int, torch.Tensor]  # reference block -> [m, 2H] gate and up rows as stored (units at the picks)
    transform: tuple[torch.Tensor, dict[int, torch.Tensor]] | None  # (rotation, unit order per reference block)
    grid: list[torch.Tensor | None] = field(default_factory=list)  # _grid_steps of the raw rows, once read


def _grid(m: _Member) -> torch.Tensor | None:
    """:func:`_grid_steps` of a member's raw rows, computed once."""
    if not m.grid:
        m.grid.append(_grid_steps(_flat(m.raw)))
    return m.grid[0]


def _kurtosis(w: torch.Tensor) -> float:
    c = w - w.mean()
    var = float(c.square().mean())
    return float(c.pow(4).mean()) / var**2 - 3.0 if var > 0 else 0.0


def _stats(g: torch.Tensor, u: torch.Tensor, dt: torch.Tensor, gain: torch.Tensor) -> tuple[float, float, float]:
    """(fraction of exact zeros, excess kurtosis as stored, excess kurtosis with the norm gains
    folded) of one block's MLP weights.  Folded, the norm-scaling symmetry changes nothing (the
    statistic across bases); as stored, a fine-tune's change is N added to W (within a basis: a
    fine-tune also moves the gains, and folding multiplies W by that move, which the premise of
    step 5 does not cover)."""
    raw = torch.cat([g.flatten(), u.flatten(), dt.flatten()]).double()
    folded = torch.cat([(g * gain).flatten(), (u * gain).flatten(), dt.flatten()]).double()
    return float((raw == 0).double().mean()), _kurtosis(raw), _kurtosis(folded)


def _stored_stats(dec: DecoderWeights, b: int, dev: torch.device) -> tuple[float, float, float]:
    """:func:`_stats` of block b as stored."""
    return _stats(*dec.raw_block(b, dev))


def _rows(g: torch.Tensor, u: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return torch.cat([g, u, d], dim=1)


def _matched(ref: tuple[torch.Tensor, ...], x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """x's units (its (G, U, Dᵀ) rows, already in ref's residual basis) matched to ref's units by
    their best score ``s``, each unit's up/down scale fitted back to ref's: (the matched rows
    ``[m, 3H]``, the order of x's units)."""
    gr, ur, dr = ref
    order = _scores(tuple(_unit_rows(t) for t in (gr, ur, dr)), tuple(_unit_rows(t) for t in x)).argmax(dim=1)
    g, u, d = (t[order] for t in x)
    a = (u * ur).sum(1) / (ur * ur).sum(1).clamp_min(1e-30)
    a = torch.where(a.abs() > 1e-6, a, torch.ones_like(a))
    return _rows(g, u / a[:, None], d * a[:, None]), order


def _member(
    name: str,
    ref: DecoderWeights,
    dec: DecoderWeights,
    frame: tuple[list[torch.Tensor], list[torch.Tensor], list[int]],
    dev: torch.device,
) -> _Member:
    """``dec`` in the coordinates of ``ref``'s :func:`_frame` (module docstring, step 2)."""
    picks, ref_rows, counts = frame
    rot0, _ = residual_rotation(ref, dec, torch.Generator().manual_seed(0), dev)
    lr, lm = len(ref.blocks), len(dec.blocks)
    h = dec.width
    ref_units = [tuple(r.split(h, dim=1)) for r in ref_rows]  # the reference's sampled (G, U, Dᵀ) rows
    blocks, stored_stats, stored_rows = [], [], []
    for k in range(lm):  # each block read once
        g, u, dt, gain = dec.raw_block(k, dev)
        blocks.append((g * gain, u * gain, dt))
        stored_stats.append(_stats(g, u, dt, gain))
        stored_rows.append((g, u))
    # each member block -> the reference block (among its counterparts) it matches best
    best: dict[int, tuple[float, int]] = {}  # member block -> (score, reference block)
    for b in range(lr):
        par = tuple(_unit_rows(x) for x in ref_units[b])
        for k in _counterparts(b, lr, lm):
            s = float(_scores(par, tuple(_unit_rows(x @ rot0) for x in blocks[k])).max(dim=1).values.mean())
            if s > best.get(k, (-math.inf, -1))[0]:
                best[k] = (s, b)
    winner: dict[int, tuple[float, int]] = {}  # reference block -> (score, member block): one each
    for k, (s, b) in best.items():
        if s > winner.get(b, (-math.inf, -1))[0]:
            winner[b] = (s, k)
    mapping = {k: b for b, (_, k) in sorted(winner.items())}

    def aligned(rot: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        out, orders = {}, {}
        for k, b in mapping.items():
            out[b], orders[b] = _matched(ref_units[b], tuple(x @ rot for x in blocks[k]))
        return out, orders

    def dist(x: dict[int, torch.Tensor]) -> float:
        return math.sqrt(sum(float((x[b] - ref_rows[b]).double().square().sum()) for b in x))

    fit, orders = aligned(rot0)
    # refit the rotation on the matched MLP rows (the embeddings move under fine-tuning)
    src = torch.cat([fit[b].reshape(-1, h) for b in fit])
    dst = torch.cat([ref_rows[b].reshape(-1, h) for b in fit])
    rot = rot0 @ _procrustes(src, dst)
    fit, orders = aligned(rot)
    same_units = all(blocks[k][0].shape[0] == counts[b] for k, b in mapping.items())
    raw = {b: torch.cat([x[picks[b]] for x in stored_rows[k]], dim=1) for k, b in mapping.items()} if same_units else {}
    if same_units:
        stored = {b: _rows(*(x[picks[b]] for x in blocks[k])) for k, b in mapping.items()}
        fitted = dist(stored) > SNAP * dist(fit) + 1e-12
        if not fitted:
            fit, rot, orders = stored, torch.eye(h, device=dev), {b: picks[b] for b in mapping.values()}
    else:
        fitted = True
    stats = {b: stored_stats[k] for k, b in mapping.items()}
    gates = [x[0] for x in blocks]
    copies = sum(
        any(
            gates[j].shape == gates[k].shape and float((gates[j] - gates[k]).norm()) <= 1e-3 * float(gates[k].norm())
            for j in range(k)
        )
        for k in range(lm)
    )
    return _Member(
        name,
        fit,
        {b: s[0] for b, s in stats.items()},
        {b: s[1] for b, s in stats.items()},
        {b: s[2] for b, s in stats.items()},
        fitted,
        lm - copies,
        raw,
        (rot, orders) if fitted else None,
    )


def _frame(
    dec: DecoderWeights, units: int, seed: int, dev: torch.device
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int]]:
    """A decoder's sampled units (seeded) per block, their folded rows and each block's unit count
    as read (split units merged back): coordinates to align others into."""
    gen = torch.Generator().manual_seed(seed)
    picks, rows, counts = [], [], []
    for b in range(len(dec.blocks)):
        block = dec.block(b, dev)
        n = block[0].shape[0]
        picks.append(torch.randperm(n, generator=gen)[: min(units, n)])
        rows.append(_rows(*(x[picks[-1]] for x in block)))
        counts.append(n)
    return picks, rows, counts


def _distance(u: _Member, v: _Member, ref_norm: dict[int, float]) -> float:
    common = u.blocks.keys() & v.blocks.keys()
    if not common:
        return math.inf
    num = sum(float((u.blocks[b] - v.blocks[b]).double().square().sum()) for b in common)
    return math.sqrt(num / max(sum(ref_norm[b] for b in common), 1e-300))


def _copy_distance(du: DecoderWeights, dv: DecoderWeights, dev: torch.device) -> float:
    """``d(u, v)`` of two copies refitted in float64 on every unit of every block (step 7): v's
    residual rotation from the embeddings, its units matched to u's and their up/down scale fitted
    back, the rotation refitted by Procrustes on all matched MLP rows, then the relative distance
    of the folded rows; ``inf`` when the two do not have the same blocks and units.  Each rewrite
    leaves its own float32 rounding ε, so a copy of a copy sits about √2·ε from the original and ε
    from its source; the sampled float32 alignment of step 3 adds noise of ε's own size and cannot
    tell them apart (``scripts/tree_copy_order.py``)."""
    if len(du.blocks) != len(dv.blocks) or du.width != dv.width or dev.type == "mps":
        return math.inf
    # the embeddings' rotation, made orthogonal to float64 (fitted in float32, it is so only to ~1e-7)
    rot = _polar(residual_rotation(du, dv, torch.Generator().manual_seed(0), dev)[0])

    def rows(dec: DecoderWeights, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g, u, dt, gain = (x.double() for x in dec.raw_block(b, dev))
        return g * gain, u * gain, dt

    h = du.width
    dist = math.inf
    for _ in range(2):  # match with the embeddings' rotation; refit; match and measure with the refit
        num = den = 0.0
        cross = torch.zeros(h, h, dtype=torch.float64, device=dev)
        for b in range(len(du.blocks)):
            xu, xv = rows(du, b), rows(dv, b)
            if xu[0].shape != xv[0].shape:
                return math.inf
            y, _ = _matched(xu, tuple(x @ rot for x in xv))
            x = _rows(*xu)
            num += float((y - x).square().sum())
            den += float(x.square().sum())
            cross += y.reshape(-1, h).T @ x.reshape(-1, h)
        dist = math.sqrt(num / max(den, 1e-300))
        rot = rot @ _polar(cross)
    return dist


def _copy_order(
    fam: list[str], decs: dict[str, DecoderWeights], dist: dict[tuple[str, str], float], dev: torch.device
) -> tuple[dict[frozenset[str], float], set[frozenset[str]]]:
    """:func:`_copy_distance` of the pairs of copies (members within ``COPY`` of each other) in
    classes of three or more, and the pairs that the copies' minimum spanning tree by it leaves
    out (step 7)."""
    import networkx as nx

    copies = nx.Graph()
    copies.add_edges_from((a, b) for a, b in itertools.combinations(fam, 2) if dist[(a, b)] <= COPY)
    fine_dist: dict[frozenset[str], float] = {}
    off: set[frozenset[str]] = set()
    for cls in nx.connected_components(copies):
        if len(cls) < 3:  # two copies: one edge, its direction the tie-break's
            continue
        fine = nx.Graph()
        fine.add_nodes_from(cls)
        for a, b in itertools.combinations(sorted(cls, key=fam.index), 2):
            d = _copy_distance(decs[a], decs[b], dev)
            if 0 < d < math.inf:  # bit-identical copies have no rounding to order them
                fine.add_edge(a, b, weight=d)
                fine_dist[frozenset((a, b))] = d
        span = nx.minimum_spanning_tree(fine)
        off |= {frozenset((a, b)) for a, b in fine.edges() if not span.has_edge(a, b)}
    return fine_dist, off


def _mean(x: dict[int, float]) -> float:
    return sum(x.values()) / max(len(x), 1)


def _flat(rows: dict[int, torch.Tensor]) -> torch.Tensor:
    return torch.cat([rows[b].flatten() for b in sorted(rows)])


def _pruned(u: _Member, v: _Member) -> bool:
    """v is a pruning of u: more exact zeros, and every other sampled weight bit-identical to u's
    (members stored in one basis)."""
    if not u.raw or u.raw.keys() != v.raw.keys() or not _same_basis(u, v):
        return False
    xu, xv = _flat(u.raw), _flat(v.raw)
    zero = xv == 0
    if float(zero.float().mean() - (xu == 0).float().mean()) <= ZERO_CUE:
        return False
    return float((xv[~zero] == xu[~zero]).float().mean()) >= 0.99


def _grid_steps(x: torch.Tensor) -> torch.Tensor | None:
    """Per block of 32 consecutive stored weights, the step of the grid the block lies on (GGUF's
    quantizations store ``d·q (+ m)`` per block: every difference is a multiple of d; the smallest
    gap seen may be many steps — a requantized model keeps its old grid's clusters — so its divisions
    by 1…32 are tried), or None when under 80 % of the
    blocks lie on one."""
    if x.numel() % 32:
        return None
    blocks = x.double().reshape(-1, 32).sort(dim=1).values
    gaps = blocks.diff(dim=1)
    gap = torch.where(gaps > 0, gaps, torch.full_like(gaps, math.inf)).min(dim=1).values
    step = torch.full_like(gap, math.nan)
    for m in range(32, 0, -1):  # the coarsest division that fits wins (written last)
        k = (blocks - blocks[:, :1]) / (gap / m)[:, None]
        on = torch.isfinite(gap) & ((k - k.round()).abs() < 1e-3).all(dim=1)
        step = torch.where(on, gap / m, step)
    return step if float(torch.isfinite(step).double().mean()) >= 0.8 else None


def _quantized(u: _Member, v: _Member) -> int:
    """Between a stored-quantized member v and a full-precision u of one basis: +1 when v is u
    rounded to v's grid (the residual fills the grid's cells: mean |u − v| about a quarter step,
    none beyond half a step), −1 when u is v moved a little (the residual far inside the cells:
    a fine-tune of the quantized release), 0 otherwise."""
    if not u.raw or u.raw.keys() != v.raw.keys() or not _same_basis(u, v):
        return 0
    xu, xv = _flat(u.raw), _flat(v.raw)
    sv, su = _grid(v), _grid(u)
    if sv is None or su is not None:
        return 0
    ok = torch.isfinite(sv)
    r = ((xu - xv).double().reshape(-1, 32)[ok].abs() / sv[ok][:, None]).flatten()
    mean, beyond = float(r.mean()), float((r > 0.505).double().mean())
    if beyond < 0.01 and 0.15 <= mean <= 0.35:
        return 1
    return -1 if mean < 0.1 else 0


def _low_rank(u: _Member, v: _Member) -> int:
    """The rank of ``v − u`` when it is exactly low (a merged LoRA: ``W + B·A``), else 0.  Read on
    the stored gate and up rows of members of one basis: per block and matrix, the fewest singular
    values that leave a residual of at most ``LOW_RANK_TOL`` of the difference (and of float32
    rounding of the weights); it must be at most 1/``LOW_RANK_FRACTION`` of the matrix's rank in
    every block.  Identical rows (rank 0) are not a low-rank update."""
    if not u.raw or u.raw.keys() != v.raw.keys() or not _same_basis(u, v):
        return 0
    worst = 0
    for b in sorted(u.raw):
        for xu, xv in zip(u.raw[b].double().chunk(2, dim=1), v.raw[b].double().chunk(2, dim=1)):
            d = xv - xu
            norm = float(d.norm())
            if norm == 0:
                return 0
            tol = max(LOW_RANK_TOL * norm, 1e-6 * float(xu.norm()))
            s = torch.linalg.svdvals(d)
            beyond = s.square().flip(0).cumsum(0).flip(0).sqrt()  # beyond[k]: the residual past k values
            k = int((beyond > tol).sum())
            if k == 0 or k > max(min(d.shape) // LOW_RANK_FRACTION, 1):
                return 0
            worst = max(worst, k)
    return worst


def _cue(u: _Member, v: _Member) -> tuple[int, str]:
    """+1 when the weights say u came before v, −1 after, 0 undecided (step 5)."""
    if u.distinct != v.distinct:  # a layer-dropped student keeps a subset of its teacher's blocks
        return (1 if u.distinct > v.distinct else -1), "depth"
    if _pruned(u, v):
        return 1, "pruning"
    if _pruned(v, u):
        return -1, "pruning"
    q = _quantized(u, v) or -_quantized(v, u)
    if q:
        return q, "quantization"
    same = _same_basis(u, v)
    ka, kb = (u.kurtosis, v.kurtosis) if same else (u.kurtosis_folded, v.kurtosis_folded)
    common = sorted(ka.keys() & kb.keys())
    if not common:
        return 0, ""
    ku = sum(ka[b] for b in common) / len(common)
    kv = sum(kb[b] for b in common) / len(common)
    scale = max(abs(ku), abs(kv), 1e-12)
    if abs(ku - kv) > (KURTOSIS_CUE * scale if same else max(KURTOSIS_BASIS_CUE * scale, KURTOSIS_BASIS_FLOOR)):
        return (1 if ku > kv else -1), "kurtosis"
    return 0, ""


def _anchor_cues(
    members: list[_Member], dist: dict[tuple[str, str], float], cues: dict[tuple[str, str], tuple[int, str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """The anchor cue (step 5) for the ordered pairs of members of one depth and basis, shallower
    than another member, that no exact cue (depth, pruning, rounding) orders: +1 when u is nearer
    to the deeper members than v by ``|a_u² − a_v²| > ANCHOR_CUE · d(u, v)²``, −1 when v is."""
    deepest = max(m.distinct for m in members)
    anchor = {
        m.name: min((dist[(m.name, w.name)] for w in members if w.distinct > m.distinct), default=math.inf) for m in members
    }
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for u, v in itertools.permutations(members, 2):
        au, av, d = anchor[u.name], anchor[v.name], dist[(u.name, v.name)]
        if u.distinct != v.distinct or u.distinct == deepest or cues[(u.name, v.name)][1] not in ("kurtosis", ""):
            continue
        if math.isfinite(au + av + d) and abs(au**2 - av**2) > ANCHOR_CUE * d**2 and _same_basis(u, v):
            out[(u.name, v.name)] = (1 if au < av else -1), "anchor"
    return out


def _shape(u: _Member, v: _Member) -> tuple[float, float] | None:
    """(effective rank, excess kurtosis) of ``v − u`` on the stored gate and up rows, averaged
    over blocks (step 9): the effective rank is ``exp(H(σ²/Σσ²)) / min(shape)`` of the block's
    difference, H the entropy of its normalised squared singular values.  None when the two are
    not stored in one basis with the same blocks, or are identical."""
    if not u.raw or u.raw.keys() != v.raw.keys() or not _same_basis(u, v):
        return None
    ranks, kurt = [], []
    for b in sorted(u.raw):
        d = v.raw[b].double() - u.raw[b].double()
        s2 = torch.linalg.svdvals(d).square()
        if float(s2.sum()) == 0.0:
            continue
        p = s2 / s2.sum()
        ranks.append(math.exp(-float((p * p.clamp_min(1e-300).log()).sum())) / min(d.shape))
        kurt.append(_kurtosis(d.flatten()))
    return (sum(ranks) / len(ranks), sum(kurt) / len(kurt)) if ranks else None


def _same_basis(u: _Member, v: _Member) -> bool:
    if not u.fitted and not v.fitted:
        return True
    if u.fitted != v.fitted or u.transform is None or v.transform is None:
        return False
    (ru, ou), (rv, ov) = u.transform, v.transform
    common = sorted(ou.keys() & ov.keys())
    if not common or float((ru - rv).norm()) / math.sqrt(ru.shape[0]) >= 0.1:
        return False
    return float(torch.cat([(ou[b] == ov[b]).float() for b in common]).mean()) > 0.9


def _exact_relations(
    members: list[_Member], merges: dict[str, tuple[str, str]], cues: dict[tuple[str, str], tuple[int, str]]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Relations that single out a member's parent (step 6): ``exact[v]``, the members v is a
    pruning or a rounding of; ``partners[v]``, the members v is one low-rank update of (a merged
    LoRA; those of its smallest such rank: a LoRA's sibling or grandchild is two updates away,
    rank 2r), the update's direction taken from the pair's cue (``cues``, :func:`_cue` per
    ordered pair).  A merge's own parents are known: it can be an exact parent (a GGUF of a merge)
    but not of one of its parents, and a low-rank partner as the update's earlier side only (a LoRA
    of a merge; a merge of a model with its LoRA is one update from each of its parents)."""
    exact: dict[str, set[str]] = {}
    ranks: dict[str, dict[str, int]] = {}
    plain = [m for m in members if m.name not in merges]
    for u, v in itertools.permutations(members, 2):
        if v.name not in merges and v.name not in merges.get(u.name, ()) and (_pruned(u, v) or _quantized(u, v) == 1):
            exact.setdefault(v.name, set()).add(u.name)
    for u, v in itertools.product(members, plain):
        if u.name in merges and v.name not in merges[u.name] and (r := _low_rank(u, v)):
            ranks.setdefault(v.name, {})[u.name] = r  # a LoRA of a merge (not one of the merge's own parents)
    for u, v in itertools.combinations(plain, 2):
        r = _low_rank(u, v)
        if r:
            # the update's side: the later one by the direction cue (both when it is silent) — the
            # earlier one keeps its own parent
            sign = cues[(u.name, v.name)][0]
            if sign >= 0:
                ranks.setdefault(v.name, {})[u.name] = r
            if sign <= 0:
                ranks.setdefault(u.name, {})[v.name] = r
    partners = {v: {u for u, r in rs.items() if r == min(rs.values())} for v, rs in ranks.items()}
    return exact, partners


def _full_gram(members: list[_Member], ref_norm: dict[int, float]) -> tuple[list[_Member], torch.Tensor]:
    """The members that have every reference block and the Gram matrix of their aligned rows
    (float64): what the linear and the task-arithmetic merges (step 4) are read from."""
    full = [m for m in members if m.blocks.keys() == ref_norm.keys()]
    if not full:
        return full, torch.zeros(0, 0, dtype=torch.float64)
    x = torch.stack([torch.cat([m.blocks[b].flatten() for b in sorted(ref_norm)]).double() for m in full])
    return full, x @ x.T


def _merges(
    full: list[_Member], gram: torch.Tensor, dist: dict[tuple[str, str], float], ref_norm: dict[int, float]
) -> dict[str, tuple[str, str]]:
    """Linear merges among the members that have every reference block (step 4; ``full`` and
    ``gram`` from :func:`_full_gram`)."""
    if len(full) < 3:
        return {}
    out: dict[str, tuple[str, str]] = {}
    scale = sum(ref_norm.values())
    for i, m in enumerate(full):
        nearest = min((dist[(m.name, o.name)] for o in full if o is not m and dist[(m.name, o.name)] > COPY), default=math.inf)
        if not math.isfinite(nearest):
            continue
        cands: list[tuple[float, float, str, str]] = []
        # candidate parents: members of m's own basis (a merge across a rotation computes nothing;
        # a symmetry copy of a merge is the merge's child), none a copy of m
        others = [t for t in range(len(full)) if t != i and dist[(m.name, full[t].name)] > COPY and _same_basis(m, full[t])]
        for j, k in itertools.combinations(others, 2):
            # x_m − x_k = α (x_j − x_k) + r: one-dimensional least squares through the Gram matrix
            dd = float(gram[j, j] - 2 * gram[j, k] + gram[k, k])
            if dd <= COPY**2 * scale:  # two copies of one model span no line
                continue
            alpha = float(gram[i, j] - gram[i, k] - gram[j, k] + gram[k, k]) / dd
            if not 0.1 <= alpha <= 0.9:
                continue
            yy = float(gram[i, i] - 2 * gram[i, k] + gram[k, k])
            r = math.sqrt(max(yy - alpha**2 * dd, 0.0) / scale)
            if r <= MERGE_RESIDUAL * nearest:
                cands.append((r, dd, full[j].name, full[k].name))
        if cands:
            r0 = min(c[0] for c in cands)
            # a parallelogram (a linear and a task-arithmetic merge of one pair) has two diagonals
            # through m: the parents are the nearer pair, a merge's usual siblings
            best = min((c for c in cands if c[0] <= r0 + 1e-3 * nearest), key=lambda c: c[1])
            out[m.name] = (best[2], best[3])
    return out


def _task_arithmetic(
    full: list[_Member],
    gram: torch.Tensor,
    dist: dict[tuple[str, str], float],
    ref_norm: dict[int, float],
    cues: dict[tuple[str, str], tuple[int, str]],
    merges: Mapping[str, tuple[str, str]],
) -> dict[str, tuple[str, str, str]]:
    """Task-arithmetic merges ``x_m = x_p + x_q − x_o`` (step 4) among the full members of one
    basis that are no linear merges: four members, none a copy of another, whose two diagonals
    have equal sums, ``‖x_a + x_b − x_c − x_d‖ ≤ TASK_RESIDUAL`` times the quad's shortest side.
    One diagonal is the origin and the merge, the other the merge's parents; which, and which end
    is the origin, is read from the cues of o→p, o→q, p→m and q→m (an exact cue — depth, pruning,
    rounding — counts twice).  Each merge keeps its quad of smallest residual (a Q8_0 copy of a
    parent makes a second quad, with the rounding in its residual; ``full`` and ``gram`` from
    :func:`_full_gram`).  A corner that is a pruning of another (its cue says so) is never the
    merge.  Returns m → (p, q, o)."""
    if len(full) < 4:
        return {}
    scale = sum(ref_norm.values())
    names = [m.name for m in full]

    def weight(u: str, v: str) -> int:
        sign, cue = cues[(u, v)]
        return sign * (2 if cue in ("depth", "pruning", "quantization") else 1)

    best: dict[str, tuple[float, str, str, str]] = {}
    for quad in itertools.combinations(range(len(full)), 4):
        if any(
            dist[(names[i], names[j])] <= COPY or not _same_basis(full[i], full[j]) for i, j in itertools.combinations(quad, 2)
        ):
            continue
        i0, rest = quad[0], quad[1:]
        for k in rest:  # the three ways to pair four members into two diagonals
            a, b = i0, k
            c, d = (t for t in rest if t != k)
            rr = float(
                gram[a, a]
                + gram[b, b]
                + gram[c, c]
                + gram[d, d]
                + 2 * (gram[a, b] + gram[c, d] - gram[a, c] - gram[a, d] - gram[b, c] - gram[b, d])
            )
            r = math.sqrt(max(rr, 0.0) / scale)
            side = min(dist[(names[s], names[t])] for s in (a, b) for t in (c, d))
            if r > TASK_RESIDUAL * side:
                continue
            # (origin, merge, parents): either diagonal, either end
            options = [(o, m, pq) for diag, pq in (((a, b), (c, d)), ((c, d), (a, b))) for o, m in (diag, diag[::-1])]
            # a pruning of another corner is that corner's child, not a merge (nested prunings of one
            # model, x_o − x_p and x_o − x_q on nested masks, make a quad whose readings tie); the
            # corners share a depth, so the pair's cue is "pruning" exactly when _pruned holds
            options = [
                (o, m, pq) for o, m, pq in options if all(cues[(names[t], names[m])] != (1, "pruning") for t in quad if t != m)
            ]
            if not options:
                continue
            scores = [sum(weight(names[o], names[p]) + weight(names[p], names[m]) for p in pq) for o, m, pq in options]
            top = max(scores)
            if scores.count(top) > 1 or top <= 0:
                continue  # the cues do not say which corner is the merge
            o, m, (p, q) = options[scores.index(top)]
            if names[m] in merges:
                continue
            if names[m] not in best or r < best[names[m]][0]:
                best[names[m]] = (r, names[p], names[q], names[o])
    return {m: (p, q, o) for m, (_, p, q, o) in best.items()}


def _siblings(
    tree_parent: dict[str, str],
    by_name: dict[str, _Member],
    merges: Mapping[str, Any],
    hubs: set[str],
    exact: Mapping[str, set[str]],
    partners: Mapping[str, set[str]],
) -> dict[str, str]:
    """Step 9: v under u under w, all three of one basis and depth, v and u no merge, copy of a
    merge, pruning, rounding or low-rank update, w no merge or copy of one — v goes under w when
    ``v − u`` has both a higher effective rank and a higher excess kurtosis than ``v − w``
    (:func:`_shape`): two optimiser runs, one of them undone, not one.  Decided on the tree as
    found (each moved member goes to an ancestor: still a tree)."""
    out = dict(tree_parent)
    special = set(merges) | hubs | set(exact) | set(partners)
    for v, u in tree_parent.items():
        w = tree_parent.get(u)
        if w is None or {u, v} & special or w in set(merges) | hubs:
            continue
        mu, mv, mw = by_name[u], by_name[v], by_name[w]
        if not (mu.distinct == mv.distinct == mw.distinct):
            continue
        a, b = _shape(mu, mv), _shape(mw, mv)
        if a is not None and b is not None and a[0] > b[0] and a[1] > b[1]:
            out[v] = w
    return out


def lineage_tree(
    models: Mapping[str, Any] | Sequence[Any],
    alpha: float = 1e-6,
    units: int = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
    related: Iterable[tuple[str, str]] | None = None,
) -> LineageTree:
    """The lineage tree of ``models`` (a mapping name → model, state dict or file; or a sequence,
    named by position).  ``units`` reference units per block are sampled (seeded) for the
    coordinates; ``alpha`` is ``parent_lineage``'s threshold for joining families.  ``related``:
    the pairs already found derived one from the other (``parent_lineage`` at ``alpha``, either
    order), when the caller has tested them — families are then their connected components and no
    pair is tested again."""
    if not (0 < alpha < 1):
        raise InvalidArgument(f"alpha must be in (0, 1), got {alpha}")
    if units < 1:
        raise InvalidArgument(f"units must be >= 1, got {units}")
    import networkx as nx

    t0 = time.perf_counter()
    named = dict(models) if isinstance(models, Mapping) else {str(i): m for i, m in enumerate(models)}
    if len(named) < 2:
        raise InvalidArgument("a lineage tree needs at least two models")
    dev = torch.device(device)
    names = list(named)
    graph = nx.Graph()
    graph.add_nodes_from(names)
    if related is None:
        for a, b in itertools.combinations(names, 2):
            if parent_lineage(named[a], named[b], alpha=alpha, units=min(units, 128), seed=seed, device=dev).found:
                graph.add_edge(a, b)
    else:
        for a, b in related:
            if a not in named or b not in named:
                raise InvalidArgument(f"related pair ({a!r}, {b!r}) names a model not given")
            if a != b:
                graph.add_edge(a, b)
    families = [sorted(c, key=names.index) for c in nx.connected_components(graph)]
    families.sort(key=lambda f: names.index(f[0]))
    parents: dict[str, list[str]] = {n: [] for n in names}
    edges: list[TreeEdge] = []
    distances: dict[str, dict[str, float]] = {}
    reference: dict[str, str] = {}
    fitted: list[str] = []
    stats: dict[str, dict[str, float]] = {}
    task_origins: dict[str, str] = {}  # each task-arithmetic merge's origin o (x_m = x_p + x_q − x_o)
    for fam in families:
        ref_name = max(fam, key=lambda n: (graph.degree(n), -names.index(n)))
        for n in fam:
            reference[n] = ref_name
        if len(fam) == 1:
            continue
        decs = {n: read_decoder(named[n]) for n in fam}
        frame = _frame(decs[ref_name], units, seed, dev)
        ref_norm = {b: float(r.double().square().sum()) for b, r in enumerate(frame[1])}
        members = [_member(n, decs[ref_name], decs[n], frame, dev) for n in fam]
        fitted += [m.name for m in members if m.fitted]
        for m in members:
            stats[m.name] = {
                "zeros": sum(m.zeros.values()) / len(m.zeros),
                "excess_kurtosis": _mean(m.kurtosis),
                "excess_kurtosis_folded": _mean(m.kurtosis_folded),
                "blocks": len(m.blocks),
            }
        dist = {(u.name, v.name): _distance(u, v, ref_norm) for u in members for v in members if u is not v}
        frames: dict[str, tuple[list[torch.Tensor], list[torch.Tensor], list[int]]] = {}
        for u, v in itertools.combinations(members, 2):
            if u.fitted or v.fitted:  # each fitted to the reference on its own: measure the pair directly
                host, moved = (v, u) if v.fitted else (u, v)  # a fitted one into the other's coordinates
                if host.name not in frames:
                    frames[host.name] = _frame(decs[host.name], units, seed, dev)
                fr = frames[host.name][1]
                x = _member(moved.name, decs[host.name], decs[moved.name], frames[host.name], dev).blocks
                num = sum(float((x[k] - fr[k]).double().square().sum()) for k in x)
                den = sum(float(fr[k].double().square().sum()) for k in x)
                dist[(u.name, v.name)] = dist[(v.name, u.name)] = math.sqrt(num / max(den, 1e-300)) if x else math.inf
        for u in members:
            distances[u.name] = {v.name: dist[(u.name, v.name)] for v in members if v is not u}
        full, gram = _full_gram(members, ref_norm)
        merges = _merges(full, gram, dist, ref_norm)
        top = max((d for d in dist.values() if math.isfinite(d)), default=1.0)
        kmax = max(_mean(m.kurtosis_folded) for m in members)
        kscale = max(kmax - min(_mean(m.kurtosis_folded) for m in members), 1e-12)
        pair_cues = {(u.name, v.name): _cue(u, v) for u, v in itertools.permutations(members, 2)}
        pair_cues.update(_anchor_cues(members, dist, pair_cues))
        arithmetic = _task_arithmetic(full, gram, dist, ref_norm, pair_cues, merges)
        task_origins.update({m: o for m, (_, _, o) in arithmetic.items()})
        merges.update({m: (p, q) for m, (p, q, _) in arithmetic.items()})
        exact, partners = _exact_relations(members, merges, pair_cues)
        fine, off_copies = _copy_order(fam, decs, dist, dev)

        def clones(a: str, b: str) -> bool:  # b is a (rounded, pruned or rewritten) copy of a, or a of b
            return a in exact.get(b, ()) or b in exact.get(a, ()) or dist[(a, b)] <= COPY

        # each member's own exact parent: the nearest of those it is a pruning or rounding of (a coarse
        # rounding of a short fine-tune is a rounding of its relatives too)
        source = {v: min(us, key=lambda u: dist[(u, v)]) for v, us in exact.items()}
        # the members known to derive from v (its own prunings, roundings and low-rank updates)
        offspring = {v: {w for w, s in source.items() if s == v} | {w for w, ps in partners.items() if v in ps} for v in fam}
        # merges and their copies (midpoints near every relative of their parents), spread downstream
        # only: a copy of a merge is a hub, the other members that copy is also a rounding of are not
        # (a task-arithmetic merge is no midpoint: it lies beyond its parents, as far from each as the
        # other from their origin)
        hubs = set(merges) - set(arithmetic)
        while grown := {m for m in fam if m not in hubs and (source.get(m) in hubs or any(dist[(h, m)] <= COPY for h in hubs))}:
            hubs |= grown
        linear = set(merges) - set(arithmetic)
        by_name = {m.name: m for m in members}
        shapes: dict[frozenset[str], tuple[float, float] | None] = {}

        def shape(a: str, b: str) -> tuple[float, float] | None:
            key = frozenset((a, b))
            if key not in shapes:
                shapes[key] = _shape(by_name[a], by_name[b])
            return shapes[key]

        g = nx.DiGraph()
        g.add_nodes_from(fam)
        cues: dict[tuple[str, str], str] = {}
        deepest = max(m.distinct for m in members)
        for u, v in itertools.permutations(members, 2):
            d = dist[(u.name, v.name)]
            if not math.isfinite(d):
                continue
            if v.name in merges and u.name not in merges[v.name]:
                continue  # a merge's in-edge comes from its parents
            if u.name in merges and v.name in merges[u.name]:
                continue
            merge_edge = v.name in merges
            sign, cue = (1, "merge") if merge_edge else pair_cues[(u.name, v.name)]
            exact_edge = u.name in exact.get(v.name, ())
            partner_edge = u.name in partners.get(v.name, ())
            # v's other candidate parents: neither u's copies nor members known to derive from v
            rivals = [w.name for w in members if w is not u and w is not v and not clones(u.name, w.name)]
            hub = (
                u.name in hubs
                and not exact_edge
                and not partner_edge
                and d > MERGE_CHILD * min((dist[(w, v.name)] for w in rivals if w not in offspring[v.name]), default=math.inf)
                and not (u.name in merges and (sign, cue) == (1, "depth"))  # a student of the merge (step 4)
            )
            if hub and u.name in linear and u.distinct == v.distinct:
                # the merge's fine-tune is one optimiser run from it, a relative of its parents two
                # runs with one undone: the shape of the difference says which (step 4), against
                # every rival that made the rule bite (within d / MERGE_CHILD of v)
                near = [w for w in rivals if w not in offspring[v.name] and dist[(w, v.name)] < d / MERGE_CHILD]
                own = shape(u.name, v.name)
                # (a rival in another basis or of another depth has no shape here, and its edge into v
                # costs an event of its own)
                others = [o for o in (shape(w, v.name) for w in near) if o is not None]
                hub = own is None or not others or any(not (own[0] < o[0] and own[1] < o[1]) for o in others)
            # a member with an exact parent (pruning, rounding) or a low-rank partner (a merged LoRA)
            # takes any other parent only at one event's cost
            unrelated = (v.name in exact and not exact_edge) + (v.name in partners and not partner_edge)
            # two students of one depth whose anchor is silent are co-students (of one teacher or of
            # near-identical ones), not a student and its fine-tune: a fresh student's parent is deeper
            # (in one basis: the anchor is read in one only)
            co_student = (
                u.distinct == v.distinct < deepest
                and cue in ("kurtosis", "")
                and not (exact_edge or partner_edge)
                and _same_basis(u, v)
            )
            events = (sign < 0) + (not _same_basis(u, v)) + hub + unrelated + co_student
            # among equally near parents, the one in the most native basis (heaviest-tailed) first
            # between copies, their float64 distances, and an edge off their spanning tree pays a copy's
            # distance: a copy of a copy goes under its source
            pair = frozenset((u.name, v.name))
            cost = fine.get(pair, d) + COPY * (pair in off_copies) + top * events
            cost += 1e-6 * top * (kmax - _mean(u.kurtosis_folded)) / kscale
            cues[(u.name, v.name)] = cue if sign > 0 else ""
            g.add_edge(u.name, v.name, weight=cost)
        # a root above the family: its edge into a member costs more than any other edge (one root,
        # unless some member has no in-edge at all), plus an event for a member with a known parent
        # (a merge, a pruning or rounding, a low-rank update): a root has none
        top_edge = max((w for _, _, w in g.edges(data="weight")), default=0.0)
        known = set(merges) | set(exact) | set(partners)
        for n in fam:
            g.add_edge(_ROOT, n, weight=2 * top_edge + top + top * (n in known))
        arb = nx.minimum_spanning_arborescence(g, attr="weight", preserve_attrs=True)
        tree_parent = {v: u for u, v in arb.edges() if u != _ROOT}
        tree_parent = _siblings(tree_parent, by_name, merges, hubs, exact, partners)
        for child, par in sorted(tree_parent.items(), key=lambda e: (names.index(e[0]), e[1])):
            merge = child in merges
            parents[child] = list(merges[child]) if merge else [par]
            edges.append(TreeEdge(par, child, dist[(par, child)], cues.get((par, child), ""), merge))
    return LineageTree(
        families,
        parents,
        edges,
        distances,
        reference,
        fitted,
        seconds=time.perf_counter() - t0,
        detail={"units": units, "seed": seed, "alpha": alpha, "stored": stats, "task_arithmetic": task_origins},
    )
