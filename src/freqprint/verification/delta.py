"""The owner's delta: does a suspect carry *the owner's* fine-tuning of a public base, not only the base?

When the owner's decoder is itself a fine-tune of a public base B, every other fine-tune of B
shares its lineage, and :func:`~freqprint.verification.parent.parent_lineage` rightly calls them
related.  The owner's question is narrower: does the suspect carry the owner's *changes*?  Under
H0′ — the suspect was made from B (or from anything) without access to the owner's model — its
own change ``S − B`` can correlate with the owner's ``O − B`` by chance *and* by design: two
fine-tunes on similar text move the weights alike, so no weights-only statistic of ``(S − B,
O − B)`` has a null that is not a measured one (``bench lineage --which delta`` measures it).

**A seeded delta makes the null exact.**  Before fine-tuning, the owner adds a secret-seeded
perturbation to every MLP weight of the base (:func:`seed_delta`)::

    W ← W + σ·rms(W)·ε,      ε ~ N(0, I) i.i.d., seeded by HMAC(secret, "delta/" ‖ tensor name)

σ is small (1e-3 of a tensor's RMS costs nothing measurable: docs/benchmarks.md) and gradient
descent, which never sees ε, does not remove it.  The verifier (:func:`delta_lineage`) regenerates
ε from the secret and B's shapes and reads the suspect's change in B's coordinates:

1. the residual rotation R from the token embeddings (as in ``parent_lineage``), the MLP norm
   gains folded into the readers, each block's suspect units matched to B's (best score, the
   suspect close to B), and each unit's up/down scale ``u ← a·u, d ← d/a`` fitted back — all
   computed from S and B only;
2. ``Δ = aligned(S) − B`` over the gate, up and down weights of every block, and the direction
   ``e = c ⊙ ε`` the owner's perturbation has in those coordinates (c: σ·rms(W) and the gain
   fold, fixed numbers);
3. ``z = <Δ, e>/√(Σ Δ²·c²)``.  Under H0′, Δ is a function of (S, B) alone and ε is independent of
   it, so ``<Δ, e> = Σ_k Δ_k c_k ε_k ~ N(0, Σ_k Δ_k² c_k²)`` exactly given Δ: the p-value
   ``Φ̄(z)`` is exact whatever the suspect, its training or the data.

A derived suspect carries ``σ·rms(W)·ε`` in Δ, so ``z ≈ σ·rms·‖ε‖²/‖Δ‖`` grows with the square
root of the tested weights' count (80 M on SmolLM2): a perturbation far below the fine-tune's own
change is found.  What removes it: retraining the MLPs far from B (the thief then pays for a new
model), and a thief who knows ε (keep the secret).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from scipy.special import log_ndtr
from torch import nn

from freqprint.errors import InvalidArgument
from freqprint.fingerprint.seeding import secret_seed
from freqprint.stats.null import LN10, format_p
from freqprint.verification.parent import DecoderWeights, _scores, _unit_rows, read_decoder, residual_rotation
from freqprint.verification.report import TimedReport

__all__ = ["DeltaReport", "delta_direction", "delta_lineage", "delta_similarity", "seed_delta"]

ROLES = ("gate", "up", "down")


def delta_direction(secret: str | bytes, block: int, role: str, shape: tuple[int, ...]) -> torch.Tensor:
    """ε of one MLP weight: i.i.d. N(0, 1) float32, seeded by ``HMAC(secret, "delta/<block>/<role>")``
    (by the block's index and role, not by a file's tensor name, so any format regenerates it)."""
    gen = torch.Generator().manual_seed(secret_seed(secret, f"delta/{block}/{role}"))
    return torch.randn(shape, generator=gen, dtype=torch.float32)


def _decoder_params(model: nn.Module) -> DecoderWeights:
    return read_decoder({k: p.data for k, p in model.named_parameters()})


def seed_delta(model: nn.Module, secret: str | bytes, scale: float = 1e-3) -> nn.Module:
    """Add ``scale·rms(W)·ε`` to every MLP gate, up and down weight of a decoder, in place (before
    the owner's fine-tune; module docstring).  Returns the model."""
    if not (0 < scale < 1):
        raise InvalidArgument(f"scale must be in (0, 1), got {scale}")
    dec = _decoder_params(model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for b, names in enumerate(dec.blocks):
            for role in ROLES:
                w = params[names[role]]
                eps = delta_direction(secret, b, role, tuple(w.shape)).to(w.device, w.dtype)
                w.add_(eps, alpha=scale * float(w.float().square().mean().sqrt()))
    return model


@dataclass
class DeltaReport(TimedReport):
    found: bool
    log10_p: float  # exact under H0′ (module docstring)
    z: float
    alpha: float
    scale: float  # the σ the owner declared
    blocks: int
    delta_norm: float  # ‖Δ‖/‖B‖ over the tested weights: how far the suspect moved from the base
    base: str
    suspect: str
    reason: str = ""
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.reason:
            return f"not comparable: {self.reason} (p = 1)"
        verdict = "carries the owner's delta" if self.found else "no evidence of the owner's delta"
        return (
            f"{verdict}: p = {format_p(self.log10_p)} (z = {self.z:.1f}, exact; alpha {self.alpha:g}) over "
            f"{self.blocks} blocks; the suspect moved {self.delta_norm:.3g} of the base's norm"
        )


def delta_lineage(
    base: Any,
    suspect: Any,
    secret: str | bytes,
    scale: float = 1e-3,
    alpha: float = 1e-6,
    device: str | torch.device = "cpu",
) -> DeltaReport:
    """Does ``suspect`` carry the delta :func:`seed_delta` seeded from ``secret`` into a fine-tune
    of ``base``?  ``scale`` is the σ the owner used: it scales e and so only the reported z, never
    the p-value's validity (z is invariant to it)."""
    if not (0 < alpha < 1):
        raise InvalidArgument(f"alpha must be in (0, 1), got {alpha}")
    if not (0 < scale < 1):
        raise InvalidArgument(f"scale must be in (0, 1), got {scale}")
    t0 = time.perf_counter()
    dev = torch.device(device)
    b_dec, s_dec = read_decoder(base), read_decoder(suspect)
    names = (b_dec.store.name, s_dec.store.name)

    def empty(reason: str) -> DeltaReport:
        return DeltaReport(False, 0.0, 0.0, alpha, scale, 0, math.nan, *names, reason=reason, seconds=time.perf_counter() - t0)

    if b_dec.width != s_dec.width or len(b_dec.blocks) != len(s_dec.blocks):  # unit counts may differ: matched below
        return empty(
            f"the suspect's shape differs from the base's ({len(s_dec.blocks)} blocks of width {s_dec.width} "
            f"against {len(b_dec.blocks)} of {b_dec.width})"
        )
    rot, _ = residual_rotation(b_dec, s_dec, torch.Generator().manual_seed(0), dev)
    num = 0.0
    var = 0.0
    moved = 0.0
    size = 0.0
    tested = 0
    for b, raw_b, pairs in _aligned_blocks(b_dec, s_dec, rot, dev):
        gain = raw_b["gain"]
        for role, s_w, b_w in pairs:
            raw = raw_b[role]
            c = scale * float(raw.square().mean().sqrt())
            eps = delta_direction(secret, b, role, tuple(raw.shape)).to(dev)
            if role == "down":  # stored [H, n]; read as Dᵀ [n, H]
                eps = eps.T
                coef = torch.full_like(s_w, c)
            else:
                coef = c * gain.expand_as(s_w)
            delta = (s_w - b_w).double()
            num += float((delta * (coef * eps).double()).sum())
            var += float((delta.square() * coef.double().square()).sum())
            moved += float(delta.square().sum())
            size += float(b_w.double().square().sum())
        tested += 1
    if tested == 0:
        return empty("no block to compare")
    if moved <= 1e-12 * size:  # float rounding of the alignment: no change to test
        return empty("the suspect equals the base (to float rounding)")
    z = num / math.sqrt(var)
    log_p = float(log_ndtr(-z))
    return DeltaReport(
        found=log_p <= math.log(alpha),
        log10_p=log_p / LN10,
        z=z,
        alpha=alpha,
        scale=scale,
        blocks=tested,
        delta_norm=math.sqrt(moved / max(size, 1e-300)),
        base=names[0],
        suspect=names[1],
        seconds=time.perf_counter() - t0,
    )


def _aligned_blocks(
    b_dec: DecoderWeights, s_dec: DecoderWeights, rot: torch.Tensor, dev: torch.device
) -> Iterator[tuple[int, dict[str, torch.Tensor], list[tuple[str, torch.Tensor, torch.Tensor]]]]:
    """Per block: the base's raw weights and, per role, the suspect's folded
    weights in the base's basis, unit order and unit scale, beside the base's folded weights —
    every step a function of the suspect and the base alone."""
    for b in range(min(len(b_dec.blocks), len(s_dec.blocks))):
        gate, up, down_t, gain = b_dec.raw_block(b, dev)
        raw_b = {"gate": gate, "up": up, "down": down_t.T, "gain": gain}
        g_b, u_b, d_b = gate * gain, up * gain, down_t  # folded: W·diag(gain), Dᵀ
        g_s, u_s, d_s = (x @ rot for x in s_dec.block(b, dev))
        # the suspect's units in the base's order: best score (S is close to B when derived)
        par = tuple(_unit_rows(x) for x in (g_b, u_b, d_b))
        sus = tuple(_unit_rows(x) for x in (g_s, u_s, d_s))
        order = _scores(par, sus).argmax(dim=1)
        g_s, u_s, d_s = g_s[order], u_s[order], d_s[order]
        # the unit's up/down scale a (u ← a·u, d ← d/a), fitted on up by least squares
        a = (u_s * u_b).sum(1) / (u_b * u_b).sum(1).clamp_min(1e-30)
        a = torch.where(a.abs() > 1e-6, a, torch.ones_like(a))
        u_s, d_s = u_s / a[:, None], d_s * a[:, None]
        yield b, raw_b, [("gate", g_s, g_b), ("up", u_s, u_b), ("down", d_s, d_b)]


def delta_similarity(base: Any, owner: Any, suspect: Any, device: str | torch.device = "cpu") -> float:
    """The cosine between the suspect's and the owner's changes to ``base`` (each aligned to the
    base as :func:`delta_lineage` aligns it) — the evidence an owner *without* a seeded delta
    has.  A number, not a p-value: two fine-tunes of one base on similar data move it alike, and
    ``bench lineage --which delta`` measures how alike."""
    dev = torch.device(device)
    b_dec = read_decoder(base)
    changes = []
    for other in (owner, suspect):
        o_dec = read_decoder(other)
        rot, _ = residual_rotation(b_dec, o_dec, torch.Generator().manual_seed(0), dev)
        changes.append({(b, r): (s_w - b_w) for b, _, pairs in _aligned_blocks(b_dec, o_dec, rot, dev) for r, s_w, b_w in pairs})
    keys = sorted(changes[0].keys() & changes[1].keys())
    if not keys:
        return 0.0
    dot = sum(float((changes[0][k].double() * changes[1][k].double()).sum()) for k in keys)
    n0 = math.sqrt(sum(float(changes[0][k].double().square().sum()) for k in keys))
    n1 = math.sqrt(sum(float(changes[1][k].double().square().sum()) for k in keys))
    return dot / max(n0 * n1, 1e-300)
