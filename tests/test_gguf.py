"""GGUF checkpoints: written and read back (shapes un-reversed, quantized types dequantized), read
lazily by every command that reads a checkpoint, and hostile GGUF files answered with one error
line — never a hang, a crash or a large allocation."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import run
from freqprint import FingerprintConfig, FreqprintError, attach, create_model, extract, save_model, verify
from freqprint.io.checkpoint import load_state_dict, open_tensors
from freqprint.io.gguf import read_header, save_gguf
from freqprint.verification.backbone import OwnerInit, lineage

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def owner(tmp_path_factory):
    d = tmp_path_factory.mktemp("gguf")
    torch.manual_seed(0)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
    attach(model, FingerprintConfig(target="conv2", secret="alice", filters=16), torch.zeros(1, 1, 28, 28))
    extract(model).save(d / "owner.key")
    save_model(model, d / "owner.safetensors", {"model": "smallcnn", "kwargs": {"width": 8}})
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"dir": d, "key": d / "owner.key", "file": d / "owner.safetensors", "sd": sd}


@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_round_trip_keeps_shapes_and_values_to_the_types_precision(tmp_path, qtype):
    g = torch.Generator().manual_seed(0)
    sd = {
        "conv": torch.randn(16, 8, 3, 3, generator=g),
        "fc": torch.randn(64, 96, generator=g),
        "norm": torch.randn(32, generator=g),
    }
    save_gguf(sd, tmp_path / "m.gguf", qtype)
    store = open_tensors(tmp_path / "m.gguf")
    floor = {"F32": 0.99999, "F16": 0.99999, "Q8_0": 0.9999, "Q5_0": 0.998, "Q5_1": 0.998}.get(qtype, 0.99)
    for name, t in sd.items():
        assert store.shapes[name] == (tuple(t.shape), True)  # PyTorch's order, not GGUF's
        back = store.get(name)
        assert back.shape == t.shape and back.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(back.flatten(), t.flatten(), 0) >= floor
        assert qtype != "F32" or torch.equal(back, t)
    header = read_header(tmp_path / "m.gguf")
    assert header.tensors["conv"].type_name == ("F16" if qtype == "F16" else "F32")  # 3 values per row: no block fits
    assert header.tensors["fc"].type_name == qtype  # 96 values per row: whole blocks
    assert load_state_dict(tmp_path / "m.gguf").keys() == sd.keys()


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0"])
def test_verify_trace_and_scan_read_gguf(owner, tmp_path, qtype, monkeypatch, capsys):
    """The owner's model exported to GGUF is found by `verify` and `trace` (lineage included); the
    module's kernels quantized too (stored flat, so whole blocks fit) are found; a model of
    another seed and secret is not."""
    path = tmp_path / f"owner-{qtype}.gguf"
    save_gguf(owner["sd"], path, qtype)
    code, out, err = run(["verify", owner["key"], path], monkeypatch, capsys)
    assert code == 0 and "FOUND" in out, err
    code, out, err = run(["trace", owner["file"], path, "--init-seed", "0", "--json"], monkeypatch, capsys)
    assert code == 0, err
    assert lineage(OwnerInit("smallcnn", {"width": 8}, 0, True), path).found
    flat = dict(owner["sd"])
    flat["conv2.fingerprint.weight"] = flat["conv2.fingerprint.weight"].reshape(-1)  # 16·8·9 = 1152 values: 36 blocks
    save_gguf(flat, tmp_path / "flat.gguf", qtype)
    assert read_header(tmp_path / "flat.gguf").tensors["conv2.fingerprint.weight"].type_name == qtype
    assert verify(owner["key"], tmp_path / "flat.gguf").found
    torch.manual_seed(1)
    other = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
    attach(other, FingerprintConfig(target="conv2", secret="bob", filters=16), torch.zeros(1, 1, 28, 28))
    save_gguf({k: v.detach() for k, v in other.state_dict().items()}, tmp_path / "other.gguf", qtype)
    code, out, err = run(["verify", owner["key"], tmp_path / "other.gguf"], monkeypatch, capsys)
    assert code == 1 and "not found" in out
    assert not lineage(OwnerInit("smallcnn", {"width": 8}, 0, True), tmp_path / "other.gguf").found
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "a.gguf").write_bytes(path.read_bytes())
    (folder / "b.gguf").write_bytes((tmp_path / "other.gguf").read_bytes())
    db, log = tmp_path / "r.db", tmp_path / "scan.jsonl"
    assert run(["registry", "add", owner["key"], "--registry", db, "--secret", "alice"], monkeypatch, capsys)[0] == 0
    code, out, err = run(["scan", folder, "--registry", db, "--out", log, "--report", tmp_path / "scan"], monkeypatch, capsys)
    assert code == 0, err
    rows = {Path(r["path"]).name: r for r in map(json.loads, log.read_text().splitlines())}
    assert rows.keys() == {"a.gguf", "b.gguf"}
    assert rows["a.gguf"]["status"] == "match" and rows["b.gguf"]["status"] != "match", rows
    summary = json.loads((tmp_path / "scan.json").read_text())  # the scan's summary page
    table = {Path(r["path"]).name: r for r in summary["channels"][0]["figures"][0]["data"]["rows"]}
    assert summary["verdict"] == "derived" and summary["result"] == {"files": 2, "matches": 1}
    assert table["a.gguf"]["trust"] == "verified" and table["a.gguf"]["sha256"] == rows["a.gguf"]["sha256"]
    assert "a.gguf" in (tmp_path / "scan.html").read_text()


def _header(n_tensors: int, kv: bytes = b"", n_kv: int = 0, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + kv


def _string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def _tensor_info(name: bytes, dims: list[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        _string(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


HOSTILE = {
    "truncated magic": b"GGUF",
    "version 7": _header(0, version=7),
    "big-endian": b"GGUF" + struct.pack(">IQQ", 3, 0, 0),
    "2^60 tensors": _header(2**60),
    "2^60 metadata entries": _header(0, n_kv=2**60),
    "an array of 2^60 strings": _header(0, _string(b"k") + struct.pack("<IIQ", 9, 8, 2**60), 1),
    "an array of 2^60 floats": _header(0, _string(b"k") + struct.pack("<IIQ", 9, 6, 2**60), 1),
    "a string of 2^63 bytes": _header(0, _string(b"k") + struct.pack("<IQ", 8, 2**63), 1),
    "a vocabulary whose second string runs past the end": _header(
        0, _string(b"k") + struct.pack("<IIQ", 9, 8, 3) + _string(b"ab") + struct.pack("<Q", 2**40) + b"\0" * 16, 1
    ),
    "arrays nested 100 deep": _header(0, _string(b"k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 100, 1),
    "unknown value type": _header(0, _string(b"k") + struct.pack("<I", 99), 1),
    "a tensor past the end": _header(1) + _tensor_info(b"w", [64, 64]) + b"\0" * 64,
    "a tensor of 2^40 values": _header(1) + _tensor_info(b"w", [2**20, 2**20]) + b"\0" * 64,
    "9 dimensions": _header(1) + _tensor_info(b"w", [1] * 9),
    "unknown ggml type": _header(1) + _tensor_info(b"w", [4], ggml_type=999),
    "Q8_0 rows of 7 values": _header(1) + _tensor_info(b"w", [7, 2], ggml_type=8) + b"\0" * 128,
    "a tensor named twice": _header(2) + _tensor_info(b"w", [1]) + _tensor_info(b"w", [1]) + b"\0" * 64,
    "no tensors": _header(0),
}


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16"])
def test_tensors_are_read_bit_for_bit_as_gguf_dequantizes_them_row_by_row(tmp_path, qtype):
    # the block types decoded in PyTorch (io.gguf._decode), and the rest handed to gguf in long
    # rows (io.gguf._rows), give gguf.dequantize's values on the tensor's own rows exactly
    import numpy as np
    from gguf import GGMLQuantizationType, dequantize

    from freqprint.io.gguf import ROW_VALUES, _map

    g = torch.Generator().manual_seed(1)
    sd = {
        "prime": torch.randn(13, 64, generator=g),
        "3d": torch.randn(7, 3, 96, generator=g),
        "long": torch.randn(ROW_VALUES // 32 + 5, 32, generator=g),
        "edges": torch.tensor([[6e4, -6e4, 1e-8, -0.0] + [0.0] * 28, [0.0] * 32]),  # float16's range, a zero block
    }
    save_gguf(sd, tmp_path / "m.gguf", qtype)
    buf, store = _map(tmp_path / "m.gguf"), open_tensors(tmp_path / "m.gguf")
    for name, t in read_header(tmp_path / "m.gguf").tensors.items():
        raw = np.frombuffer(buf, dtype=np.uint8, count=t.nbytes, offset=t.offset)
        rows = raw.reshape(int(np.prod(t.shape[:-1])), -1)  # the tensor's own rows
        want = torch.from_numpy(np.asarray(dequantize(rows, GGMLQuantizationType[t.type_name]), dtype=np.float32).copy())
        got = store.get(name)
        assert torch.equal(got.reshape(want.shape), want), name
        assert qtype == "F16" or store.get(name) is got  # read once: the dequantized tensor is kept


def test_a_vocabulary_in_the_header_is_stepped_over(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "vocab.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(5000)])
    writer.add_string("general.name", "tiny")
    writer.add_tensor("w", torch.randn(4, 32).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    header = read_header(path)
    assert header.metadata["general.name"] == "tiny" and "tokenizer.ggml.tokens" not in header.metadata
    assert header.tensors["w"].shape == (4, 32)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_gguf_headers_are_one_error_line_at_once(owner, tmp_path, name, monkeypatch, capsys):
    path = tmp_path / "x.gguf"
    path.write_bytes(HOSTILE[name])
    t = time.perf_counter()
    code, out, err = run(["verify", owner["key"], path], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (name, err)
    assert time.perf_counter() - t < 5


@FUZZ
@given(data=st.binary(min_size=0, max_size=300), keep=st.integers(0, 3000), flip=st.integers(0, 2999))
def test_random_truncated_and_flipped_gguf_never_crash(owner, tmp_path, data, keep, flip):
    save_gguf({"w": owner["sd"]["conv2.fingerprint.weight"].reshape(-1)}, tmp_path / "small.gguf", "Q8_0")
    raw = (tmp_path / "small.gguf").read_bytes()
    flipped = bytearray(raw)
    flipped[flip % len(raw)] ^= 0xFF
    for blob in (b"GGUF" + data, raw[:keep] + data, bytes(flipped)):
        p = tmp_path / "x.gguf"
        p.write_bytes(blob)
        try:
            verify(owner["key"], p)
        except FreqprintError:
            pass
