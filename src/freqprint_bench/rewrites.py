"""A thief's rewrites of a fingerprinted SmallCNN's weights (the module on ``conv2``, as
:func:`freqprint_bench.corpus.owner_model` builds it), as functions of a state dict and a
generator, for the benchmarks that ask which rewrites a registry still matches
(``bench scale --which million``, docs/benchmarks.md §12g).

Each one but fine-tuning costs the thief no accuracy: the network computes the same function (an
element of the group the verifier canonicalises: filter scales and order, larger kernels with
zero borders, a channel stored twice with its readers split, the whole network on a transposed
grid) or the same function up to storage rounding (int8 with a scale under a name no format uses,
float8, another memory layout).  Fine-tuning is the one that costs training: SGD on Fashion-MNIST
images, every weight moving.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["REWRITES", "fine_tuned"]

MODULE = "conv2.fingerprint.weight"
StateDict = dict[str, torch.Tensor]


def _without(sd: StateDict, *names: str) -> StateDict:
    return {k: v for k, v in sd.items() if k not in names}


def _scaled(sd: StateDict, g: torch.Generator) -> StateDict:
    w = sd[MODULE]
    s = torch.rand(w.shape[0], generator=g) * 9 + 0.1
    return {**sd, MODULE: w * s[:, None, None, None]}


def _int8_renamed(sd: StateDict, g: torch.Generator) -> StateDict:
    w = sd[MODULE]
    s = w.abs().amax((1, 2, 3)) / 127
    return {**_without(sd, MODULE), "q.w": torch.round(w / s[:, None, None, None]).to(torch.int8), "q.s": s}


def _hwio_int8(sd: StateDict, g: torch.Generator) -> StateDict:
    w = sd[MODULE]
    s = w.abs().amax((1, 2, 3)) / 127
    q = torch.round(w / s[:, None, None, None]).to(torch.int8).permute(2, 3, 1, 0).contiguous()
    return {**sd, MODULE: q, "conv2.fingerprint.qscale": s}


def _split(sd: StateDict, g: torch.Generator) -> StateDict:
    w = sd[MODULE]
    half = w.shape[0] // 2
    return {**_without(sd, MODULE), "a.weight": w[:half].clone(), "b.weight": w[half:].clone()}


def _widened(sd: StateDict, g: torch.Generator) -> StateDict:
    """conv1's channels (and bn1's entries) stored twice, every reader of them split over the copy
    pair as ``[W + N, −N]`` with N three times the reader's own spread: the same function."""
    out = dict(sd)
    for k in ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"):
        out[k] = torch.cat([sd[k], sd[k]])
    for k in ("conv2.base.weight", MODULE):
        n = torch.randn(sd[k].shape, generator=g) * 3 * sd[k].norm() / sd[k].numel() ** 0.5
        out[k] = torch.cat([sd[k] + n, -n], 1)
    return out


def _transposed(sd: StateDict, g: torch.Generator) -> StateDict:
    """Every square kernel transposed: the same network run on transposed images."""
    return {k: v.transpose(2, 3).contiguous() if v.dim() == 4 and v.shape[2] == v.shape[3] else v for k, v in sd.items()}


REWRITES: dict[str, Callable[[StateDict, torch.Generator], StateDict]] = {
    "filters scaled by 0.1–9.1": _scaled,
    "stored 5×5, zero border": lambda sd, g: {**sd, MODULE: torch.nn.functional.pad(sd[MODULE], (1, 1, 1, 1))},
    "int8, per-filter scale, renamed": _int8_renamed,
    "int8 in HWIO layout": _hwio_int8,
    "float8 e5m2": lambda sd, g: {**sd, MODULE: sd[MODULE].to(torch.float8_e5m2)},
    "split in two tensors, renamed": _split,
    "conv1 widened, readers split [W+N, −N]": _widened,
    "network on transposed images": _transposed,
}


def fine_tuned(model: torch.nn.Module, seed: int, images: int = 2000, lr: float = 0.01) -> torch.nn.Module:
    """``model`` trained one epoch with SGD (momentum 0.9) on ``images`` Fashion-MNIST training
    images drawn with ``seed`` (every weight trains, the module's included)."""
    from freqprint.attacks import FineTune
    from freqprint.data import load_dataset

    data = load_dataset("fashion-mnist", "train", size=28, channels=1).subset(images, seed=seed)
    return FineTune(data=data, lr=lr, epochs=1, seed=seed)(model)
