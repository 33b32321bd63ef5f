"""ONNX files as suspects: every weight a graph carries, wherever it sits, read through ``onnx``.

An ONNX model is a protobuf ``ModelProto``.  Its weights may sit in three places, and a thief
chooses which:

* the graph's ``initializer`` list (what exporters write);
* ``Constant`` nodes, whose ``value`` attribute holds the tensor (what constant folding and some
  converters write; the tensor is named after the node's output);
* **subgraphs**: the ``then_branch``/``else_branch`` of an ``If``, the ``body`` of a ``Loop`` or
  ``Scan``, any node attribute of type ``GRAPH`` or ``GRAPHS`` — with initializers and ``Constant``
  nodes of their own, nested to any depth.

:func:`open_onnx` lists all of them (names as the graph gives them; a name met twice gets
``#2``, ``#3`` …) and decodes each tensor only when it is read.  Tensors stored as ``raw_data``
(little-endian, as the ONNX spec fixes) or in the typed fields (``float_data``, ``int32_data`` for
16- and 8-bit types, ``double_data``, ``int64_data``) are decoded here with NumPy; float8
(E4M3FN, E5M2) and bfloat16 through PyTorch's own types.  **External data** (a large model's
tensors in side files) is read from files in the model's folder only: a ``location`` that is
absolute or leaves the folder, an offset or length outside the file, or a length that does not
match the shape is refused.

**Hostile files.**  The protobuf parser is ``onnx``'s (C++, no code runs from a file); a file that
does not parse, a tensor whose stored element count does not match its dims, a negative dim, or a
subgraph nested deeper than :data:`MAX_DEPTH` gives one :class:`~freqprint.errors.UnreadableFile`.
The whole protobuf is held in memory while the file is open (protobuf has no lazy reader; a
protobuf is at most 2 GiB, larger models use external data, which is read lazily); each decoded
tensor is one more copy of its bytes.  ``sparse_initializer`` tensors are not read (listed
nowhere): a sparse weight is not what a conv layer stores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from freqprint.errors import FreqprintError, UnreadableFile

__all__ = ["MAX_DEPTH", "is_onnx", "load_onnx", "open_onnx"]

MAX_DEPTH = 16  # subgraphs inside subgraphs: deeper than any exporter writes (protobuf itself stops near 30)

# ONNX TensorProto.DataType → (the NumPy dtype of raw_data, the torch dtype it is read as, the
# typed field holding it otherwise); numbers from onnx.proto (stable since ONNX 1.0 / 1.14 for float8)
_TYPES: dict[int, tuple[str, torch.dtype, str]] = {
    1: ("<f4", torch.float32, "float_data"),
    2: ("u1", torch.uint8, "int32_data"),
    3: ("i1", torch.int8, "int32_data"),
    4: ("<u2", torch.int32, "int32_data"),  # uint16: widened
    5: ("<i2", torch.int16, "int32_data"),
    6: ("<i4", torch.int32, "int32_data"),
    7: ("<i8", torch.int64, "int64_data"),
    9: ("u1", torch.bool, "int32_data"),
    10: ("<u2", torch.float16, "int32_data"),  # bit patterns
    11: ("<f8", torch.float64, "double_data"),
    16: ("<u2", torch.bfloat16, "int32_data"),  # bit patterns
    17: ("u1", torch.float8_e4m3fn, "int32_data"),  # bit patterns
    19: ("u1", torch.float8_e5m2, "int32_data"),  # bit patterns
}
_BITS = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float8_e4m3fn: torch.uint8,
    torch.float8_e5m2: torch.uint8,
}


def is_onnx(path: str | Path) -> bool:
    """By name: ``*.onnx`` (a protobuf has no magic number to sniff)."""
    return str(path).endswith(".onnx")


def _load_proto(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise FreqprintError(f"{path}: reading ONNX needs the onnx package (pip install 'freqprint[onnx]')") from None
    if not path.is_file():
        raise UnreadableFile(f"{path}: no such file")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: the file is not an ONNX model
        raise UnreadableFile(
            f"{path} is not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None


def _walk(graph: Any, out: dict[str, Any], path: Path, depth: int = 0) -> None:
    """Every tensor of ``graph`` and its subgraphs into ``out`` (name → TensorProto)."""
    if depth > MAX_DEPTH:
        raise UnreadableFile(f"{path}: subgraphs nested deeper than {MAX_DEPTH}")

    def put(name: str, t: Any) -> None:
        name = name or "<unnamed>"
        key, i = name, 1
        while key in out:
            i += 1
            key = f"{name}#{i}"
        out[key] = t

    for t in graph.initializer:
        put(t.name, t)
    for node in graph.node:
        for a in node.attribute:
            if node.op_type == "Constant" and a.name == "value" and a.HasField("t"):
                put(node.output[0] if node.output else node.name, a.t)
            if a.HasField("g"):
                _walk(a.g, out, path, depth + 1)
            for g in a.graphs:
                _walk(g, out, path, depth + 1)


def _shape(t: Any, name: str, path: Path) -> tuple[int, ...]:
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise UnreadableFile(f"{path}: tensor {name!r} has a negative dimension {dims}")
    return dims


def _external(t: Any, name: str, path: Path) -> tuple[Path, int, int | None]:
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    root = path.parent.resolve()
    target = (root / loc).resolve()
    if not loc or Path(loc).is_absolute() or root not in target.parents or not target.is_file():
        raise UnreadableFile(f"{path}: tensor {name!r} points at external data {loc!r} outside the model's folder or missing")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise UnreadableFile(f"{path}: tensor {name!r} has a malformed external-data offset or length") from None
    return target, offset, length


def _check(t: Any, name: str, path: Path) -> tuple[Path, int] | None:
    """Refuse a tensor whose stored values do not fill its dims exactly (checked for every tensor
    when the file is opened, so a file is refused whole or read whole); for external data, its
    file and offset."""
    shape = _shape(t, name, path)
    raw_dtype, _dtype, field = _TYPES[t.data_type]
    n = math.prod(shape)
    size = n * np.dtype(raw_dtype).itemsize
    if t.data_location == 1:  # EXTERNAL
        target, offset, length = _external(t, name, path)
        if offset < 0 or (length is not None and length != size) or offset + size > target.stat().st_size:
            raise UnreadableFile(f"{path}: tensor {name!r}'s external data does not fit its file or its shape")
        return target, offset
    if t.HasField("raw_data"):
        if len(t.raw_data) != size:
            raise UnreadableFile(f"{path}: tensor {name!r} stores {len(t.raw_data)} bytes for shape {shape}")
    elif len(getattr(t, field)) != n:
        raise UnreadableFile(f"{path}: tensor {name!r} stores {len(getattr(t, field))} values for shape {shape}")
    return None


def _decode(t: Any, name: str, path: Path) -> torch.Tensor:
    if t.data_type not in _TYPES:
        raise UnreadableFile(f"{path}: tensor {name!r} has ONNX data type {t.data_type}, which is not read here")
    where = _check(t, name, path)
    shape = tuple(int(d) for d in t.dims)
    raw_dtype, dtype, field = _TYPES[t.data_type]
    n = math.prod(shape)
    if where is not None:
        with where[0].open("rb") as f:
            f.seek(where[1])
            data = f.read(n * np.dtype(raw_dtype).itemsize)
        arr = np.frombuffer(data, dtype=raw_dtype, count=n)
    elif t.HasField("raw_data"):
        arr = np.frombuffer(t.raw_data, dtype=raw_dtype, count=n)
    else:
        arr = np.asarray(getattr(t, field), dtype=np.int64 if field in ("int32_data", "int64_data") else raw_dtype)
        if field == "int32_data":
            arr = arr.astype(raw_dtype)  # 16- and 8-bit values and bit patterns sit in int32 slots
    arr = np.array(arr, copy=True).reshape(shape)  # writable, and the proto may be dropped
    if dtype in _BITS:
        return torch.from_numpy(arr.view(np.int16 if _BITS[dtype] == torch.int16 else np.uint8)).view(dtype)
    return torch.from_numpy(arr).to(dtype)


def _tensors(path: Path) -> tuple[dict[str, Any], dict[str, tuple[tuple[int, ...], bool]]]:
    """Every tensor's proto and ``(shape, may hold weights)``, in graph order."""
    from freqprint.io.canonical import readable

    tensors: dict[str, Any] = {}
    _walk(_load_proto(path).graph, tensors, path)
    if not tensors:
        raise UnreadableFile(f"{path} holds no tensors")
    shapes = {}
    for name, t in tensors.items():
        known = _TYPES.get(t.data_type)
        shapes[name] = (_shape(t, name, path), known is not None and readable(known[1]))
        if known is not None:
            _check(t, name, path)
    return tensors, shapes


def open_onnx(path: str | Path) -> Any:
    """A :class:`~freqprint.io.checkpoint.TensorStore` over an ONNX file (module docstring):
    initializers, ``Constant`` nodes and subgraphs' tensors, each decoded when read."""
    from freqprint.io.checkpoint import TensorStore

    path = Path(path)
    tensors, shapes = _tensors(path)
    return TensorStore(shapes, lambda name: _decode(tensors[name], name, path), str(path))


def load_onnx(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of an ONNX file that may hold weights (float, float8 and 8-bit integer
    types), decoded as stored (like ``safetensors.torch.load_file``), in graph order."""
    path = Path(path)
    tensors, shapes = _tensors(path)
    return {name: _decode(tensors[name], name, path) for name, (_, ok) in shapes.items() if ok}
