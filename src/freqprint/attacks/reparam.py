"""Rewrites a thief who knows the method can make for free: each keeps the network's outputs
(to float precision, on every input) or, where marked, changes them by a measured amount, and
needs no data and no training.  docs/benchmarks.md §8 runs each against the verifier.

The symmetry group of "host input → fingerprint module", found for the hosts in this project
(BatchNorm before the host: SmallCNN, ResNet-18; none: AlexNet; residual: ResNet-18):

* input side — the module reads the output of a ReLU, so **per-channel positive scaling**
  (:class:`ChannelScaling`, absorbed by the preceding BatchNorm's affine or conv) and
  **permutation** (``BlockPermutation``) of its input channels; **dead channels** added or removed
  (:class:`ChannelPadding`: a new channel that is always 0 can carry any weights);
* the module itself — **filter permutation** and **per-filter scaling** (``ModulePermutation``,
  ``ModuleScaling``; either sign for the linear merge); **dummy filters** with a zero projection
  (:class:`DummyFilters`); for the linear merge only: any invertible **mixing**
  ``W → A·W, P → P·A⁻¹`` (:class:`FilterMixing`), the **collapse** to C_out filters ``P·W``
  (:class:`Collapse`) and a **redraw in the null space of P** (:class:`NullSpaceRedraw`);
* what the function cannot see — the kernel directions of low gain on the module's low-pass
  input (:class:`InvisibleRedraw`; exact for the gain-0 direction, near-exact for the rest);
* the file — renamed, re-laid-out or re-typed tensors (:func:`relayout_state_dict`).

Against the backbone-lineage test (:mod:`freqprint.verification.backbone`) the thief has one more exact
rewrite, at the price of an architecture change: :class:`Factorize` replaces every k×k conv ``W``
of the backbone by ``M·W`` followed by a 1×1 conv ``M⁻¹`` (a random invertible mixing of its
filters), so no stored tensor is ``W`` up to permutation and scaling any more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.attacks.equivariance import conv_pairs
from freqprint.errors import FreqprintError, InvalidArgument, NotApplicable
from freqprint.fingerprint import FingerprintedConv, FingerprintModule, get_fingerprint_module
from freqprint.stats.spectral import kernel_basis

__all__ = [
    "ChannelPadding",
    "ChannelScaling",
    "Collapse",
    "DummyFilters",
    "Factorize",
    "FilterMixing",
    "InvisibleRedraw",
    "LAYOUTS",
    "NullSpaceRedraw",
    "Separate",
    "SpaceToDepth",
    "relayout_state_dict",
    "separated",
]


def _host_pair(model: nn.Module):
    """The conv pair whose second member carries the module: its first member produces the
    module's input (through BatchNorm or not, then ReLU)."""
    for p in conv_pairs(model):
        if isinstance(p.second, FingerprintedConv):
            return p
    raise FreqprintError("no conv{i} -> conv{i+1} pair feeds the fingerprint module's host")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _log_uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


@dataclass(repr=False)
class ChannelScaling(Attack):
    """Multiply each input channel c of the module (and of its host conv) by ``s_c``, log-uniform in
    [low, high]: the producer's BatchNorm affine (or conv) takes ``s_c``, and every weight that reads
    channel c takes ``1/s_c``.  Exact, because ReLU is positively homogeneous."""

    low: float = 0.1
    high: float = 10.0
    seed: int = 0
    name = "scale-channels"

    def apply(self, model: nn.Module) -> nn.Module:
        p = _host_pair(model)
        first = p.first.base if isinstance(p.first, FingerprintedConv) else p.first
        s = _log_uniform(first.out_channels, self.low, self.high, _gen(self.seed)).to(first.weight)
        if p.first_bn is not None:
            p.first_bn.weight.mul_(s)
            p.first_bn.bias.mul_(s)
        else:
            first.weight.mul_(s.view(-1, 1, 1, 1))
            if first.bias is not None:
                first.bias.mul_(s)
        p.second.base.weight.div_(s.view(1, -1, 1, 1))
        p.second.fingerprint.weight.div_(s.view(1, -1, 1, 1))
        return model


