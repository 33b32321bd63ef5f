"""Baselines RS, MW, ICS, CKA: their math, their invariances, and that each one separates a
model derived from the source from an independently trained one (miniature tracing run)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm
from torch import nn

from freqprint.attacks import BlockPermutation, BlockScaling
from freqprint.data import ArrayDataset
from freqprint.errors import FreqprintError
from freqprint.methods import (
    InvariantTermsCosine,
    Method,
    TriggerSet,
    certify,
    cka,
    create_methods,
    make_triggers,
)
from freqprint.models import create_model
from freqprint_bench.tracing import run_tracing, small_profile, tracing_markdown, tracing_plots


def _data(n: int = 200, classes: int = 10) -> ArrayDataset:
    g = torch.Generator().manual_seed(0)
    return ArrayDataset(torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % classes, [str(i) for i in range(classes)], "toy")


def test_every_baseline_follows_the_protocol_and_parses():
    ms = create_methods("all")
    assert [m.name for m in ms] == ["ours", "trace", "rs", "mw", "ics", "cka", "metav"]
    assert all(isinstance(m, Method) for m in ms)
    assert [m.embeds for m in ms] == [True, False, True, True, False, False, False]
    rs, cka_ = create_methods("rs(sigma=0.05, draws=3),cka(layer=conv2)")
    assert rs.sigma == 0.05 and rs.draws == 3 and cka_.layer == "conv2"
    with pytest.raises(FreqprintError, match="takes no argument .sigma."):
        create_methods("mw(sigma=1)")
    with pytest.raises(FreqprintError, match="unknown method"):
        create_methods("ours,xyz")


def test_triggers_are_keyed_and_never_carry_the_true_label():
    data = _data()
    a, b = make_triggers(data, "s1", 50), make_triggers(data, "s1", 50)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    c = make_triggers(data, "s2", 50)
    assert not torch.equal(a.images, c.images)
    true = torch.stack([data.labels[(data.images == img).flatten(1).all(1)][0] for img in a.images])
    assert (a.labels != true).all() and a.labels.max() < 10
    with pytest.raises(FreqprintError, match="need 300"):
        make_triggers(data, "s", 300)


def test_cka_is_one_on_itself_invariant_to_rotation_and_low_on_unrelated_features():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(100, 30, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    for kernel in ("linear", "rbf"):
        assert cka(z, z, kernel) == pytest.approx(1.0)
        assert cka(z, 3.0 * z @ q, kernel) == pytest.approx(1.0)  # orthogonal map + isotropic scale
        assert cka(z, torch.randn(100, 30, generator=g, dtype=torch.float64), kernel) < 0.5
    with pytest.raises(FreqprintError, match="kernel"):
        cka(z, z, "poly")


def test_ics_is_invariant_to_block_permutation_and_scaling_but_not_to_another_model():
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_channels=1, width=0.125).eval()
    probes = torch.rand(8, 1, 28, 28)
    ics = InvariantTermsCosine(probes=8)
    ref = ics.terms(model, probes)
    attacked = BlockScaling(seed=3)(BlockPermutation(seed=3)(model))
    assert torch.allclose(model(probes), attacked(probes), atol=1e-4)
    t = ics.terms(attacked, probes)
    assert float(torch.nn.functional.cosine_similarity(t, ref, dim=0)) == pytest.approx(1.0, abs=1e-6)
    torch.manual_seed(1)
    other = create_model("resnet18", num_classes=10, in_channels=1, width=0.125).eval()
    assert float(torch.nn.functional.cosine_similarity(ics.terms(other, probes), ref, dim=0)) < 0.9
    with pytest.raises(FreqprintError, match="no layer"):
        InvariantTermsCosine(first="nope").terms(model, probes)


class _Const(nn.Module):
    """A classifier whose bias decides: class ``k`` by a margin of ``m`` whatever the input."""

    def __init__(self, k: int, m: float) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.bias.zero_()
            self.lin.bias[k] = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1)[:, :4])


def test_rs_certificate_matches_the_clopper_pearson_formula():
    trig = TriggerSet(torch.rand(5, 1, 2, 2), torch.full((5,), 1))
    sigma, n, alpha = 0.01, 100, 0.001
    r = certify(_Const(1, 10.0), trig, sigma, n, alpha)  # never flips at this noise: k = n for every trigger
    assert torch.allclose(r, torch.full((5,), sigma * norm.ppf(alpha ** (1 / n))), rtol=1e-5)
    assert (certify(_Const(0, 10.0), trig, sigma, n, alpha) == 0).all()  # predicts the wrong label: no certificate


@pytest.fixture(scope="module")
def trained(fashion_dir):
    """Per embedding method (RS, MW): the source (secret 0) and two independent models (secrets 1, 2)."""
    from freqprint.data import load_dataset
    from freqprint.methods import MethodContext
    from freqprint.training import TrainConfig, train

    data = load_dataset("fashion-mnist", "train", root=fashion_dir)
    out = {}
    for method in create_methods("rs(trigger_count=20,certify_draws=20),mw(trigger_count=20)"):
        models = []
        for idx in range(3):
            torch.manual_seed(idx)
            model = create_model("resnet18", num_classes=10, in_channels=1, width=0.125)
            ctx = MethodContext(secret=f"secret-{idx}", num_classes=10, data=data)
            method.prepare(model, ctx)
            train(
                model,
                data,
                TrainConfig(epochs=3, lr=0.05, batch_size=64, seed=idx),
                criterion=method.criterion(ctx),
                progress=False,
            )
            models.append(model.eval())
        out[method.name] = (method, models, MethodContext(secret="secret-0", num_classes=10, data=data))
    return out


@pytest.mark.parametrize("name", ["rs", "mw", "ics", "cka"])
def test_baseline_separates_untouched_derived_from_independent(trained, name):
    """Derived = the source after block permutation and scaling (function-preserving): it must
    score above both independent models.  ICS and CKA are scored on the RS models."""
    pool = "rs" if name in ("ics", "cka") else name
    _, models, ctx = trained[pool]
    method = create_methods(name)[0] if pool != name else trained[name][0]
    if name in ("ics", "cka"):
        method.probes = 32
    source = models[0]
    derived = BlockScaling(seed=7)(BlockPermutation(seed=7)(source))
    evidence = method.extract(source, ctx)
    prim = list(method.fixed_thresholds)[0]
    pos = method.score(evidence, derived)[prim]
    neg = [method.score(evidence, m)[prim] for m in models[1:]]
    assert pos > max(neg), (name, pos, neg)
    if name in ("rs", "mw"):
        assert pos == evidence["trigger_acc"] > 0.5  # learned, and unchanged by the function-preserving attack
    else:
        assert pos == pytest.approx(1.0, abs=1e-5)  # ICS and CKA are exactly invariant to it


def test_multi_method_tracing_run_report_and_plots(fashion_dir, digits_dir, tmp_path):
    prof = small_profile(
        sources=1,
        independents=1,
        source_limit=600,
        source_epochs=1,
        finetune_epochs=1,
        lrs=(0.01,),
        model="resnet18",
        model_kwargs={"width": 0.125},
        batch_size=64,
    )
    methods = create_methods("rs(trigger_count=20,certify_draws=10),ics(probes=16),cka(probes=16)")
    r = run_tracing(
        methods, prof, cache_dir=tmp_path / "cache", data_root=fashion_dir, target_root=digits_dir, log=lambda m: None
    )
    assert r["cache"]["misses"] == 3 and set(r["pools"]) == {"rs"}  # one pool: ICS and CKA score the RS models
    assert {k: v["pool"] for k, v in r["methods"].items()} == {"rs": "rs", "ics": "rs", "cka": "rs"}
    assert [len(v["pairs"]) for v in r["methods"].values()] == [2, 2, 2]
    md = tracing_markdown(r)
    assert "| rs (trigger_acc) |" in md and "| cka (cka_rbf) |" in md and "RS certificate" in md
    assert {p.name for p in tracing_plots(r, tmp_path)} == {"tracing_scores.png", "tracing_roc.png"}
    assert all(math.isfinite(p["param_distance"]) for p in r["methods"]["rs"]["pairs"])
