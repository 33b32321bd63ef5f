"""Parent lineage: does a suspect derive from a parent's *released* weights?

The question a model hub asks of an upload — a fine-tune, a LoRA merge, a GGUF re-quantization, a
pruned or merged model — "is this derived from that released decoder?".  There is no secret: the
parent's weights are the evidence, and a thief holds the decoder's whole symmetry group
(:mod:`freqprint.attacks.decoder`).

**The parent is read once into a sketch** (:func:`sketch_parent`, :class:`ParentSketch`): the
seeded samples of its token embeddings and of each block's units — what a registry stores
instead of the file.

**Reading** (:func:`read_decoder`).  Both files are read as Llama-architecture decoders by their
tensor names (Hugging Face, llama.cpp's GGUF, peft's ``base_layer``, any prefix): the token
embedding E ∈ R^{V×H} and, per block ℓ, the MLP's gate and up rows with the MLP's RMSNorm gain
folded in (G = W_gate·diag(g), U = W_up·diag(g), [n, H]) and its down columns (D, [H, n]).
Folding cancels the per-channel scaling through the norms.

**Residual alignment.**  A thief may rotate the residual stream (E ← E·Qᵀ, readers W ← W·Qᵀ,
writers D ← Q·D: any orthogonal Q once the gains are folded).  The vocabulary is shared, so
``R = argmin_{RᵀR = I} ‖E_S·R − E_P‖_F`` (orthogonal Procrustes, ``R = U·Vᵀ`` from the SVD of
``E_Sᵀ·E_P`` over a seeded sample of the parent's tokens that the suspect also has, ids below
V_S) brings G_S·R, U_S·R and D_Sᵀ·R into the parent's basis.  R depends on the embeddings only, so the MLP units' permutations
leave it unchanged (what tier 1 needs).

**Unit score.**  For parent unit i and suspect unit j of one block (rows normalised)::

    s(i, j) = ( cos(g_i, g′_j) + |cos(u_i, u′_j) + cos(d_i, d′_j)| ) / 3

A SwiGLU unit computes ``d·silu(g·x)·(u·x)``: besides permutation, its only symmetry is
``u ← a·u, d ← d/a`` (a ≠ 0, a sign flip included), which s ignores.

**Tier 1, exact: the unit order.**  H0: the suspect was trained independently of the parent,
from an initialisation law exchangeable over each block's MLP units, by a training equivariant to
their permutation (SGD, Adam, weight decay and dropout are; the data may be anything; Zhu et al.
2025's constrained setting).  Then the suspect's law is invariant under permuting block ℓ's
units, which leaves R unchanged, so the best-match map ``a(i) = argmax_j s(i, j)`` composes with a
uniform random permutation.  For m parent units sampled (seeded) from n, the number of fixed
points ``F = #{i : a(i) = i}`` satisfies, for every k,

    P[F ≥ k] ≤ C(m, k)·(n − k)!/n!

(a union over the k-sets of sampled units: each is fixed with probability (n − k)!/n! by a uniform
permutation, or 0 when a repeats a value).  A suspect of another depth (a layer-dropped student)
offers each parent block up to three counterpart blocks at the same relative depth: the block
pays for them.  Across blocks: Bonferroni.  Every derivative that
keeps the unit order — fine-tunes, LoRA merges, quantization, pruning, merges of two children,
a rotated or rescaled stream — has F close to m, so p ≈ n^{−m} per block.

**Any test that is exact by this symmetry is free to evade**: a thief who permutes each block's
units at random turns F into a uniform permutation's fixed-point count, whatever the statistic.
So a second tier.

**Tier 2, matched units (calibrated, not exact).**  ``f_ℓ`` = the fraction of block ℓ's sampled
parent units whose best suspect unit scores ``s ≥ MATCH_SCORE``; the suspect *matches* when the
upper quartile of f_ℓ over blocks reaches ``MATCH_FRACTION`` (a quartile, not the median, so a
student that kept every other block — half the blocks match, half have no counterpart — is not
decided by a coin's edge).  Invariant to every symmetry above.  No
symmetry gives its null, and the pair cannot supply one: independently trained models converge
to similar units (more so where a unit reads or writes the vocabulary's directions), so a null
estimated from other blocks of the same pair was too small — ``bench lineage`` measured that
estimate calling independent same-config models derived.  Its error rate is therefore a rate
measured on a stated population (independent same-config models trained on the same or other
text, untrained ones; docs/benchmarks.md), not a p-value, and it never enters ``log10_p``.

**The verdict**: derived when tier 1's p ≤ alpha (``basis = "unit order"``: an exact p-value), or
else when tier 2 matches (``basis = "matched units"``: the calibrated rate).  ``log10_p`` is tier
1's, an upper bound whatever the suspect.

**What it does not do**: a suspect with another tokenizer or residual width (no shared basis; the
report says so and p = 1), models of other architectures (no decoder MLP found: refused), renamed
tensors (read by name), distillation into a freshly initialised student (no weights inherited:
that is MetaV's question), and the shared-base question — whether the suspect carries *the
owner's* fine-tuning rather than only the public base (a separate test; docs/security.md).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import gammaln

from freqprint.errors import InvalidArgument, NoMaterial
from freqprint.io.checkpoint import TensorStore, open_tensors
from freqprint.stats.null import LN10, format_p
from freqprint.verification.report import TimedReport

__all__ = [
    "MATCH_FRACTION",
    "MATCH_SCORE",
    "BlockResult",
    "DecoderWeights",
    "ParentReport",
    "ParentSketch",
    "parent_lineage",
    "read_decoder",
    "sketch_parent",
    "residual_rotation",
]

MATCH_SCORE = 0.5  # tier 2: a parent unit is matched when its best suspect unit scores this much
MATCH_FRACTION = 0.5  # tier 2: the suspect matches when the upper-quartile block has this fraction matched
EMBED_SAMPLE = 16384  # tokens the residual alignment is fitted on

_LAYER = re.compile(r"(?:^|\.)(?:layers|blk|h|blocks)\.(\d+)\.(.+)$")
_ROLES = {
    "gate": re.compile(r"^(?:mlp\.)?(?:gate_proj|ffn_gate|w1)(\.base_layer)?\.weight$"),
    "up": re.compile(r"^(?:mlp\.)?(?:up_proj|ffn_up|w3)(\.base_layer)?\.weight$"),
    "down": re.compile(r"^(?:mlp\.)?(?:down_proj|ffn_down|w2)(\.base_layer)?\.weight$"),
    "norm": re.compile(r"^(?:post_attention_layernorm|ffn_norm)\.weight$"),
}
_EMBED = re.compile(r"(?:^|\.)(?:embed_tokens|token_embd|wte)(\.base_layer)?\.weight$")


@dataclass
class DecoderWeights:
    """What the test reads of a decoder: names of the tensors, loaded block by block."""

    store: TensorStore
    embed: str
    blocks: list[dict[str, str]]  # per block: role -> tensor name (gate, up, down; norm if stored)

    @property
    def width(self) -> int:
        return int(self.store.shapes[self.embed][0][1])

    def raw_block(self, b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W_gate, W_up, W_downᵀ, gain) of block b as stored, [n, H] float32 and [H] (ones where
        no gain of the right length is stored), with split units merged back (:func:`merge_split_units`)."""
        names = self.blocks[b]
        g, u, d = (self.tensor(names[r], device) for r in ("gate", "up", "down"))
        gain = self.tensor(names["norm"], device) if "norm" in names else None
        if gain is None or gain.shape != (g.shape[1],):
            gain = torch.ones(g.shape[1], device=device)
        g, u, dt = merge_split_units(g, u, d.T)
        return g, u, dt, gain

    def block(self, b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(G, U, Dᵀ) of block b, [n, H] float32 each, the MLP's norm gain folded into G and U."""
        g, u, dt, gain = self.raw_block(b, device)
        return g * gain, u * gain, dt

    def tensor(self, name: str, device: torch.device) -> torch.Tensor:
        """A stored tensor as float32, NaN and ±Inf read as 0 (a hostile file decides nothing by them)."""
        return torch.nan_to_num(self.store.get(name).to(device, torch.float32), nan=0.0, posinf=0.0, neginf=0.0)


def merge_split_units(g: torch.Tensor, u: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A widened MLP read back: units that share a gate row exactly and whose up rows are parallel
    (``u_k = a_k·u_r``) compute ``silu(g·x)·(u_r·x)`` times ``a_k``, so one unit with down column
    ``Σ_k a_k·d_k`` computes their sum — a thief's zero-cost widening (a unit split in two with
    its down column shared out) undone.  Kept first-occurrence order; independently trained
    units never share a gate row, so the tiers' nulls are untouched."""
    uniq, inverse, counts = torch.unique(g, dim=0, return_inverse=True, return_counts=True)
    if uniq.shape[0] == g.shape[0]:
        return g, u, dt
    n = g.shape[0]
    first = torch.full((uniq.shape[0],), n, dtype=torch.long).scatter_reduce(0, inverse, torch.arange(n), "amin")
    rep = first[inverse]  # each unit's group representative
    a = (u * u[rep]).sum(1) / u[rep].square().sum(1).clamp_min(1e-30)
    parallel = (u - a[:, None] * u[rep]).norm(dim=1) <= 1e-3 * u.norm(dim=1).clamp_min(1e-30)
    ok = torch.ones(uniq.shape[0], dtype=torch.bool).scatter_reduce(0, inverse, parallel, "amin")
    merge = ok[inverse] & (counts[inverse] > 1)  # units of groups merged as a whole
    target = torch.where(merge, rep, torch.arange(n))
    d_new = torch.zeros_like(dt).index_add_(0, target, dt * torch.where(merge, a, torch.ones_like(a))[:, None])
    keep = ~merge | (rep == torch.arange(n))
    return g[keep], u[keep], d_new[keep]


def read_decoder(source: Any) -> DecoderWeights:
    """The decoder MLPs and token embedding of a model, state dict or file (any format
    :func:`~freqprint.io.checkpoint.open_tensors` reads); :class:`NoMaterial` where there is none."""
    store = open_tensors(source)
    found: dict[int, dict[str, list[str]]] = {}
    embeds = []
    for name, (shape, ok) in store.shapes.items():
        if "@" in name or not ok:
            continue
        if _EMBED.search(name) and len(shape) == 2:
            embeds.append(name)
            continue
        m = _LAYER.search(name)
        if m is None:
            continue
        for role, pat in _ROLES.items():
            if pat.match(m.group(2)):
                found.setdefault(int(m.group(1)), {}).setdefault(role, []).append(name)
    # a plain name beats peft's base_layer; then the shortest
    pick = {b: {r: min(v, key=lambda n: ("base_layer" in n, len(n), n)) for r, v in roles.items()} for b, roles in found.items()}
    blocks = [pick[b] for b in sorted(pick) if {"gate", "up", "down"} <= pick[b].keys()]
    if not embeds or not blocks:
        raise NoMaterial(f"{store.name}: no Llama-style decoder (token embedding and gate/up/down MLP weights) found by name")
    embed = min(embeds, key=lambda n: ("base_layer" in n, len(n), n))
    width = store.shapes[embed][0][1]
    for names in blocks:
        shapes = [tuple(store.shapes[names[r]][0]) for r in ("gate", "up", "down")]
        if any(len(sh) != 2 for sh in shapes):
            raise NoMaterial(f"{store.name}: the MLP of {names['gate']} is not made of matrices")
        (n, h), (n2, h2), (h3, n3) = shapes
        if not (h == h2 == h3 == width and n == n2 == n3):
            raise NoMaterial(f"{store.name}: the MLP of {names['gate']} does not read the embedding's width {width}")
    return DecoderWeights(store, embed, blocks)


@dataclass
class BlockResult:
    block: int
    suspect_block: int
    units: int  # the parent block's MLP units (n)
    sampled: int  # m
    fixed: int  # tier 1: sampled units whose best match is the unit of the same index
    log10_p: float  # tier 1, this block alone (its counterparts paid for, not the blocks)
    matched: float  # tier 2: fraction of the sampled units whose best score reaches MATCH_SCORE
    median_score: float  # of the sampled units' best scores
    mean_score: float  # their mean (a graded similarity: the benchmark's tree is built from it)


@dataclass
class ParentReport(TimedReport):
    found: bool
    basis: str  # "unit order" (tier 1's exact p), "matched units" (tier 2, calibrated) or "" (not found)
    log10_p: float  # tier 1: an upper bound on the false-positive probability whatever the suspect
    alpha: float
    matched: float  # tier 2: the upper quartile over blocks of the matched fraction
    blocks: list[BlockResult]
    alignment_residual: float  # ‖E_S·R − E_P‖/‖E_P‖ on the sampled tokens
    parent: str
    suspect: str
    reason: str = ""  # why nothing could be compared, when nothing was
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def fixed(self) -> tuple[int, int]:
        return sum(b.fixed for b in self.blocks), sum(b.sampled for b in self.blocks)

    def summary(self) -> str:
        if self.reason:
            return f"not comparable: {self.reason} (p = 1)"
        verdict = f"DERIVED ({self.basis})" if self.found else "no evidence of derivation"
        fixed, sampled = self.fixed
        return (
            f"{verdict}: unit order p = {format_p(self.log10_p)} ({fixed}/{sampled} sampled units in place); "
            f"matched units {self.matched:.2f} of the upper-quartile block (at s >= {MATCH_SCORE}; matches at {MATCH_FRACTION}) "
            f"over {len(self.blocks)} blocks"
        )


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)


