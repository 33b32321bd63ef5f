"""MetaV as a tracing-benchmark :class:`~freqprint.methods.base.Method` (``--method ours,metav``).

Passive: it scores the very models of the embedding method it runs beside.  ``extract`` is the
owner's whole MetaV procedure for one source, built from what the owner has (the source and its
training data, :class:`~freqprint.methods.base.MethodContext`):

* positives: the source fine-tuned (two learning rates), pruned, weight-noised, and moved to a
  relabelled task (the owner's images under a fixed permutation of the classes: a stand-in for
  fine-tuning on another task, which the owner has no data for);
* negatives: ``negatives`` models of the source's architecture (without a fingerprint module)
  re-initialised (other seeds) and trained on the owner's data for ``train_epochs``, plus their
  pruned, noised and relabelled variants (so "obfuscated" is not a cue);
* a fine-tuned, a pruned and a relabelled positive, an independent and a pruned independent
  model go to a validation split, on which λ is calibrated; MetaV trains on the rest.

``score`` is ``metav_margin = logit(V) − logit(λ)``: above 0 exactly when MetaV says "derived"
at its calibrated λ, so the benchmark's fixed threshold (0) is the calibrated one.  Budget knobs
(``data_limit``, ``epochs``) keep a CPU run affordable; the ensemble it can afford is small, and
the results say so.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from freqprint.methods.base import MethodContext, MethodDefaults

__all__ = ["MetaVMethod"]


def _reinit(model: nn.Module, seed: int) -> nn.Module:
    """The source's architecture, every parameter drawn afresh (a fingerprint module is removed:
    its weights have no ``reset_parameters`` and would carry the owner's fingerprint over)."""
    from freqprint.attacks import RemoveModule
    from freqprint.fingerprint import find_fingerprint_modules

    m = RemoveModule()(model) if find_fingerprint_modules(model) else copy.deepcopy(model)
    torch.manual_seed(seed)
    for mod in m.modules():
        reset = getattr(mod, "reset_parameters", None)
        if callable(reset) and mod is not m:
            reset()
    return m


@dataclass
class MetaVMethod(MethodDefaults):
    n_inputs: int = 24
    steps: int = 150
    negatives: int = 4
    epochs: int = 1
    train_epochs: int = 3
    data_limit: int = 3000
    lr: float = 0.05
    name: str = "metav"
    embeds = False

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {"metav_margin": 0.0}

    def extract(self, model: nn.Module, ctx: MethodContext) -> Any:
        from freqprint.attacks import BackboneNoise, Prune
        from freqprint.metav.core import MetaVConfig, fit_metav
        from freqprint.metav.tasks import ClassificationTask

        data = ctx.data.subset(self.data_limit, seed=0)
        task = ClassificationTask(num_classes=ctx.num_classes, image_shape=tuple(data.shape))
        src = model.eval()
        # a thief may move the model to another task: fine-tuning on the owner's images relabelled
        # by a fixed permutation of the classes stands in for it (same images, other meaning)
        perm = torch.randperm(ctx.num_classes, generator=torch.Generator().manual_seed(7))
        relabelled = type(data)(data.images, perm[data.labels], data.classes, data.name + "-relabelled")

        def retask(m: nn.Module, seed: int) -> nn.Module:
            return task.fit(copy.deepcopy(m), relabelled, self.epochs, 0.01, seed=seed)

        pos = [task.fit(copy.deepcopy(src), data, self.epochs, lr, seed=10 + i) for i, lr in enumerate((0.01, 0.001))]
        pos += [Prune(rate=r)(src) for r in (0.3, 0.6)] + [BackboneNoise(scale=s, seed=1)(src) for s in (0.05, 0.1)]
        pos += [retask(src, 20 + i) for i in range(2)]
        neg = [
            task.fit(_reinit(src, 100 + i), data, self.train_epochs, self.lr, seed=100 + i, drop=0.5)
            for i in range(self.negatives)
        ]
        neg += [Prune(rate=0.5)(m) for m in neg[:2]] + [BackboneNoise(scale=0.05, seed=2)(m) for m in neg[2:4]]
        neg += [retask(m, 200 + i) for i, m in enumerate(neg[: self.negatives][:2])]

        def q(m: nn.Module):
            return lambda x: task.outputs(m, x)

        # validation: one fine-tuned, one pruned positive; one independent, one pruned independent
        val = [(q(pos[0]), 1), (q(pos[2]), 1), (q(pos[6]), 1), (q(neg[0]), 0), (q(neg[self.negatives]), 0)]
        train = [(q(src), 1)] + [(q(m), 1) for i, m in enumerate(pos) if i not in (0, 2, 6)]
        train += [(q(m), 0) for i, m in enumerate(neg) if i not in (0, self.negatives)]
        cfg = MetaVConfig(n_inputs=self.n_inputs, steps=self.steps, augment=0.02, eval_every=max(1, self.steps // 6))
        return fit_metav(task, train, val, task.init_inputs(data, self.n_inputs, 0), task.domain(data), cfg)

    def score(self, evidence: Any, suspect: nn.Module) -> dict[str, float]:
        from freqprint.metav.core import logit

        s = evidence.score(suspect)
        return {"metav_margin": logit(s) - logit(evidence.threshold), "metav_score": s}
