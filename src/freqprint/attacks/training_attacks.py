"""Attacks that train: fine-tuning (full, last layer, LoRA; keep or replace the head) and
distillation into a fresh student.  A thief uses the n real classes only: the pseudo class of
L_attack is never a target, and a replaced head has no pseudo class."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.data import ArrayDataset
from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.fingerprint.loss import find_head
from freqprint.training import TrainConfig, resolve_device, train

__all__ = ["Distill", "FineTune", "LowRankDelta"]


class LowRankDelta(nn.Module):
    """LoRA as a parametrization: ``W ↦ W + (α/r)·(B @ A).view_as(W)``, with B = 0 at the start."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        out_f, in_f = weight.shape[0], weight[0].numel()
        self.rank = rank
        self.scaling = (alpha or rank) / rank
        self.A = nn.Parameter(torch.randn(rank, in_f, dtype=weight.dtype, device=weight.device) / in_f**0.5)
        self.B = nn.Parameter(torch.zeros(out_f, rank, dtype=weight.dtype, device=weight.device))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + self.scaling * (self.B @ self.A).view_as(w)


@dataclass(repr=False)
class FineTune(Attack):
    """Fine-tune on ``data`` (an :class:`ArrayDataset`).

    Args:
        head: ``"keep"`` (train on the head's first ``data.num_classes`` outputs) or ``"replace"``
            (a fresh linear head with ``data.num_classes`` outputs).
        layers: ``"all"`` or ``"last"`` (only the head trains).
        lora_rank: > 0 trains low-rank adapters on every conv/linear weight instead of the
            weights themselves (the head still trains fully), then merges them.
    """

    data: ArrayDataset | None = None
    lr: float = 0.01
    epochs: int = 3
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    head: str = "keep"
    layers: str = "all"
    lora_rank: int = 0
    seed: int = 0
    device: str = "cpu"
    name = "finetune"
    no_grad = False

    def apply(self, model: nn.Module) -> nn.Module:
        if self.data is None:
            raise FreqprintError("FineTune needs data=")
        if self.head not in ("keep", "replace") or self.layers not in ("all", "last"):
            raise InvalidArgument("FineTune: head must be 'keep'/'replace' and layers 'all'/'last'")
        head_name = find_head(model)
        head = model.get_submodule(head_name)
        assert isinstance(head, nn.Linear)  # find_head names the last nn.Linear
        n = self.data.num_classes
        if self.head == "replace":
            new = nn.Linear(head.in_features, n).to(head.weight)
            parent, _, child = head_name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, new)
            head = new
        elif head.out_features < n:
            raise FreqprintError(f"the kept head has {head.out_features} outputs, the data {n} classes: use head='replace'")
        head_params = set(map(id, head.parameters()))
        adapted: list[nn.Module] = []
        for p in model.parameters():
            p.requires_grad_(self.layers == "all" and self.lora_rank == 0 or id(p) in head_params)
        if self.lora_rank > 0 and self.layers == "all":
            for mod in model.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod is not head:
                    parametrize.register_parametrization(mod, "weight", LowRankDelta(mod.weight, self.lora_rank))
                    adapted.append(mod)
        cfg = TrainConfig(
            epochs=self.epochs,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr_drop_at=None,
            seed=self.seed,
            device=self.device,
            output_classes=n,
        )
        train(model, self.data, cfg, progress=False, description="finetune")
        for mod in adapted:
            parametrize.remove_parametrizations(mod, "weight", leave_parametrized=True)
        for p in model.parameters():
            p.requires_grad_(True)
        return model.cpu()

    def update_recipe(self, recipe: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.head != "replace" or self.data is None:
            return recipe
        kwargs = {**recipe.get("kwargs", {}), "num_classes": self.data.num_classes}
        return {**recipe, "kwargs": kwargs, "num_classes": self.data.num_classes, "pseudo_class": False}


@dataclass(repr=False)
class Distill(Attack):
    """Train a fresh ``student`` to match the victim's softened outputs on ``data`` (labels unused).

    ``student_recipe`` builds the student (any registered architecture; e.g. the victim's recipe
    without the fingerprint module); ``update_recipe`` returns it.
    """

    data: ArrayDataset | None = None
    student_recipe: dict | None = None
    epochs: int = 3
    lr: float = 0.05
    temperature: float = 4.0
    batch_size: int = 128
    seed: int = 0
    device: str = "cpu"
    name = "distill"
    no_grad = False

    def apply(self, model: nn.Module) -> nn.Module:
        from freqprint.io.checkpoint import build_from_recipe

        if self.data is None or self.student_recipe is None:
            raise FreqprintError("Distill needs data= and student_recipe=")
        n = int(self.student_recipe.get("num_classes", self.data.num_classes))
        torch.manual_seed(self.seed)
        student = build_from_recipe(self.student_recipe)
        teacher = copy.deepcopy(model).to(resolve_device(self.device)).eval()
        t = self.temperature

        def kd_loss(net: nn.Module, x: torch.Tensor, _y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            with torch.no_grad():
                soft = F.softmax(teacher(x)[:, :n] / t, 1)
            loss = F.kl_div(F.log_softmax(net(x)[:, :n] / t, 1), soft, reduction="batchmean") * t * t
            return loss, {"kd": float(loss.detach())}

        cfg = TrainConfig(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, lr_drop_at=None, seed=self.seed, device=self.device
        )
        train(student, self.data, cfg, criterion=kd_loss, progress=False, description="distill")
        return student.cpu()

    def update_recipe(self, recipe: Mapping[str, Any]) -> Mapping[str, Any]:
        return dict(self.student_recipe or recipe)
