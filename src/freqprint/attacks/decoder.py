"""A thief's exact rewrites of a Llama-architecture decoder: its own symmetry group.

A Llama block reads the residual stream h only through ``RMSNorm(h) = g ⊙ h / rms(h)`` and writes
to it through ``o_proj`` and ``down_proj``.  Three groups of rewrites leave the function unchanged
(to float rounding; the tests compare the logits):

* **Residual rotation** (SliceGPT, Ashkboos et al. 2024).  Fold every gain into the linear layers
  that read the norm (``W ← W·diag(g)``, ``g ← 1``); ``rms`` is invariant under any orthogonal Q,
  so multiplying every write by Q (``E ← E·Qᵀ`` for the embedding rows, ``W ← Q·W`` for
  ``o_proj``/``down_proj``) and every read by Qᵀ (``W ← W·Qᵀ`` for q/k/v, gate/up and the head)
  gives ``h' = Q·h`` everywhere.  RMSNorm has no mean subtraction, so Q ranges over all of O(H),
  not only the rotations that fix the all-ones vector as for LayerNorm
  (:class:`freqprint.attacks.ResidualRotation`).  A tied head is untied: the final norm's gain
  folds into the head but not into the embedding.
* **Permutations** of the attention heads (of the key/value groups and of the query heads inside
  each group, so grouped-query attention still pairs them) and of the MLP's hidden units.  Rotary
  embeddings act inside a head, so whole heads move freely.
* **Per-channel scaling through RMSNorm**: ``g ← g ⊙ s`` and the columns of every reader
  ``W ← W·diag(1/s)``.

The fingerprint module of :class:`freqprint.fingerprint.FingerprintedFeatures` reads the stream
(each token's ``h/rms(h)`` on a ``C×M×N`` grid) and writes to it, so only the rotation touches it.
A rotation is absorbed by the module's weights only when it respects the grid: ``Q = A ⊗ I_MN``
mixes the C channels alike at every grid point, and then ``W[d, c] ← Σ_c′ A[c, c′]·W[d, c′]`` and
``P ← A·P`` (``mode="module"``; the verifier's rotated-channel test undoes it).  The module's
low-pass band and thumbnail samples are code, not weights, so any other Q cannot be folded: the
thief stores ``Qᵀ`` in front of the module and Q behind it, and W stays as it was
(``mode="full"``, :class:`RotatedFeatures`).  No ``transformers`` import: the attacks walk the
model by its attribute names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.errors import InvalidArgument, NotApplicable
from freqprint.fingerprint import Fingerprinted, FingerprintedFeatures

__all__ = ["DecoderPermutation", "DecoderRotation", "NormScaling", "RotatedFeatures", "decoder_parts"]


@dataclass
class _Block:
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    gate: nn.Linear
    up: nn.Linear
    down: nn.Linear
    attn_norm: nn.Parameter  # the RMSNorm gains
    mlp_norm: nn.Parameter
    wrapper: Fingerprinted | None
    name: str

    @property
    def attn_readers(self) -> list[nn.Linear]:
        return [self.q, self.k, self.v]

    @property
    def mlp_readers(self) -> list[nn.Linear]:
        return [self.gate, self.up]


@dataclass
class _Decoder:
    embed: nn.Parameter
    blocks: list[_Block]
    norm: nn.Parameter
    head: nn.Linear
    heads: int
    kv_heads: int
    head_dim: int


def _get(root: Any, path: str, kind: type, where: str) -> Any:
    obj: Any = root
    for part in path.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, kind):
        raise NotApplicable(f"{where} has no {path} ({kind.__name__}): this attack needs a Llama-architecture causal LM")
    return obj


def decoder_parts(model: nn.Module) -> _Decoder:
    """The pieces of a ``LlamaForCausalLM`` (or any decoder with Llama's attribute names) that the
    symmetries act on; :class:`NotApplicable` otherwise."""
    cfg = getattr(model, "config", None)
    layers = getattr(getattr(model, "model", None), "layers", None)
    if cfg is None or not isinstance(layers, nn.ModuleList):
        raise NotApplicable("this attack needs a Llama-architecture causal LM (model.layers, lm_head)")
    blocks = []
    for i, block in enumerate(layers):
        wrapper = block if isinstance(block, Fingerprinted) else None
        layer = block.base if wrapper is not None else block
        where = f"model.layers.{i}"
        lin = [_get(layer, f"self_attn.{n}_proj", nn.Linear, where) for n in "qkvo"]
        lin += [_get(layer, f"mlp.{n}_proj", nn.Linear, where) for n in ("gate", "up", "down")]
        norms = [_get(layer, f"{n}.weight", nn.Parameter, where) for n in ("input_layernorm", "post_attention_layernorm")]
        q, k, v, o, gate, up, down = lin
        blocks.append(_Block(q, k, v, o, gate, up, down, norms[0], norms[1], wrapper, where))
    heads = int(cfg.num_attention_heads)
    kv = int(getattr(cfg, "num_key_value_heads", None) or heads)
    dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    embed = _get(model, "model.embed_tokens.weight", nn.Parameter, "the model")
    norm = _get(model, "model.norm.weight", nn.Parameter, "the model")
    return _Decoder(embed, blocks, norm, _get(model, "lm_head", nn.Linear, "the model"), heads, kv, dim)


def _set(param: torch.Tensor, value: torch.Tensor) -> None:
    param.data.copy_(value.to(param))


def _d(t: torch.Tensor) -> torch.Tensor:
    return t.detach().double()


def _untie(model: nn.Module, dec: _Decoder) -> None:
    """Give the head its own weight (a tied head would follow every change to the embedding)."""
    if dec.head.weight is dec.embed:
        dec.head.weight = nn.Parameter(dec.embed.detach().clone())
    cfg = getattr(model, "config", None)
    if cfg is not None:
        cfg.tie_word_embeddings = False
        text = getattr(cfg, "get_text_config", None)
        if callable(text):
            text().tie_word_embeddings = False


def _fold(gain: nn.Parameter, readers: list[nn.Linear]) -> None:
    g = _d(gain)
    for lin in readers:
        _set(lin.weight, _d(lin.weight) * g[None, :])
    gain.data.fill_(1.0)


def _haar(n: int, gen: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal ``[n, n]`` matrix (float64): QR of a Gaussian, signs fixed."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))[None, :]).contiguous()


class RotatedFeatures(FingerprintedFeatures):
    """The thief's wrapper after a residual rotation the module cannot absorb: the stream arrives
    as ``Q·h``, so ``Qᵀ`` (the stored buffer ``rotation`` = Q) turns it back before the module
    reads it, and Q turns the module's output into the rotated stream.  The module's ``W`` is the
    owner's, unchanged."""

    rotation: torch.Tensor

    def __init__(self, inner: FingerprintedFeatures, rotation: torch.Tensor) -> None:
        super().__init__(inner.base, inner.fingerprint, inner.eps)
        self.register_buffer("rotation", rotation.detach().clone())

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        out = self.base(hidden_states, *args, **kwargs)
        y = out[0] if isinstance(out, tuple) else out
        q = self.rotation.to(hidden_states.dtype)
        z = self.fingerprint(self.module_input(hidden_states @ q)).reshape(y.shape) @ q.T  # row vectors: (Q·v)ᵀ = vᵀ·Qᵀ
        y = y + z.to(y.dtype)
        return (y, *out[1:]) if isinstance(out, tuple) else y


@dataclass(repr=False)
class DecoderRotation(Attack):
    """Rotate the residual stream of a Llama decoder by an orthogonal Q, RMSNorm gains folded
    first (see the module docstring).  ``mode="module"``: ``Q = A ⊗ I_MN`` with a Haar-random
    ``A ∈ O(C)`` that the fingerprint module absorbs (its kernels are mixed over their input
    channels).  ``mode="full"``: a Haar-random ``Q ∈ O(H)``; the module is wrapped in
    :class:`RotatedFeatures` with Q stored beside it.  Exact."""

    seed: int = 0
    mode: str = "module"
    name = "rotate-decoder"

    def __post_init__(self) -> None:
        if self.mode not in ("module", "full"):
            raise InvalidArgument(f"mode must be 'module' or 'full', got {self.mode!r}")

    def apply(self, model: nn.Module) -> nn.Module:
        dec = decoder_parts(model)
        gen = torch.Generator().manual_seed(self.seed)
        h = dec.embed.shape[1]
        modules = [b.wrapper for b in dec.blocks if isinstance(b.wrapper, FingerprintedFeatures)]
        if self.mode == "module" and modules:
            fp = modules[0].fingerprint
            mn = h // fp.in_channels
            a = _haar(fp.in_channels, gen)
            q = torch.kron(a, torch.eye(mn, dtype=torch.float64))
        else:
            a, q = None, _haar(h, gen)
        _untie(model, dec)
        _set(dec.embed, _d(dec.embed) @ q.T)
        for block in dec.blocks:
            _fold(block.attn_norm, block.attn_readers)
            _fold(block.mlp_norm, block.mlp_readers)
            for lin in block.attn_readers + block.mlp_readers:
                _set(lin.weight, _d(lin.weight) @ q.T)
            for lin in (block.o, block.down):
                _set(lin.weight, q @ _d(lin.weight))
                if lin.bias is not None:
                    _set(lin.bias, q @ _d(lin.bias))
            w = block.wrapper
            if isinstance(w, FingerprintedFeatures):
                if a is not None and w.fingerprint.in_channels == a.shape[0]:
                    fp = w.fingerprint
                    _set(fp.weight, torch.einsum("ec,dchw->dehw", a, _d(fp.weight)))
                    _set(fp.proj.weight, torch.einsum("eo,odhw->edhw", a, _d(fp.proj.weight)))
                    if fp.proj.bias is not None:
                        _set(fp.proj.bias, a @ _d(fp.proj.bias))
                else:
                    model.set_submodule(block.name, RotatedFeatures(w, q.to(dec.embed.dtype)))
            elif w is not None:
                raise NotApplicable(f"{block.name} carries a {type(w).__name__}; rotate-decoder handles the features layout")
        _fold(dec.norm, [dec.head])
        _set(dec.head.weight, _d(dec.head.weight) @ q.T)
        return model


@dataclass(repr=False)
class DecoderPermutation(Attack):
    """Permute, in every block, the attention heads (key/value groups, and the query heads inside
    each group) and the MLP's hidden units, with the matching columns of ``o_proj`` and
    ``down_proj``.  Exact."""

    seed: int = 0
    name = "permute-decoder"

    def apply(self, model: nn.Module) -> nn.Module:
        dec = decoder_parts(model)
        gen = torch.Generator().manual_seed(self.seed)
        per = dec.heads // dec.kv_heads
        d = dec.head_dim
        for block in dec.blocks:
            groups = torch.randperm(dec.kv_heads, generator=gen)
            q_heads = torch.cat([g * per + torch.randperm(per, generator=gen) for g in groups.tolist()])
            q_rows = (q_heads[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
            kv_rows = (groups[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
            units = torch.randperm(block.gate.weight.shape[0], generator=gen)
            for lin, rows in ((block.q, q_rows), (block.k, kv_rows), (block.v, kv_rows), (block.gate, units), (block.up, units)):
                _set(lin.weight, lin.weight.detach()[rows])
                if lin.bias is not None:
                    _set(lin.bias, lin.bias.detach()[rows])
            _set(block.o.weight, block.o.weight.detach()[:, q_rows])
            _set(block.down.weight, block.down.weight.detach()[:, units])
        return model


@dataclass(repr=False)
class NormScaling(Attack):
    """Scale every RMSNorm gain per channel by ``s`` (log-uniform in ``[1/spread, spread]``) and
    the columns of the linear layers that read it by ``1/s``; the final norm too (the head is
    untied).  Exact."""

    seed: int = 0
    spread: float = 4.0
    name = "scale-norms"

    def __post_init__(self) -> None:
        if not self.spread >= 1.0:
            raise InvalidArgument(f"spread must be >= 1, got {self.spread}")

    def apply(self, model: nn.Module) -> nn.Module:
        dec = decoder_parts(model)
        gen = torch.Generator().manual_seed(self.seed)
        h = dec.embed.shape[1]
        _untie(model, dec)
        pairs = [(b.attn_norm, b.attn_readers) for b in dec.blocks] + [(b.mlp_norm, b.mlp_readers) for b in dec.blocks]
        for gain, readers in [*pairs, (dec.norm, [dec.head])]:
            s = torch.exp((2 * torch.rand(h, generator=gen, dtype=torch.float64) - 1) * math.log(self.spread))
            _set(gain, _d(gain) * s)
            for lin in readers:
                _set(lin.weight, _d(lin.weight) / s[None, :])
        return model
