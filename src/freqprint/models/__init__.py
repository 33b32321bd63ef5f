"""Host networks defined in the project (no torchvision/timm needed), behind a small registry.

``create_model("resnet18", num_classes=10, in_channels=1, width=0.25)`` and so on; every model
keeps the layer names the paper refers to (ResNet-18 ``layer1.1.conv2`` is the 2nd conv of the 2nd
residual block; AlexNet ``conv3`` is its 3rd conv), and records its default fingerprint target.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
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
    "SmallCNN",
    "create_model",
    "default_target",
    "init_law",
    "list_models",
    "register_model",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_TARGETS: dict[str, str] = {}
_INIT_LAWS: dict[str, str | None] = {}


def register_model(name: str, builder: Callable[..., nn.Module], target: str, init_law: str | None = "torch-default") -> None:
    """Add a model builder; ``target`` is the conv the paper attaches the fingerprint to.

    ``init_law`` names the law the builder draws its conv weights from, which the lineage test
    needs for an exact null (:mod:`freqprint.lineage`): ``"torch-default"`` (PyTorch's
    ``Conv2d.reset_parameters``: U(±1/√fan_in)), ``"kaiming-normal-fan-out"``, or ``None``
    (unknown: lineage refuses the model rather than guess)."""
    _REGISTRY[name] = builder
    _TARGETS[name] = target
    _INIT_LAWS[name] = init_law


def init_law(name: str) -> str | None:
    """The declared initialisation law of a registered model's conv weights (see ``register_model``)."""
    if name not in _REGISTRY:
        raise InvalidArgument(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _INIT_LAWS[name]


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; keyword arguments go to its constructor."""
    if name not in _REGISTRY:
        raise InvalidArgument(f"unknown model {name!r}; known: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as e:
        raise FreqprintError(f"bad arguments for model {name!r}: {e}") from None


def default_target(name: str) -> str:
    if name not in _TARGETS:
        raise InvalidArgument(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _TARGETS[name]


register_model("smallcnn", SmallCNN, "conv2")
register_model("resnet18", ResNet18, "layer1.1.conv2")
register_model("resnet50", ResNet50, "layer1.1.conv2")
register_model("alexnet", AlexNet, "conv3", init_law="kaiming-normal-fan-out")
register_model("mlp", MLPClassifier, "", init_law=None)
register_model("lenet", LeNet, "conv2")
register_model("regmlp", RegressionMLP, "", init_law=None)
register_model("vae", VAE, "", init_law=None)
