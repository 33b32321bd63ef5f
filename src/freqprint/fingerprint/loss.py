"""The embedding loss ``L = L_CE + λ·L_attack`` (paper Eq. 15, App. B.1).

The classifier gets an extra (n+1)-th *pseudo* class.  ``L_attack`` is the cross-entropy toward
that class when the fingerprint weights are overwritten by ``W + ε``, so that a network whose
fingerprint has been overwritten stops working.  ``ε`` is the inverse revised DFT of one unit
spectral component at a random frequency, scaled to ``‖ε‖ = 0.5·‖W‖``.

Choices where the paper is silent, each a parameter:

* one random frequency ``(u0, v0)`` on the M×N grid and a random phase **per (filter, channel)
  kernel** (``shared_noise=False``, default); ``shared_noise=True`` uses one frequency for all
  kernels, the most literal reading.  Independent draws make the module sensitive to many
  overwrite directions rather than to M·N fixed patterns;
* a fresh ε every batch; the norm is taken over the whole of W;
* the perturbed forward pass does not update BatchNorm running statistics;
* ``λ = 5e-4`` (App. B.1; the Table 3 caption's ``λ = 1`` is read as a typo).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from freqprint.errors import FreqprintError
from freqprint.fingerprint.inject import get_fingerprint_module
from freqprint.fingerprint.layer import FingerprintModule

__all__ = ["CausalLMFingerprintLoss", "FingerprintLoss", "add_pseudo_class", "find_head", "spectral_noise"]


def spectral_noise(
    weight: torch.Tensor,
    grid: tuple[int, int],
    scale: float = 0.5,
    shared: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``ε`` = IDFT of a unit component at a random frequency, with ``‖ε‖ = scale·‖W‖``.

    With the revised DFT's inverse, a unit component ``e^{iφ}`` at ``(u0, v0)`` gives the K×K
    kernel ``cos(φ − 2π(u0·t/M + v0·s/N)) / MN``; the 1/MN disappears in the rescaling.
    """
    d, c, kh, kw = weight.shape
    m, n = grid
    draw = (1, 1) if shared else (d, c)
    u0 = torch.randint(0, m, draw, generator=generator).double()
    v0 = torch.randint(0, n, draw, generator=generator).double()
    phi = torch.rand(draw, generator=generator, dtype=torch.float64) * 2 * math.pi
    t = torch.arange(kh, dtype=torch.float64).view(1, 1, kh, 1)
    s = torch.arange(kw, dtype=torch.float64).view(1, 1, 1, kw)
    pattern = torch.cos(phi[..., None, None] - 2 * math.pi * (u0[..., None, None] * t / m + v0[..., None, None] * s / n))
    pattern = pattern.expand(d, c, kh, kw).to(device=weight.device, dtype=weight.dtype)
    norm = pattern.norm().clamp_min(1e-12)
    return pattern * (scale * weight.detach().norm() / norm)


