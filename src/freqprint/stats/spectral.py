"""The spectral math of the frequency fingerprint, in one place.

Conventions follow Tang et al. (NeurIPS 2025) and its predecessor (ICML 2023); see
the paper  A filter ``W ∈ R^{C×K×K}`` acts on an input ``X ∈ R^{C×M×N}`` by
one-sided circular cross-correlation with stride 1::

    Y[m, n] = b + Σ_c Σ_{t,s<K} W[c, t, s] · X[c, (m+t) mod M, (n+s) mod N]

**Revised DFT of a filter** (paper Eq. 4), evaluated on the M×N grid of the layer's *input*::

    T_uv(W)[c] = Q^(c)_uv = Σ_{t,s<K} W[c, t, s] · exp(+i2π(ut/M + vs/N))

i.e. ``T(W) = M·N · ifft2(zero-pad(W) to M×N)``.  Its inverse is the crop
``W = real(fft2(T))[..., :K, :K] / (M·N)``; for a spectrum that no K×K kernel produces, the crop is
the least-squares projection back onto K×K kernels.

**Theorem 3.1** (forward identity; DFT of features uses exp(-i…) and no normalisation)::

    F_Y(u, v) = Σ_c T_uv(W)[c] · F_X(u, v)[c] + δ_{u0}δ_{v0} · M·N·b

**Theorem 3.2 / Corollary 3.3.**  One gradient step changes the spectrum by
``ΔT_uv[c] = -(η/MN) Σ_{u'v'} conj(F_X(u',v')[c]) · D(u',v') · S_M(u-u') · S_N(v-v')`` with
``D = DFT(∂L/∂Y)`` and the Dirichlet kernel ``S_M(k) = Σ_{t<K} exp(i2πkt/M)``.  If the input only
holds frequencies in the low-pass set ``S^low_r`` then the change at (u,v) is bounded by the
per-axis *gain* ``max_{|u'|≤r} |S_M(u-u')|/K``.  ``S_M(k)`` vanishes at ``k = iM/K``; the rows and
columns ``u = ⌊iM/K⌉`` (``v = ⌊jN/K⌉``), ``i, j = 1..K-1``, form the invariant set ``S′``.

**Theorems 3.5/3.6.**  ``T`` is linear, so scaling W by a scales T by a, and permuting filters
permutes spectra.  The complex cosine ``Re(Σ conj(a)·b) / (‖a‖‖b‖)`` is therefore blind to
positive scaling and, after matching, to permutation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache

import torch

Frequency = tuple[int, int]

__all__ = [
    "Frequency",
    "axis_gain",
    "complex_cosine",
    "conjugate_weights",
    "dirichlet_kernel",
    "frequency_gain",
    "invariant_frequencies",
    "inverse_revised_dft",
    "kernel_basis",
    "low_gain_frequencies",
    "lowband_map",
    "lowpass",
    "lowpass_frequencies",
    "lowpass_indices",
    "revised_dft",
    "revised_dft_at",
]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    m, n = (int(s) for s in size)
    return m, n


def _round_half_up(x: float) -> int:
    # ⌊x⌉ in the paper; Python's round() rounds halves to even, which the paper does not do.
    return int(math.floor(x + 0.5))


def revised_dft(weight: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Revised DFT ``T(W)`` of conv filters on the M×N grid (paper Eq. 4).

    Args:
        weight: real tensor ``[D, C, K, K]`` (or ``[C, K, K]``).
        size: the spatial size ``(M, N)`` of the layer's input feature map.

    Returns:
        complex tensor ``[..., M, N]`` with ``T_uv(W) = Σ_{t,s} W_ts exp(+i2π(ut/M + vs/N))``.
    """
    m, n = _pair(size)
    kh, kw = weight.shape[-2:]
    if kh > m or kw > n:
        raise ValueError(f"kernel {kh}x{kw} larger than the feature grid {m}x{n}")
    padded = weight.new_zeros((*weight.shape[:-2], m, n))
    padded[..., :kh, :kw] = weight
    return torch.fft.ifft2(padded) * (m * n)


