"""Function-preserving attacks: positive scaling and channel permutation (paper §6, App. C.2).

They leave the network's outputs unchanged (to float tolerance) and, by Theorems 3.5/3.6 plus
our input-channel alignment, the fingerprint score too.  Pairs of layers are found by name: in
any module with children ``conv{i}`` and ``conv{i+1}`` (each optionally followed by ``bn{i}``),
conv i's output channels feed conv i+1 only — in a ResNet BasicBlock that is exactly the paper's
"first conv and the following conv" of every block; in SmallCNN and AlexNet, consecutive convs.

Scaling conv i by ``a`` and conv i+1 by ``1/a`` stays function-preserving as follows:

* with BatchNorm after conv i (ResNet, SmallCNN), BN i absorbs ``a`` once its running statistics
  are rescaled *exactly* (``var' = a²(var+eps) − eps``, so eps is accounted for); conv i+1's
  output is then scaled by ``1/a`` and BN i+1 absorbs that too.  A fingerprint module on conv
  i+1 has its projection scaled with the host, so ``base + module`` is scaled as a whole;
* without BN (AlexNet), ``a`` passes through ReLU and pooling, so conv i+1's weights (not its
  bias) and the fingerprint filters reading the same tensor take the ``1/a``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from freqprint.attacks.base import Attack
from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.fingerprint import FingerprintedConv, FingerprintModule, get_fingerprint_module

__all__ = ["BlockPermutation", "BlockScaling", "ModulePermutation", "ModuleScaling", "conv_pairs"]


@dataclass
class _Pair:
    first: nn.Conv2d
    first_bn: nn.BatchNorm2d | None
    second: nn.Module  # nn.Conv2d or FingerprintedConv
    second_bn: nn.BatchNorm2d | None
    name: str


def _base(conv: nn.Module) -> nn.Conv2d:
    return conv.base if isinstance(conv, FingerprintedConv) else conv  # type: ignore[return-value]


def conv_pairs(model: nn.Module) -> list[_Pair]:
    """All ``conv{i} → conv{i+1}`` pairs whose channels line up (see the module docstring)."""
    pairs = []
    for pname, mod in model.named_modules():
        children = dict(mod.named_children())
        i = 1
        while f"conv{i}" in children:
            a, b = children[f"conv{i}"], children.get(f"conv{i + 1}")
            if (
                b is not None
                and isinstance(_base(a), nn.Conv2d)
                and isinstance(_base(b), nn.Conv2d)
                and not isinstance(a, FingerprintedConv)
                and _base(a).out_channels == _base(b).in_channels
                and _base(a).groups == 1
                and _base(b).groups == 1
            ):
                bn_a, bn_b = children.get(f"bn{i}"), children.get(f"bn{i + 1}")
                pairs.append(
                    _Pair(
                        a,
                        bn_a if isinstance(bn_a, nn.BatchNorm2d) else None,
                        b,
                        bn_b if isinstance(bn_b, nn.BatchNorm2d) else None,
                        f"{pname}.conv{i}".lstrip("."),
                    )
                )
            i += 1
    return pairs


def _scale_output(conv: nn.Module, bn: nn.BatchNorm2d | None, a: float) -> None:
    """Multiply a conv's output by a > 0 and make the following BN (if any) undo it exactly."""
    base = _base(conv)
    base.weight.mul_(a)
    if base.bias is not None:
        base.bias.mul_(a)
    if isinstance(conv, FingerprintedConv):
        conv.fingerprint.proj.weight.mul_(a)
        if conv.fingerprint.proj.bias is not None:
            conv.fingerprint.proj.bias.mul_(a)
    if bn is not None and bn.running_mean is not None and bn.running_var is not None:  # statistics tracked
        bn.running_mean.mul_(a)
        bn.running_var.copy_((a * a * (bn.running_var + bn.eps) - bn.eps).clamp_min(1e-12))


def _scale_input(conv: nn.Module, s: float) -> None:
    """Compensate an input scaled by 1/s: multiply the weights (not the bias) by s, the
    fingerprint module's filters too, since it reads the same tensor."""
    _base(conv).weight.mul_(s)
    if isinstance(conv, FingerprintedConv):
        conv.fingerprint.weight.mul_(s)


