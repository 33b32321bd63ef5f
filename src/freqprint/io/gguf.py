"""GGUF checkpoints (llama.cpp's format), read lazily and written for tests and benchmarks.

A GGUF file is ``b"GGUF"``, a version (2 or 3), a tensor count and a metadata count, the metadata
(key, type, value — strings, scalars and arrays of them), one info record per tensor (name, its
dimensions **innermost first**, its ``ggml`` type, its offset in the data section), padding to
``general.alignment`` (32 by default), then the data.  Quantized types store each run of
``block_size`` consecutive values along the innermost dimension as one block of ``type_size``
bytes (Q8_0: 32 values as one float16 scale and 32 int8; Q4_0: a scale and 32 four-bit codes).

The header is parsed here, with every count and length checked against the file's size before
it is used, so a crafted file costs at most one pass over its own bytes and answers with one
:class:`~freqprint.errors.UnreadableFile` line.  (``gguf.GGUFReader`` trusts an array's declared
length and loops over it; a 20-byte file declaring 2⁶⁰ entries would hang it.)  The ``gguf``
package is used for what it does well: the type table and the (de)quantization of blocks.

Reading: :func:`open_gguf` gives a :class:`~freqprint.io.checkpoint.TensorStore` whose shapes are
PyTorch's (the GGUF dimensions reversed) and whose tensors are dequantized to float32 only when a
test asks for one — memory stays bounded by the largest tensor read plus :data:`CACHE_BYTES` of
recently dequantized tensors (a search reads some tensors many times), whatever the file holds.
The block types :func:`save_gguf` writes are decoded in PyTorch with ``gguf``'s arithmetic (bit
for bit its values, tested), every other type by ``gguf.dequantize``.
Writing: :func:`save_gguf` stores a state dict with every tensor whose innermost size the type's
blocks divide quantized (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) and the rest as F32, as llama.cpp's
converter keeps norms and small tensors.
"""

from __future__ import annotations

import functools
import mmap
import struct
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from freqprint.errors import FreqprintError, InvalidArgument, UnreadableFile

__all__ = [
    "GGUF_MAGIC",
    "GGUFHeader",
    "GGUFTensor",
    "QUANT_TYPES",
    "is_gguf",
    "load_gguf",
    "open_gguf",
    "read_header",
    "save_gguf",
]

GGUF_MAGIC = b"GGUF"
MAX_TENSORS = 1_000_000  # tensor records per file
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
MAX_DEPTH = 4  # arrays of arrays of ...
ROW_VALUES = 1 << 16  # values per row handed to gguf.dequantize (which takes 16 rows a call)
# dequantized tensors kept per open file: a search reads each several times, and a 135 M-parameter
# file (540 MB as float32) is then dequantized once
CACHE_BYTES = 2**30
QUANT_TYPES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")  # what save_gguf writes (row quantizers the gguf package implements)

# metadata value types: fixed sizes (struct format) and the two variable ones
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_FLOATS = {"F32", "F16", "BF16", "F64"}
_INTEGERS = {"I8", "I16", "I32", "I64"}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor record: PyTorch shape (innermost dimension last), ggml type name, where its
    bytes lie (absolute offset and length)."""

    name: str
    shape: tuple[int, ...]
    type_name: str
    offset: int
    nbytes: int


@dataclass
class GGUFHeader:
    """What a GGUF header says: version, scalar and string metadata (arrays only counted), and
    the tensor records in file order."""

    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, GGUFTensor] = field(default_factory=dict)


def is_gguf(path: str | Path) -> bool:
    """Whether the file starts with GGUF's magic."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


