"""Host networks defined in the project (no torchvision/timm needed), behind a small registry.

``create_model("resnet18", num_classes=10, in_channels=1, width=0.25)`` and so on; every model
keeps the layer names the paper refers to (ResNet-18 ``layer1.1.conv2`` is the 2nd conv of the 2nd
residual block; AlexNet ``conv3`` is its 3rd conv), and records its default fingerprint target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from freqprint.factory import Factory
from freqprint.models.alexnet import AlexNet
from freqprint.models.resnet import ResNet18, ResNet50
from freqprint.models.small import VAE, LeNet, MLPClassifier, RegressionMLP
from freqprint.models.smallcnn import SmallCNN

__all__ = [
    "VAE",
    "AlexNet",
    "LeNet",
    "MLPClassifier",
    "RegressionMLP",
    "ResNet18",
    "ResNet50",
    "MODELS",
    "SmallCNN",
    "create_model",
    "default_target",
    "init_law",
    "list_models",
    "register_model",
]

MODELS: Factory[Callable[..., nn.Module]] = Factory("model")


def register_model(
    name: str, builder: Callable[..., nn.Module], target: str, init_law: str | None = "torch-default", **info: Any
) -> None:
    """Add a model builder; ``target`` is the conv the paper attaches the fingerprint to.

    ``init_law`` names the law the builder draws its conv weights from, which the lineage test
    needs for an exact null (:mod:`freqprint.verification.backbone`): ``"torch-default"`` (PyTorch's
    ``Conv2d.reset_parameters``: U(±1/√fan_in)), ``"kaiming-normal-fan-out"``, or ``None``
    (unknown: lineage refuses the model rather than guess).  ``info`` adds facts (``example``:
    small constructor arguments and an input shape, used by the contract tests)."""
    MODELS.add(name, builder, target=target, init_law=init_law, **info)


def init_law(name: str) -> str | None:
    """The declared initialisation law of a registered model's conv weights (see ``register_model``)."""
    return MODELS.info(name)["init_law"]


def list_models() -> list[str]:
    return MODELS.names()


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; keyword arguments go to its constructor."""
    return MODELS.build(name, **kwargs)


def default_target(name: str) -> str:
    return MODELS.info(name)["target"]


_SMALL = {"num_classes": 10, "in_channels": 1}
register_model("smallcnn", SmallCNN, "conv2", example=({**_SMALL, "width": 8}, (1, 28, 28)))
register_model("resnet18", ResNet18, "layer1.1.conv2", example=({**_SMALL, "width": 0.125}, (1, 28, 28)))
register_model("resnet50", ResNet50, "layer1.1.conv2", example=({**_SMALL, "width": 0.125}, (1, 28, 28)))
register_model("alexnet", AlexNet, "conv3", init_law="kaiming-normal-fan-out", example=({**_SMALL, "width": 0.125}, (1, 32, 32)))
register_model("mlp", MLPClassifier, "", init_law=None, example=({}, (1, 28, 28)))
register_model("lenet", LeNet, "conv2", example=({}, (1, 28, 28)))
register_model("regmlp", RegressionMLP, "", init_law=None, example=({}, (10,)))
register_model("vae", VAE, "", init_law=None, example=({}, (8,)))
