"""Numerical checks of the paper's theory in float64 (paper-notes §1–§2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import freqprint
from freqprint.stats import spectral as sp


def circular_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Y[m,n] = b + Σ W[t,s] X[(m+t) mod M, (n+s) mod N]: one-sided circular padding, stride 1."""
    k = w.shape[-1]
    return F.conv2d(F.pad(x, (0, k - 1, 0, k - 1), mode="circular"), w, b)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_revised_dft_matches_definition(gen):
    w = torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64)
    m, n = 8, 6
    t = freqprint.revised_dft(w, (m, n))
    assert t.shape == (2, 3, m, n) and t.dtype == torch.complex128
    u, v = 3, 5
    direct = sum(
        w[..., a, c] * complex(math.cos(2 * math.pi * (u * a / m + v * c / n)), math.sin(2 * math.pi * (u * a / m + v * c / n)))
        for a in range(3)
        for c in range(3)
    )
    torch.testing.assert_close(t[..., u, v], direct)
    # evaluated at a few frequencies only
    freqs = [(0, 0), (3, 5), (7, 1)]
    at = sp.revised_dft_at(w, (m, n), freqs)
    torch.testing.assert_close(at, torch.stack([t[..., a, c] for a, c in freqs], -1))
    # inverse recovers the kernel; conjugate symmetry of a real filter
    torch.testing.assert_close(sp.inverse_revised_dft(t, 3), w)
    torch.testing.assert_close(t[..., 1, 2], t[..., m - 1, n - 2].conj())