class _Cursor:
    """Bounds-checked little-endian reads from a buffer."""

    def __init__(self, buf: Any, path: Path) -> None:
        self.buf, self.pos, self.size, self.path = buf, 0, len(buf), path

    def fail(self, what: str) -> UnreadableFile:
        return UnreadableFile(f"{self.path} is a corrupt or truncated GGUF file ({what} at byte {self.pos})")

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"{what} runs past the end of the file")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> Any:
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, start)[0]

    def string(self, what: str) -> str:
        n = self.unpack("<Q", what)
        start = self.take(n, what)
        try:
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None

    def skip_strings(self, count: int, what: str) -> None:
        """Step over ``count`` strings (a tokenizer's vocabulary: about 10⁵ of them), each length
        checked against the bytes left before it is stepped over (one loop, no calls)."""
        buf, pos, size, length = self.buf, self.pos, self.size, struct.Struct("<Q").unpack_from
        for _ in range(count):
            if pos + 8 > size:
                break
            pos += 8 + length(buf, pos)[0]
            if pos > size:
                break
        else:
            self.pos = pos
            return
        self.pos = min(pos, size)
        raise self.fail(f"{what} runs past the end of the file")

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        """One metadata value; arrays are skipped (their item count returned), every length checked
        against the bytes left before a loop over it starts."""
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            if depth >= MAX_DEPTH:
                raise self.fail(f"{what} nests arrays more than {MAX_DEPTH} deep")
            itype, count = self.unpack("<I", what), self.unpack("<Q", what)
            if itype in _SCALARS:
                self.take(count * struct.calcsize(_SCALARS[itype]), what)
            elif itype in (_STRING, _ARRAY):
                if count > (self.size - self.pos) // 8:  # every item takes at least 8 bytes
                    raise self.fail(f"{what} declares {count} items, more than the file can hold")
                if itype == _STRING:
                    self.skip_strings(count, what)
                else:
                    for _ in range(count):
                        self.value(_ARRAY, what, depth + 1)
            else:
                raise self.fail(f"{what} has unknown item type {itype}")
            return count
        raise self.fail(f"{what} has unknown value type {vtype}")