def _polar(cross: torch.Tensor) -> torch.Tensor:
    """The orthogonal R maximising tr(Rᵀ·C) for a cross-product C = Σ e_sᵀ·e_p (U·Vᵀ of C's SVD), float64."""
    u, _, vh = torch.linalg.svd(cross.double())
    return u @ vh


def _procrustes(e_s: torch.Tensor, e_p: torch.Tensor) -> torch.Tensor:
    """The orthogonal R minimising ‖e_s·R − e_p‖_F."""
    return _polar(e_s.T @ e_p).to(torch.float32)


def residual_rotation(
    parent: DecoderWeights, suspect: DecoderWeights, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, float]:
    """R taking the suspect's residual basis to the parent's, fitted on a seeded sample of the
    shared vocabulary's embeddings, and the relative residual ‖E_S·R − E_P‖/‖E_P‖ of the fit."""
    e_p, e_s = parent.tensor(parent.embed, torch.device("cpu")), suspect.tensor(suspect.embed, torch.device("cpu"))
    vocab = min(e_p.shape[0], e_s.shape[0])
    rows = torch.randperm(vocab, generator=gen)[: min(vocab, EMBED_SAMPLE)].sort().values
    e_p, e_s = e_p[rows].to(device, torch.float32), e_s[rows].to(device, torch.float32)
    rot = _procrustes(e_s, e_p)
    return rot, float((e_s @ rot - e_p).norm() / e_p.norm().clamp_min(1e-30))


