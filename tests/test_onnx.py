"""ONNX suspects: weights in initializers, Constant nodes, If/Loop subgraphs and external data are
all read, every stored type decodes to the values written, and hostile files are refused."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import run
from freqprint.errors import UnreadableFile
from freqprint.io.checkpoint import open_tensors
from freqprint.io.onnx import load_onnx
from freqprint.models import create_model
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify
from freqprint_bench.corpus import owner_model

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

PLACES = ("initializer", "constant", "if", "loop-if", "external", "fp16")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A SmallCNN exported by torch's own ONNX exporter (BatchNorm folded into the convs): the
    backbone a thief ships, with the fingerprint module's kernels to be placed in it."""
    d = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    plain = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(plain, torch.zeros(1, 1, 28, 28), str(d / "plain.onnx"), dynamo=False)
    owner = owner_model("onnx-owner", 8, 32)
    return {"dir": d, "plain": d / "plain.onnx", "owner": owner, "key": extract(owner, secret="onnx-owner")}


def _empty(name: str, data_type: int, dims: list[int]):
    """A TensorProto with no values yet (helper.make_tensor insists on them)."""
    t = TensorProto()
    t.name, t.data_type = name, data_type
    t.dims.extend(dims)
    return t


def _constant(name: str, w: np.ndarray):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(w, name))


def _branch(name: str, w: np.ndarray):
    out = helper.make_tensor_value_info(name, TensorProto.FLOAT, list(w.shape))
    return helper.make_graph([_constant(name, w)], f"{name}-graph", [], [out])


def _place(base: Path, w: torch.Tensor, where: str, out: Path) -> Path:
    """The exported model with the module's kernels ``w`` put ``where`` a thief may put them."""
    model = onnx.load(str(base))
    g = model.graph
    a = w.detach().numpy().astype(np.float32)
    if where == "initializer":
        g.initializer.append(numpy_helper.from_array(a, "m.w"))
    elif where == "fp16":
        g.initializer.append(numpy_helper.from_array(a.astype(np.float16), "m.w"))
    elif where == "constant":
        g.node.insert(0, _constant("m.w", a))
    elif where in ("if", "loop-if"):
        g.initializer.append(numpy_helper.from_array(np.array(True), "cond"))
        node = helper.make_node(
            "If", ["cond"], ["m.w"], then_branch=_branch("then.w", a), else_branch=_branch("else.w", np.zeros_like(a))
        )
        if where == "loop-if":  # the If inside a Loop's body: two levels down
            body = helper.make_graph([node], "body", [], [helper.make_tensor_value_info("m.w", TensorProto.FLOAT, None)])
            body.initializer.append(numpy_helper.from_array(np.array(True), "cond"))
            node = helper.make_node("Loop", ["", ""], ["loop.w"], body=body)
        g.node.insert(0, node)
    elif where == "external":
        g.initializer.append(numpy_helper.from_array(a, "m.w"))
        onnx.save_model(model, str(out), save_as_external_data=True, location=out.name + ".data", size_threshold=0)
        return out
    onnx.save_model(model, str(out))
    return out


@pytest.mark.parametrize("where", PLACES)
def test_a_module_is_found_wherever_the_graph_keeps_it(exported, tmp_path, where):
    w = exported["owner"].conv2.fingerprint.weight
    path = _place(exported["plain"], w, where, tmp_path / f"{where}.onnx")
    rep = verify(exported["key"], path)
    assert rep.found and rep.hits == 32, (where, rep.layer, rep.log10_p)
    other = owner_model("someone else", 8, 32).conv2.fingerprint.weight
    assert not verify(exported["key"], _place(exported["plain"], other, where, tmp_path / f"o-{where}.onnx")).found
    if where == "loop-if":  # both branches are read, at any depth
        names = set(open_tensors(path).shapes)
        assert {"then.w", "else.w"} <= names


def test_every_stored_type_decodes_to_what_was_written(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 3, 3, generator=g)
    cases = {
        "f32": x,
        "f64": x.double(),
        "f16": x.half(),
        "bf16": x.bfloat16(),
        "i8": (x * 40).round().clamp(-128, 127).to(torch.int8),
        "u8": (x * 40 + 128).round().clamp(0, 255).to(torch.uint8),
        "e4m3": x.to(torch.float8_e4m3fn),
        "e5m2": x.to(torch.float8_e5m2),
    }
    onnx_type = {
        torch.float32: TensorProto.FLOAT,
        torch.float64: TensorProto.DOUBLE,
        torch.float16: TensorProto.FLOAT16,
        torch.bfloat16: TensorProto.BFLOAT16,
        torch.int8: TensorProto.INT8,
        torch.uint8: TensorProto.UINT8,
        torch.float8_e4m3fn: TensorProto.FLOAT8E4M3FN,
        torch.float8_e5m2: TensorProto.FLOAT8E5M2,
    }
    inits = []
    for name, t in cases.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes()
        inits.append(helper.make_tensor(f"{name}.raw", onnx_type[t.dtype], list(t.shape), raw, raw=True))
        if t.dtype in (torch.float32, torch.float64, torch.int8, torch.uint8):
            vals = t.flatten().tolist()
        else:  # 16- and 8-bit floats as bit patterns in int32 slots
            bits = t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.uint8)
            vals = (bits.to(torch.int32) & (0xFFFF if t.element_size() == 2 else 0xFF)).flatten().tolist()
        typed = _empty(f"{name}.typed", onnx_type[t.dtype], list(t.shape))
        field = {torch.float32: "float_data", torch.float64: "double_data"}.get(t.dtype, "int32_data")
        getattr(typed, field).extend(vals)
        inits.append(typed)
    model = helper.make_model(helper.make_graph([], "types", [], [], initializer=inits))
    onnx.save_model(model, str(tmp_path / "types.onnx"))
    stored = load_onnx(tmp_path / "types.onnx")
    assert len(stored) == 2 * len(cases)
    for name, t in cases.items():
        for form in ("raw", "typed"):
            got = stored[f"{name}.{form}"]
            assert got.dtype == t.dtype and got.shape == t.shape, (name, form)
            assert torch.equal(got.view(torch.uint8), t.contiguous().view(torch.uint8)), (name, form)


