"""The verifier's gate: a cheap, mixing-invariant score that says whether a suspect reading could
hold the key's kernels at all, so that only readings that pass get the full (expensive) alignment.

**The per-filter channel Gram.**  Write a filter's kernels ``w[d] ∈ R^{C×K²}`` (one row per input
channel) and, for a block of the verifier's kernel basis with columns ``V_b`` (``m ≥ 2``
coordinates), its Gram over channels in that block::

    G_d = V_bᵀ · w[d]ᵀ w[d] · V_b          (m×m, summed over the C channels)
    g_d = unit( sym( G_d − tr(G_d)/m · I ) )

``sym`` is the isometric upper triangle (``⟨sym A, sym B⟩ = ⟨A, B⟩_F``).  ``g_d`` is unchanged by
any orthogonal mixing of the channels, ``w[d] → Q·w[d]`` (permutations, signs, a Transformer's or
a decoder's residual rotation), by the filter's sign and scale, and it does not care how many
channels there are (dead channels dilute it).  A second variant takes each kernel to unit length
first (``u_dc = w_dc/‖w_dc‖``, then the same Gram): blind to a positive scale per channel (the
scale a BatchNorm or an RMSNorm gain folds in) and to permutations, not to rotations.  Neither
depends on the order of the filters.

**The score.**  Against a suspect reading with filters ``e = 1…D′`` (both variants, every block
of at least two coordinates), key filter d's statistic is its best match
``f_d = max_e ⟨g_d^key, g_e^sus⟩``.  Under H0 the key's filters are i.i.d. (its W₀ is a
secret-seeded Gaussian draw), so the ``f_d`` are i.i.d. given the suspect; :data:`DECOYS` filters
drawn the same way from a public seed estimate their null mean ``μ`` and spread ``σ``, and::

    z = (mean_{d ∈ F} f_d − μ) / (σ / √|F|)

is approximately standard normal under H0, whatever the suspect's own structure.  A thief may run
the module on a transposed or flipped grid, so the key's kernels are also moved by each of the 8
symmetries of the square; to keep the cost at one product per symmetry on a few filters, a
*coarse* set A of the key's filters picks the symmetry and the disjoint rest F scores it (so the
choice does not bias z).  The reading passes at ``z ≥ gate`` in any variant and block.

**Two stages (0.13).**  A reading of more than :data:`SAMPLE_MIN` filters is first scored on a
sample of ``n = max(SAMPLE_MIN, ⌈D′/SAMPLE_SHARE⌉)`` of them, drawn from a seed that hashes the
key's kernels with the reading's name and layout (:meth:`GramScreen.rows`); the decoys' maxima
are taken over the same sample, so under H0 its z is as standard as the whole reading's.
Every filter is scored only where that first z reaches :data:`FIRST_Z`, and that second z is
the one the gate compares with ``gate``.  The cost: a key filter's match is in the sample with
probability ``n/D′``, so the first z is about ``n/D′`` of the whole one (a half in a reading of
2·SAMPLE_MIN filters, a quarter for a module hidden among three times as many filters), and a
module needs a whole-reading z of about ``FIRST_Z·D′/n`` to reach the second stage.  The sample cannot be predicted without the key: a thief who knows only the published
commitment cannot place the module's filters where the sample does not look.  Readings of one
shape are scored together in batches (:meth:`GramScreen.score_many`), each reading's z its own.

**What it is for, and what it is not.**  The gate decides only which readings get the full
alignment; the verdict's p-value counts every reading either way (the Bonferroni factor of the
verifier), so the gate can cost power, never validity.  It is weaker than the full test: a module
whose kernels carry independent noise down to a per-kernel cosine of 0.8 passes (0.9 when its
channels are both scaled and rotated); at 0.7 and below it mostly does not, while the full test
still finds it down to about 0.6 (docs/benchmarks.md §12f measures the sweep).  The key's own
layer is always aligned, and ``gate=None`` in the verifier restores the ranking of every reading
by an alignment pass.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from freqprint.stats.align import DIHEDRAL, unit

__all__ = ["COARSE", "DECOYS", "FIRST_Z", "GATE_Z", "SAMPLE_MIN", "SAMPLE_SHARE", "GramScreen", "filter_grams"]

SAMPLE_MIN = 256  # a reading of more filters is first screened on a sample of them
SAMPLE_SHARE = 4  # ... of at least this share (n = max(SAMPLE_MIN, ⌈D′/SAMPLE_SHARE⌉) filters)
FIRST_Z = 3.0  # the sample's z at which every filter is screened
GATE_Z = 6.0  # a reading is fully aligned when its screen z reaches this (null maxima 3.0–4.3: docs/benchmarks.md §12f)
DECOYS = 256  # null filters drawn from a public seed
COARSE = 32  # key filters that pick the symmetry of the square (the rest score it)
INVERSE = {"rot90": "rot270", "rot270": "rot90"}  # every other symmetry of the square is its own inverse


def _tri(g: torch.Tensor) -> torch.Tensor:
    """``[D, m, m]`` symmetric → ``[D, m(m+1)/2]``: the trace removed, the isometric upper triangle, unit length."""
    m = g.shape[-1]
    i, j = torch.triu_indices(m, m)
    g = g - (torch.diagonal(g, dim1=-2, dim2=-1).sum(-1) / m)[:, None, None] * torch.eye(m, dtype=g.dtype)
    return unit(g[:, i, j] * torch.where(i == j, 1.0, math.sqrt(2.0)).to(g.dtype))


def filter_grams(w: torch.Tensor | list[torch.Tensor], blocks: dict[str, torch.Tensor]) -> dict[tuple[str, str], torch.Tensor]:
    """``{(variant, block): [D, m(m+1)/2]}`` of kernels ``w`` ``[D, C, K, K]`` (module docstring), in
    float32; ``blocks`` maps a block's name to its basis columns ``[K², m]``.  ``w`` may be a list
    of such tensors with one ``C`` and ``K`` (their filters in order): each is reduced to its
    ``K²×K²`` Grams on its own, while it is in cache, and only the Grams are joined."""
    ws = [w] if isinstance(w, torch.Tensor) else w
    c, k2 = ws[0].shape[1], math.prod(ws[0].shape[2:])
    d = sum(x.shape[0] for x in ws)
    grams = {"raw": torch.empty(d, k2, k2), "unit": torch.empty(d, k2, k2)}
    at = 0
    for piece in ws:
        n = piece.shape[0]
        x = piece.reshape(n, c, k2)
        if x.dtype == torch.float64:  # each filter to a unit scale first (g_d ignores it): no overflow in float32
            x = x / x.abs().amax((1, 2), keepdim=True).clamp_min(1e-300)
        x = x.to(torch.float32).contiguous()
        u = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-30)
        torch.bmm(x.transpose(1, 2), x, out=grams["raw"][at : at + n])
        torch.bmm(u.transpose(1, 2), u, out=grams["unit"][at : at + n])
        at += n
    return {(var, b): _tri(v.T @ g @ v) for var, g in grams.items() for b, v in blocks.items()}


@dataclass(frozen=True)
class GramScreen:
    """The gate for one key (module docstring): the key's coarse rows under every symmetry of the
    square, its scoring filters, and the decoys, per (variant, block)."""

    blocks: dict[str, torch.Tensor]
    coarse: dict[tuple[str, str], torch.Tensor]  # [8·|A|, s]: symmetry-major
    fine: dict[str, dict[tuple[str, str], torch.Tensor]]  # symmetry → [|F|, s]
    decoys: dict[tuple[str, str], torch.Tensor]
    n_coarse: int
    salt: bytes = b""  # a digest of the key's kernels: seeds the first stage's sample

    @classmethod
    def of(cls, kernels: torch.Tensor, basis: torch.Tensor, gains: torch.Tensor, visible_gain: float) -> GramScreen:
        """The screen of decision kernels ``[D, C, K, K]`` in the verifier's basis (columns ``basis``,
        relative ``gains``); blocks of fewer than two coordinates are left out (their Gram is a
        number, fixed by the trace)."""
        v = basis.to(torch.float32)
        masks = {"visible": gains >= visible_gain, "hidden": gains < visible_gain}
        blocks = {b: v[:, m].contiguous() for b, m in masks.items() if int(m.sum()) >= 2}
        d, c, k = kernels.shape[0], kernels.shape[1], kernels.shape[-1]
        seed = int.from_bytes(hashlib.sha256(b"freqprint-gram-screen").digest()[:8], "little")
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(d, generator=gen)
        n_a = max(1, min(COARSE, d // 4)) if d >= 2 else 0
        a, f = order[:n_a], order[n_a:]
        wk = kernels.detach().to("cpu", torch.float64)
        per_g = {g: filter_grams(DIHEDRAL[INVERSE.get(g, g)](wk), blocks) for g in DIHEDRAL}
        keys = next(iter(per_g.values())).keys()
        coarse = {vb: torch.cat([per_g[g][vb][a] for g in DIHEDRAL]) for vb in keys}
        fine = {g: {vb: per_g[g][vb][f] for vb in keys} for g in DIHEDRAL}
        decoys = filter_grams(torch.randn(DECOYS, c, k, k, generator=gen, dtype=torch.float64), blocks)
        salt = hashlib.sha256(b"freqprint-gram-screen-rows" + wk.contiguous().numpy().tobytes()).digest()
        return cls(blocks, coarse, fine, decoys, n_a, salt)

    def rows(self, d: int, label: str) -> torch.Tensor | None:
        """The filters (sorted indices) the first stage scores of a reading with ``d`` filters,
        labelled ``label`` (its name and layout); None when the reading is small enough to be
        scored whole at once."""
        n = max(SAMPLE_MIN, -(-d // SAMPLE_SHARE))
        if n >= d:
            return None
        seed = int.from_bytes(hashlib.sha256(self.salt + label.encode()).digest()[:8], "little")
        return torch.randperm(d, generator=torch.Generator().manual_seed(seed))[:n].sort().values

    def score(self, w: torch.Tensor) -> tuple[float, str]:
        """``(z, g)``: the largest z over variants and blocks, and the symmetry of the square that
        gave it — the reading ``DIHEDRAL[g](w)`` is the one to align."""
        return self.score_many([w])[0]

    def score_many(self, ws: list[torch.Tensor]) -> list[tuple[float, str]]:
        """:meth:`score` of each of ``ws``, readings of one shape ``[D′, C′, K, K]``, in one pass of
        batched products (each reading's z is its own: its decoys' maxima, its symmetry, its
        filters' maxima are taken over its own filters only)."""
        if not ws:
            return []
        if not self.blocks or ws[0].shape[0] == 0 or ws[0].shape[1] == 0:
            return [(-math.inf, "")] * len(ws)
        if any(w.shape != ws[0].shape for w in ws):
            raise ValueError("score_many takes readings of one shape")
        n_w, n = len(ws), ws[0].shape[0]
        sus = filter_grams(ws, self.blocks)
        names = list(DIHEDRAL)
        best = [(-math.inf, "")] * n_w

        def maxima(k: torch.Tensor, st: torch.Tensor) -> torch.Tensor:  # [rows, n_w]: each reading's best filter per row
            return (k @ st).reshape(k.shape[0], n_w, n).amax(2)

        for vb, s in sus.items():
            st = s.T.contiguous()
            dec = maxima(self.decoys[vb], st)
            mu, sd = dec.mean(0), dec.std(0).clamp_min(1e-6)
            if self.n_coarse:
                co = maxima(self.coarse[vb], st).reshape(len(names), self.n_coarse, n_w).mean(1)
                picks = [names[i] for i in co.argmax(0).tolist()]
            else:
                picks = [""] * n_w
            for g in dict.fromkeys(picks):  # each symmetry picked, its readings' columns at once
                idx = [j for j, p in enumerate(picks) if p == g]
                fine = self.fine[g][vb]
                if fine.shape[0] == 0:
                    continue
                cols = st if len(idx) == n_w else st.reshape(-1, n_w, n)[:, idx].reshape(st.shape[0], -1)
                fk = (fine @ cols).reshape(fine.shape[0], len(idx), n).amax(2).mean(0)
                for j, m in zip(idx, fk.tolist(), strict=True):
                    z = (m - float(mu[j])) / (float(sd[j]) / math.sqrt(fine.shape[0]))
                    if z > best[j][0]:
                        best[j] = (z, g)
        return best
