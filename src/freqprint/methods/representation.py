"""Passive baselines that fingerprint an *unmodified* model through its internals on probes.

* **ICS** — cosine of invariant terms, after HuRef (B. Zeng, C. Zhou, X. Wang, Z. Lin,
  "HuRef: HUman-REadable Fingerprint for Large Language Models", NeurIPS 2024), adapted to CNNs
  as in the paper's App. C.3: probes x pass through the raw first and second conv of a residual
  block, t = conv2(conv1(x_in)), multiplied element-wise by the block input x_in, flattened and
  concatenated over the probes.  conv2∘conv1 is the CNN analogue of HuRef's weight products: a
  permutation of conv1's outputs undone in conv2's inputs cancels exactly, and a scaling of
  either conv only scales the vector, which the cosine ignores.  Choice (the paper is silent):
  the convs are applied without the BatchNorm/ReLU between them, which is what makes the term
  invariant; "the original input image" is read as the block input (shapes must match).
* **CKA** — REEF (J. Zhang, D. Liu, C. Qian, L. Zhang, Y. Liu, Y. Qiao, J. Shao, "REEF:
  Representation Encoding Fingerprints for Large Language Models", ICLR 2025), App. C.4: the
  feature map of one layer on m = 100 probes, flattened to Z ∈ R^{m×d}; centered kernel
  alignment CKA = HSIC(K, K′)/√(HSIC(K, K)·HSIC(K′, K′)), HSIC(K, L) = tr(KHLH)/(m−1)²,
  H = I − 11ᵀ/m, with an RBF kernel (σ = ``rbf_scale`` × the median pairwise distance, the usual
  median heuristic: the paper does not give σ) and a linear kernel.

Probes are ``probes`` images of the owner's training data drawn with a generator keyed by the
secret (the paper: 100 random CIFAR-100 images).  Neither method needs training: ``embeds`` is
False, and the tracing benchmark scores them on the same models as an embedding method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.methods.base import MethodContext, MethodDefaults
from freqprint.methods.triggers import draw_probes

__all__ = ["CKAFingerprint", "InvariantTermsCosine", "cka", "hsic"]


def _module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise FreqprintError(f"the model has no layer {name!r} (set the method's layer names)") from None


@torch.no_grad()
def _capture(model: nn.Module, layer: str, x: torch.Tensor, what: str = "output") -> torch.Tensor:
    """Input or output of ``layer`` when ``model`` runs (eval mode) on ``x``."""
    box: dict[str, torch.Tensor] = {}

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        box["t"] = (inp[0] if what == "input" else out).detach()

    h = _module(model, layer).register_forward_hook(hook)
    was = model.training
    model.eval()
    try:
        model(x.to(next(model.parameters()).device))
    finally:
        h.remove()
        model.train(was)
    return box["t"].cpu().double()


def hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """HSIC(K, L) = tr(K H L H) / (m − 1)²."""
    m = k.shape[0]
    h = torch.eye(m, dtype=k.dtype) - 1.0 / m
    return torch.trace(k @ h @ l @ h) / (m - 1) ** 2


def _rbf(z: torch.Tensor, scale: float) -> torch.Tensor:
    d2 = torch.cdist(z, z).pow(2)
    off = d2[~torch.eye(len(z), dtype=torch.bool)]
    sigma2 = (scale**2) * off.sqrt().median().pow(2).clamp_min(1e-12)
    return torch.exp(-d2 / (2 * sigma2))


def cka(z1: torch.Tensor, z2: torch.Tensor, kernel: str = "rbf", rbf_scale: float = 1.0) -> float:
    """Centered kernel alignment of two representations of the same m probes ([m, d] each)."""
    z1, z2 = z1.flatten(1).double(), z2.flatten(1).double()
    if kernel == "linear":
        k1, k2 = z1 @ z1.T, z2 @ z2.T
    elif kernel == "rbf":
        k1, k2 = _rbf(z1, rbf_scale), _rbf(z2, rbf_scale)
    else:
        raise InvalidArgument(f"unknown kernel {kernel!r}; use 'rbf' or 'linear'")
    den = torch.sqrt(hsic(k1, k1) * hsic(k2, k2))
    return float(hsic(k1, k2) / den) if den > 0 else 0.0


@dataclass
class InvariantTermsCosine(MethodDefaults):
    """ICS baseline (HuRef adapted to CNNs); see the module docstring."""

    first: str = "layer1.1.conv1"
    second: str = "layer1.1.conv2"
    probes: int = 100
    name: str = "ics"
    embeds = False

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {"cosine": 0.5}

    def terms(self, model: nn.Module, probes: torch.Tensor) -> torch.Tensor:
        x_in = _capture(model, self.first, probes, "input")
        first, second = _module(model, self.first), _module(model, self.second)
        dev = next(model.parameters()).device
        with torch.no_grad():
            t = second(first(x_in.float().to(dev))).cpu().double()
        if t.shape == x_in.shape:
            t = t * x_in
        return t.flatten()

    def extract(self, model: nn.Module, ctx: MethodContext) -> dict[str, Any]:
        probes = draw_probes(ctx.data, ctx.secret, self.probes)
        return {"probes": probes, "terms": self.terms(model, probes)}

    def score(self, evidence: dict[str, Any], suspect: nn.Module) -> dict[str, float]:
        t = self.terms(suspect, evidence["probes"])
        if t.shape != evidence["terms"].shape:
            return {"cosine": 0.0}
        return {"cosine": float(torch.nn.functional.cosine_similarity(t, evidence["terms"], dim=0))}


@dataclass
class CKAFingerprint(MethodDefaults):
    """CKA baseline (REEF); see the module docstring.  Scores ``cka_rbf`` (the paper's) and ``cka_linear``."""

    layer: str = "layer1.1.conv2"
    probes: int = 100
    rbf_scale: float = 1.0
    name: str = "cka"
    embeds = False

    @property
    def fixed_thresholds(self) -> dict[str, float]:
        return {"cka_rbf": 0.9, "cka_linear": 0.9}

    def extract(self, model: nn.Module, ctx: MethodContext) -> dict[str, Any]:
        probes = draw_probes(ctx.data, ctx.secret, self.probes)
        return {"probes": probes, "features": _capture(model, self.layer, probes).flatten(1)}

    def score(self, evidence: dict[str, Any], suspect: nn.Module) -> dict[str, float]:
        z = _capture(suspect, self.layer, evidence["probes"]).flatten(1)
        return {
            "cka_rbf": cka(evidence["features"], z, "rbf", self.rbf_scale),
            "cka_linear": cka(evidence["features"], z, "linear"),
        }
