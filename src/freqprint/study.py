"""Which frequencies actually stay put?  Compare S′ with every other frequency of equally small
Dirichlet gain (paper-notes §2.4) on a real source/derived pair.

For each frequency (u, v) of the M×N grid (one per conjugate pair) we take the complex cosine
between the source and derived module spectra, per filter, and summarise by group:

* ``sprime``: the paper's S′;
* ``low-gain \\ S′``: frequencies outside S′ whose gain ``g_M(u)·g_N(v)`` is no larger than the
  worst gain on S′ — theory says they should be just as stable;
* ``low band``: the (2r+1)² frequencies the module's input keeps (they *should* move);
* ``other``: everything else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from freqprint.spectral import (
    complex_cosine,
    conjugate_weights,
    frequency_gain,
    invariant_frequencies,
    low_gain_frequencies,
    lowpass_frequencies,
    revised_dft_at,
)

__all__ = ["GroupStats", "frequency_stability"]


@dataclass
class GroupStats:
    group: str
    frequencies: int  # counted over the full grid (both members of a conjugate pair)
    max_gain: float
    mean_cosine: float
    frac_above_tau: float
    relative_change: float  # E ‖ΔT‖ / ‖T‖ over filters and frequencies

    def to_dict(self) -> dict:
        return asdict(self)


def frequency_stability(
    source: torch.Tensor, derived: torch.Tensor, grid: tuple[int, int], radius: int = 1, tau: float = 0.99
) -> list[GroupStats]:
    """Per-group stability of module spectra between a source weight and a derived weight.

    Both weights are ``[D, C, K, K]`` with filters in the same order (use an unpermuted derived
    model, e.g. after plain fine-tuning).
    """
    m, n = grid
    source, derived = source.detach().double().cpu(), derived.detach().double().cpu()
    k = source.shape[-1]
    every = [(u, v) for u in range(m) for v in range(n)]
    reps, mult = conjugate_weights(every, grid)
    a = revised_dft_at(source.double(), grid, reps)
    b = revised_dft_at(derived.double(), grid, reps)
    cos = complex_cosine(a, b, dim=1)  # [D, F]
    rel = torch.linalg.vector_norm(b - a, dim=1) / torch.linalg.vector_norm(a, dim=1).clamp_min(1e-30)
    gain = frequency_gain(grid, k, radius)
    sprime = set(invariant_frequencies(grid, k))
    low_gain = set(low_gain_frequencies(grid, k, radius)) - sprime
    low_band = set(lowpass_frequencies(grid, radius))
    groups = {"sprime": [], "low-gain \\ S'": [], "low band": [], "other": []}
    for i, f in enumerate(reps):
        g = "sprime" if f in sprime else "low-gain \\ S'" if f in low_gain else "low band" if f in low_band else "other"
        groups[g].append(i)
    out = []
    w_all = torch.tensor(mult, dtype=torch.float64)
    for name, idx in groups.items():
        if not idx:
            continue
        ix = torch.tensor(idx)
        w = w_all[ix]
        out.append(
            GroupStats(
                group=name,
                frequencies=int(w.sum()),
                max_gain=float(max(gain[reps[i]] for i in idx)),
                mean_cosine=float((cos[:, ix] * w).sum() / (w.sum() * cos.shape[0])),
                frac_above_tau=float(((cos[:, ix] >= tau).double() * w).sum() / (w.sum() * cos.shape[0])),
                relative_change=float((rel[:, ix] * w).sum() / (w.sum() * rel.shape[0])),
            )
        )
    return out


def block_change(
    source: torch.Tensor,
    derived: torch.Tensor,
    grid: tuple[int, int],
    radius: int = 1,
    include_dc: bool = False,
    visible_gain: float = 0.1,
) -> dict[str, dict[str, float]]:
    """Per kernel block of the verifier (visible: gain ≥ ``visible_gain``; hidden: the rest), how
    much of the source's kernel energy lives there (``energy_share``), how far the derived weight
    moved (``relative_change`` = ‖Δz‖²/‖z‖² over the block's coordinates) and the mean per-kernel
    cosine between the two.  Filters must be in the same order (plain fine-tuning)."""
    from freqprint.spectral import kernel_basis

    k = source.shape[-1]
    v, gain = kernel_basis(grid, k, radius, include_dc=include_dc)
    za = source.detach().double().cpu().reshape(-1, k * k) @ v
    zb = derived.detach().double().cpu().reshape(-1, k * k) @ v
    total = float((za**2).sum())
    out = {}
    for name, mask in (("visible", gain >= visible_gain), ("hidden", gain < visible_gain)):
        a, b = za[:, mask], zb[:, mask]
        cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)
        out[name] = {
            "dims": int(mask.sum()),
            "energy_share": float((a**2).sum()) / total,
            "relative_change": float(((b - a) ** 2).sum() / (a**2).sum().clamp_min(1e-300)),
            "mean_cosine": float(cos.mean()),
        }
    return out