def _ggml_types() -> dict[int, tuple[str, int, int]]:
    """ggml type id -> (name, block size, bytes per block), from the gguf package."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    return {int(t): (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType if t in GGML_QUANT_SIZES}


def _map(path: Path) -> mmap.mmap:
    """The file memory-mapped read-only (the header parse and the tensors read from the map, so
    memory never holds the file)."""
    try:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise UnreadableFile(f"{path}: cannot map the file ({e})") from None


def read_header(path: str | Path, buf: Any | None = None) -> GGUFHeader:
    """Parse and check a GGUF header: every length within the file, tensor names unique, each
    tensor's bytes inside the data section and its innermost dimension a whole number of blocks.
    Raises :class:`~freqprint.errors.UnreadableFile` with one line otherwise."""
    path = Path(path)
    if buf is None:
        buf = _map(path)
    cur = _Cursor(buf, path)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise UnreadableFile(f"{path} is not a GGUF file (no GGUF magic)")
    cur.take(4, "magic")
    version = cur.unpack("<I", "version")
    if version not in (2, 3):
        if version & 0xFFFF == 0:
            raise UnreadableFile(f"{path} is a big-endian GGUF file, which is not read here")
        raise UnreadableFile(f"{path} is GGUF version {version}; versions 2 and 3 are read")
    n_tensors, n_kv = cur.unpack("<Q", "tensor count"), cur.unpack("<Q", "metadata count")
    if n_tensors > MAX_TENSORS:
        raise UnreadableFile(f"{path} declares {n_tensors} tensors (at most {MAX_TENSORS} are read)")
    if n_kv > cur.size // 12:  # a key (8-byte length) and a type (4 bytes) at least
        raise cur.fail(f"{n_kv} metadata entries declared")
    header = GGUFHeader(version)
    for i in range(n_kv):
        key = cur.string(f"metadata key {i}")
        vtype = cur.unpack("<I", f"metadata {key!r}")
        val = cur.value(vtype, f"metadata {key!r}")
        if vtype != _ARRAY and (not isinstance(val, str) or len(val) <= 4096):
            header.metadata[key] = val
    types = _ggml_types()
    records = []
    seen: set[str] = set()
    for i in range(n_tensors):
        name = cur.string(f"tensor {i}'s name")
        n_dims = cur.unpack("<I", f"tensor {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise cur.fail(f"tensor {name!r} has {n_dims} dimensions")
        dims = [cur.unpack("<Q", f"tensor {name!r}") for _ in range(n_dims)]
        tid, offset = cur.unpack("<I", f"tensor {name!r}"), cur.unpack("<Q", f"tensor {name!r}")
        if tid not in types:
            raise cur.fail(f"tensor {name!r} has unknown ggml type {tid}")
        if name in seen:
            raise cur.fail(f"tensor {name!r} appears twice")
        seen.add(name)
        records.append((name, dims, tid, offset))
    align = header.metadata.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise UnreadableFile(f"{path}: general.alignment {align!r} is not a power of two")
    data = -(-cur.pos // align) * align
    for name, dims, tid, offset in records:
        tname, block, size = types[tid]
        count = 1
        for d in dims:
            count *= d
        if dims[0] % block:
            raise UnreadableFile(f"{path}: tensor {name!r} ({tname}) has {dims[0]} values per row, not a multiple of {block}")
        nbytes = count // block * size
        start = data + offset
        if start + nbytes > cur.size:
            raise UnreadableFile(f"{path}: tensor {name!r}'s {nbytes} bytes run past the end of the file")
        header.tensors[name] = GGUFTensor(name, tuple(int(d) for d in reversed(dims)), tname, start, nbytes)
    return header


@functools.lru_cache(maxsize=64)
def _readable(type_name: str) -> bool:
    """Whether a tensor of this ggml type may hold weights and can be dequantized here."""
    if type_name in _FLOATS:
        return True
    if type_name in _INTEGERS:
        return False
    from gguf import GGMLQuantizationType, dequantize
    from gguf.constants import GGML_QUANT_SIZES

    qt = GGMLQuantizationType[type_name]
    _, size = GGML_QUANT_SIZES[qt]
    try:
        dequantize(np.zeros((1, size), dtype=np.uint8), qt)
    except (NotImplementedError, ValueError, TypeError):
        return False
    return True


def _rows(raw: np.ndarray, t: GGUFTensor) -> np.ndarray:
    """A tensor's bytes as rows of whole blocks for ``gguf.dequantize``, which works on 16 rows
    per call: each row as many of the tensor's own rows as fit in :data:`ROW_VALUES` values (the
    largest divisor of their count), so a large file costs a few hundred calls rather than tens
    of thousands; the values are the same, each block being dequantized alone."""
    n_rows = int(np.prod(t.shape[:-1]))
    cap = max(1, ROW_VALUES // t.shape[-1])
    group = next(g for g in range(min(cap, n_rows), 0, -1) if n_rows % g == 0)
    return raw.reshape(n_rows // group, -1)


def _half(blocks: torch.Tensor, at: int) -> torch.Tensor:
    """``[n, 1]`` float32: the float16 stored at byte ``at`` of each block."""
    return blocks[:, at : at + 2].contiguous().view(torch.float16).float()


def _nibbles(qs: torch.Tensor) -> torch.Tensor:
    """``[n, 2·b]`` uint8: each block's low nibbles, then its high ones (ggml's order), written
    into one new tensor (the decoders below then work in place on fresh memory they own)."""
    out = torch.empty(qs.shape[0], 2 * qs.shape[1], dtype=torch.uint8)
    torch.bitwise_and(qs, 15, out=out[:, : qs.shape[1]])
    torch.bitwise_right_shift(qs, 4, out=out[:, qs.shape[1] :])
    return out


def _high_bits(blocks: torch.Tensor, at: int) -> torch.Tensor:
    """``[n, 32]`` uint8: bit i of the little-endian uint32 at byte ``at``, shifted to bit 4."""
    qh = blocks[:, at : at + 4].to(torch.int64)
    word = qh[:, 0] | (qh[:, 1] << 8) | (qh[:, 2] << 16) | (qh[:, 3] << 24)
    return (((word[:, None] >> torch.arange(32)) & 1) << 4).to(torch.uint8)


def _decode(blocks: torch.Tensor, type_name: str) -> torch.Tensor:
    """ggml's block formats that :func:`save_gguf` writes, decoded in PyTorch with the arithmetic
    of ``gguf.dequantize`` (float16 scales widened to float32, one product and one sum per value,
    in its order), so the values are bit for bit its own (tested) without its numpy temporaries
    and its copy of every result into one output: ``[n_blocks, type_size]`` uint8 → ``[n_blocks, 32]``.
    Each type's values are made once and scaled in place (a fresh tensor per step costs more
    than the arithmetic: 3× on Q4_1)."""
    if type_name == "Q8_0":
        return blocks[:, 2:].contiguous().view(torch.int8).float().mul_(_half(blocks, 0))
    if type_name == "Q4_0":
        return _nibbles(blocks[:, 2:]).view(torch.int8).sub_(8).float().mul_(_half(blocks, 0))
    if type_name == "Q4_1":
        return _nibbles(blocks[:, 4:]).float().mul_(_half(blocks, 0)).add_(_half(blocks, 2))
    if type_name == "Q5_0":
        q = _nibbles(blocks[:, 6:]).bitwise_or_(_high_bits(blocks, 2)).view(torch.int8).sub_(16)
        return q.float().mul_(_half(blocks, 0))
    if type_name == "Q5_1":
        q = _nibbles(blocks[:, 8:]).bitwise_or_(_high_bits(blocks, 4))
        return q.float().mul_(_half(blocks, 0)).add_(_half(blocks, 2))
    raise KeyError(type_name)


def _tensor(buf: Any, t: GGUFTensor) -> torch.Tensor:
    """One tensor's bytes as a float32 (float64 for F64) PyTorch tensor of its PyTorch shape."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, dequantize

    count = int(np.prod(t.shape))
    if count == 0:
        return torch.zeros(t.shape)
    raw = np.frombuffer(buf, dtype=np.uint8, count=t.nbytes, offset=t.offset)
    if t.type_name == "F64":
        out = raw.view(np.float64).copy()
    elif t.type_name == "BF16":
        out = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif t.type_name in QUANT_TYPES:
        _, size = GGML_QUANT_SIZES[GGMLQuantizationType[t.type_name]]
        with warnings.catch_warnings():  # the map is read-only, and nothing here writes to it
            warnings.filterwarnings("ignore", "The given buffer is not writable")
            blocks = torch.frombuffer(buf, dtype=torch.uint8, count=t.nbytes, offset=t.offset)
        return _decode(blocks.reshape(-1, size), t.type_name).reshape(t.shape)
    else:
        out = np.ascontiguousarray(dequantize(_rows(raw, t), GGMLQuantizationType[t.type_name]), dtype=np.float32)
    out = out.reshape(t.shape)
    return torch.from_numpy(out if out.flags.writeable else out.copy())  # F32 is a view of the read-only map