def _scores(parent: tuple[torch.Tensor, ...], suspect: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """s(i, j) for unit-normalised (G, U, Dᵀ) rows of the two sides: [m, n′]."""
    cg = parent[0] @ suspect[0].T
    cu = parent[1] @ suspect[1].T
    cu += parent[2] @ suspect[2].T
    return (cg + cu.abs_()) / 3


def log_fixed_tail(k: int, m: int, n: int) -> float:
    """``log`` of the bound ``C(m, k)·(n − k)!/n!`` on P[≥ k of m given points fixed by a uniform
    permutation of n] (capped at 0)."""
    if k <= 0:
        return 0.0
    if k > m:
        return -math.inf
    v = gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1) + gammaln(n - k + 1) - gammaln(n + 1)
    return min(0.0, float(v))


def _counterparts(b: int, parent_blocks: int, suspect_blocks: int) -> list[int]:
    """Suspect blocks that may hold parent block b: the same index at equal depth, else the
    nearest index at the same relative depth and its neighbours (a layer-dropped child)."""
    if parent_blocks == suspect_blocks:
        return [b]
    c = round(b * (suspect_blocks - 1) / max(1, parent_blocks - 1))
    return [x for x in (c - 1, c, c + 1) if 0 <= x < suspect_blocks]