def _permute_output(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, perm: torch.Tensor) -> None:
    conv.weight.copy_(conv.weight[perm])
    if conv.bias is not None:
        conv.bias.copy_(conv.bias[perm])
    if bn is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(bn, name)
            if t is not None:
                t.copy_(t[perm])


def _permute_input(conv: nn.Module, perm: torch.Tensor) -> None:
    base = _base(conv)
    base.weight.copy_(base.weight[:, perm])
    if isinstance(conv, FingerprintedConv):  # the module reads the same, now permuted, tensor
        conv.fingerprint.weight.copy_(conv.fingerprint.weight[:, perm])


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(repr=False)
class BlockScaling(Attack):
    """In every pair, multiply the first conv by a random ``a ∈ [low, high]`` (log-uniform) and the
    following conv by ``1/a`` (paper App. C.2: a ∈ [1/10, 10])."""

    low: float = 0.1
    high: float = 10.0
    seed: int = 0
    name = "scale-blocks"

    def apply(self, model: nn.Module) -> nn.Module:
        if not (0 < self.low <= self.high):
            raise FreqprintError("BlockScaling needs 0 < low <= high")
        pairs = conv_pairs(model)
        if not pairs:
            raise FreqprintError(f"{type(model).__name__} has no conv{{i}} -> conv{{i+1}} pairs to scale")
        g = _generator(self.seed)
        for p in pairs:
            u = float(torch.rand((), generator=g))
            a = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            _scale_output(p.first, p.first_bn, a)
            if p.first_bn is None:
                # no BN in between: conv i+1 sees its input scaled by a (ReLU and pooling commute
                # with a > 0), so its weights take the 1/a
                _scale_input(p.second, 1.0 / a)
            elif p.second_bn is not None:
                # BN i absorbed a; scale conv i+1's output by 1/a and let BN i+1 absorb that too
                _scale_output(p.second, p.second_bn, 1.0 / a)
        return model


@dataclass(repr=False)
class BlockPermutation(Attack):
    """In every pair, permute the first conv's output channels (with its BN) and the following
    conv's input channels — and the fingerprint module's, where it reads that tensor."""

    seed: int = 0
    name = "permute-blocks"

    def apply(self, model: nn.Module) -> nn.Module:
        pairs = conv_pairs(model)
        if not pairs:
            raise FreqprintError(f"{type(model).__name__} has no conv{{i}} -> conv{{i+1}} pairs to permute")
        g = _generator(self.seed)
        for p in pairs:
            perm = torch.randperm(_base(p.first).out_channels, generator=g)
            _permute_output(_base(p.first), p.first_bn, perm)
            _permute_input(p.second, perm)
        return model


def _module(model: nn.Module) -> FingerprintModule:
    return get_fingerprint_module(model)[1]


@dataclass(repr=False)
class ModuleScaling(Attack):
    """Scale the fingerprint module's filters and bias by ``a`` and its projection by ``1/a``
    (paper Table 5: a ∈ {10, 100})."""

    a: float = 10.0
    name = "scale-module"

    def apply(self, model: nn.Module) -> nn.Module:
        if self.a <= 0:
            raise InvalidArgument("ModuleScaling needs a > 0")
        fp = _module(model)
        fp.weight.mul_(self.a)
        if fp.bias is not None:
            fp.bias.mul_(self.a)
        fp.proj.weight.div_(self.a)
        return model


@dataclass(repr=False)
class ModulePermutation(Attack):
    """Permute the fingerprint module's D filters (with the projection's inputs; paper Table 6)."""

    seed: int = 0
    name = "permute-module"

    def apply(self, model: nn.Module) -> nn.Module:
        fp = _module(model)
        perm = torch.randperm(fp.filters, generator=_generator(self.seed))
        fp.weight.copy_(fp.weight[perm])
        if fp.bias is not None:
            fp.bias.copy_(fp.bias[perm])
        fp.proj.weight.copy_(fp.proj.weight[:, perm])
        return model
