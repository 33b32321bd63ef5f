"""A thief's rewrites of a fingerprinted network's weights, as functions of a state dict, a
generator and a :class:`Layout` (where the module sits: :data:`SMALLCNN`, the module on
``conv2`` as :func:`freqprint_bench.corpus.owner_model` builds it, the default; :data:`RESNET18`,
the module on ``layer1.1.conv2``), for the benchmarks that ask which rewrites a registry still
matches (``bench scale --which million`` and ``--which probe``, docs/benchmarks.md §12g, §12h).

Each one but fine-tuning costs the thief no accuracy: the network computes the same function (an
element of the group the verifier canonicalises: filter scales and order, larger kernels with
zero borders, a channel stored twice with its readers split, the whole network on a transposed
grid) or the same function up to storage rounding (int8 with a scale under a name no format uses,
float8, another memory layout).  Fine-tuning is the one that costs training: SGD on Fashion-MNIST
images, every weight moving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["REWRITES", "RESNET18", "SMALLCNN", "Layout", "fine_tuned"]

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """Where a rewrite acts: the module's tensor, the layer that produces its input channels (its
    weight and the BatchNorm after it) and the tensors that read those channels."""

    module: str
    producer: str
    batchnorm: str
    readers: tuple[str, ...]


SMALLCNN = Layout("conv2.fingerprint.weight", "conv1.weight", "bn1", ("conv2.base.weight", "conv2.fingerprint.weight"))
RESNET18 = Layout(
    "layer1.1.conv2.fingerprint.weight",
    "layer1.1.conv1.weight",
    "layer1.1.bn1",
    ("layer1.1.conv2.base.weight", "layer1.1.conv2.fingerprint.weight"),
)
MODULE = SMALLCNN.module


def _without(sd: StateDict, *names: str) -> StateDict:
    return {k: v for k, v in sd.items() if k not in names}


def _scaled(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    w = sd[at.module]
    s = torch.rand(w.shape[0], generator=g) * 9 + 0.1
    return {**sd, at.module: w * s[:, None, None, None]}


def _bordered(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    return {**sd, at.module: torch.nn.functional.pad(sd[at.module], (1, 1, 1, 1))}


def _int8_renamed(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    w = sd[at.module]
    s = w.abs().amax((1, 2, 3)) / 127
    return {**_without(sd, at.module), "q.w": torch.round(w / s[:, None, None, None]).to(torch.int8), "q.s": s}


def _hwio_int8(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    w = sd[at.module]
    s = w.abs().amax((1, 2, 3)) / 127
    q = torch.round(w / s[:, None, None, None]).to(torch.int8).permute(2, 3, 1, 0).contiguous()
    return {**sd, at.module: q, at.module.rpartition(".")[0] + ".qscale": s}


def _float8(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    return {**sd, at.module: sd[at.module].to(torch.float8_e5m2)}


def _split(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    w = sd[at.module]
    half = w.shape[0] // 2
    return {**_without(sd, at.module), "a.weight": w[:half].clone(), "b.weight": w[half:].clone()}


def _widened(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    """The producer's channels (and its BatchNorm's entries) stored twice, every reader of them
    split over the copy pair as ``[W + N, −N]`` with N three times the reader's own spread: the
    same function."""
    out = dict(sd)
    bn = [f"{at.batchnorm}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
    for k in (at.producer, *bn):
        out[k] = torch.cat([sd[k], sd[k]])
    for k in at.readers:
        n = torch.randn(sd[k].shape, generator=g) * 3 * sd[k].norm() / sd[k].numel() ** 0.5
        out[k] = torch.cat([sd[k] + n, -n], 1)
    return out


def _transposed(sd: StateDict, g: torch.Generator, at: Layout = SMALLCNN) -> StateDict:
    """Every square kernel transposed: the same network run on transposed images."""
    return {k: v.transpose(2, 3).contiguous() if v.dim() == 4 and v.shape[2] == v.shape[3] else v for k, v in sd.items()}


REWRITES: dict[str, Callable[..., StateDict]] = {  # (state dict, generator, layout=SMALLCNN) -> state dict
    "filters scaled by 0.1–9.1": _scaled,
    "stored 5×5, zero border": _bordered,
    "int8, per-filter scale, renamed": _int8_renamed,
    "int8 in HWIO layout": _hwio_int8,
    "float8 e5m2": _float8,
    "split in two tensors, renamed": _split,
    "conv1 widened, readers split [W+N, −N]": _widened,  # the producer: conv1, or layer1.1.conv1
    "network on transposed images": _transposed,
}


def fine_tuned(model: torch.nn.Module, seed: int, images: int = 2000, lr: float = 0.01) -> torch.nn.Module:
    """``model`` trained one epoch with SGD (momentum 0.9) on ``images`` Fashion-MNIST training
    images drawn with ``seed`` (every weight trains, the module's included)."""
    from freqprint.attacks import FineTune
    from freqprint.data import load_dataset

    data = load_dataset("fashion-mnist", "train", size=28, channels=1).subset(images, seed=seed)
    return FineTune(data=data, lr=lr, epochs=1, seed=seed)(model)