@dataclass
class ParentSketch:
    """What the test reads of a parent, drawn once: a seeded sample of the token embeddings and,
    per block, a seeded sample of MLP units (folded, unit rows) with their indices.  A registry
    stores it instead of the parent's file (:meth:`to_bytes`, safetensors)."""

    name: str
    width: int
    vocab: int
    units: int  # sampled per block (at most)
    seed: int
    embed_rows: torch.Tensor  # [r] token indices, sorted
    embed: torch.Tensor  # [r, H]
    picks: list[torch.Tensor]  # per block: sampled unit indices [m]
    block_units: list[int]  # per block: n
    rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # per block: (G, U, Dᵀ) of the picks, unit rows

    def to_bytes(self, dtype: torch.dtype = torch.float16) -> bytes:
        from safetensors.torch import save

        t = {"embed_rows": self.embed_rows, "embed": self.embed.to(dtype)}
        for b, (pick, rows) in enumerate(zip(self.picks, self.rows)):
            t[f"{b}.pick"] = pick
            for role, x in zip(("g", "u", "d"), rows):
                t[f"{b}.{role}"] = x.to(dtype).contiguous()
        meta = {
            "format": "freqprint-parent-sketch/1",
            "name": self.name,
            "width": str(self.width),
            "vocab": str(self.vocab),
            "units": str(self.units),
            "seed": str(self.seed),
            "block_units": ",".join(map(str, self.block_units)),
        }
        return save(t, metadata=meta)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ParentSketch:
        import json
        import struct

        from safetensors.torch import load

        try:  # the header's metadata: 8 bytes of length, then JSON (the safetensors format)
            (size,) = struct.unpack("<Q", blob[:8])
            meta = json.loads(blob[8 : 8 + size]).get("__metadata__") or {}
            t = load(blob)
        except (struct.error, ValueError, UnicodeDecodeError) as e:
            raise NoMaterial(f"not a freqprint parent sketch ({e})") from None
        if meta.get("format") != "freqprint-parent-sketch/1":
            raise NoMaterial("not a freqprint parent sketch")
        n = [int(x) for x in meta["block_units"].split(",")] if meta.get("block_units") else []
        f32 = torch.float32
        return cls(
            meta["name"],
            int(meta["width"]),
            int(meta["vocab"]),
            int(meta["units"]),
            int(meta["seed"]),
            t["embed_rows"],
            t["embed"].to(f32),
            [t[f"{b}.pick"] for b in range(len(n))],
            n,
            [tuple(t[f"{b}.{r}"].to(f32) for r in ("g", "u", "d")) for b in range(len(n))],  # type: ignore[misc]
        )


