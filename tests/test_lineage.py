"""Backbone lineage and the combined `trace` verdict: power on derived models, exact null on
independent ones, and the rewrites a thief has for free."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cli_helpers import run
from freqprint.attacks import BlockPermutation, BlockScaling, Compose, RemoveModule
from freqprint.data import load_dataset
from freqprint.errors import FreqprintError
from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
from freqprint.models import create_model, register_model
from freqprint.stats.null import projection_hit_probability
from freqprint.training import TrainConfig, train
from freqprint.verification.backbone import OwnerInit, init_seed, lineage, regenerate_init
from freqprint.verification.key import extract
from freqprint.verification.provenance import trace

KW = {"num_classes": 10, "in_channels": 1, "width": 8}


def _trained(seed: int, data, module: bool = False, epochs: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = create_model("smallcnn", **KW)
    crit = None
    if module:
        attach(net, FingerprintConfig(target="conv2", secret=f"s{seed}", filters=32), data.images[:2])
        add_pseudo_class(net)
        crit = FingerprintLoss(10, weight=5e-4)
    train(net, data, TrainConfig(epochs=epochs, lr=0.05, seed=seed), criterion=crit, progress=False)
    return net


@pytest.fixture(scope="module")
def data(fashion_dir):
    return load_dataset("fashion-mnist", "train", root=fashion_dir)


@pytest.fixture(scope="module")
def owner(data):
    return _trained(1, data, module=True, epochs=2)


@pytest.fixture(scope="module")
def stranger(data):
    return _trained(2, data)


OWNER_INIT = OwnerInit("smallcnn", KW, 1, True)


def test_init_seed_is_a_keyed_63_bit_value():
    a = init_seed("alice")
    assert a == init_seed("alice") and 0 <= a < 2**63
    assert len({a, init_seed("bob"), init_seed("alice", 1)}) == 3
    with pytest.raises(FreqprintError):
        init_seed("")


def test_regenerated_init_is_the_seeded_construction_and_leaves_the_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    net = regenerate_init("smallcnn", KW, 7)
    assert torch.equal(torch.rand(1), before)  # global RNG untouched
    torch.manual_seed(7)
    ref = create_model("smallcnn", **KW)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))


def test_derived_found_independent_not(owner, stranger, data):
    rep = lineage(OWNER_INIT, owner)
    assert rep.found and rep.log10_p < -20
    assert any(r.channel_map for r in rep.layers)
    ft = Compose([RemoveModule(), BlockPermutation(seed=3), BlockScaling(seed=4)])(owner)
    train(ft, data, TrainConfig(epochs=1, lr=0.01, seed=9), progress=False)
    assert lineage(OWNER_INIT, ft).log10_p < -20
    assert lineage(OWNER_INIT, stranger).log10_p > -3


def test_lineage_survives_renaming_relayout_and_dtype(owner):
    sd = {k: v.detach().clone() for k, v in Compose([BlockPermutation(seed=5), BlockScaling(seed=6)])(owner).state_dict().items()}
    hostile = {}
    for i, (_k, v) in enumerate(sorted(sd.items())):
        if v.ndim == 4 and v.shape[-1] == 3:
            v = v.permute(2, 3, 1, 0).contiguous().to(torch.bfloat16)  # HWIO, bf16
        hostile[f"blob.{i}"] = v
    rep = lineage(OWNER_INIT, hostile)
    assert rep.found and rep.log10_p < -10
    assert {r.layout for r in rep.layers if r.suspect_layer} >= {"HWIO"}


def test_p_value_bounds_false_positives_over_many_owners(stranger):
    """150 owners (other seeds) against one independent model: P[p ≤ a] ≤ a must hold (150, not
    200, to keep the suite under its time budget; the bench's unrelated-model panels test more)."""
    n = 150
    ps = np.array([lineage(OwnerInit("smallcnn", KW, 1000 + s, True), stranger).log10_p for s in range(n)])
    for a in (0.01, 0.05, 0.2):
        assert (ps <= math.log10(a)).mean() <= a + 3 * math.sqrt(a * (1 - a) / n)
    assert ps.min() > -6


def test_projection_bound_holds_for_uniform_entries():
    g = torch.Generator().manual_seed(0)
    n, dprime, trials = 4, 3, 20000
    u = torch.randn(dprime, n, 9, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    x = torch.rand(trials, n, 9, generator=g, dtype=torch.float64) * 2 - 1  # U(-1, 1): v = 1/3
    s = torch.einsum("tck,eck->te", x, u).abs() / (n * math.sqrt(1 / 3))
    for t in (0.5, 1.0, 1.5):
        assert (s.max(1).values >= t).double().mean() <= projection_hit_probability(t, n, dprime)


def test_owner_init_from_recipe_needs_what_it_says():
    rec = {"model": "smallcnn", "kwargs": KW, "init": {"scheme": "secret", "index": 0}}
    with pytest.raises(FreqprintError, match="secret"):
        OwnerInit.from_recipe(rec)
    assert OwnerInit.from_recipe(rec, secret="x").seed == init_seed("x")
    assert not OwnerInit.from_recipe(rec, secret="x").public
    assert OwnerInit.from_recipe({**rec, "init": {"scheme": "seed", "seed": 4}}).seed == 4
    with pytest.raises(FreqprintError, match="seed it was built with"):
        OwnerInit.from_recipe({"model": "smallcnn", "kwargs": KW})
    for bad in ({**rec, "init": {"scheme": "guess"}}, {**rec, "init": {"scheme": "seed", "seed": "7"}}):
        with pytest.raises(FreqprintError, match="unknown initialisation"):
            OwnerInit.from_recipe(bad)
    with pytest.raises(FreqprintError, match="malformed"):
        OwnerInit.from_recipe({**rec, "init": {"scheme": "secret", "index": "x"}}, secret="s")
    for bad in ({"model": 3}, {"kwargs": {}}, {"model": "smallcnn", "kwargs": 5}):
        with pytest.raises(FreqprintError, match="no model architecture"):
            OwnerInit.from_recipe(bad, seed=1)
    register_model("_nolaw", lambda **kw: create_model("smallcnn", **kw), "conv2", init_law=None)
    with pytest.raises(FreqprintError, match="no initialisation law"):
        OwnerInit("_nolaw", KW, 0, True).layers()


def test_wrong_architecture_and_nan_suspects(owner):
    none = lineage(OWNER_INIT, {"fc.weight": torch.randn(10, 5)})  # read, nothing conv-shaped: a verdict, p = 1
    assert not none.found and none.log10_p == 0.0 and not any(r.candidates for r in none.layers)
    assert "no tensor of the suspect is shaped like" in none.summary()
    sd = {k: v.detach().clone() for k, v in owner.state_dict().items()}
    sd["conv3.weight"][0, 0, 0, 0] = float("nan")
    rep = lineage(OWNER_INIT, sd)  # one NaN tensor cannot block the others
    assert rep.found
    assert next(r for r in rep.layers if r.owner_layer == "conv3.weight").suspect_layer != "conv3.weight"


def test_trace_combines_channels_with_bonferroni(owner, stranger):
    key = extract(owner)
    removed = RemoveModule()(owner)
    rep = trace(removed, key=key, owner_init=OWNER_INIT)
    fp, lin = rep.channel("fingerprint"), rep.channel("lineage")
    assert fp.ran and not fp.found and fp.log10_p == 0.0  # the module is gone
    assert lin.found and rep.found
    assert rep.log10_p == pytest.approx(lin.log10_p + math.log10(2))
    assert not rep.channel("metav").ran
    neg = trace(stranger, key=key, owner_init=OWNER_INIT)
    assert not neg.found and neg.log10_p > -3
    only_key = trace(owner, key=key)
    assert only_key.found and only_key.log10_p == only_key.channel("fingerprint").log10_p
    with pytest.raises(FreqprintError):
        trace(owner)
    assert json.dumps(rep.to_dict()) == json.dumps(trace(removed, key=key, owner_init=OWNER_INIT).to_dict())


def test_trace_command_line(tmp_path, fashion_dir, monkeypatch, capsys):
    common = ["--width", "8", "--filters", "32", "--epochs", "1", "--data-root", fashion_dir]
    owner, other, thief = tmp_path / "owner.safetensors", tmp_path / "other.safetensors", tmp_path / "thief.safetensors"
    assert run(["embed", "--out", owner, "--secret", "alice", *common], monkeypatch, capsys)[0] == 0
    assert run(["embed", "--out", other, "--secret", "bob", *common], monkeypatch, capsys)[0] == 0
    rc, out, err = run(
        ["attack", owner, "--out", thief, "--do", "remove-module", "--do", "permute-blocks(seed=1)"], monkeypatch, capsys
    )
    assert rc == 0, err
    rc, out, err = run(["trace", owner, thief, "--secret", "alice", "--json"], monkeypatch, capsys)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["found"] and {c["name"]: c["ran"] for c in rep["channels"]} == {
        "fingerprint": True,
        "lineage": True,
        "parent": False,
        "metav": False,
    }
    assert run(["trace", owner, other, "--secret", "alice"], monkeypatch, capsys)[0] == 1
    rc, out, err = run(["trace", owner, thief, "--secret", "mallory", "--no-fingerprint"], monkeypatch, capsys)
    assert rc == 1  # the wrong secret regenerates another θ₀: no lineage
    monkeypatch.delenv("FREQPRINT_SECRET", raising=False)
    rc, out, err = run(["trace", owner, thief], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    # the same from Python: the owner's file supplies every channel's material
    from freqprint.verification.provenance import LineageUnavailable, trace_files

    lib = trace_files(owner, thief, secret="alice")
    assert lib.found and lib.log10_p == rep["log10_p"]
    assert not trace_files(owner, other, secret="alice").found
    with pytest.raises(LineageUnavailable, match="seeded from the secret"):
        trace_files(owner, thief)
    assert trace_files(owner, thief, lineage=False).channel("lineage").ran is False
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    rc, out, err = run(["trace", owner, tmp_path / "junk.safetensors", "--secret", "alice"], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error:")


@pytest.mark.parametrize("name,kw", [("smallcnn", KW), ("resnet18", {"num_classes": 10, "in_channels": 1, "width": 0.125})])
def test_factorize_is_exact_and_noise_backbone_spares_the_module(name, kw, owner):
    from freqprint.attacks import BackboneNoise, Factorize

    torch.manual_seed(0)
    net = create_model(name, **kw).eval()
    x = torch.rand(3, 1, 28, 28)
    fac = Factorize(seed=2)(net).eval()
    assert torch.allclose(net(x), fac(x), atol=1e-4)
    assert sum(p.numel() for p in fac.parameters()) > sum(p.numel() for p in net.parameters())
    # lineage composes each k×k tensor with the 1×1 conv after it: the factorisation is undone
    rep = lineage(OWNER_INIT, Factorize(seed=3)(owner))
    assert rep.found and any("∘" in (r.suspect_layer or "") for r in rep.layers)
    noisy = BackboneNoise(scale=1.0)(owner)
    before, after = owner.state_dict(), noisy.state_dict()
    assert torch.equal(before["conv2.fingerprint.weight"], after["conv2.fingerprint.weight"])
    rel = (after["conv3.weight"] - before["conv3.weight"]).norm() / before["conv3.weight"].norm()
    assert rel == pytest.approx(1.0, rel=1e-4)
