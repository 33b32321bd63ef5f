"""The artefact layer: keys, claim bundles and MetaV claims are each one safetensors file whose
header carries a JSON document under one metadata field.  Reading them is the same everywhere:
the JSON under a field (:func:`read_json_metadata`, or :func:`header_metadata` for bytes already
in memory), the tensors as checked views of those bytes (:func:`tensors_from_bytes`), and typed
access to the document's fields (:class:`Fields`: a missing or mistyped field is one clear
error).  Nothing is unpickled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open

from freqprint.errors import FreqprintError, UnreadableFile

__all__ = ["Fields", "header_metadata", "header_of", "read_json_metadata", "tensors_from_bytes"]


class Fields:
    """Typed access to a JSON header: a missing or mistyped field is one clear error."""

    def __init__(self, meta: dict[str, Any], source: str, what: str = "key") -> None:
        self.meta, self.source, self.what = meta, source, what

    def get(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.meta:
            raise FreqprintError(f"{self.source}: {self.what} field {name!r} is missing")
        v = self.meta[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(v, bool) or not isinstance(v, kinds) or (isinstance(v, float) and not math.isfinite(v)):
            want = " or ".join(t.__name__ for t in kinds)
            raise FreqprintError(f"{self.source}: {self.what} field {name!r} must be {want}, got {v!r:.60}")
        return v


def read_json_metadata(path: Path, field_name: str, what: str) -> dict[str, Any]:
    """The JSON object stored under ``field_name`` in a safetensors header, or one error."""
    if not path.is_file():
        raise UnreadableFile(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {})[field_name]
        meta = json.loads(raw)
    except (KeyError, ValueError, SafetensorError, OSError, RecursionError):
        raise FreqprintError(f"{path} is not {what} (no readable '{field_name}' metadata)") from None
    if not isinstance(meta, dict):
        raise FreqprintError(f"{path}: '{field_name}' metadata must be a JSON object, got {type(meta).__name__}")
    return meta


_ST_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def header_of(data: bytes | bytearray, source: str) -> tuple[dict[str, Any], int]:
    """A safetensors file's JSON header and where its data starts."""
    corrupt = f"{source} is a corrupt or truncated safetensors file"
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 or n > len(data) - 8:
        raise UnreadableFile(corrupt)
    try:
        header = json.loads(bytes(data[8 : 8 + n]))
    except (ValueError, RecursionError):
        raise UnreadableFile(corrupt) from None
    if not isinstance(header, dict):
        raise UnreadableFile(corrupt)
    return header, 8 + n


def tensors_from_bytes(data: bytes | bytearray, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file's bytes, as **views** of them (``torch.frombuffer``): a
    key costs its bytes once, where ``safetensors.torch.load`` copies every tensor.  Every entry
    is checked before a view is made: a known dtype, non-negative integer dimensions, and offsets
    inside the data whose length is exactly the shape's.  ``bytes`` are copied once into a
    writable buffer first."""
    buf = data if isinstance(data, bytearray) else bytearray(data)
    header, start = header_of(buf, source)
    size = len(buf) - start
    out: dict[str, torch.Tensor] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _ST_DTYPES[entry["dtype"]]
            if not all(type(d) is int and d >= 0 for d in entry["shape"]):
                raise ValueError
            shape = list(entry["shape"])
            begin, end = entry["data_offsets"]
            if type(begin) is not int or type(end) is not int:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise UnreadableFile(f"{source}: tensor {name!r} has an unreadable or unsupported header entry") from None
        count = math.prod(shape)
        if not 0 <= begin <= end <= size or end - begin != count * dtype.itemsize:
            raise UnreadableFile(f"{source}: tensor {name!r} does not fit the file (offsets {begin}..{end})")
        if count == 0:
            out[name] = torch.empty(shape, dtype=dtype)
        else:
            out[name] = torch.frombuffer(buf, dtype=dtype, count=count, offset=start + begin).reshape(shape)
    return out


def header_metadata(data: bytes | bytearray, field_name: str, what: str, source: str) -> dict[str, Any]:
    """:func:`read_json_metadata` for a file's bytes already in memory."""
    try:
        header, _ = header_of(data, source)
        meta = json.loads(header["__metadata__"][field_name])
    except (UnreadableFile, KeyError, TypeError, ValueError, RecursionError):
        raise FreqprintError(f"{source} is not {what} (no readable '{field_name}' metadata)") from None
    if not isinstance(meta, dict):
        raise FreqprintError(f"{source}: '{field_name}' metadata must be a JSON object, got {type(meta).__name__}")
    return meta