def sketch_parent(
    parent: Any, units: int = 128, seed: int = 0, embed_rows: int = EMBED_SAMPLE, device: str | torch.device = "cpu"
) -> ParentSketch:
    """Draw a parent's sketch (seeded: the same parent, units and seed give the same sketch)."""
    if units < 1:
        raise InvalidArgument(f"units must be >= 1, got {units}")
    dev = torch.device(device)
    dec = read_decoder(parent)
    gen = torch.Generator().manual_seed(seed)
    e = dec.tensor(dec.embed, torch.device("cpu"))
    vocab = int(e.shape[0])
    rows = torch.randperm(vocab, generator=gen)[: min(vocab, embed_rows)].sort().values
    picks, ns, unit_rows = [], [], []
    for b in range(len(dec.blocks)):
        block = dec.block(b, dev)
        n = block[0].shape[0]  # the units as read: split units merged back (not the stored count)
        pick = torch.randperm(n, generator=gen)[: min(n, units)]
        picks.append(pick)
        ns.append(n)
        unit_rows.append(tuple(_unit_rows(x[pick]) for x in block))
    return ParentSketch(dec.store.name, dec.width, vocab, units, seed, rows, e[rows].to(dev, torch.float32), picks, ns, unit_rows)  # type: ignore[arg-type]