def inverse_revised_dft(spectrum: torch.Tensor, kernel_size: int | Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`revised_dft`: ``W = real(fft2(T))[..., :K, :K] / (M·N)``."""
    kh, kw = _pair(kernel_size)
    m, n = spectrum.shape[-2:]
    return torch.fft.fft2(spectrum).real[..., :kh, :kw] / (m * n)


def _phase_matrix(
    size: tuple[int, int], kernel_size: tuple[int, int], freqs: Sequence[Frequency], dtype: torch.dtype
) -> torch.Tensor:
    return _phase_matrix_cached(tuple(size), tuple(kernel_size), tuple((int(u), int(v)) for u, v in freqs), dtype)


@lru_cache(maxsize=128)
def _phase_matrix_cached(
    size: tuple[int, int], kernel_size: tuple[int, int], freqs: tuple[Frequency, ...], dtype: torch.dtype
) -> torch.Tensor:
    """Cached: the module's forward needs it at every step (never modified in place by callers)."""
    m, n = size
    kh, kw = kernel_size
    t = torch.arange(kh, dtype=torch.float64)
    s = torch.arange(kw, dtype=torch.float64)
    f = torch.tensor(freqs, dtype=torch.float64).reshape(-1, 2)
    angle = 2 * math.pi * (f[:, 0, None, None] * t[None, :, None] / m + f[:, 1, None, None] * s[None, None, :] / n)
    phase = torch.polar(torch.ones_like(angle), angle)  # [F, K, K]
    return phase.reshape(len(f), kh * kw).T.to(dtype)  # [K*K, F]


def revised_dft_at(weight: torch.Tensor, size: int | Sequence[int], freqs: Sequence[Frequency]) -> torch.Tensor:
    """``T_uv(W)`` only at the listed frequencies, as one differentiable matmul.

    Returns a complex tensor ``[D, C, F]`` (``F = len(freqs)``); equal to
    ``revised_dft(weight, size)[..., u, v]`` for each listed ``(u, v)`` but costs ``O(K²·F)``.
    """
    m, n = _pair(size)
    kh, kw = weight.shape[-2:]
    cdtype = torch.complex128 if weight.dtype == torch.float64 else torch.complex64
    phase = _phase_matrix((m, n), (kh, kw), freqs, cdtype).to(weight.device)
    flat = weight.reshape(*weight.shape[:-2], kh * kw).to(cdtype)
    return flat @ phase


def _invariant_axes(m: int, n: int, k: int) -> tuple[list[int], list[int]]:
    """S′'s rows ``⌊iM/K⌉`` and columns ``⌊jN/K⌉`` (i, j = 1..K-1), each sorted and distinct."""
    if k < 2:
        raise ValueError("kernel_size must be >= 2: a 1x1 filter has no invariant frequencies")
    rows = sorted({_round_half_up(i * m / k) % m for i in range(1, k)})
    cols = sorted({_round_half_up(j * n / k) % n for j in range(1, k)})
    return rows, cols


def invariant_frequencies(size: int | Sequence[int], kernel_size: int = 3) -> list[Frequency]:
    """The set ``S′ = {(u,v) : u = ⌊iM/K⌉ or v = ⌊jN/K⌉, i,j = 1..K-1}`` (Prop. 3.4), sorted.

    Note the *or*: S′ is K-1 whole rows plus K-1 whole columns of the M×N spectrum, so it is built
    from them in O(K·(M + N)), never by visiting the whole grid.
    """
    m, n = _pair(size)
    rows, cols = _invariant_axes(m, n, int(kernel_size))
    row_set = set(rows)
    out = [(u, v) for u in rows for v in range(n)] + [(u, v) for u in range(m) if u not in row_set for v in cols]
    return sorted(out)


def count_invariant_frequencies(size: int | Sequence[int], kernel_size: int = 3) -> int:
    """``|S′| = |rows|·N + |cols|·M − |rows|·|cols|`` without listing it."""
    m, n = _pair(size)
    rows, cols = _invariant_axes(m, n, int(kernel_size))
    return len(rows) * n + len(cols) * m - len(rows) * len(cols)


def lowpass_indices(length: int, radius: int) -> list[int]:
    """Frequencies kept along one axis by the low-pass set: ``[0, r] ∪ [L-r, L)``."""
    if radius < 0:
        raise ValueError("radius must be >= 0")
    if 2 * radius + 1 > length:
        raise ValueError(f"radius {radius} keeps every frequency of an axis of length {length}")
    return sorted({i % length for i in range(-radius, radius + 1)})


def lowpass_frequencies(size: int | Sequence[int], radius: int = 1) -> list[Frequency]:
    """``S^low_r = {(u,v) : u ∈ [0,r] ∪ [M-r,M), v ∈ [0,r] ∪ [N-r,N)}``: (2r+1)² frequencies."""
    m, n = _pair(size)
    return [(u, v) for u in lowpass_indices(m, radius) for v in lowpass_indices(n, radius)]


def lowpass(x: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Channel-wise low-pass filter ``Λ(X) = IDFT(1[(u,v) ∈ S^low_r] ⊙ DFT(X))`` (real in, real out)."""
    m, n = x.shape[-2:]
    mask = torch.zeros(m, n, dtype=torch.bool, device=x.device)
    rows = torch.tensor(lowpass_indices(m, radius), device=x.device)
    cols = torch.tensor(lowpass_indices(n, radius), device=x.device)
    mask[rows[:, None], cols[None, :]] = True
    return torch.fft.ifft2(torch.fft.fft2(x) * mask).real


def complex_cosine(a: torch.Tensor, b: torch.Tensor, dim: int = -1, eps: float = 1e-30) -> torch.Tensor:
    """``Re(Σ conj(a)·b) / (‖a‖·‖b‖)`` along ``dim`` (paper App. C.1); in [-1, 1].

    Computed on the real view (``Re·Re + Im·Im`` is ``Re(conj(a)·b)``) as batched dot products: on
    CPU this is several times faster than complex products and complex norms, and the verifier's
    description runs it on [D, C, |S′|] spectra for every suspect."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.complex64)
    a, b = a.to(dtype), b.to(dtype)
    ar = torch.view_as_real(a.resolve_conj().movedim(dim, -1)).flatten(-2)  # [..., 2n]
    br = torch.view_as_real(b.resolve_conj().movedim(dim, -1)).flatten(-2)
    num = torch.einsum("...x,...x->...", ar, br)
    den = (torch.einsum("...x,...x->...", ar, ar) * torch.einsum("...x,...x->...", br, br)).sqrt()
    return num / den.clamp_min(eps)


def dirichlet_kernel(k: torch.Tensor | int, length: int, kernel_size: int) -> torch.Tensor:
    """``S_L(k) = Σ_{t<K} exp(i2πkt/L)`` (Lemma A.1), for integer or fractional k."""
    k = torch.as_tensor(k, dtype=torch.float64)
    t = torch.arange(kernel_size, dtype=torch.float64)
    ang = 2 * math.pi * k[..., None] * t / length
    return torch.polar(torch.ones_like(ang), ang).sum(-1)


def axis_gain(length: int, kernel_size: int = 3, radius: int = 1) -> torch.Tensor:
    """Per-axis gain ``g(u) = max_{|u'|≤r} |S_L(u-u')| / K``, for u = 0..L-1.

    It bounds how strongly one gradient step can move frequency u along that axis, relative to
    the DC direction, when the input only holds the low-pass band of radius r.
    """
    u = torch.arange(length, dtype=torch.float64)
    shifts = torch.arange(-radius, radius + 1, dtype=torch.float64)
    vals = dirichlet_kernel(u[:, None] - shifts[None, :], length, kernel_size).abs() / kernel_size
    return vals.max(-1).values


def frequency_gain(size: int | Sequence[int], kernel_size: int = 3, radius: int = 1) -> torch.Tensor:
    """2-D gain ``g_M(u)·g_N(v)`` (the Dirichlet kernel factorises), shape ``[M, N]``."""
    m, n = _pair(size)
    return axis_gain(m, kernel_size, radius)[:, None] * axis_gain(n, kernel_size, radius)[None, :]


def _low_gain_rows(
    size: int | Sequence[int], kernel_size: int, radius: int, max_gain: float | None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Per row u, the columns v with ``g_M(u)·g_N(v) <= max_gain`` (low band included): the
    gain factorises, so the M×N gain grid is never built."""
    m, n = _pair(size)
    gm, gn = axis_gain(m, kernel_size, radius), axis_gain(n, kernel_size, radius)
    if max_gain is None:  # the largest gain on S′ = K-1 whole rows and columns (gains are >= 0)
        rows, cols = _invariant_axes(m, n, int(kernel_size))
        max_gain = float(torch.maximum(gm[rows].max() * gn.max(), gm.max() * gn[cols].max()))
    for u in range(m):
        yield u, ((gm[u] * gn) <= max_gain + 1e-12).nonzero().flatten()


def low_gain_frequencies(
    size: int | Sequence[int], kernel_size: int = 3, radius: int = 1, max_gain: float | None = None
) -> list[Frequency]:
    """All frequencies whose 2-D gain is at most ``max_gain`` (default: the largest gain on S′).

    This is the "equally small Dirichlet gain" set of the paper: it contains S′ (by the
    default bound) plus every other frequency that theory says should be just as stable.
    """
    low = set(lowpass_frequencies(size, radius))
    return [(u, v) for u, vs in _low_gain_rows(size, kernel_size, radius, max_gain) for v in vs.tolist() if (u, v) not in low]


def count_low_gain_frequencies(
    size: int | Sequence[int], kernel_size: int = 3, radius: int = 1, max_gain: float | None = None
) -> int:
    """``len(low_gain_frequencies(...))`` in O(M·N) time and O(M + N) memory, without listing it."""
    m, n = _pair(size)
    low_rows, low_cols = set(lowpass_indices(m, radius)), torch.tensor(lowpass_indices(n, radius))
    return sum(
        int(vs.numel()) - (int(torch.isin(vs, low_cols).sum()) if u in low_rows else 0)
        for u, vs in _low_gain_rows(size, kernel_size, radius, max_gain)
    )


def conjugate_weights(freqs: Sequence[Frequency], size: int | Sequence[int]) -> tuple[list[Frequency], list[int]]:
    """Drop the conjugate partner of each frequency; return representatives and their multiplicity.

    A real filter has ``T_{-u,-v} = conj(T_{u,v})``, and the complex cosine is the same for a
    frequency and its partner.  Scoring the representatives with weight 2 (1 for a self-conjugate
    frequency) gives exactly the statistics over the full set at half the cost and storage.
    """
    m, n = _pair(size)
    fs = set(freqs)
    reps: list[Frequency] = []
    weights: list[int] = []
    seen: set[Frequency] = set()
    for u, v in sorted(fs):
        if (u, v) in seen:
            continue
        partner = ((-u) % m, (-v) % n)
        seen.add((u, v))
        if partner == (u, v):
            reps.append((u, v))
            weights.append(1)
        elif partner in fs:
            seen.add(partner)
            reps.append((u, v))
            weights.append(2)
        else:
            reps.append((u, v))
            weights.append(1)
    return reps, weights


def lowband_map(size: int | Sequence[int], kernel_size: int = 3, radius: int = 1, include_dc: bool = True) -> torch.Tensor:
    """The real linear map from one K×K kernel to what the module's function sees of it.

    The module's input holds only the low band, so by Theorem 3.1 a kernel enters the function
    only through ``T_uv(W)`` at those frequencies (DC dropped when ``include_dc`` is False).  The
    result stacks their real and imaginary parts: ``[2·F, K²]`` (float64).
    """
    m, n = _pair(size)
    freqs = [f for f in lowpass_frequencies((m, n), radius) if include_dc or f != (0, 0)]
    phase = _phase_matrix((m, n), (kernel_size, kernel_size), freqs, torch.complex128).T  # [F, K²]
    return torch.cat([phase.real, phase.imag])


def kernel_basis(
    size: int | Sequence[int], kernel_size: int = 3, radius: int = 1, include_dc: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """An orthonormal basis of kernel space ordered by how much the function sees.

    Returns ``(V, gain)``: the columns of ``V`` (``[K², K²]``) are the right singular vectors of
    :func:`lowband_map`, ``gain`` their singular values relative to the largest (descending).  By
    Theorem 3.2 one gradient step moves a kernel along ``V[:, i]`` at most in proportion to
    ``gain[i]``: the low-gain coordinates are what fine-tuning cannot move — and what the function
    cannot see, so a thief can redraw them for free.  On a 28×28 grid (K = 3, r = 1) the gains are
    1, 0.15, 0.15, 0.022, 0.0057, 0.0057, 8.5e-4, 8.5e-4, 3e-5.  Being orthonormal, the basis keeps
    an i.i.d. Gaussian kernel i.i.d. Gaussian, which makes the verifier's null law exact.
    """
    _, s, vh = torch.linalg.svd(lowband_map(size, kernel_size, radius, include_dc), full_matrices=True)
    gains = torch.zeros(kernel_size * kernel_size, dtype=torch.float64)
    gains[: s.numel()] = s / s[0]
    return vh.T.contiguous(), gains


def band_reading(
    weight: torch.Tensor, kernel_size: int, size: int | Sequence[int], radius: int = 1, include_dc: bool = True
) -> torch.Tensor:
    """The ``kernel_size``-square kernel a larger kernel is, as far as a low-pass input can tell.

    A module whose input holds only the low band sees a K′×K′ kernel only through
    ``A_K′·w`` (:func:`lowband_map`, 2F real numbers), so every kernel with the same response is
    the same module: a 3×3 zero-padded to 5×5, or the same 5×5 plus anything in the
    (K′² − rank)-dimensional null space of ``A_K′`` (17 dimensions on a 28×28 grid, r = 1).  The
    reading is the least-norm k×k kernel with that response:

        w_k = A_k⁺ · A_K′ · w_K′

    which returns the original k×k kernel exactly, up to its own component in the null space of
    ``A_k`` (one direction of gain 0 for a DC-free band), whatever was stored around it.  A
    function of the suspect's tensor and the key's public grid alone.  ``weight`` is
    ``[..., K′, K′]``; the result ``[..., k, k]`` (float64)."""
    big = weight.shape[-1]
    a_big = lowband_map(size, big, radius, include_dc)  # [2F, K′²]
    a_k = lowband_map(size, kernel_size, radius, include_dc)  # [2F, k²]
    to_k = torch.linalg.pinv(a_k) @ a_big  # [k², K′²]
    flat = weight.to(torch.float64).reshape(*weight.shape[:-2], big * big)
    return (flat @ to_k.T).reshape(*weight.shape[:-2], kernel_size, kernel_size)
