from __future__ import annotations

import math

import pytest
import torch

from freqprint import FingerprintConfig, FingerprintLoss, FreqprintError, add_pseudo_class, attach, create_model


def _best_sinusoid_residual(kernel: torch.Tensor, m: int, n: int) -> float:
    """Smallest least-squares residual of fitting ``a·cos(θ) + b·sin(θ)``, θ = 2π(u t/M + v s/N)."""
    t, s = torch.meshgrid(torch.arange(3.0, dtype=torch.float64), torch.arange(3.0, dtype=torch.float64), indexing="ij")
    best = math.inf
    for u in range(m):
        for v in range(n):
            theta = 2 * math.pi * (u * t / m + v * s / n)
            basis = torch.stack([torch.cos(theta), torch.sin(theta)], -1).reshape(9, 2)
            coef = torch.linalg.lstsq(basis, kernel.reshape(9, 1)).solution
            best = min(best, float((basis @ coef - kernel.reshape(9, 1)).square().sum()))
    return best


def test_spectral_noise_is_a_single_frequency_with_half_the_weight_norm():
    from freqprint.fingerprint.loss import spectral_noise

    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    eps = spectral_noise(w, (12, 12), 0.5, shared=True, generator=g)
    assert math.isclose(eps.norm().item(), 0.5 * w.norm().item(), rel_tol=1e-9)
    # shared: every kernel is the same cosine pattern cos(φ - 2π(u0 t/M + v0 s/N))
    k = eps[0, 0]
    assert torch.allclose(eps, k.expand_as(eps))
    assert _best_sinusoid_residual(k, 12, 12) < 1e-20
    per_kernel = spectral_noise(w, (12, 12), 0.5, shared=False, generator=g)
    assert not torch.allclose(per_kernel[0, 0], per_kernel[1, 1])


def test_add_pseudo_class_keeps_predictions():
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=4).eval()
    x = torch.randn(3, 1, 28, 28)
    before = model(x)
    add_pseudo_class(model)
    after = model(x)
    assert after.shape == (3, 11)
    torch.testing.assert_close(after[:, :10], before)


def _tiny(batch: int):
    torch.manual_seed(0)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=4)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    fp = attach(model, FingerprintConfig(target="conv2", secret="s", filters=8), x[:1])
    return model, fp, x, y


def test_fingerprint_loss_trains_the_attack_term_and_spares_bn_stats():
    model, fp, x, y = _tiny(16)
    crit = FingerprintLoss(10, weight=1.0)
    with pytest.raises(FreqprintError, match="n\\+1"):
        crit(model, x, y)
    add_pseudo_class(model)
    model.train()
    bn = model.bn3
    # the attacked pass alone must not move running statistics
    stats = bn.running_mean.clone()
    with torch.no_grad():
        crit.attack_term(model, fp, x)
    torch.testing.assert_close(bn.running_mean, stats)
    loss, parts = crit(model, x, y)
    loss.backward()
    assert parts["attack"] > 0 and fp.weight.grad is not None and fp.weight.grad.abs().sum() > 0
    # the perturbation is removed again after the attacked pass
    assert fp._noise is None


def test_attack_loss_decreases_with_training():
    model, fp, x, y = _tiny(64)
    add_pseudo_class(model)
    crit = FingerprintLoss(10, weight=1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = last = None
    torch.manual_seed(1)
    for _i in range(40):
        loss, parts = crit(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = parts["attack"] if first is None else first
        last = parts["attack"]
    assert last < 0.5 * first


def test_attack_every_k_batches_keeps_the_expected_attack_gradient():
    """``attack_every=k``: L_attack on every k-th call only, weighted k·λ, so summed over k calls
    the attack term weighs as much as on every call; bad settings are one error."""
    torch.manual_seed(0)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    attach(model, FingerprintConfig(target="conv2", secret="s", filters=16), torch.zeros(1, 1, 28, 28))
    add_pseudo_class(model)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    every = FingerprintLoss(10, weight=0.1, attack_every=3)
    parts = []
    for _ in range(6):
        torch.manual_seed(1)  # the same ε each call
        loss, p = every(model, x, y)
        parts.append((float(loss), p))
    assert [p["attack"] > 0 for _, p in parts] == [True, False, False, True, False, False]
    torch.manual_seed(1)
    loss1, p1 = FingerprintLoss(10, weight=0.1)(model, x, y)
    assert math.isclose(parts[0][0] - p1["ce"], 3 * (float(loss1) - p1["ce"]), rel_tol=1e-5)
    assert math.isclose(parts[1][0], p1["ce"], rel_tol=1e-6)
    for bad in ({"attack_every": 0}, {"attack_fraction": 0.0}, {"attack_fraction": 1.5}):
        with pytest.raises(FreqprintError):
            FingerprintLoss(10, **bad)
