"""Hostile input: malformed keys and files, absurd options, NaN where it is and is not used, and
determinism of the verdict.  Every failure must be a :class:`FreqprintError` (the CLI turns it
into one ``error:`` line and exit 2), never another exception, a hang or a huge allocation."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, safe_open, save_file

from cli_helpers import run
from freqprint import FingerprintConfig, FingerprintKey, FreqprintError, attach, create_model, extract, save_model, verify

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
    attach(model, FingerprintConfig(target="conv2", secret="alice", filters=16), torch.zeros(1, 1, 28, 28))
    save_model(model, d / "owner.safetensors", {"model": "smallcnn", "kwargs": {"width": 8}})
    extract(model).save(d / "owner.key")
    with safe_open(str(d / "owner.key"), framework="pt") as f:
        meta = json.loads(f.metadata()["freqprint.key"])
    return {
        "dir": d,
        "model": model,
        "key": d / "owner.key",
        "suspect": d / "owner.safetensors",
        "meta": meta,
        "tensors": load_file(str(d / "owner.key")),
    }


def _write_key(path, tensors, meta) -> None:
    save_file(tensors, str(path), metadata={"freqprint.key": meta if isinstance(meta, str) else json.dumps(meta)})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.pop("layer"),
        lambda m: m.update(grid=28),
        lambda m: m.update(grid=[10**9, 10**9]),
        lambda m: m.update(tau=None),
        lambda m: m.update(tau=5),
        lambda m: m.update(kernel_size="3"),
        lambda m: m.update(radius=-1),
        lambda m: m.update(frequency_set="all"),
        lambda m: m.update(extra=[1, 2]),
        lambda m: m.update(filters=True),
        lambda m: m.update(merge="gelu"),
    ],
)
def test_malformed_key_metadata_is_one_error(files, tmp_path, mutate):
    meta = dict(files["meta"])
    mutate(meta)
    _write_key(tmp_path / "k.key", files["tensors"], meta)
    with pytest.raises(FreqprintError):
        FingerprintKey.load(tmp_path / "k.key")


def test_key_metadata_that_is_not_an_object(files, tmp_path, monkeypatch, capsys):
    for raw in ("[1, 2]", "null", "{", '"x"', "NaN"):
        _write_key(tmp_path / "k.key", files["tensors"], raw)
        rc, out, err = run(["verify", tmp_path / "k.key", files["suspect"]], monkeypatch, capsys)
        assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (raw, err)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    field=st.sampled_from(
        [
            "layer",
            "grid",
            "kernel_size",
            "radius",
            "frequency_set",
            "tau",
            "filters",
            "channels",
            "created",
            "extra",
            "merge",
            "format",
            "commitment",
        ]
    ),
    value=json_values,
)
def test_fuzzed_key_fields_never_crash(files, tmp_path, field, value):
    meta = dict(files["meta"], **{field: value})
    _write_key(tmp_path / "k.key", files["tensors"], meta)
    try:
        FingerprintKey.load(tmp_path / "k.key")
    except FreqprintError:
        pass


@FUZZ
@given(
    name=st.sampled_from(["kernels", "spectra_real", "spectra_imag", "frequencies", "multiplicity"]),
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
    dtype=st.sampled_from([torch.float32, torch.int64, torch.float16]),
)
def test_fuzzed_key_tensors_never_crash(files, tmp_path, name, shape, dtype):
    tensors = dict(files["tensors"], **{name: torch.ones(shape, dtype=dtype)})
    _write_key(tmp_path / "k.key", tensors, files["meta"])
    try:
        FingerprintKey.load(tmp_path / "k.key")
    except FreqprintError:
        pass


@FUZZ
@given(data=st.binary(min_size=0, max_size=400), keep=st.integers(0, 4000))
def test_random_and_truncated_bytes_never_crash(files, tmp_path, data, keep):
    raw = files["suspect"].read_bytes()
    for blob in (data, raw[:keep] + data, len(data).to_bytes(8, "little") + data):
        p = tmp_path / "x.safetensors"
        p.write_bytes(blob)
        for fn in (lambda: FingerprintKey.load(p), lambda: verify(files["key"], p)):
            try:
                fn()
            except FreqprintError:
                pass


@pytest.mark.parametrize("tau", ["5", "nan", "-5", "0"])
def test_tau_out_of_range_is_refused(files, tau, monkeypatch, capsys):
    for args in (
        ["verify", files["key"], files["suspect"], "--tau", tau],
        ["extract", files["suspect"], "--out", files["dir"] / "t.key", "--tau", tau],
        ["study", files["suspect"], files["suspect"], "--tau", tau],
    ):
        rc, out, err = run(args, monkeypatch, capsys)
        assert rc == 2 and err.startswith("error: ") and "tau" in err, (args, err)


def test_huge_grid_buffer_is_refused_at_once(files, tmp_path, monkeypatch, capsys):
    sd = {k: v.clone() for k, v in files["model"].state_dict().items()}
    sd["conv2.fingerprint.grid"] = torch.tensor([10**7, 10**7, 3, 1, 1])
    save_file(sd, str(tmp_path / "huge.safetensors"))
    for args in (
        ["extract", tmp_path / "huge.safetensors", "--out", tmp_path / "h.key"],
        ["study", tmp_path / "huge.safetensors", tmp_path / "huge.safetensors"],
    ):
        rc, out, err = run(args, monkeypatch, capsys)
        assert rc == 2 and "grid buffer" in err, err


def test_nan_only_matters_where_it_is_used(files, tmp_path, monkeypatch, capsys):
    sd = {k: v.clone() for k, v in files["model"].state_dict().items()}
    sd["unused.decoy"] = torch.full((4, 4), float("nan"))
    save_file(sd, str(tmp_path / "decoy.safetensors"))
    assert run(["verify", files["key"], tmp_path / "decoy.safetensors"], monkeypatch, capsys)[0] == 0
    sd["conv2.fingerprint.weight"][0, 0, 0, 0] = float("nan")
    save_file(sd, str(tmp_path / "nan.safetensors"))
    rc, out, err = run(["verify", files["key"], tmp_path / "nan.safetensors"], monkeypatch, capsys)
    assert rc == 2 and "NaN" in err
    rc, out, err = run(["study", files["suspect"], tmp_path / "nan.safetensors"], monkeypatch, capsys)
    assert rc == 2 and "NaN" in err and "nan" not in out.lower()


def test_verdict_json_is_byte_identical_across_runs_and_threads(files, monkeypatch, capsys):
    outs = []
    old = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            rc, out, err = run(["verify", files["key"], files["suspect"], "--json"], monkeypatch, capsys)
            assert rc == 0, err
            outs.append(out)
    finally:
        torch.set_num_threads(old)
    assert outs[0] == outs[1] == outs[2]
    assert "seconds" not in json.loads(outs[0])


def test_thousands_of_decoy_tensors_are_screened_in_bounded_time(files, tmp_path):
    """1,800 random conv tensors, 200 channel-shuffled copies of the module, and the module
    renamed: every one is screened (and paid for in the p-value), at most ``MAX_FITS`` are
    aligned, and the module is still found.  The work is bounded by that count, not by a clock."""
    from freqprint.verification.verifier import MAX_FITS

    sd = {k: v.clone() for k, v in files["model"].state_dict().items()}
    w = sd.pop("conv2.fingerprint.weight")
    g = torch.Generator().manual_seed(0)
    for i in range(1800):
        sd[f"decoy.{i:04d}.weight"] = torch.randn(w.shape, generator=g)
    for i in range(200):  # the module's own kernels, each filter's channels in its own order: they tie a
        perms = [torch.randperm(w.shape[1], generator=g) for _ in range(w.shape[0])]  # channel-blind screen
        sd[f"shuffled.{i:04d}.weight"] = torch.stack([w[d, p] for d, p in enumerate(perms)])
    sd["zz.renamed"] = w
    save_file(sd, str(tmp_path / "decoys.safetensors"))
    rep = verify(files["key"], tmp_path / "decoys.safetensors")
    assert rep.found and rep.layer == "zz.renamed" and rep.layers_searched >= 2000 and rep.fitted <= MAX_FITS


@FUZZ
@given(
    field=st.sampled_from(["format", "host", "salt", "secret_commitment", "created", "commitment", "key_commitment"]),
    value=json_values,
)
def test_fuzzed_claim_fields_never_crash(files, tmp_path, field, value):
    from freqprint.verification.claim import ClaimBundle, create_claim

    path = files["dir"] / "owner.claim"
    if not path.exists():
        create_claim(files["model"], "alice").save(path)
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    claim = dict(json.loads(meta["freqprint.claim"]), **{field: value})
    save_file(tensors, str(tmp_path / "c.claim"), metadata={**meta, "freqprint.claim": json.dumps(claim)})
    try:
        ClaimBundle.load(tmp_path / "c.claim")
    except FreqprintError:
        pass


@pytest.mark.skipif(not os.environ.get("FREQPRINT_FUZZ_SECONDS"), reason="the long fuzz run: make fuzz")
def test_fuzz_for_a_while(files, tmp_path):
    """``make fuzz``: every fuzz test above, again and again with fresh random examples, for
    ``FREQPRINT_FUZZ_SECONDS`` seconds."""
    end = time.time() + float(os.environ["FREQPRINT_FUZZ_SECONDS"])
    rounds = 0
    while time.time() < end:
        for fuzz in (
            test_fuzzed_key_fields_never_crash,
            test_fuzzed_key_tensors_never_crash,
            test_random_and_truncated_bytes_never_crash,
            test_fuzzed_claim_fields_never_crash,
        ):
            fuzz(files, tmp_path)
        rounds += 1
    print(f"fuzz: {rounds} rounds of 4 x {FUZZ.max_examples} examples, no failure")


def test_sharded_checkpoints_and_hostile_indexes(files, tmp_path, monkeypatch, capsys):
    sd = {k: v.clone().contiguous() for k, v in files["model"].state_dict().items()}
    names = sorted(sd)
    half = len(names) // 2
    folder = tmp_path / "hf"
    folder.mkdir()
    save_file({k: sd[k] for k in names[:half]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({k: sd[k] for k in names[half:]}, str(folder / "model-00002-of-00002.safetensors"))
    wmap = {k: f"model-0000{1 if i < half else 2}-of-00002.safetensors" for i, k in enumerate(names)}
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": wmap}))
    for target in (index, folder):  # the index, or the model folder that holds it
        assert run(["verify", files["key"], target], monkeypatch, capsys)[0] == 0
    outside = tmp_path / "outside.safetensors"
    save_file({"x": torch.zeros(2)}, str(outside))
    for bad in (
        {"weight_map": {"conv2.weight": "../outside.safetensors"}},
        {"weight_map": {"conv2.weight": str(outside)}},
        {"weight_map": {"conv2.weight": "missing.safetensors"}},
        {"weight_map": {"not.there": "model-00001-of-00002.safetensors"}},
        {"weight_map": []},
        [1, 2],
        {"weight_map": {"a": 3}},
    ):
        (folder / "bad.index.json").write_text(json.dumps(bad))
        rc, out, err = run(["verify", files["key"], folder / "bad.index.json"], monkeypatch, capsys)
        assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (bad, err)
    (folder / "bad.index.json").write_text("{not json")
    assert run(["verify", files["key"], folder / "bad.index.json"], monkeypatch, capsys)[0] == 2


def test_a_store_checks_each_tensor_for_nan_once():
    """TensorStore.finite: NaN and Inf are found, each name is read and checked once (the
    verifier's many readings of one tensor share the answer), and a caller's re-arrangement of
    the values is checked instead of a second read."""
    from freqprint.io.checkpoint import TensorStore

    sd = {"a": torch.randn(6, 4), "b": torch.randn(6, 4), "c": torch.randn(3)}
    sd["b"][2, 1] = float("nan")
    sd["c"][0] = float("-inf")
    reads: list[str] = []

    def get(name: str) -> torch.Tensor:
        reads.append(name)
        return sd[name]

    store = TensorStore({k: (tuple(v.shape), True) for k, v in sd.items()}, get, "mem")
    assert store.finite("a") and store.finite("a")
    assert not store.finite("b") and not store.finite("c")
    assert reads == ["a", "b", "c"]
    sd["d"] = torch.randn(4, 6)
    store.shapes["d"] = ((4, 6), True)
    assert store.finite("d", sd["d"].T.reshape(2, 12)) and "d" not in reads