def _read(path: Path, buf: Any, t: GGUFTensor) -> torch.Tensor:
    """:func:`_tensor`, its failures as one :class:`~freqprint.errors.UnreadableFile` line."""
    try:
        return _tensor(buf, t)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise UnreadableFile(f"{path}: cannot read tensor {t.name!r} ({str(e).splitlines()[0]})") from None


def open_gguf(path: str | Path) -> Any:
    """A :class:`~freqprint.io.checkpoint.TensorStore` over a GGUF file: the header parsed and
    checked, the file memory-mapped, each tensor dequantized when asked for."""
    from freqprint.io.checkpoint import TensorStore

    path = Path(path)
    buf = _map(path)
    header = read_header(path, buf)
    if not header.tensors:
        raise UnreadableFile(f"{path} holds no tensors")
    shapes = {name: (t.shape, _readable(t.type_name)) for name, t in header.tensors.items()}

    cache: OrderedDict[str, torch.Tensor] = OrderedDict()  # dequantized tensors, most recent last
    held = [0]  # their bytes

    def get(name: str) -> torch.Tensor:
        # handed out as cached, like an in-memory store's own tensors: readers never write to them
        if name in cache:
            cache.move_to_end(name)
            return cache[name]
        t = header.tensors[name]
        if not _readable(t.type_name):
            raise UnreadableFile(f"{path}: tensor {name!r} is stored as {t.type_name}, which is not dequantized here")
        out = _read(path, buf, t)
        size = out.numel() * out.element_size()
        if t.type_name not in _FLOATS and size <= CACHE_BYTES // 4:
            cache[name] = out
            held[0] += size
            while held[0] > CACHE_BYTES:
                _, old = cache.popitem(last=False)
                held[0] -= old.numel() * old.element_size()
        return out

    return TensorStore(shapes, get, str(path))


def load_gguf(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a GGUF file that may hold weights, dequantized, in file order (integer
    tensors and types not dequantized here are left out)."""
    path = Path(path)
    buf = _map(path)
    header = read_header(path, buf)
    return {name: _read(path, buf, t) for name, t in header.tensors.items() if _readable(t.type_name)}


def save_gguf(
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    qtype: str = "Q8_0",
    arch: str = "freqprint",
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a state dict as GGUF: tensors whose innermost size the type's blocks divide in
    ``qtype`` (one of :data:`QUANT_TYPES`, or ``"F32"``/``"F16"`` for every tensor), the rest in
    F32; names as in the state dict; string ``metadata`` added under its keys."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter, quantize

    if qtype not in (*QUANT_TYPES, "F32", "F16"):
        raise InvalidArgument(f"GGUF type {qtype!r} is not written here; choose one of {', '.join((*QUANT_TYPES, 'F32', 'F16'))}")
    qt = GGMLQuantizationType[qtype]
    block = GGML_QUANT_SIZES[qt][0]
    path = Path(path)
    writer = GGUFWriter(str(path), arch)
    for key, val in (metadata or {}).items():
        writer.add_string(key, str(val))
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise FreqprintError(f"{name!r} is not a tensor")
        arr = t.detach().to("cpu", torch.float32).contiguous().numpy()
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if qtype in ("F32", "F16") or arr.shape[-1] % block:
            data = arr.astype(np.float16) if qtype == "F16" else arr
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, quantize(arr, qt), raw_dtype=qt)  # the byte shape; the writer reads the value shape back
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
