"""MW: margin-based trigger-set watermark.

Source: B. Kim, S. Lee, S. Lee, S. Son, S. J. Hwang, "Margin-based Neural Network
Watermarking", ICML 2023 (code: matbambbang/margin-based-watermarking).

Embedding: at every step a few triggers are pushed *away* from their watermark label by
``pgd_steps`` steps of signed gradient ascent on the input (step ``pgd_step`` = 1/255, clipped
to the image range [0, 1], as in the original), and the model is trained to give the watermark
label on these hardest nearby points.  That enlarges the input-space margin of the trigger
labels, which is what lets them survive extraction and fine-tuning in the original paper.
The loss is the mean of the batch's per-sample CE and ``weight`` × the triggers' CE, concatenated
(as in the original).  Choice: the ascent runs in eval mode so it does not disturb the
BatchNorm running statistics (the original runs it in train mode).

Score (paper §4): ``trigger_acc`` = the suspect's trigger-set accuracy on the clean triggers.

Knobs: ``trigger_count`` (m = 100), ``trigger_batch`` (original: 25), ``pgd_steps``
(original: 5), ``pgd_step`` (original: 1/255), ``weight`` (original's ``--variable``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from freqprint.fingerprint import secret_seed
from freqprint.methods.base import MethodContext
from freqprint.methods.triggers import TriggerLoss, TriggerSet, TriggerWatermark

__all__ = ["MarginWatermark"]


class MWLoss(TriggerLoss):
    def __init__(self, triggers: TriggerSet, steps: int, step: float, batch: int, weight: float, seed: int) -> None:
        super().__init__(triggers, batch, weight, seed)
        self.steps, self.step = steps, step

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        xt, yt = self.sample(x.device)
        was = model.training
        model.eval()
        flags = [(p, p.requires_grad) for p in model.parameters()]
        for p, _ in flags:
            p.requires_grad_(False)
        try:
            for _ in range(self.steps):
                xt = xt.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(model(xt), yt), xt)
                xt = (xt + self.step * g.sign()).clamp(0, 1)
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
            model.train(was)
        logits = model(torch.cat([x, xt.detach()]))
        nat = F.cross_entropy(logits[: len(x)], y, reduction="none")
        wm = F.cross_entropy(logits[len(x) :], yt, reduction="none")
        loss = torch.cat([nat, self.weight * wm]).mean()
        return loss, {"ce": float(nat.mean().detach()), "trigger_margin": float(wm.mean().detach())}


@dataclass
class MarginWatermark(TriggerWatermark):
    """MW baseline as a tracing ``Method``; see the module docstring for the algorithm."""

    trigger_count: int = 100
    trigger_batch: int = 16
    pgd_steps: int = 5
    pgd_step: float = 1 / 255
    weight: float = 1.0
    name: str = "mw"

    def criterion(self, ctx: MethodContext) -> MWLoss:
        return MWLoss(
            self.triggers(ctx),
            self.pgd_steps,
            self.pgd_step,
            self.trigger_batch,
            self.weight,
            secret_seed(ctx.secret, "mw-batches"),
        )
