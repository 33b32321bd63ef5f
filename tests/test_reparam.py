"""The knowing thief's zero-cost rewrites (``freqprint.attacks.reparam``): each keeps the outputs
on SmallCNN, ResNet-18 and AlexNet hosts, and the default verifier still finds the fingerprint —
except the linear merge's own symmetries, which are its measured failure."""

from __future__ import annotations

import pytest
import torch

from freqprint import FingerprintConfig, attach, create_model, extract, verify
from freqprint.attacks import (
    LAYOUTS,
    BlockPermutation,
    BlockScaling,
    ChannelPadding,
    ChannelScaling,
    Collapse,
    Compose,
    DummyFilters,
    FilterMixing,
    InvisibleRedraw,
    ModulePermutation,
    ModuleScaling,
    NullSpaceRedraw,
    relayout_state_dict,
)
from freqprint.errors import FreqprintError
from freqprint.models import default_target

HOSTS = {
    "smallcnn": ({"width": 8}, (1, 28, 28)),
    "resnet18": ({"width": 0.125, "in_channels": 3}, (3, 32, 32)),
    "alexnet": ({"width": 0.125, "in_channels": 3}, (3, 32, 32)),
}


def host(name: str, merge: str = "relu", secret: str = "owner"):
    kwargs, shape = HOSTS[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, **kwargs)
    attach(model, FingerprintConfig(target=default_target(name), secret=secret, filters=32, merge=merge), torch.zeros(1, *shape))
    with torch.no_grad():  # a "trained" look: BatchNorm statistics and a projection that matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
            if hasattr(m, "proj"):
                m.proj.weight.normal_(0, 0.3)
    return model.eval(), torch.rand(6, *shape)


EXACT = [
    ChannelScaling(seed=1),
    ChannelPadding(extra=4, seed=1),
    DummyFilters(extra=48, seed=1),
    ModulePermutation(seed=2),
    ModuleScaling(a=10.0),
]


@pytest.mark.parametrize("name", list(HOSTS))
@pytest.mark.parametrize("attack", EXACT, ids=lambda a: a.name)
def test_exact_rewrites_keep_outputs_and_are_found(name, attack):
    model, x = host(name)
    key = extract(model)
    attacked = attack(model)
    torch.testing.assert_close(attacked(x), model(x), rtol=1e-5, atol=1e-5)
    rep = verify(key, attacked)
    assert rep.found and rep.hits == 32 and rep.log10_p < -20


@pytest.mark.parametrize("name", list(HOSTS))
def test_all_exact_rewrites_composed_with_a_relayout_are_found(name):
    model, x = host(name)
    key = extract(model)
    chain = Compose(
        [
            BlockPermutation(seed=1),
            BlockScaling(seed=2),
            ChannelScaling(seed=3),
            ModulePermutation(seed=4),
            ModuleScaling(a=0.1),
            ChannelPadding(extra=4, seed=5),
            DummyFilters(extra=48, seed=6),
        ]
    )
    attacked = chain(model)
    torch.testing.assert_close(attacked(x), model(x), rtol=1e-5, atol=1e-5)
    for layout in ("HWIO", "flat"):
        sd = relayout_state_dict({k: v.detach() for k, v in attacked.state_dict().items()}, layout)
        rep = verify(key, sd)
        assert rep.found and rep.hits == 32 and rep.layer == "head.aux.kernel"
        assert rep.suspect_filters == 80 and rep.suspect_channels == key.channels + 4


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_and_dtype_is_found_by_content(layout):
    model, _ = host("smallcnn")
    key = extract(model)
    rep = verify(key, relayout_state_dict({k: v.detach() for k, v in model.state_dict().items()}, layout))
    assert rep.found and rep.hits == 32 and rep.layer == "head.aux.kernel"


def test_invisible_redraw_erases_the_hidden_block_but_not_the_visible_one():
    model, x = host("smallcnn")
    key = extract(model)
    attacked = InvisibleRedraw(seed=1)(model)
    assert (attacked(x) - model(x)).abs().max() < 1e-3  # near-invisible: not exact, but close
    rep = verify(key, attacked)
    assert rep.found and rep.block == "visible" and rep.log10_p_blocks["hidden"] == 0.0
    assert rep.score < 0.05  # the paper's S' score is gone: S' lives in those directions


@pytest.mark.parametrize("attack", [FilterMixing(seed=1), NullSpaceRedraw(seed=1), Collapse()], ids=lambda a: a.name)
def test_linear_merge_symmetries_are_exact_and_defeat_the_test(attack):
    """The measured failure of merge="linear" (docs/benchmarks.md §8), and why ReLU is the default."""
    model, x = host("smallcnn", merge="linear")
    key = extract(model)
    attacked = attack(model)
    torch.testing.assert_close(attacked(x), model(x), rtol=1e-5, atol=1e-5)
    assert not verify(key, attacked).found


@pytest.mark.parametrize("attack", [FilterMixing(seed=1), NullSpaceRedraw(seed=1)], ids=lambda a: a.name)
def test_linear_symmetries_are_not_symmetries_of_the_relu_merge(attack):
    model, x = host("smallcnn")
    rel = (attack(model)(x) - model(x)).abs().max() / model(x).abs().max()
    assert rel > 1e-3
    with pytest.raises(FreqprintError, match="linear merge"):
        Collapse()(model)


def test_unrelated_model_stays_unfound_under_every_layout():
    model, _ = host("smallcnn")
    other, _ = host("smallcnn", secret="someone else")
    key = extract(model)
    rep = verify(key, relayout_state_dict({k: v.detach() for k, v in other.state_dict().items()}, "flat"))
    assert not rep.found and rep.log10_p == 0.0
