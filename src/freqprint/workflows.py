"""The owner's workflows as one call each: train a plain model, or fingerprint one, and write it
(safetensors + recipe) and its key.  ``freqprint train`` and ``freqprint embed`` are these calls.

    import freqprint
    from freqprint.data import load_dataset
    tr, te = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    res = freqprint.embed("owner.safetensors", tr, te, freqprint.FingerprintConfig(target="conv2", secret="s"),
                          key="owner.key")
    res.accuracy, res.key.commitment

**The backbone's θ₀** is what the lineage test looks for, so it is seeded from the secret when
there is one: ``torch.manual_seed(init_seed(secret, train.seed))``.  The recipe records how
(``{"scheme": "secret", "index": seed}``), never the seed itself; a plain model records its public
seed (``{"scheme": "seed", "seed": seed}``).  ``init=`` starts from a trained plain model instead
(its recipe and its own init record are kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from freqprint.data import ArrayDataset
from freqprint.errors import InvalidArgument
from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
from freqprint.io.checkpoint import load_model, save_model
from freqprint.io.recipe import Recipe
from freqprint.models import create_model
from freqprint.training import TrainConfig, evaluate, save_every_epoch, train
from freqprint.verification.backbone import init_seed
from freqprint.verification.key import FingerprintKey, extract

__all__ = ["FitResult", "embed", "fit_plain", "model_recipe"]


@dataclass
class FitResult:
    model: nn.Module
    recipe: Recipe
    accuracy: float  # on the test data's real classes
    path: Path  # the model file written
    key: FingerprintKey | None = None  # with a fingerprint (anchored to W₀: extracted with the secret)
    key_path: Path | None = None


def model_recipe(model: str, width: float, data: ArrayDataset) -> Recipe:
    """A fresh model's recipe for ``data``'s input shape and classes (``width``: SmallCNN's
    channels, or the width multiplier of the others)."""
    kwargs = {
        "num_classes": data.num_classes,
        "in_channels": data.shape[0],
        "width": int(width) if model == "smallcnn" else width,
    }
    return Recipe(model=model, kwargs=kwargs, input_shape=tuple(data.shape), num_classes=data.num_classes)


def _fit(
    out: str | Path,
    train_data: ArrayDataset,
    test_data: ArrayDataset,
    fingerprint: FingerprintConfig | None,
    model: str,
    width: float,
    config: TrainConfig,
    attack_weight: float,
    attack_fraction: float,
    attack_every: int,
    init: str | Path | None,
    checkpoint_dir: str | Path | None,
    key: str | Path | None,
    progress: bool,
) -> FitResult:
    if fingerprint is not None and not fingerprint.secret:
        raise InvalidArgument("embed needs fingerprint.secret: it seeds the module (and a fresh model's θ₀)")
    if init is not None:
        net, recipe = load_model(init)
        if recipe.fingerprint:
            raise InvalidArgument(f"{init} already carries a fingerprint module")
    else:
        recipe = model_recipe(model, width, train_data)
        if fingerprint is not None and fingerprint.secret:
            torch.manual_seed(init_seed(fingerprint.secret, config.seed))
            recipe = recipe.replace(init={"scheme": "secret", "index": config.seed})
        else:
            torch.manual_seed(config.seed)
            recipe = recipe.replace(init={"scheme": "seed", "seed": config.seed})
        net = create_model(model, **recipe.kwargs)
    criterion = None
    if fingerprint is not None:
        attach(net, fingerprint, train_data.images[:2])
        add_pseudo_class(net)
        recipe = recipe.replace(pseudo_class=True, fingerprint=fingerprint.to_dict())
        criterion = FingerprintLoss(
            train_data.num_classes, weight=attack_weight, attack_fraction=attack_fraction, attack_every=attack_every
        )
    every = None
    if checkpoint_dir is not None:
        every = save_every_epoch(checkpoint_dir, lambda m, p: save_model(m, p, recipe))
    train(net, train_data, config, criterion=criterion, checkpoint=every, progress=progress)
    accuracy = evaluate(net, test_data, train_data.num_classes, device=config.device)
    path = save_model(net, out, recipe)
    res = FitResult(net, recipe, accuracy, path)
    if key is not None:
        res.key = extract(net, secret=fingerprint.secret if fingerprint is not None else None)
        res.key_path = res.key.save(key)
    return res


def embed(
    out: str | Path,
    train_data: ArrayDataset,
    test_data: ArrayDataset,
    fingerprint: FingerprintConfig,
    *,
    model: str = "smallcnn",
    width: float = 32,
    config: TrainConfig | None = None,
    attack_weight: float = 5e-4,
    attack_fraction: float = 1.0,
    attack_every: int = 1,
    init: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    key: str | Path | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` (or continue the plain model in the file ``init``) with the fingerprint
    module attached and L_CE + λ·L_attack, write it to ``out`` and, with ``key``, its key.

    Args:
        fingerprint: where and how (its ``secret`` seeds the module and, for a fresh model, θ₀).
        attack_weight: λ of L_attack; ``attack_fraction`` and ``attack_every`` make it cheaper
            (the share of each batch in its perturbed pass; every k-th batch, weighted k·λ).
        checkpoint_dir: also write the model after every epoch there.
    """
    return _fit(
        out,
        train_data,
        test_data,
        fingerprint,
        model,
        width,
        config or TrainConfig(),
        attack_weight,
        attack_fraction,
        attack_every,
        init,
        checkpoint_dir,
        key,
        progress,
    )


def fit_plain(
    out: str | Path,
    train_data: ArrayDataset,
    test_data: ArrayDataset,
    *,
    model: str = "smallcnn",
    width: float = 32,
    config: TrainConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> FitResult:
    """Train a plain model (no fingerprint) from the public seed ``config.seed`` and write it."""
    return _fit(
        out, train_data, test_data, None, model, width, config or TrainConfig(), 0.0, 1.0, 1, None, checkpoint_dir, None, progress
    )
