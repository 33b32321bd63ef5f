"""One registry idiom (``freqprint.factory``) and a contract test over every entry of every registry:
models, attacks, methods, data sets and executors.  A new entry that breaks its registry's
contract fails here without a test of its own."""

from __future__ import annotations

import json
import operator

import pytest
import torch
from torch import nn

from conftest import small_owner
from freqprint.attacks import ATTACKS, create_attack
from freqprint.data import DATASETS, dataset_names, load_dataset
from freqprint.errors import FreqprintError, InvalidArgument, NotApplicable, UnknownName
from freqprint.executor import EXECUTORS, create_executor, run_jobs
from freqprint.factory import Factory, coerce, parse_spec, split_specs
from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.methods.base import METHODS, Method, create_method
from freqprint.models import MODELS, create_model, default_target, init_law
from freqprint.stats.spectral import count_invariant_frequencies

# --- the idiom ------------------------------------------------------------------------------------


def test_a_factory_registers_once_builds_checked_and_parses_one_grammar():
    f: Factory = Factory("widget")

    @f.register("box", colour="red")
    def box(size: int = 1, deep: bool = False, scale: float | None = None, label: str = "x") -> tuple:
        return size, deep, scale, label

    with pytest.raises(ValueError, match="already registered"):
        f.add("box", box)
    f.add("box", box, replace=True, colour="blue")
    assert f.info("box") == {"colour": "blue"} and "box" in f and list(f) == ["box"] and f["box"] is box
    with pytest.raises(UnknownName, match="unknown widget 'bag'; known: box") as e:
        f["bag"]
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError) and str(e.value).startswith("unknown widget")
    assert f.build_spec("box(size=3, deep=yes, scale=none, label=big)") == (3, True, None, "big")
    assert f.build_spec("box") == (1, False, None, "x")
    for bad, why in (
        ("box(size=3.5)", "not a valid int"),
        ("box(deep=maybe)", "not a valid bool"),
        ("box(colour=1)", "takes no"),
        ("box(size)", "not key=value"),
        ("box(size=1,size=2)", "twice"),
        ("box(", "cannot parse"),
    ):
        with pytest.raises(InvalidArgument, match=why):
            f.build_spec(bad)
    ran = []
    f.add("logged", lambda n: ran.append(n))
    with pytest.raises(InvalidArgument, match="bad arguments"):
        f.build("logged", m=1)
    assert ran == []  # refused before the builder ran
    f.add("lazy", "operator:add")  # imported on first use
    assert f["lazy"] is operator.add and f["lazy"](2, 3) == 5


def test_spec_helpers():
    assert parse_spec("rs(sigma=0.05, trigger-count=8)") == ("rs", {"sigma": "0.05", "trigger_count": "8"})
    assert split_specs("ours, rs(sigma=0.05,draws=3) ,cka") == ["ours", "rs(sigma=0.05,draws=3)", "cka"]
    assert coerce("7", int | None, "k", "w") == 7 and coerce("none", int | None, "k", "w") is None
    assert coerce("anything", list, "k", "w") == "anything"  # other types: the builder parses the string


# --- models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name):
    """Every model builds from its example, answers finite outputs, declares its init law, and its
    default target (when it has one) is a conv the fingerprint module attaches to."""
    kwargs, shape = MODELS.info(name)["example"]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    x = torch.rand(2, *shape)
    y = model(x)
    assert y.shape[0] == 2 and bool(torch.isfinite(y).all())
    assert init_law(name) in ("torch-default", "kaiming-normal-fan-out", None)
    target = default_target(name)
    if target:
        assert isinstance(model.get_submodule(target), nn.Conv2d)
        attach(model, FingerprintConfig(target=target, secret="contract", filters=64), x[:1])
        assert model(x).shape == y.shape
    with pytest.raises(InvalidArgument):
        create_model(name, no_such_argument=1)


# --- attacks --------------------------------------------------------------------------------------