def _conv_like(conv: nn.Conv2d, in_channels: int, out_channels: int, dilation: bool = False) -> nn.Conv2d:
    """A conv with ``conv``'s geometry (kernel, stride, padding, and dilation when asked) and bias
    setting, on its device and dtype, with other channel counts."""
    geometry: dict[str, Any] = {"kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding}
    if dilation:
        geometry["dilation"] = conv.dilation
    return nn.Conv2d(in_channels, out_channels, bias=conv.bias is not None, **geometry).to(conv.weight)


def _grow_conv_out(conv: nn.Conv2d, extra: int) -> nn.Conv2d:
    new = _conv_like(conv, conv.in_channels, conv.out_channels + extra)
    new.weight.zero_()
    new.weight[: conv.out_channels].copy_(conv.weight)
    if conv.bias is not None and new.bias is not None:
        new.bias.zero_()
        new.bias[: conv.out_channels].copy_(conv.bias)
    return new


def _grow_conv_in(conv: nn.Conv2d, extra: int, g: torch.Generator) -> nn.Conv2d:
    new = _conv_like(conv, conv.in_channels + extra, conv.out_channels)
    new.weight.copy_(torch.randn(new.weight.shape, generator=g).to(conv.weight) * float(conv.weight.std()))
    new.weight[:, : conv.in_channels].copy_(conv.weight)
    if conv.bias is not None and new.bias is not None:
        new.bias.copy_(conv.bias)
    return new


@dataclass(repr=False)
class ChannelPadding(Attack):
    """Add ``extra`` dead input channels to the module and its host: the producer emits channels
    that are always 0 (zero weights, zero BatchNorm affine), so whatever weights read them — random
    ones here — change nothing.  The module's weight becomes ``[D, C + extra, K, K]``."""

    extra: int = 8
    seed: int = 0
    name = "pad-channels"

    def apply(self, model: nn.Module) -> nn.Module:
        if self.extra < 1:
            raise InvalidArgument("ChannelPadding needs extra >= 1")
        p = _host_pair(model)
        g = _gen(self.seed)
        parent_name = p.name.rpartition(".")[0]
        parent = model.get_submodule(parent_name) if parent_name else model
        i = int(p.name.rpartition("conv")[2])
        setattr(parent, f"conv{i}", _grow_conv_out(p.first, self.extra))
        if p.first_bn is not None:
            old = p.first_bn
            bn = nn.BatchNorm2d(old.num_features + self.extra, eps=old.eps, momentum=old.momentum).to(old.weight)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name)[: old.num_features].copy_(getattr(old, name))
            bn.weight[old.num_features :] = 0
            bn.bias[old.num_features :] = 0
            setattr(parent, f"bn{i}", bn)
        host: FingerprintedConv = p.second
        host.base = _grow_conv_in(host.base, self.extra, g)
        fp = host.fingerprint
        w = torch.randn(fp.filters, fp.in_channels + self.extra, fp.kernel_size, fp.kernel_size, generator=g).to(fp.weight)
        w = w * float(fp.weight.std())
        w[:, : fp.in_channels] = fp.weight
        fp.weight = nn.Parameter(w)
        fp.in_channels += self.extra
        return model


def _resize_filters(fp: FingerprintModule, weight: torch.Tensor, bias: torch.Tensor | None, proj: torch.Tensor) -> None:
    """Give the module ``weight`` [D′, C, K, K] (and bias) with projection ``proj`` [C_out, D′]."""
    d = weight.shape[0]
    fp.weight = nn.Parameter(weight.contiguous())
    if bias is not None:
        fp.bias = nn.Parameter(bias.contiguous())
    else:
        fp.register_parameter("bias", None)
    new = nn.Conv2d(d, fp.out_channels, 1).to(weight)
    new.weight.copy_(proj.reshape(fp.out_channels, d, 1, 1))
    assert new.bias is not None and fp.proj.bias is not None  # the module's projection has a bias
    new.bias.copy_(fp.proj.bias)
    fp.proj = new
    fp.filters = d