def test_theorem_3_1_frequency_domain_convolution(gen):
    c, d, m, n, k = 4, 5, 16, 12, 3
    x = torch.randn(2, c, m, n, generator=gen, dtype=torch.float64)
    w = torch.randn(d, c, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(d, generator=gen, dtype=torch.float64)
    y = circular_conv(x, w, b)
    fy = torch.fft.fft2(y)
    fx = torch.fft.fft2(x)
    tw = freqprint.revised_dft(w, (m, n))
    pred = torch.einsum("dcuv,bcuv->bduv", tw, fx)
    pred[..., 0, 0] += m * n * b
    torch.testing.assert_close(fy, pred, rtol=1e-10, atol=1e-9)


def test_theorem_3_2_one_step_update_matches_autograd(gen):
    c, d, m, n, k, eta = 3, 4, 12, 10, 3, 0.05
    x = torch.randn(2, c, m, n, generator=gen, dtype=torch.float64)
    target = torch.randn(2, d, m, n, generator=gen, dtype=torch.float64)
    w = torch.randn(d, c, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    y = circular_conv(x, w)
    y.retain_grad()
    loss = ((y - target) ** 2).sum() + (y**3).mean()
    loss.backward()
    w_new = w.detach() - eta * w.grad
    delta = freqprint.revised_dft(w_new, (m, n)) - freqprint.revised_dft(w.detach(), (m, n))

    g = torch.fft.fft2(x)  # [B, C, M, N]
    dy = torch.fft.fft2(y.grad)  # [B, D, M, N]
    sm = sp.dirichlet_kernel(torch.arange(m)[:, None] - torch.arange(m)[None, :], m, k)  # [u, u']
    sn = sp.dirichlet_kernel(torch.arange(n)[:, None] - torch.arange(n)[None, :], n, k)
    h = torch.einsum("bcxy,bdxy->dcxy", g.conj(), dy)
    pred = -(eta / (m * n)) * torch.einsum("ux,vy,dcxy->dcuv", sm, sn, h)
    torch.testing.assert_close(delta, pred, rtol=1e-9, atol=1e-10)


def test_corollary_3_3_dc_input_freezes_invariant_set(gen):
    """DC-only input: many SGD steps with momentum leave T(W) on S (M divisible by K) untouched."""
    c, d, m, n, k = 3, 6, 12, 9, 3
    w = torch.randn(d, c, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.0)
    s = freqprint.invariant_frequencies((m, n), k)
    assert {u for u, _ in s if _ == 1} == {4, 8}
    before = sp.revised_dft_at(w.detach(), (m, n), s).clone()
    w0 = w.detach().clone()
    for _ in range(20):
        x = torch.randn(4, c, 1, 1, generator=gen, dtype=torch.float64).expand(4, c, m, n)
        target = torch.randn(4, d, m, n, generator=gen, dtype=torch.float64)
        loss = ((circular_conv(x, w) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = sp.revised_dft_at(w.detach(), (m, n), s)
    assert (w.detach() - w0).norm() / w0.norm() > 0.05  # the filter did move
    torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-10)
    # ... and the frequencies outside S did change
    other = [(1, 1), (2, 5)]
    moved = sp.revised_dft_at(w.detach(), (m, n), other) - sp.revised_dft_at(w0, (m, n), other)
    assert moved.abs().max() > 1e-3


def test_theorems_3_5_3_6_scaling_and_permutation(gen):
    w = torch.randn(8, 4, 3, 3, generator=gen, dtype=torch.float64)
    size = (10, 10)
    s = freqprint.invariant_frequencies(size, 3)
    t = sp.revised_dft_at(w, size, s)
    torch.testing.assert_close(sp.revised_dft_at(7.5 * w, size, s), 7.5 * t)
    perm = torch.randperm(8, generator=gen)
    torch.testing.assert_close(sp.revised_dft_at(w[perm], size, s), t[perm])
    cos = sp.complex_cosine(t, sp.revised_dft_at(3.0 * w, size, s), dim=1)
    torch.testing.assert_close(cos, torch.ones_like(cos))
    # input-channel permutation is NOT covered by Theorem 3.6: the cosine does change
    cperm = torch.tensor([1, 0, 3, 2])
    cos_c = sp.complex_cosine(t, sp.revised_dft_at(w[:, cperm], size, s), dim=1)
    assert cos_c.mean() < 0.5


@pytest.mark.parametrize(
    "size,rows,count",
    [(32, {11, 21}, 124), (16, {5, 11}, 60), (28, {9, 19}, 108), (8, {3, 5}, 28)],
)
def test_invariant_set_matches_paper_notes(size, rows, count):
    s = freqprint.invariant_frequencies(size, 3)
    assert len(s) == count
    assert {u for u, v in s if v not in rows} == rows


def test_lowpass_keeps_only_low_band(gen):
    x = torch.randn(2, 3, 16, 12, generator=gen, dtype=torch.float64)
    y = sp.lowpass(x, 1)
    spec = torch.fft.fft2(y).abs()
    keep = torch.zeros(16, 12, dtype=torch.bool)
    for u, v in sp.lowpass_frequencies((16, 12), 1):
        keep[u, v] = True
    assert len(sp.lowpass_frequencies((16, 12), 1)) == 9
    assert spec[..., ~keep].max() < 1e-10
    torch.testing.assert_close(torch.fft.fft2(y)[..., keep], torch.fft.fft2(x)[..., keep])


def test_axis_gain_matches_paper_notes_table():
    # paper-notes §2.4: worst per-axis gain on S' relative to DC, r = 0 / 1 / 2
    expected = {16: (0.08, 0.33, 0.59), 32: (0.04, 0.14, 0.22), 64: (0.02, 0.08, 0.14)}
    for m, gains in expected.items():
        rows = {u for u, v in freqprint.invariant_frequencies(m, 3) if v == 0}
        for r, g in zip((0, 1, 2), gains):
            got = max(float(sp.axis_gain(m, 3, r)[u]) for u in rows)
            assert abs(got - g) < 0.006, (m, r, got, g)


def test_conjugate_weights_reproduce_full_set_statistics(gen):
    size = (12, 12)
    s = freqprint.invariant_frequencies(size, 3)
    reps, weights = sp.conjugate_weights(s, size)
    assert sum(weights) == len(s) and len(reps) < len(s)
    w1 = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    w2 = w1 + 0.5 * torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    full = sp.complex_cosine(sp.revised_dft_at(w1, size, s), sp.revised_dft_at(w2, size, s), dim=1).mean()
    cr = sp.complex_cosine(sp.revised_dft_at(w1, size, reps), sp.revised_dft_at(w2, size, reps), dim=1)
    weighted = (cr * torch.tensor(weights, dtype=torch.float64)).sum(-1).mean() / sum(weights)
    torch.testing.assert_close(full, weighted)
