"""A thief's exact rewrite of a pre-LayerNorm Transformer: rotating the residual stream.

In a pre-LN block every read of the residual stream x goes through ``LN(x) = γ⊙n(x) + β`` with
``n(x) = (x − mean(x))/std(x)``, and every write is a linear map added to x.  Fold γ and β into the
linear layers that read (``W ← W·diag(γ)``, ``b ← b + W·β``); then ``n`` commutes with any
orthogonal Q that fixes the all-ones vector (it keeps the mean and the norm of x − mean), so
multiplying every write by Q and every read by Qᵀ leaves the function unchanged (the observation
behind SliceGPT, Ashkboos et al. 2024).  That is an (H−1)(H−2)/2-dimensional group of free
rewrites, far larger than the permutations of the hidden units.

The fingerprint module reads the stream too: its kernels are mixed over their input channels,
``W[d, c] ← Σ_c′ Q[c, c′]·W[d, c′]``, and its projection writes through Q.  The verifier matches
channels by permutation and scaling only, so this is the Transformer counterpart of the linear
mixing the ReLU merge was built against.  The verifier's rotated-channel test undoes it
(:mod:`freqprint.verification.verifier`); docs/benchmarks.md §11 and docs/security.md give the numbers.  No ``transformers``
import: the attack walks a Hugging Face ViT by its attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.errors import NotApplicable
from freqprint.fingerprint import Fingerprinted

__all__ = ["ResidualRotation", "ones_fixing_rotation"]


def ones_fixing_rotation(h: int, generator: torch.Generator) -> torch.Tensor:
    """A random orthogonal ``[h, h]`` matrix Q with ``Q·1 = 1`` (float64)."""
    ones = torch.ones(h, 1, dtype=torch.float64) / h**0.5
    basis, _ = torch.linalg.qr(torch.cat([ones, torch.randn(h, h - 1, generator=generator, dtype=torch.float64)], 1))
    basis[:, :1] = ones  # QR may flip the sign of the first column
    r, _ = torch.linalg.qr(torch.randn(h - 1, h - 1, generator=generator, dtype=torch.float64))
    inner = torch.eye(h, dtype=torch.float64)
    inner[1:, 1:] = r
    return basis @ inner @ basis.T


def _fold_ln_into(ln: nn.LayerNorm, readers: list[nn.Linear]) -> None:
    g, b = ln.weight.detach().double(), ln.bias.detach().double()
    for lin in readers:
        w = lin.weight.detach().double()
        lin.bias.data.copy_((lin.bias.detach().double() + w @ b).to(lin.bias))
        lin.weight.data.copy_((w * g[None, :]).to(lin.weight))
    ln.weight.data.fill_(1.0)
    ln.bias.data.zero_()


def _read(lin: nn.Linear, q: torch.Tensor) -> None:
    lin.weight.data.copy_((lin.weight.detach().double() @ q.T).to(lin.weight))


def _write(lin: nn.Linear, q: torch.Tensor) -> None:
    lin.weight.data.copy_((q @ lin.weight.detach().double()).to(lin.weight))
    lin.bias.data.copy_((q @ lin.bias.detach().double()).to(lin.bias))


@dataclass(repr=False)
class ResidualRotation(Attack):
    """Rotate the residual stream of a Hugging Face ViT (``vit.layers.*`` with
    ``layernorm_before/after``, ``attention.{q,k,v,o}_proj``, ``mlp.fc1/fc2``) by a random
    orthogonal Q that fixes the all-ones vector, LayerNorm scales folded first.  Exact."""

    seed: int = 0
    name = "rotate-residual"

    def apply(self, model: nn.Module) -> nn.Module:
        vit = getattr(model, "vit", None)
        if vit is None or not hasattr(vit, "layers") or not isinstance(getattr(model, "classifier", None), nn.Linear):
            raise NotApplicable("rotate-residual needs a Hugging Face ViTForImageClassification (pre-LN blocks)")
        emb = vit.embeddings
        h = emb.cls_token.shape[-1]
        q = ones_fixing_rotation(h, torch.Generator().manual_seed(self.seed))
        for p in (emb.cls_token, emb.position_embeddings):
            p.data.copy_((p.detach().double() @ q.T).to(p))
        proj = emb.patch_embeddings.projection
        proj.weight.data.copy_(torch.einsum("ed,dchw->echw", q, proj.weight.detach().double()).to(proj.weight))
        proj.bias.data.copy_((q @ proj.bias.detach().double()).to(proj.bias))
        for block in vit.layers:
            fp = block.fingerprint if isinstance(block, Fingerprinted) else None
            layer = block.base if fp is not None else block
            att, mlp = layer.attention, layer.mlp
            _fold_ln_into(layer.layernorm_before, [att.q_proj, att.k_proj, att.v_proj])
            _fold_ln_into(layer.layernorm_after, [mlp.fc1])
            for lin in (att.q_proj, att.k_proj, att.v_proj, mlp.fc1):
                _read(lin, q)
            for lin in (att.o_proj, mlp.fc2):
                _write(lin, q)
            if fp is not None:  # reads the stream (input channels), writes to it (projection)
                fp.weight.data.copy_(torch.einsum("ec,dchw->dehw", q, fp.weight.detach().double()).to(fp.weight))
                pw = fp.proj.weight
                pw.data.copy_(torch.einsum("eo,odhw->edhw", q, pw.detach().double()).to(pw))
                if fp.proj.bias is not None:
                    fp.proj.bias.data.copy_((q @ fp.proj.bias.detach().double()).to(fp.proj.bias))
        head = model.classifier
        assert isinstance(head, nn.Linear)  # checked above
        _fold_ln_into(vit.layernorm, [head])
        _read(head, q)
        return model