def _proj(fp: FingerprintModule) -> torch.Tensor:
    return fp.proj.weight.reshape(fp.out_channels, fp.filters)


@dataclass(repr=False)
class DummyFilters(Attack):
    """Append ``extra`` random filters whose projection is zero (exact for every merge)."""

    extra: int = 256
    seed: int = 0
    name = "dummy-filters"

    def apply(self, model: nn.Module) -> nn.Module:
        _, fp = get_fingerprint_module(model)
        g = _gen(self.seed)
        std = float(fp.weight.std())
        w = torch.cat([fp.weight, torch.randn(self.extra, *fp.weight.shape[1:], generator=g).to(fp.weight) * std])
        b = None if fp.bias is None else torch.cat([fp.bias, torch.randn(self.extra, generator=g).to(fp.bias) * std])
        proj = torch.cat([_proj(fp), torch.zeros(fp.out_channels, self.extra).to(fp.weight)], 1)
        perm = torch.randperm(w.shape[0], generator=g)  # hide them among the real ones
        _resize_filters(fp, w[perm], None if b is None else b[perm], proj[:, perm])
        return model


@dataclass(repr=False)
class FilterMixing(Attack):
    """``W → A·W, b → A·b, P → P·A⁻¹`` for a random orthogonal D×D matrix A.  Exact for the linear
    merge (the module is linear between its conv and its projection); with the ReLU merge the
    outputs change — applying it anyway shows by how much."""

    seed: int = 0
    name = "mix-filters"

    def apply(self, model: nn.Module) -> nn.Module:
        _, fp = get_fingerprint_module(model)
        q, r = torch.linalg.qr(torch.randn(fp.filters, fp.filters, generator=_gen(self.seed), dtype=torch.float64))
        a = (q * torch.sign(torch.diagonal(r))).to(fp.weight)
        w = torch.einsum("de,e...->d...", a, fp.weight)
        b = None if fp.bias is None else a @ fp.bias
        _resize_filters(fp, w, b, _proj(fp) @ a.T)
        return model


@dataclass(repr=False)
class Collapse(Attack):
    """Replace a linear-merge module by one with C_out filters ``P·W`` (bias ``P·b``) and an
    identity projection: the same function with no trace of the D original filters."""

    name = "collapse"

    def apply(self, model: nn.Module) -> nn.Module:
        _, fp = get_fingerprint_module(model)
        if fp.merge != "linear":
            raise NotApplicable("collapse is a rewrite of the linear merge only (a ReLU sits between W and P)")
        p = _proj(fp)
        w = torch.einsum("od,d...->o...", p, fp.weight)
        _resize_filters(fp, w, p @ fp.bias, torch.eye(fp.out_channels).to(p))
        return model


@dataclass(repr=False)
class NullSpaceRedraw(Attack):
    """Redraw W's component in the null space of the projection P (filters' side): P·W, hence a
    linear-merge module's function, is unchanged.  With D = 256 filters and C_out = 32 that is 224
    of 256 directions.  With the ReLU merge the outputs change."""

    seed: int = 0
    name = "redraw-nullspace"

    def apply(self, model: nn.Module) -> nn.Module:
        _, fp = get_fingerprint_module(model)
        p = _proj(fp).double()
        proj_row = torch.linalg.pinv(p) @ p  # projector onto the row space of P, [D, D]
        null = torch.eye(fp.filters, dtype=torch.float64) - proj_row
        g = _gen(self.seed)
        flat = fp.weight.double().reshape(fp.filters, -1)
        fresh = torch.randn(flat.shape, generator=g, dtype=torch.float64) * float(flat.std())
        fp.weight.copy_((proj_row @ flat + null @ fresh).reshape(fp.weight.shape).to(fp.weight))
        if fp.bias is not None:
            fb = torch.randn(fp.filters, generator=g, dtype=torch.float64) * float(fp.bias.std())
            fp.bias.copy_((proj_row @ fp.bias.double() + null @ fb).to(fp.bias))
        return model


