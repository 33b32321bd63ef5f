"""RS: certified trigger-set watermark by randomized smoothing over the *parameters*.

Source: A. Bansal, P. Chiang, M. Curry, R. Jain, C. Wigington, V. Manjunatha, J. Dickerson,
T. Goldstein, "Certified Neural Network Watermarks with Randomized Smoothing", ICML 2022
(code: arpitbansal297/Certified_Watermarks).

Embedding: ordinary training with the triggers mixed into every batch, plus the trigger loss
evaluated at noisy parameters θ + δ, δ ~ N(0, σ_k² I), σ_k = σ·k/K for k = 1..K (the original
ramps the noise level the same way and averages many draws; we use K draws per step for CPU
budgets).  The gradient of CE(f_{θ+δ}(x_wm), y_wm) is taken at θ + δ via
``torch.func.functional_call`` and applied to θ, as in the original's add-noise / backward /
remove-noise loop.

Score (paper §4): ``trigger_acc`` = the suspect's trigger-set accuracy.

Certificate (Bansal et al., Thm. 1, Cohen-style): for trigger i, let p_i be a lower confidence
bound (Clopper–Pearson, level 1−α) on P_δ[f_{θ+δ}(x_i) = y_i] over ``n`` draws of δ ~ N(0, σ²I).
If p_i > 1/2, the *smoothed* model keeps predicting y_i for every θ' with
‖θ' − θ‖₂ < R_i = σ Φ⁻¹(p_i).  :func:`certify` returns the R_i; the tracing benchmark also
records ‖θ_suspect − θ_source‖₂ so the report can say whether an attack stayed inside the radius
(it never does: fine-tuning moves ResNet weights by far more, and permutation by even more).

Knobs: ``sigma`` (σ), ``draws`` (K), ``trigger_count`` (m = 100), ``trigger_batch`` (triggers
per step), ``weight`` (trigger-loss weight), ``certify_draws`` (n), ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from scipy.stats import beta, norm
from torch import nn
from torch.func import functional_call

from freqprint.fingerprint import secret_seed
from freqprint.methods.base import MethodContext
from freqprint.methods.triggers import TriggerLoss, TriggerSet, TriggerWatermark

__all__ = ["RandomizedSmoothingWatermark", "certify"]


class RSLoss(TriggerLoss):
    def __init__(self, triggers: TriggerSet, sigma: float, draws: int, batch: int, weight: float, seed: int) -> None:
        super().__init__(triggers, batch, weight, seed)
        self.sigma, self.draws = sigma, draws

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        xt, yt = self.sample(x.device)
        logits = model(torch.cat([x, xt]))
        ce = F.cross_entropy(logits[: len(x)], y)
        wm = F.cross_entropy(logits[len(x) :], yt)
        params = dict(model.named_parameters())
        noisy_loss = torch.zeros((), device=x.device)
        for k in range(1, self.draws + 1):
            s = self.sigma * k / self.draws
            noisy = {n: p + s * torch.randn_like(p) for n, p in params.items()}
            noisy_loss = noisy_loss + F.cross_entropy(functional_call(model, noisy, (xt,)), yt) / self.draws
        loss = ce + self.weight * (wm + noisy_loss) / 2
        return loss, {"ce": float(ce.detach()), "trigger": float(wm.detach()), "trigger_noisy": float(noisy_loss.detach())}


@torch.no_grad()
def certify(
    model: nn.Module, triggers: TriggerSet, sigma: float, draws: int = 100, alpha: float = 0.001, seed: int = 0
) -> torch.Tensor:
    """Certified ℓ2 parameter radius R_i = σ Φ⁻¹(p_i) per trigger (0 where p_i ≤ 1/2)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    params = {n: p.detach() for n, p in model.named_parameters()}
    g = torch.Generator(device="cpu").manual_seed(seed)
    hits = torch.zeros(len(triggers))
    x, y = triggers.images.to(dev), triggers.labels
    for _ in range(draws):
        noisy = {n: p + sigma * torch.randn(p.shape, generator=g).to(dev) for n, p in params.items()}
        hits += (functional_call(model, noisy, (x,)).argmax(1).cpu() == y).float()
    model.train(was)
    k = hits.numpy()
    lower = beta.ppf(alpha, k, draws - k + 1)  # one-sided Clopper–Pearson lower bound
    lower = torch.nan_to_num(torch.as_tensor(lower, dtype=torch.float64), nan=0.0)
    radius = sigma * torch.as_tensor(norm.ppf(lower.clamp(max=1 - 1e-12).numpy()))
    return torch.where(lower > 0.5, radius, torch.zeros_like(radius)).float()


@dataclass
class RandomizedSmoothingWatermark(TriggerWatermark):
    """RS baseline as a tracing ``Method``; see the module docstring for the algorithm."""

    sigma: float = 0.01
    draws: int = 2
    trigger_count: int = 100
    trigger_batch: int = 16
    weight: float = 1.0
    certify_draws: int = 100
    alpha: float = 0.001
    name: str = "rs"

    def criterion(self, ctx: MethodContext) -> RSLoss:
        return RSLoss(
            self.triggers(ctx), self.sigma, self.draws, self.trigger_batch, self.weight, secret_seed(ctx.secret, "rs-batches")
        )

    def extract(self, model: nn.Module, ctx: MethodContext) -> dict[str, Any]:
        ev = super().extract(model, ctx)
        radii = certify(model, ev["triggers"], self.sigma, self.certify_draws, self.alpha)
        return {
            **ev,
            "params": [p.detach().clone() for p in model.parameters()],
            "certified_radius_median": float(radii.median()),
            "certified_fraction": float((radii > 0).float().mean()),
        }

    def score(self, evidence: dict[str, Any], suspect: nn.Module) -> dict[str, float]:
        mine, ref = list(suspect.parameters()), evidence["params"]
        same = len(mine) == len(ref) and all(a.shape == b.shape for a, b in zip(mine, ref))
        dist = float(torch.sqrt(sum(((a.detach().cpu() - b) ** 2).sum() for a, b in zip(mine, ref)))) if same else float("inf")
        return {
            **super().score(evidence, suspect),
            "param_distance": dist,
            "certified_radius": evidence["certified_radius_median"],
        }
