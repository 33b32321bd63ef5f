from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from conftest import synthetic_images, write_idx
from freqprint import FreqprintError
from freqprint.data import load_dataset
from freqprint.data.formats import read_idx


def test_fashion_mnist_idx_loader(fashion_dir):
    tr = load_dataset("fashion-mnist", "train", root=fashion_dir)
    te = load_dataset("fashion-mnist", "test", root=fashion_dir)
    assert tr.images.shape == (1200, 1, 28, 28) and te.images.shape == (300, 1, 28, 28)
    assert tr.images.dtype == torch.float32 and 0 <= tr.images.min() and tr.images.max() <= 1
    x, y = synthetic_images(1200, 0)
    torch.testing.assert_close(tr.labels, torch.from_numpy(y.astype(np.int64)))
    torch.testing.assert_close(tr.images[:, 0], torch.from_numpy(x).float() / 255)
    assert len(load_dataset("fashion-mnist", "train", root=fashion_dir, limit=100)) == 100


def test_idx_errors(tmp_path):
    p = write_idx(tmp_path / "a", np.zeros((5, 4, 4), np.uint8), gz=False)
    assert read_idx(p).shape == (5, 4, 4)
    (tmp_path / "trunc").write_bytes(p.read_bytes()[:-7])
    with pytest.raises(FreqprintError, match="promises"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "junk").write_bytes(b"hello world, not idx")
    with pytest.raises(FreqprintError, match="magic"):
        read_idx(tmp_path / "junk")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(p.read_bytes())[:-10])
    with pytest.raises(FreqprintError):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(FreqprintError, match="missing"):
        load_dataset("fashion-mnist", root=tmp_path)


def test_mnist_digits_json(digits_dir):
    tr = load_dataset("mnist-digits", "train", root=digits_dir)
    te = load_dataset("mnist-digits", "test", root=digits_dir)
    assert len(tr) + len(te) == 600 and len(te) == 120
    assert set(tr.labels.tolist()) == set(range(10)) and tr.images.shape[1:] == (1, 28, 28)


def test_sklearn_digits_ship_with_the_package():
    tr = load_dataset("sklearn-digits", "train")
    te = load_dataset("sklearn-digits", "test")
    assert len(tr) + len(te) == 1797 and tr.images.shape[1:] == (1, 28, 28)
    assert 0 <= tr.images.min() and tr.images.max() <= 1 and set(te.labels.tolist()) == set(range(10))


def _cifar_file(path, n, label_bytes, rng):
    recs = np.zeros((n, label_bytes + 3072), np.uint8)
    recs[:, label_bytes - 1] = rng.integers(0, 10, n)
    recs[:, label_bytes:] = rng.integers(0, 256, (n, 3072))
    path.write_bytes(recs.tobytes())
    return recs


def test_cifar_binary_batches(tmp_path):
    rng = np.random.default_rng(0)
    d10 = tmp_path / "cifar-10-batches-bin"
    d10.mkdir()
    recs = [_cifar_file(d10 / f"data_batch_{i}.bin", 7, 1, rng) for i in range(1, 6)]
    _cifar_file(d10 / "test_batch.bin", 5, 1, rng)
    ds = load_dataset("cifar10", "train", root=tmp_path)
    assert ds.images.shape == (35, 3, 32, 32) and ds.labels[0] == recs[0][0, 0]
    assert ds.images[0, 2, 31, 31] == pytest.approx(recs[0][0, -1] / 255)
    d100 = tmp_path / "c100"
    d100.mkdir()
    _cifar_file(d100 / "train.bin", 4, 2, rng)
    assert load_dataset("cifar100", "train", root=d100).images.shape == (4, 3, 32, 32)
    (d10 / "test_batch.bin").write_bytes(b"\0" * 3000)
    with pytest.raises(FreqprintError, match="CIFAR records"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_image_folder(tmp_path):
    from PIL import Image

    for c, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 30), color).save(tmp_path / c / f"{i}.png")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(FreqprintError, match="broken.png"):
        load_dataset("imagefolder", root=tmp_path, size=16)
    (tmp_path / "dog" / "broken.png").unlink()
    ds = load_dataset("imagefolder", root=tmp_path, size=16)
    assert ds.classes == ["cat", "dog"] and ds.images.shape == (6, 3, 16, 16)
    assert ds.images[0, 0].mean() > 0.99 and ds.images[-1, 2].mean() > 0.99
    with pytest.raises(FreqprintError, match="unknown dataset"):
        load_dataset("imagenet")


def test_make_data_installed_the_packaged_data():
    """``make test`` installs the real data some tests read (MetaV's tasks train on Fashion-MNIST)
    before it runs them, as a fresh machine needs: ``scripts/ensure-data.sh`` leaves
    ``.data/ready.json``, and the loaders find the full data sets at their default places.  Run
    ``make data`` (or ``make test``) when this fails."""
    import json
    from pathlib import Path

    ready = Path(__file__).resolve().parent.parent / ".data" / "ready.json"
    assert ready.is_file(), "the data step did not run: make data"
    where = json.loads(ready.read_text())
    assert Path(where["fashion_mnist"], "train-images-idx3-ubyte.gz").is_file() and where["mnist_digits"], where
    assert len(load_dataset("fashion-mnist", "train")) == 60000 and len(load_dataset("fashion-mnist", "test")) == 10000
    assert load_dataset("mnist-digits", "train").num_classes == 10