@dataclass(repr=False)
class InvisibleRedraw(Attack):
    """Redraw every kernel's coordinates along the basis directions whose gain on the module's
    low-pass input is below ``max_gain`` (:func:`freqprint.stats.spectral.kernel_basis`), with fresh
    Gaussians of the weights' own scale times ``scale``.  On a 28×28 grid ``max_gain=0.05`` redraws
    6 of 9 directions: one of gain 0 for the ReLU merge (exactly invisible), the others of gain
    ≤ 0.024 — nearly invisible, and the very directions S′ is made of."""

    max_gain: float = 0.05
    scale: float = 1.0
    seed: int = 0
    name = "redraw-invisible"

    def apply(self, model: nn.Module) -> nn.Module:
        _, fp = get_fingerprint_module(model)
        v, gain = kernel_basis(fp.grid_size, fp.kernel_size, fp.radius, include_dc=fp.include_dc)
        k2 = fp.kernel_size**2
        w = fp.weight.double().reshape(fp.filters, fp.in_channels, k2)
        z = w @ v
        hidden = gain < self.max_gain
        fresh = torch.randn(z.shape, generator=_gen(self.seed), dtype=torch.float64) * float(w.std()) * self.scale
        z[..., hidden] = fresh[..., hidden]
        fp.weight.copy_((z @ v.T).reshape(fp.weight.shape).to(fp.weight))
        return model


LAYOUTS = ("rename", "flat", "HWIO", "OHWI", "fp16", "bf16", "T", "rot90")


