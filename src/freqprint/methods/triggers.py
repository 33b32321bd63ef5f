"""Trigger sets for the watermark baselines (RS, MW) and probe images for the passive ones.

A trigger set is ``m`` images drawn from the owner's training data by a generator keyed with
HMAC(secret), each given a random label *different* from its true class (as in Kim et al.'s
query initialisation, and Bansal et al.'s in-distribution "content" triggers).  The owner can
always redraw it from (secret, data); a model that never saw it predicts the true class, so its
trigger accuracy sits near 0, far below the 1/n of pure chance.

Choice (documented in the README): the trigger images stay in the training stream with their
true labels, once per epoch; the trigger loss is applied at every step, so it dominates.  The
original MW code draws them from a held-out split instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from freqprint.errors import FreqprintError
from freqprint.fingerprint import secret_seed
from freqprint.methods.base import MethodContext, MethodDefaults

__all__ = ["TriggerSet", "TriggerWatermark", "draw_probes", "make_triggers", "trigger_accuracy"]


@dataclass
class TriggerSet:
    images: torch.Tensor  # [m, C, H, W]
    labels: torch.Tensor  # [m], the watermark labels (never the true class)

    def __len__(self) -> int:
        return len(self.labels)


def draw_probes(data, secret: str, m: int, context: str = "probes") -> torch.Tensor:
    """``m`` images of ``data`` chosen by a generator keyed with ``secret``."""
    if m > len(data):
        raise FreqprintError(f"need {m} images, the data set has {len(data)}")
    g = torch.Generator().manual_seed(secret_seed(secret, context))
    return data.images[torch.randperm(len(data), generator=g)[:m]].clone()


def make_triggers(data, secret: str, m: int = 100, num_classes: int | None = None) -> TriggerSet:
    """A keyed trigger set: ``m`` training images relabelled to a random *other* class."""
    n = num_classes or data.num_classes
    if n < 2:
        raise FreqprintError("a trigger set needs at least two classes")
    g = torch.Generator().manual_seed(secret_seed(secret, "triggers"))
    idx = torch.randperm(len(data), generator=g)[:m]
    if len(idx) < m:
        raise FreqprintError(f"need {m} trigger images, the data set has {len(data)}")
    true = data.labels[idx].long()
    shift = torch.randint(1, n, (m,), generator=g)
    return TriggerSet(data.images[idx].clone(), (true + shift) % n)


@torch.no_grad()
def trigger_accuracy(model: nn.Module, triggers: TriggerSet, batch_size: int = 256) -> float:
    """Share of trigger images on which ``model`` predicts the watermark label (eval mode)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    hits = 0
    for i in range(0, len(triggers), batch_size):
        out = model(triggers.images[i : i + batch_size].to(dev))
        hits += int((out.argmax(1).cpu() == triggers.labels[i : i + batch_size]).sum())
    model.train(was)
    return hits / len(triggers)


class TriggerLoss:
    """Shared part of the RS and MW training losses: CE on the batch plus a trigger term.

    Each call draws ``batch`` triggers (own generator, so runs are reproducible) and returns
    ``(loss, parts)`` as :func:`freqprint.training.train` expects.
    """

    def __init__(self, triggers: TriggerSet, batch: int, weight: float, seed: int) -> None:
        self.triggers = triggers
        self.batch = min(batch, len(triggers))
        self.weight = weight
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randperm(len(self.triggers), generator=self.gen)[: self.batch]
        return self.triggers.images[idx].to(device), self.triggers.labels[idx].to(device)


class TriggerWatermark(MethodDefaults):
    """What RS and MW share: the keyed trigger set, its evidence and its score.

    Subclasses are dataclasses with a ``trigger_count`` field and their own ``criterion``.
    """

    trigger_count: int
    embeds = True

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        # a trigger set the model never saw sits near 0 (labels differ from the true class)
        return {"trigger_acc": 0.5}

    def triggers(self, ctx: MethodContext) -> TriggerSet:
        return make_triggers(ctx.data, ctx.secret, self.trigger_count, ctx.num_classes)

    def extract(self, model: nn.Module, ctx: MethodContext) -> dict:
        trig = self.triggers(ctx)
        return {"triggers": trig, "trigger_acc": trigger_accuracy(model, trig)}

    def score(self, evidence: dict, suspect: nn.Module) -> dict[str, float]:
        return {"trigger_acc": trigger_accuracy(suspect, evidence["triggers"])}