def parent_lineage(
    parent: Any,
    suspect: Any,
    alpha: float = 1e-6,
    units: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> ParentReport:
    """Does ``suspect`` derive from ``parent``'s weights?  Both a model, state dict or file; the
    parent may also be a :class:`ParentSketch` (then ``units`` and ``seed`` are the sketch's).

    ``units`` parent MLP units per block are sampled (seeded by ``seed``); see the module
    docstring for the two tiers and their nulls."""
    if not (0 < alpha < 1):
        raise InvalidArgument(f"alpha must be in (0, 1), got {alpha}")
    t0 = time.perf_counter()
    dev = torch.device(device)
    sk = parent if isinstance(parent, ParentSketch) else sketch_parent(parent, units, seed, device=dev)
    s_dec = read_decoder(suspect)
    names = (sk.name, s_dec.store.name)

    def empty(reason: str) -> ParentReport:
        return ParentReport(False, "", 0.0, alpha, 0.0, [], math.nan, *names, reason=reason, seconds=time.perf_counter() - t0)

    if sk.width != s_dec.width:
        return empty(f"residual widths differ ({sk.width} and {s_dec.width})")
    e_s = s_dec.tensor(s_dec.embed, torch.device("cpu"))
    keep = sk.embed_rows < e_s.shape[0]  # the shared vocabulary: token ids both have
    if int(keep.sum()) < sk.width:
        return empty(f"too few shared tokens to align the residual streams ({int(keep.sum())})")
    e_p, e_s = sk.embed[keep].to(dev), e_s[sk.embed_rows[keep]].to(dev, torch.float32)
    rot = _procrustes(e_s, e_p)
    residual = float((e_s @ rot - e_p).norm() / e_p.norm().clamp_min(1e-30))
    del e_s, e_p

    lp, ls = len(sk.picks), len(s_dec.blocks)
    suspect_cache: dict[int, tuple[torch.Tensor, ...]] = {}

    def suspect_block(b: int) -> tuple[torch.Tensor, ...]:
        if b not in suspect_cache:
            if len(suspect_cache) >= 6:  # bounded memory: a window of blocks
                suspect_cache.pop(next(iter(suspect_cache)))
            suspect_cache[b] = tuple(_unit_rows(x @ rot) for x in s_dec.block(b, dev))
        return suspect_cache[b]

    results: list[BlockResult] = []
    exact_min = 0.0
    for b in range(lp):
        n, pick = sk.block_units[b], sk.picks[b]
        cands = _counterparts(b, lp, ls)
        if not cands:
            continue
        par = tuple(x.to(dev) for x in sk.rows[b])
        best: BlockResult | None = None
        for c in cands:
            top, arg = _scores(par, suspect_block(c)).max(dim=1)
            same = suspect_block(c)[0].shape[0] == n  # the unit order means something only at equal width (split units merged)
            fixed = int((arg.cpu() == pick).sum()) if same else 0
            lfix = min(0.0, log_fixed_tail(fixed, len(pick), n) + math.log(len(cands))) if same else 0.0
            matched = float((top >= MATCH_SCORE).float().mean())
            res = BlockResult(b, c, n, len(pick), fixed, lfix / LN10, matched, float(top.median()), float(top.mean()))
            if best is None or (res.log10_p, -res.matched) < (best.log10_p, -best.matched):
                best = res
        assert best is not None
        results.append(best)
        exact_min = min(exact_min, best.log10_p * LN10)
    if not results:
        return empty("no block of the parent has a counterpart in the suspect")
    log_p = min(0.0, exact_min + math.log(lp))  # Bonferroni over the parent's blocks
    matched = float(np.quantile([r.matched for r in results], 0.75))
    exact = log_p <= math.log(alpha)
    found = exact or matched >= MATCH_FRACTION
    return ParentReport(
        found=found,
        basis="unit order" if exact else "matched units" if found else "",
        log10_p=log_p / LN10,
        alpha=alpha,
        matched=matched,
        blocks=results,
        alignment_residual=residual,
        parent=names[0],
        suspect=names[1],
        seconds=time.perf_counter() - t0,
        detail={"units": sk.units, "seed": sk.seed, "parent_blocks": lp, "suspect_blocks": ls},
    )
