"""Baselines scored on the very suspects MetaV is scored on.

* :class:`IPGuard` (Cao, Jia, Gong, AsiaCCS 2021; no official code — this follows the paper's
  idea): data points near the *source's* decision boundary, found by gradient steps from real
  images so that two classes ``i, j`` tie at the top of the logits, clear of the rest by a margin
  κ.  A model derived from the source keeps its boundary, so it labels them as the source does.
  Score: the share of boundary points with the source's label.  Classifiers only.
* :class:`SameMistakes`: the trivial floor — do the two models make the same mistakes?
  (:meth:`freqprint.metav.tasks.Task.agreement`: the share of the source's test errors repeated
  by the suspect; the correlation of regression residuals; for a generator, the correlation of
  centred images on shared latent codes.)  It is known to rival published methods.
* :class:`FrequencyFingerprintScore`: ours, white-box, when the source carries the module: the
  calibrated verifier's ``1 − p`` (the benchmark reads the suspect's *weights*; an API's output
  obfuscation does not change them).

Every baseline's threshold is calibrated on the validation ensemble exactly like MetaV's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from freqprint.data import ArrayDataset
from freqprint.metav.tasks import Task

__all__ = ["FrequencyFingerprintScore", "IPGuard", "SameMistakes"]

Query = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class IPGuard:
    n_points: int = 100
    kappa: float = 1.0
    steps: int = 100
    lr: float = 0.01
    seed: int = 0
    name = "ipguard"

    def fit(self, task: Task, source: Query, data: ArrayDataset) -> IPGuard:
        if task.kind != "classification":
            raise ValueError("IPGuard needs a classifier")
        g = torch.Generator().manual_seed(self.seed)
        x = task.real_inputs(data, self.n_points, self.seed).clone().requires_grad_(True)
        c = task.output_dim
        i = torch.randint(0, c, (self.n_points,), generator=g)
        j = (i + torch.randint(1, c, (self.n_points,), generator=g)) % c
        opt = torch.optim.Adam([x], lr=self.lr)
        rows = torch.arange(self.n_points)
        for _ in range(self.steps):
            z = source(x)
            zi, zj = z[rows, i], z[rows, j]
            others = z.clone()
            others[rows, i] = -1e9
            others[rows, j] = -1e9
            loss = ((zi - zj).abs() + F.relu(others.max(1).values - torch.minimum(zi, zj) + self.kappa)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
        self.points = x.detach()
        with torch.no_grad():
            self.labels = source(self.points).argmax(1)
        return self

    def score(self, suspect: Query) -> float:
        with torch.no_grad():
            return float((suspect(self.points).argmax(1) == self.labels).float().mean())


@dataclass
class SameMistakes:
    name = "same-mistakes"

    def fit(self, task: Task, source: Query, data: ArrayDataset) -> SameMistakes:
        self.task, self.source, self.data = task, source, data
        return self

    def score(self, suspect: Query) -> float:
        return self.task.agreement(self.source, suspect, self.data)


@dataclass
class FrequencyFingerprintScore:
    """``1 − p`` of :func:`freqprint.verification.verifier.verify` with the source's key (anchored to W₀)."""

    secret: str
    name = "ours (white-box)"

    def fit(self, source_model: nn.Module) -> FrequencyFingerprintScore:
        from freqprint.verification.key import extract

        self.key = extract(source_model, secret=self.secret)
        return self

    def score_model(self, suspect: nn.Module) -> dict[str, Any]:
        from freqprint.errors import FreqprintError
        from freqprint.verification.verifier import verify

        try:
            rep = verify(self.key, suspect)
        except FreqprintError:  # nothing the key can be tested on (no conv tensor of a fitting shape)
            return {"score": 0.0, "log10_p": 0.0}
        return {"score": 1.0 - 10.0 ** max(rep.log10_p, -300.0), "log10_p": rep.log10_p}