TRAINING = "epochs=1,data=fashion-mnist"
ATTACK_SPECS = {  # every registered attack, with the arguments a small test run needs
    "finetune": f"finetune({TRAINING})",
    "distill": f"distill({TRAINING})",
    "scale-blocks": "scale-blocks",
    "permute-blocks": "permute-blocks",
    "scale-module": "scale-module",
    "permute-module": "permute-module",
    "overwrite": "overwrite",
    "remove-module": "remove-module",
    "prune": "prune(rate=0.3)",
    "quantize": "quantize(bits=8)",
    "scale-channels": "scale-channels",
    "pad-channels": "pad-channels",
    "dummy-filters": "dummy-filters",
    "mix-filters": "mix-filters",
    "collapse": "collapse",
    "redraw-nullspace": "redraw-nullspace",
    "redraw-invisible": "redraw-invisible",
    "noise-backbone": "noise-backbone",
    "factorize": "factorize(sides=2)",
    "widen": "widen(noise=3)",
    "separate": "separate(seed=1)",
    "space-to-depth": "space-to-depth",
    "grid-transpose": "grid-transpose",
    "rotate-residual": "rotate-residual",
    "rotate-decoder": "rotate-decoder(seed=1,mode=full)",
    "permute-decoder": "permute-decoder(seed=1)",
    "scale-norms": "scale-norms(seed=1,spread=2)",
}


def test_every_attack_has_a_contract_example():
    assert set(ATTACK_SPECS) == set(ATTACKS)


@pytest.fixture(scope="module")
def victim():
    return small_owner("contract")


@pytest.mark.parametrize("name", sorted(ATTACK_SPECS))
def test_attack_contract(name, victim, fashion_dir):
    """Every attack is built from a spec, leaves its input untouched, and returns another model
    that still answers the task, or says it does not apply to this model."""
    model, recipe = victim
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attack = create_attack(ATTACK_SPECS[name], data_root=fashion_dir, recipe=recipe, limit=200)
    assert attack.name == name
    try:
        out = attack(model)
    except NotApplicable:
        return
    assert isinstance(out, nn.Module) and out is not model
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), f"{name} changed its input"
    y = out.eval()(torch.rand(2, 1, 28, 28))
    assert y.shape[0] == 2 and bool(torch.isfinite(y).all())
    with pytest.raises(InvalidArgument, match="takes no argument"):
        create_attack(f"{name}(no-such-argument=1)", recipe=recipe)


# --- methods --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(name):
    """Every tracing method builds with its defaults, follows the Method protocol under its
    registered name, and describes itself in JSON."""
    m = create_method(name)
    assert isinstance(m, Method) and m.name == name
    assert isinstance(m.embeds, bool) and isinstance(m.fixed_thresholds, dict)
    json.dumps(m.config())


# --- data sets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_contract(name, tmp_path):
    """Every data set loads (a shipped one anywhere), or is refused with one error, when its
    files are not where it is pointed: a loader that finds its data at the packaged default
    location falls back to it.  Aliases name a listed data set."""
    info = DATASETS.info(name)
    if "alias_of" in info:
        assert info["alias_of"] in dataset_names() and name not in dataset_names()
    if info.get("shipped"):
        ds = load_dataset(name, "test")
        assert len(ds) > 0 and ds.num_classes >= 2 and ds.images.dtype == torch.float32
        return
    try:
        ds = load_dataset(name, "test", root=tmp_path / "nothing-here")
    except FreqprintError:
        return
    assert len(ds) > 0 and ds.images.dtype == torch.float32 and ds.num_classes >= 2


# --- executors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_executor_contract(name):
    """Every executor runs jobs and returns their results in job order."""
    needs = EXECUTORS.info(name).get("needs")
    if needs:
        pytest.importorskip(needs)
    with create_executor(name, workers=1) as ex:
        # a library function (any worker imports it): |S′| on a 28×28 grid for K = 2..5
        assert run_jobs(ex, count_invariant_frequencies, [(k,) for k in range(2, 6)], shared=(28, 28)) == [55, 108, 159, 208]