def relayout_state_dict(
    sd: dict[str, torch.Tensor], layout: str, target: str | None = None, new_name: str = "head.aux.kernel"
) -> dict[str, torch.Tensor]:
    """A copy of ``sd`` with the fingerprint module's weight renamed to ``new_name`` and stored in
    another layout: ``rename`` (as is), ``flat`` ([D, C·K²]), ``HWIO`` (TensorFlow order), ``OHWI``,
    or re-typed to ``fp16`` / ``bf16``, or each kernel transposed (``T``) or rotated (``rot90``) for
    code that runs the module on a transposed or rotated grid (see :class:`GridTranspose`).  The grid buffer is dropped too: nothing in the file names
    the module any more.  (The model's function is unchanged once the tensor is read back.)"""
    if layout not in LAYOUTS:
        raise InvalidArgument(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    names = [k for k in sd if k.endswith("fingerprint.weight") and (target is None or k.startswith(target))]
    if len(names) != 1:
        raise FreqprintError("relayout needs exactly one fingerprint module weight in the state dict")
    out = dict(sd)
    w = out.pop(names[0])
    out.pop(names[0].rpartition(".")[0] + ".grid", None)
    w = {
        "rename": w,
        "flat": w.reshape(w.shape[0], -1),
        "HWIO": w.permute(2, 3, 1, 0),
        "OHWI": w.permute(0, 2, 3, 1),
        "fp16": w.half(),
        "bf16": w.bfloat16(),
        "T": w.transpose(-1, -2),
        "rot90": w.transpose(-1, -2).flip(-1),
    }[layout]
    out[new_name] = w.contiguous()
    return out


class _Mixed(nn.Sequential):
    """``conv(M·W)`` then ``1×1 conv(M⁻¹)`` (after ``1×1 conv(P)`` when factorised on both sides):
    the same map as the original conv, stored differently.  Exposes ``weight`` / ``in_channels``
    like a conv so code that walks convs keeps working."""

    @property
    def weight(self) -> torch.Tensor:
        return next(m for m in self if isinstance(m, nn.Conv2d) and m.kernel_size[0] >= 2).weight

    @property
    def in_channels(self) -> int:
        return self._conv(0).in_channels

    @property
    def out_channels(self) -> int:
        return self._conv(len(self) - 1).out_channels

    def _conv(self, i: int) -> nn.Conv2d:
        c = self[i]
        assert isinstance(c, nn.Conv2d)
        return c


def _backbone_convs(model: nn.Module, keep: Callable[[nn.Conv2d], bool]) -> list[tuple[str, nn.Conv2d]]:
    """``(name, conv)`` for every ungrouped conv outside the fingerprint module that ``keep`` accepts."""
    inside = {id(m) for fp in model.modules() if isinstance(fp, FingerprintModule) for m in fp.modules()}
    return [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and id(m) not in inside and m.groups == 1 and keep(m)
    ]


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    setattr(parent, name.rsplit(".", 1)[-1], new)


@dataclass(repr=False)
class Factorize(Attack):
    """Replace every k×k conv (k ≥ 2) outside the fingerprint module by ``M·W`` and a 1×1 conv
    ``M⁻¹ = Mᵀ``, with ``M`` a random orthogonal matrix (condition number 1, so float error stays
    ~1e-6; every filter spread evenly over all, the hardest case for a per-filter test).  Exact:
    outputs are unchanged; the model gains one 1×1 conv per layer.  With ``sides=2`` the input
    channels are mixed too: a 1×1 conv ``P`` (random orthogonal) first, then ``M·W·Pᵀ``, then
    ``M⁻¹`` — no stored tensor keeps W's filters *or* its channels.  With ``split=2`` each inserted
    map is itself stored as two 1×1 convs (``M⁻¹ = A·B`` with B random orthogonal and
    ``A = M⁻¹·Bᵀ``, likewise ``P``): one more 1×1 conv per side and layer."""

    seed: int = 0
    sides: int = 1
    split: int = 1
    name = "factorize"

    def apply(self, model: nn.Module) -> nn.Module:
        if self.sides not in (1, 2):
            raise InvalidArgument(f"factorize: sides must be 1 or 2, got {self.sides}")
        if self.split not in (1, 2):
            raise InvalidArgument(f"factorize: split must be 1 or 2, got {self.split}")
        g = _gen(self.seed)
        targets = _backbone_convs(model, lambda m: m.kernel_size[0] >= 2)
        if not targets:
            raise NotApplicable("no k×k conv to factorize")
        for name, conv in targets:
            d = conv.out_channels
            q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
            m = q  # orthogonal: the strongest mixing (every filter spread evenly over all), condition number 1
            first = _conv_like(conv, conv.in_channels, d, dilation=True)
            w = conv.weight.detach().to(torch.float64)
            mods: list[nn.Module] = []
            if self.sides == 2:
                c = conv.in_channels
                pm, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))
                mods += self._pointwise(pm, g, conv.weight)
                w = torch.einsum("dchw,ec->dehw", w, pm)  # W·Pᵀ: reads P·x
            first.weight.data.copy_(torch.einsum("ed,dchw->echw", m, w).to(conv.weight))
            if conv.bias is not None and first.bias is not None:
                first.bias.data.copy_((m @ conv.bias.detach().to(torch.float64)).to(conv.bias))
            seconds = self._pointwise(torch.linalg.inv(m), g, conv.weight)
            _replace(model, name, _Mixed(*mods, first, *seconds).to(conv.weight.device))
        return model

    def _pointwise(self, m: torch.Tensor, g: torch.Generator, like: torch.Tensor) -> list[nn.Module]:
        """The map ``m`` as 1×1 convs run in order: one, or (``split=2``) ``B`` then ``A = m·Bᵀ``."""
        n = m.shape[0]
        if self.split == 1:
            factors = [m]
        else:
            b, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
            factors = [b, m @ b.T]
        out: list[nn.Module] = []
        for f in factors:
            conv = nn.Conv2d(n, n, 1, bias=False)
            conv.weight.data.copy_(f[:, :, None, None].to(like))
            out.append(conv)
        return out