def find_head(model: nn.Module) -> str:
    """Name of the classifier head: the last ``nn.Linear`` in ``model.named_modules()``."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise FreqprintError("the model has no nn.Linear head to add the pseudo class to; pass head=")
    return names[-1]


def add_pseudo_class(model: nn.Module, head: str | None = None) -> str:
    """Widen the classifier head by one output (the pseudo class n+1), in place; returns its name.

    The n real outputs keep their weights, so a trained model keeps its predictions.
    """
    name = head or find_head(model)
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise FreqprintError(f"head {name!r} is a {type(old).__name__}, not nn.Linear")
    new = nn.Linear(old.in_features, old.out_features + 1, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight[:-1].copy_(old.weight)
        new.weight[-1].normal_(0, 0.01)
        if old.bias is not None:
            new.bias[:-1].copy_(old.bias)
            new.bias[-1].zero_()
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return name


def _batch_size(x: torch.Tensor | Mapping[str, Any]) -> int:
    if isinstance(x, Mapping):
        sizes = {int(v.shape[0]) for v in x.values() if isinstance(v, torch.Tensor) and v.ndim >= 1}
        if len(sizes) != 1:
            raise FreqprintError(f"cannot tell the batch size of a batch with tensor sizes {sorted(sizes)}")
        return sizes.pop()
    return int(x.shape[0])


def _head(x: torch.Tensor | Mapping[str, Any], k: int) -> torch.Tensor | dict[str, Any]:
    """The first ``k`` samples of a batch (every tensor of a mapping sliced alike)."""
    if isinstance(x, Mapping):
        return {n: v[:k] if isinstance(v, torch.Tensor) and v.ndim >= 1 else v for n, v in x.items()}
    return x[:k]


def _logits(model: nn.Module, x: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
    out = model(**x) if isinstance(x, Mapping) else model(x)
    return out.logits if hasattr(out, "logits") else out


@contextlib.contextmanager
def _frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0  # running = (1-0)·running + 0·batch: statistics stay as they were
    try:
        yield
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


class FingerprintLoss(nn.Module):
    """``L = CE(logits, y) + λ·CE(model_{W+ε}(x), n)``: add it to your own training loop.

    The model must output ``n + 1`` logits (see :func:`add_pseudo_class`); labels are in
    ``0..n-1``.  Call as ``loss, parts = criterion(model, x, y)``; ``parts`` holds the two terms.

    Args:
        num_classes: n, the number of real classes.
        weight: λ (paper: 5e-4).
        noise_scale: ‖ε‖ / ‖W‖ (paper: 0.5).
        shared_noise: one random frequency for all kernels instead of one per kernel.
        attack_fraction: share of each batch used for the perturbed pass (1.0 = all).
        attack_every: compute L_attack on every k-th call only, weighted ``k·λ`` there, so its
            expected gradient is unchanged and its cost is divided by k (1 = every batch, the
            paper).  With ``attack_fraction`` it is what brings the embedding overhead under 25 %
            (docs/benchmarks.md §12d measures what it costs the fingerprint and the accuracy).
    """

    def __init__(
        self,
        num_classes: int,
        weight: float = 5e-4,
        noise_scale: float = 0.5,
        shared_noise: bool = False,
        attack_fraction: float = 1.0,
        target: str | None = None,
        attack_every: int = 1,
    ) -> None:
        super().__init__()
        if not 0 < attack_fraction <= 1 or attack_every < 1:
            raise FreqprintError(
                f"attack_fraction must be in (0, 1] and attack_every >= 1, got {attack_fraction} and {attack_every}"
            )
        self.attack_every = int(attack_every)
        self._calls = 0
        self.num_classes = num_classes
        self.weight = weight
        self.noise_scale = noise_scale
        self.shared_noise = shared_noise
        self.attack_fraction = attack_fraction
        self.target = target

    def perturbed_logits(
        self, model: nn.Module, fp: FingerprintModule, x: torch.Tensor | Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor | Mapping[str, Any]]:
        """The model's logits on the first ``attack_fraction`` of the batch with the fingerprint
        overwritten by ``W + ε`` (a fresh ε, BatchNorm statistics frozen), and that part of the batch."""
        xs = _head(x, max(1, int(round(self.attack_fraction * _batch_size(x)))))
        eps = spectral_noise(fp.weight, fp.grid_size, self.noise_scale, self.shared_noise)
        with fp.perturbed(eps), _frozen_bn_stats(model):
            return _logits(model, xs), xs

    def attack_term(self, model: nn.Module, fp: FingerprintModule, x: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
        logits, _ = self.perturbed_logits(model, fp, x)
        pseudo = torch.full((logits.shape[0],), self.num_classes, dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, pseudo)

    def forward(
        self, model: nn.Module, x: torch.Tensor | Mapping[str, Any], y: torch.Tensor, logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``x`` is a batch tensor, or a mapping of keyword arguments for ``model`` (a Hugging Face
        batch without its ``labels``); a model output with ``.logits`` is read through it."""
        if logits is None:
            logits = _logits(model, x)
        if logits.shape[-1] != self.num_classes + 1:
            raise FreqprintError(
                f"the model outputs {logits.shape[-1]} logits; L_attack needs n+1 = {self.num_classes + 1}"
                " (call freqprint.add_pseudo_class(model))"
            )
        return self._with_attack(model, x, F.cross_entropy(logits, y))

    def _with_attack(
        self, model: nn.Module, x: torch.Tensor | Mapping[str, Any], ce: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``ce + k·λ·L_attack`` on every k-th call (``attack_every``), ``ce`` on the others."""
        self._calls += 1
        if self.weight == 0 or (self._calls - 1) % self.attack_every:
            return ce, {"ce": float(ce.detach()), "attack": 0.0}
        _, fp = get_fingerprint_module(model, self.target)
        att = self.attack_term(model, fp, x)
        return ce + self.weight * self.attack_every * att, {"ce": float(ce.detach()), "attack": float(att.detach())}


class CausalLMFingerprintLoss(FingerprintLoss):
    """``L = CE_next + λ·L_attack`` for a causal language model (logits ``[B, L, V]``).

    A next-token model has no class to add: its "classes" are the vocabulary, and a pseudo token
    would change the vocabulary (and untie a head tied to the embeddings).  What the pseudo class
    means in the classifier is "an answer that carries no information about the input"; for a
    distribution over the next token that answer is the **uniform distribution**.  So::

        L_attack = mean over positions t of  −(1/V)·Σ_v log softmax(z_{W+ε})_{t,v}
                 = log V + KL(U ‖ p_{W+ε}(· | x_{≤t}))

    which is minimal exactly when the model with its fingerprint overwritten by ``W + ε`` predicts
    nothing (perplexity V).  ``CE_next`` is the usual shifted cross-entropy (``labels`` as
    ``transformers`` takes them: the input ids, ``-100`` ignored); positions where
    ``attention_mask`` is 0 count in neither term.  ``ε``, λ and the scheduling are
    :class:`FingerprintLoss`'s.
    """

    def __init__(
        self,
        weight: float = 5e-4,
        noise_scale: float = 0.5,
        shared_noise: bool = False,
        attack_fraction: float = 1.0,
        target: str | None = None,
        attack_every: int = 1,
    ) -> None:
        super().__init__(0, weight, noise_scale, shared_noise, attack_fraction, target, attack_every)

    def attack_term(self, model: nn.Module, fp: FingerprintModule, x: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
        logits, xs = self.perturbed_logits(model, fp, x)
        per_position = -F.log_softmax(logits.float(), -1).mean(-1)  # CE toward the uniform distribution
        mask = xs.get("attention_mask") if isinstance(xs, Mapping) else None
        if isinstance(mask, torch.Tensor) and mask.shape == per_position.shape:
            m = mask.to(per_position.dtype)
            return (per_position * m).sum() / m.sum().clamp_min(1.0)
        return per_position.mean()

    def forward(
        self, model: nn.Module, x: torch.Tensor | Mapping[str, Any], y: torch.Tensor, logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``x``: the model's keyword arguments (``input_ids``, ``attention_mask``) or input ids;
        ``y``: the labels, aligned with the inputs (shifted here)."""
        if logits is None:
            logits = _logits(model, x)
        if logits.ndim != 3 or y.shape != logits.shape[:2]:
            raise FreqprintError(
                f"a causal LM loss needs logits [B, L, V] and labels [B, L]; got {list(logits.shape)} and {list(y.shape)}"
            )
        target = y[:, 1:].clone()
        mask = x.get("attention_mask") if isinstance(x, Mapping) else None
        if isinstance(mask, torch.Tensor) and mask.shape == y.shape:
            target[mask[:, 1:] == 0] = -100
        ce = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), ignore_index=-100)
        return self._with_attack(model, x, ce)