def _bad(tmp_path: Path, name: str, tensor=None, nodes=(), external: dict | None = None) -> Path:
    inits = [tensor] if tensor is not None else []
    model = helper.make_model(helper.make_graph(list(nodes), "bad", [], [], initializer=inits))
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_hostile_onnx_files_are_refused_with_one_error_line(exported, tmp_path, monkeypatch, capsys):
    (tmp_path / "outside.bin").write_bytes(b"\0" * 4096)
    inner = tmp_path / "m"
    inner.mkdir()
    (inner / "w.bin").write_bytes(b"\0" * 64)

    def ext(name: str, location: str, offset: int = 0, length: int | None = None):
        t = _empty(name, TensorProto.FLOAT, [4, 2, 3, 3])
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", str(offset))) + ((("length", str(length)),) if length else ()):
            e = t.external_data.add()
            e.key, e.value = k, v
        return t

    wrong = _empty("w", TensorProto.FLOAT, [8, 4, 3, 3])
    wrong.raw_data = b"\0" * 40  # 288 values, 10 stored
    negative = _empty("w", TensorProto.FLOAT, [-5, 4, 3, 3])
    negative.raw_data = b"\0" * 4
    deep = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.zeros((2, 2, 3, 3), np.float32), "c"))
    for i in range(20):
        deep = helper.make_node(
            "If",
            ["cond"],
            [f"o{i}"],
            then_branch=helper.make_graph([deep], f"g{i}", [], []),
            else_branch=helper.make_graph([], f"e{i}", [], []),
        )
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01 not a protobuf")
    files = {
        "junk": tmp_path / "junk.onnx",
        "empty graph": _bad(tmp_path, "empty"),
        "values do not fill the dims": _bad(tmp_path, "wrong", wrong),
        "negative dim": _bad(tmp_path, "negative", negative),
        "nested 20 deep": _bad(tmp_path, "deep", nodes=[deep]),
        "external data outside the folder": _bad(inner, "escape", ext("w", "../outside.bin")),
        "external data at an absolute path": _bad(inner, "absolute", ext("w", str(tmp_path / "outside.bin"))),
        "external data past its file": _bad(inner, "past", ext("w", "w.bin", offset=32)),
        "external data of the wrong length": _bad(inner, "length", ext("w", "w.bin", length=8)),
    }
    for what, path in files.items():
        rc, out, err = run(["verify", _key(exported, tmp_path), path], monkeypatch, capsys)
        assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, (what, rc, err)
    with pytest.raises(UnreadableFile, match="outside the model's folder"):
        open_tensors(files["external data outside the folder"]).get("w")


def _key(exported, tmp_path: Path) -> Path:
    path = tmp_path / "owner.key"
    if not path.exists():
        exported["key"].save(path)
    return path


def test_scan_reads_onnx_uploads(exported, tmp_path, monkeypatch, capsys):
    up = tmp_path / "uploads"
    up.mkdir()
    _place(exported["plain"], exported["owner"].conv2.fingerprint.weight, "if", up / "stolen.onnx")
    _place(exported["plain"], owner_model("x", 8, 32).conv2.fingerprint.weight, "constant", up / "other.onnx")
    (tmp_path / "s.txt").write_text("onnx-owner\n")
    db = tmp_path / "r.db"
    rc, out, err = run(
        ["registry", "add", _key(exported, tmp_path), "-r", db, "--secret-file", tmp_path / "s.txt"], monkeypatch, capsys
    )
    assert rc == 0, err
    rc, out, err = run(["scan", up, "-r", db, "-o", tmp_path / "scan.jsonl"], monkeypatch, capsys)
    assert rc == 0, err
    rows = {Path(r["path"]).name: r["status"] for r in map(json.loads, (tmp_path / "scan.jsonl").read_text().splitlines())}
    assert rows == {"stolen.onnx": "match", "other.onnx": "none"}