def separated(w: torch.Tensor, mix: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, second)``: the k×k kernel ``w`` ``[D, C, k, k]`` as a k×1 kernel ``[C·k, C, k, 1]``
    (middle channel (c, u) picks input channel c at row u) and a 1×k kernel ``[D, C·k, 1, k]``
    (``second[d, (c,u), 0, v] = w[d, c, u, v]``), the middle channels mixed by the orthogonal
    ``mix`` when given (``first → R·first``, ``second → second·Rᵀ``).  Their product is ``w``
    (:func:`freqprint.io.canonical.separable`)."""
    d, c, k = w.shape[0], w.shape[1], w.shape[2]
    first = torch.zeros(c * k, c, k, 1, dtype=torch.float64)
    idx = torch.arange(c * k)
    first[idx, idx // k, idx % k, 0] = 1.0
    second = w.to(torch.float64).reshape(d, c * k, 1, k)
    if mix is not None:
        first = torch.einsum("mn,nchw->mchw", mix, first)
        second = torch.einsum("dnhw,mn->dmhw", second, mix)
    return first, second


@dataclass(repr=False)
class Separate(Attack):
    """Replace every k×k conv (k ≥ 2, dilation 1) outside the fingerprint module by a k×1 conv into
    ``M = C·k`` channels and a 1×k conv back to D — ``W[d,c,u,v] = Σ_m S[d,m,v]·F[m,c,u]``, with
    ``F`` picking input channel c at row u and ``S[d,(c,u),v] = W[d,c,u,v]`` — and mix the M middle
    channels by a random orthogonal R (``F → R·F``, ``S → S·Rᵀ``).  Exact: outputs unchanged; no
    stored tensor is k×k any more, and neither keeps W's kernels (``io.canonical.separable``
    multiplies them back)."""

    seed: int = 0
    name = "separate"

    def apply(self, model: nn.Module) -> nn.Module:
        g = _gen(self.seed)
        targets = _backbone_convs(
            model,
            lambda m: (
                m.kernel_size[0] == m.kernel_size[1] >= 2
                and m.dilation == (1, 1)
                and m.padding_mode == "zeros"
                and not isinstance(m.padding, str)
            ),
        )
        if not targets:
            raise NotApplicable("no k×k conv to separate")
        for name, conv in targets:
            d, c, k = conv.out_channels, conv.in_channels, conv.kernel_size[0]
            r, _ = torch.linalg.qr(torch.randn(c * k, c * k, generator=g, dtype=torch.float64))
            first, second = separated(conv.weight.detach(), r)
            (sh, sw) = conv.stride
            ph, pw = (int(x) for x in conv.padding)  # str paddings were left out above
            first_conv = nn.Conv2d(c, c * k, (k, 1), stride=(sh, 1), padding=(ph, 0), bias=False)
            second_conv = nn.Conv2d(c * k, d, (1, k), stride=(1, sw), padding=(0, pw), bias=conv.bias is not None)
            first_conv.weight.data.copy_(first.to(conv.weight))
            second_conv.weight.data.copy_(second.to(conv.weight))
            if conv.bias is not None and second_conv.bias is not None:
                second_conv.bias.data.copy_(conv.bias.detach())
            _replace(model, name, _Separated(first_conv, second_conv).to(conv.weight.device))
        return model


class _Separated(nn.Sequential):
    """A k×1 conv then a 1×k conv standing in for one k×k conv; ``weight`` is the second's (code
    that walks convs keeps working)."""

    def _conv(self, i: int) -> nn.Conv2d:
        c = self[i]
        assert isinstance(c, nn.Conv2d)
        return c

    @property
    def weight(self) -> torch.Tensor:
        return self._conv(1).weight

    @property
    def in_channels(self) -> int:
        return self._conv(0).in_channels

    @property
    def out_channels(self) -> int:
        return self._conv(1).out_channels


@dataclass(repr=False)
class SpaceToDepth(Attack):
    """Run every k×k conv (k odd, stride 1, padding k//2, dilation 1) outside the fingerprint
    module on its input pixel-unshuffled by 2, with the re-indexed ``[4D, 4C, k′, k′]`` kernel
    (:func:`freqprint.io.canonical.space_to_depth_kernel`), and shuffle the output back (an odd
    grid is padded by one zero row and column first and the extra output cropped).  Exact; no
    stored tensor is W or has W's shape (``io.canonical.depth_to_space`` reads it back); the
    thief pays ×16·k′²/k² parameters in those layers (×16 for a 3×3)."""

    name = "space-to-depth"

    def apply(self, model: nn.Module) -> nn.Module:
        from freqprint.io.canonical import space_to_depth_kernel

        targets = _backbone_convs(
            model,
            lambda m: (
                m.kernel_size[0] == m.kernel_size[1] >= 3
                and m.kernel_size[0] % 2 == 1
                and m.stride == (1, 1)
                and m.dilation == (1, 1)
                and m.padding == (m.kernel_size[0] // 2,) * 2
                and m.padding_mode == "zeros"
            ),
        )
        if not targets:
            raise NotApplicable("no stride-1 k×k conv to run on a space-to-depth grid")
        for name, conv in targets:
            w, pad = space_to_depth_kernel(conv.weight.detach())
            inner = nn.Conv2d(4 * conv.in_channels, 4 * conv.out_channels, w.shape[2], padding=pad, bias=conv.bias is not None)
            inner.weight.data.copy_(w.to(conv.weight))
            if conv.bias is not None and inner.bias is not None:
                inner.bias.data.copy_(conv.bias.detach().repeat_interleave(4))
            _replace(model, name, _Unshuffled(inner).to(conv.weight.device))
        return model


class _Unshuffled(nn.Module):
    """A conv run on its input pixel-unshuffled by 2, its output shuffled back (odd grids padded
    by one zero row/column, the extra output cropped)."""

    def __init__(self, inner: nn.Conv2d) -> None:
        super().__init__()
        self.inner = inner

    @property
    def weight(self) -> torch.Tensor:
        return self.inner.weight

    @property
    def in_channels(self) -> int:
        return self.inner.in_channels // 4

    @property
    def out_channels(self) -> int:
        return self.inner.out_channels // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = nn.functional.pad(x, (0, w % 2, 0, h % 2))
        y = nn.functional.pixel_shuffle(self.inner(nn.functional.pixel_unshuffle(x, 2)), 2)
        return y[..., :h, :w]


class _OnTransposedGrid(nn.Module):
    """A fingerprint module run on the transposed feature map with transposed kernels."""

    def __init__(self, inner: FingerprintModule) -> None:
        super().__init__()
        self.inner = inner

    @property
    def grid_size(self) -> tuple[int, int]:
        """The grid the host lays its input on (the inner module's, transposed back)."""
        m, n = self.inner.grid_size
        return n, m

    def forward(self, x: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        size = None if out_size is None else (out_size[1], out_size[0])
        return self.inner(x.transpose(-1, -2), out_size=size).transpose(-1, -2)


@dataclass(repr=False)
class GridTranspose(Attack):
    """Run the fingerprint module on the transposed grid with every kernel transposed: the
    module's function is unchanged (its low-pass band, circular conv, thumbnail and interpolation
    all commute with a transpose), the stored kernels are not.  The code around a tensor is the
    thief's, so every symmetry of the square is a free rewrite (``align.DIHEDRAL``)."""

    name = "grid-transpose"

    def apply(self, model: nn.Module) -> nn.Module:
        host, fp = get_fingerprint_module(model)
        m, n = fp.grid_size
        inner = FingerprintModule(
            fp.in_channels,
            fp.out_channels,
            (n, m),
            fp.filters,
            fp.kernel_size,
            fp.radius,
            implementation=fp.implementation,
            merge=fp.merge,
        ).to(fp.weight)
        with torch.no_grad():
            inner.weight.copy_(fp.weight.transpose(-1, -2))
            inner.proj.load_state_dict(fp.proj.state_dict())
            if fp.bias is not None:
                inner.bias.copy_(fp.bias)
        model.get_submodule(host).fingerprint = _OnTransposedGrid(inner)
        return model


def _split_columns(w: torch.Tensor, noise: float, g: torch.Generator) -> torch.Tensor:
    """``[W + N, −N]`` along dim 1, with ‖N‖ = ``noise``·‖W‖ per row (N Gaussian)."""
    n = torch.randn(w.shape, generator=g, dtype=torch.float64).to(w)
    scale = w.flatten(1).norm(dim=1).clamp_min(1e-12) / n.flatten(1).norm(dim=1).clamp_min(1e-12)
    n = n * (noise * scale).reshape(-1, *([1] * (w.dim() - 1)))
    return torch.cat([w + n, -n], 1)


def _set(mod: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(mod, name)
    if isinstance(old, nn.Parameter):
        setattr(mod, name, nn.Parameter(value.contiguous(), requires_grad=old.requires_grad))
    else:
        mod.register_buffer(name, value.contiguous())


@dataclass(repr=False)
class Widen(Attack):
    """Net2Wider without growth in function: every hidden channel of the network is duplicated
    (each conv's filters, BatchNorm entries and biases repeated: ``[F; F]``) and every layer that
    reads a duplicated channel takes ``[W + N, −N]`` over the copy pair, with ‖N‖ = ``noise``·‖W‖
    per row — so no stored kernel is the original, and the sum over each pair is.  The fingerprint
    module reads the host's (widened) input the same way; its filters stay, its projection's
    outputs are repeated.  Exact (up to float rounding, which grows with ``noise``); ×2 channels on
    every hidden layer (about ×4 parameters and MACs).  Works on any network whose convs, linears
    and BatchNorms run in sequence or in residual sums (SmallCNN, ResNet-18): the image input and
    the classifier's outputs keep their width."""

    noise: float = 3.0
    seed: int = 0
    name = "widen"

    def update_recipe(self, recipe: Mapping[str, Any]) -> Mapping[str, Any]:
        """The models here scale every hidden layer with ``width``: the widened model is the
        same family at twice the width (a recipe without one is left as is)."""
        kwargs = dict(recipe.get("kwargs", {}))
        if "width" in kwargs:
            kwargs["width"] = kwargs["width"] * 2
        return {**recipe, "kwargs": kwargs}

    def apply(self, model: nn.Module) -> nn.Module:
        g = _gen(self.seed)
        fps = [m for m in model.modules() if isinstance(m, FingerprintModule)]
        projs = {id(fp.proj) for fp in fps}
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in projs]
        if not convs:
            raise NotApplicable("widen needs a conv network")
        image = convs[0].in_channels
        first = convs[0]
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for conv in convs:
                if conv.groups != 1:
                    raise NotApplicable("widen does not rewrite grouped convs")
                w = conv.weight.detach()
                if conv is not first or conv.in_channels != image:
                    w = _split_columns(w, self.noise, g)
                    conv.in_channels *= 2
                _set(conv, "weight", torch.cat([w, w]))
                conv.out_channels *= 2
                if conv.bias is not None:
                    _set(conv, "bias", torch.cat([conv.bias.detach()] * 2))
            for fp in fps:
                _set(fp, "weight", _split_columns(fp.weight.detach(), self.noise, g))
                fp.in_channels *= 2
                _set(fp.proj, "weight", torch.cat([fp.proj.weight.detach()] * 2))
                if fp.proj.bias is not None:
                    _set(fp.proj, "bias", torch.cat([fp.proj.bias.detach()] * 2))
                fp.out_channels *= 2
                fp.proj.out_channels *= 2
            for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    t = getattr(bn, attr)
                    if t is not None:
                        _set(bn, attr, torch.cat([t.detach()] * 2))
                bn.num_features *= 2
            for lin in linears:
                _set(lin, "weight", _split_columns(lin.weight.detach(), self.noise, g))
                lin.in_features *= 2
        return model
