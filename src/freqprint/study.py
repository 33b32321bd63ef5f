"""Which frequencies actually stay put?  Compare S′ with every other frequency of equally small
Dirichlet gain on a real source/derived pair.

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
from pathlib import Path

import torch

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.stats.spectral import complex_cosine, frequency_gain, invariant_frequencies, lowpass_indices, revised_dft_at

__all__ = ["GroupStats", "frequency_stability", "study_files"]


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


MAX_STUDY_CELLS = 2**20  # grids up to 1024×1024 (a real module's is 14×14 to 112×112)
MAX_STUDY_WORK = 2**28  # D·C·M·N: ResNet-18's module (256·64 on 32×32) is 2**24
_CHUNK_VALUES = 2**22  # D·C·frequencies per chunk of the spectra (64 MiB of complex128)


def frequency_stability(
    source: torch.Tensor, derived: torch.Tensor, grid: tuple[int, int], radius: int = 1, tau: float = 0.99
) -> list[GroupStats]:
    """Per-group stability of module spectra between a source weight and a derived weight.

    Both weights are ``[D, C, K, K]`` with filters in the same order (use an unpermuted derived
    model, e.g. after plain fine-tuning).  Every frequency of the grid is visited once per
    conjugate pair, in chunks, so memory stays at O(M·N + D·C·chunk) whatever the grid.
    """
    m, n = grid
    if source.shape != derived.shape or source.ndim != 4:
        raise InvalidArgument(
            f"source and derived weights must be [D, C, K, K] of one shape, got {list(source.shape)} and {list(derived.shape)}"
        )
    d, c, k = int(source.shape[0]), int(source.shape[1]), int(source.shape[-1])
    if m * n > MAX_STUDY_CELLS or d * c * m * n > MAX_STUDY_WORK:
        raise InvalidArgument(
            f"the study visits every frequency of the {m}x{n} grid for {d}x{c} kernels ({d * c * m * n} "
            f"values); at most {MAX_STUDY_CELLS} cells and {MAX_STUDY_WORK} values"
        )
    source, derived = source.detach().double().cpu(), derived.detach().double().cpu()
    u, v = torch.meshgrid(torch.arange(m), torch.arange(n), indexing="ij")
    pu, pv = (-u) % m, (-v) % n
    rep = (u < pu) | ((u == pu) & (v <= pv))  # one representative per conjugate pair: the smaller one
    mult = torch.where((u == pu) & (v == pv), 1.0, 2.0).double()
    gain = frequency_gain(grid, k, radius)
    rows, cols = zip(*invariant_frequencies(grid, k)) if k > 1 else ((), ())
    sprime = torch.zeros(m, n, dtype=torch.bool)
    sprime[list(rows), list(cols)] = True
    low_band = torch.zeros(m, n, dtype=torch.bool)
    lr, lc = lowpass_indices(m, radius), lowpass_indices(n, radius)
    low_band[torch.tensor(lr)[:, None], torch.tensor(lc)[None, :]] = True
    low_gain = (gain <= float(gain[sprime].max()) + 1e-12) & ~low_band & ~sprime if k > 1 else torch.zeros_like(sprime)
    group = torch.full((m, n), 3)  # other
    group[low_band] = 2
    group[low_gain] = 1
    group[sprime] = 0
    names = ["sprime", "low-gain \\ S'", "low band", "other"]
    freqs = rep.nonzero()
    g_of, w_of, gain_of = group[rep], mult[rep], gain[rep]
    sums = torch.zeros(4, 4, dtype=torch.float64)  # per group: Σw, Σw·cos, Σw·[cos ≥ τ], Σw·rel (each over filters)
    step = max(1, _CHUNK_VALUES // (d * c))
    for i in range(0, len(freqs), step):
        chunk = [tuple(f) for f in freqs[i : i + step].tolist()]
        a = revised_dft_at(source, grid, chunk)
        b = revised_dft_at(derived, grid, chunk)
        cos = complex_cosine(a, b, dim=1)  # [D, F]
        rel = torch.linalg.vector_norm(b - a, dim=1) / torch.linalg.vector_norm(a, dim=1).clamp_min(1e-30)
        w, g = w_of[i : i + step], g_of[i : i + step]
        for col, val in enumerate((torch.ones_like(cos), cos, (cos >= tau).double(), rel)):
            sums[:, col].index_add_(0, g, (val * w).sum(0))
    out = []
    for j, name in enumerate(names):
        sel = g_of == j
        if not bool(sel.any()):
            continue
        total = sums[j, 0]
        out.append(
            GroupStats(
                group=name,
                frequencies=int(w_of[sel].sum()),
                max_gain=float(gain_of[sel].max()),
                mean_cosine=float(sums[j, 1] / total),
                frac_above_tau=float(sums[j, 2] / total),
                relative_change=float(sums[j, 3] / total),
            )
        )
    return out


def study_files(source: str | Path, derived: str | Path, tau: float = 0.99, target: str | None = None) -> list[GroupStats]:
    """:func:`frequency_stability` of the fingerprint module stored in two model files.  Only the
    module's weight and grid are read from each (validated as :func:`~freqprint.verification.key.extract`
    validates them), so memory does not grow with what else the files hold."""
    from freqprint.io.checkpoint import open_tensors
    from freqprint.verification.key import check_module_weight, find_module_weight, parse_grid

    if not 0 < tau <= 1:  # NaN fails too
        raise InvalidArgument(f"tau must be in (0, 1], got {tau}")
    name, wa, grid = find_module_weight(open_tensors(source), target)
    m, n, _, r, _ = parse_grid(grid, wa)
    db = open_tensors(derived)
    if name not in db or db.shapes[name][0] != tuple(wa.shape):
        raise FreqprintError(f"{derived} has no {name!r} of shape {list(wa.shape)}")
    wb = check_module_weight(db.get(name), name, str(derived))
    return frequency_stability(wa, wb, (m, n), r, tau)


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
    from freqprint.stats.spectral import kernel_basis

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
