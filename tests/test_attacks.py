"""Each attack does what it says; function-preserving ones leave outputs and the score unchanged."""

from __future__ import annotations

import copy

import pytest
import torch

from freqprint import FingerprintConfig, FreqprintError, add_pseudo_class, attach, create_model, extract, verify
from freqprint.attacks import (
    BlockPermutation,
    BlockScaling,
    Compose,
    Distill,
    FineTune,
    ModulePermutation,
    ModuleScaling,
    Overwrite,
    Prune,
    Quantize,
    RemoveModule,
    conv_pairs,
    create_attack,
)
from freqprint.data import load_dataset
from freqprint.fingerprint import find_fingerprint_modules

ARCHS = {
    "smallcnn": ({"num_classes": 10, "in_channels": 1, "width": 8}, "conv2", (1, 28, 28)),
    "resnet18": ({"num_classes": 10, "in_channels": 3, "width": 0.125}, "layer1.1.conv2", (3, 32, 32)),
    "alexnet": ({"num_classes": 10, "in_channels": 3, "width": 0.125}, "conv3", (3, 32, 32)),
}


def victim(arch: str = "smallcnn", filters: int = 32):
    kwargs, target, shape = ARCHS[arch]
    torch.manual_seed(0)
    model = create_model(arch, **kwargs)
    attach(model, FingerprintConfig(target=target, secret="owner", filters=filters), torch.zeros(1, *shape))
    add_pseudo_class(model)
    model.train()
    with torch.no_grad():  # give BatchNorm real running statistics
        for _ in range(5):
            model(torch.rand(32, *shape) * 2)
    return model.eval(), torch.rand(6, *shape)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_function_preserving_attacks_keep_outputs_and_score(arch):
    model, x = victim(arch)
    ref = model(x)
    key = extract(model)
    before = copy.deepcopy(model.state_dict())
    assert conv_pairs(model)
    for attack in (
        BlockScaling(seed=1),
        BlockPermutation(seed=2),
        ModuleScaling(10.0),
        ModuleScaling(100.0),
        ModulePermutation(seed=3),
        Compose([BlockPermutation(seed=4), BlockScaling(seed=5), ModulePermutation(seed=6)]),
    ):
        out = attack(model)
        torch.testing.assert_close(out(x), ref, rtol=1e-4, atol=1e-4, msg=lambda m: f"{attack}: {m}")
        rep = verify(key, out)
        assert rep.found and rep.score == pytest.approx(1.0), (attack, rep.summary())
    for k, v in model.state_dict().items():  # the victim itself is untouched
        torch.testing.assert_close(v, before[k])


def test_block_attacks_really_change_weights():
    model, _ = victim("resnet18")
    out = Compose([BlockPermutation(seed=1), BlockScaling(seed=1)])(model)
    w0, w1 = model.layer1[0].conv1.weight, out.layer1[0].conv1.weight
    assert not torch.allclose(w0, w1)
    ratio = w1.norm() / w0.norm()
    assert not torch.isclose(ratio, torch.tensor(1.0), atol=1e-3)
    # the module's input channels follow the permutation of the block's first conv
    fp0, fp1 = model.layer1[1].conv2.fingerprint.weight, out.layer1[1].conv2.fingerprint.weight
    assert not torch.allclose(fp0, fp1) and torch.allclose(fp0.norm(), fp1.norm())


@pytest.mark.parametrize("kind", ["spectral", "weights"])
def test_overwrite_noise_has_half_the_weight_norm(kind):
    model, _ = victim()
    out = Overwrite(kind=kind, scale=0.5, seed=1)(model)
    w0, w1 = model.conv2.fingerprint.weight, out.conv2.fingerprint.weight
    assert float((w1 - w0).detach().norm() / w0.detach().norm()) == pytest.approx(0.5, rel=1e-5)


def test_overwrite_replace_erases_the_fingerprint():
    model, _ = victim()
    key = extract(model)
    out = Overwrite(kind="replace", seed=1)(model)
    rep = verify(key, out)
    assert not rep.found and rep.score == 0.0
    with pytest.raises(FreqprintError, match="overwrite kind"):
        Overwrite(kind="zap")(model)


def test_remove_module_and_recipe():
    model, x = victim()
    key = extract(model)
    attack = RemoveModule()
    out = attack(model)
    assert find_fingerprint_modules(out) == [] and out(x).shape == model(x).shape
    assert attack.update_recipe({"model": "smallcnn", "fingerprint": {"target": "conv2"}})["fingerprint"] is None
    rep = verify(key, out)  # the other convs with 8 input channels are searched; none carries it
    assert not rep.found and rep.layers_searched >= 2


def test_pruning_rates():
    model, _ = victim()
    out = Prune(kind="unstructured", rate=0.5)(model)
    from freqprint.attacks.compress import prunable_weights

    ws = [w for _, w in prunable_weights(out)]
    zero = sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)
    assert zero == pytest.approx(0.5, abs=0.01)
    out = Prune(kind="structured", rate=0.25)(model)
    w = out.conv2.fingerprint.weight
    assert int((w.reshape(32, -1).abs().sum(1) == 0).sum()) == 8


def test_int8_quantization_keeps_the_fingerprint():
    model, _ = victim()
    key = extract(model)
    out = Quantize(bits=8)(model)
    w = out.conv2.fingerprint.weight
    assert all(len(torch.unique(w[d])) <= 255 for d in range(w.shape[0]))
    assert (w - model.conv2.fingerprint.weight).norm() / w.norm() < 0.01
    assert verify(key, out).found


@pytest.fixture(scope="module")
def synthetic(fashion_dir):
    return load_dataset("fashion-mnist", "train", root=fashion_dir, limit=512)


def test_finetune_variants(synthetic):
    model, _ = victim()
    fp0 = model.conv2.fingerprint.weight.detach().clone()
    full = FineTune(data=synthetic, lr=0.05, epochs=1, batch_size=64)(model)
    assert not torch.allclose(full.conv1.weight, model.conv1.weight)
    last = FineTune(data=synthetic, lr=0.05, epochs=1, layers="last", batch_size=64)(model)
    torch.testing.assert_close(last.conv1.weight, model.conv1.weight)
    torch.testing.assert_close(last.conv2.fingerprint.weight, fp0)
    assert not torch.allclose(last.fc.weight, model.fc.weight[: last.fc.weight.shape[0]])
    rep = FineTune(data=synthetic, lr=0.05, epochs=1, head="replace", batch_size=64)
    new = rep(model)
    assert new.fc.out_features == 10 and rep.update_recipe({"kwargs": {"num_classes": 10}})["pseudo_class"] is False
    adam = FineTune(data=synthetic, lr=1e-3, epochs=1, optimizer="adam", batch_size=64)(model)
    assert not torch.allclose(adam.conv2.fingerprint.weight, fp0)


def test_lora_finetune_changes_weights_in_low_rank(synthetic):
    model, _ = victim()
    out = FineTune(data=synthetic, lr=0.05, epochs=1, lora_rank=2, batch_size=64)(model)
    delta = (out.conv3.weight - model.conv3.weight).reshape(out.conv3.weight.shape[0], -1)
    s = torch.linalg.svdvals(delta)
    assert s[0] > 0 and s[2] < 1e-5 * s[0]  # rank <= 2
    torch.testing.assert_close(out.conv2.fingerprint.weight, model.conv2.fingerprint.weight)  # not adapted
    assert "conv3.weight" in out.state_dict() and not any("parametrizations" in k for k in out.state_dict())


def test_distillation_into_a_fresh_student(synthetic):
    model, _ = victim()
    key = extract(model)
    recipe = {
        "model": "smallcnn",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": 8},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "pseudo_class": False,
        "fingerprint": None,
    }
    student = Distill(data=synthetic, student_recipe=recipe, epochs=1, batch_size=64)(model)
    assert find_fingerprint_modules(student) == [] and student.fc.out_features == 10
    assert not verify(key, student).found


def test_create_attack_from_strings(fashion_dir):
    a = create_attack("finetune(lr=0.1,epochs=2,head=replace,data=fashion-mnist)", data_root=fashion_dir)
    assert isinstance(a, FineTune) and a.lr == 0.1 and a.epochs == 2 and len(a.data) == 1200
    assert create_attack("prune(kind=structured,rate=0.3,include-module=false)").include_module is False
    recipe = {
        "model": "smallcnn",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": 8},
        "fingerprint": {"target": "conv2"},
    }
    d = create_attack("distill(student=resnet18,epochs=1)", recipe=recipe)
    assert d.student_recipe["model"] == "resnet18" and d.student_recipe["fingerprint"] is None
    for bad, msg in [
        ("zap", "unknown attack"),
        ("prune(speed=3)", "no argument"),
        ("prune(rate=lots)", "valid float"),
        ("prune(rate)", "key=value"),
        ("prune(include-module=maybe)", "valid bool"),
    ]:
        with pytest.raises(FreqprintError, match=msg):
            create_attack(bad)


def test_attack_bench_runs_the_whole_suite(fashion_dir, digits_dir, tmp_path):
    from freqprint import save_model
    from freqprint.training import TrainConfig, train
    from freqprint_bench.core import ATTACK_SUITE, attack_bench_markdown, run_attack_bench

    model, _ = victim("smallcnn")
    data = load_dataset("fashion-mnist", "train", root=fashion_dir)
    train(model, data, TrainConfig(epochs=1, lr=0.05, batch_size=64), progress=False)
    recipe = {
        "model": "smallcnn",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": 8},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "pseudo_class": True,
        "fingerprint": {"target": "conv2", "filters": 32},
    }
    path = save_model(model, tmp_path / "src.safetensors", recipe)
    from freqprint.verification.backbone import OwnerInit

    owner = OwnerInit("smallcnn", recipe["kwargs"], 0, True)  # victim() seeds the backbone with 0
    res = run_attack_bench(
        {"tiny": str(path)},
        data_root=str(fashion_dir),
        target_root=str(digits_dir),
        limit=None,
        owners={"tiny": owner},
        log=lambda m: None,
    )
    rows = {r["attack"]: r for r in res["results"]}
    assert len(rows) == len(ATTACK_SUITE)
    for label in (
        "none",
        "module scaling a=100 (Table 5)",
        "module filter permutation (Table 6)",
        "block permutation + scaling",
        "int8 quantization",
        "fine-tune SGD lr 0.01 (Table 4)",
    ):
        assert rows[label]["found"], (label, rows[label])
    assert not rows["overwrite: replacement"]["found"] and not rows["module removal"]["found"]
    for label in (
        "per-input-channel scaling, s_c in [0.1, 10]",
        "dead input channels added (+8)",
        "dummy filters added (+256)",
        "redraw the invisible directions",
    ):  # the knowing thief's free rewrites
        assert rows[label]["found"], (label, rows[label])
    assert "not_applicable" in rows["collapse to P·W (linear merge only)"]  # the default ReLU merge has no collapse
    assert rows["none"]["accuracy"] > 0.3
    # the second channel: the backbone still carries θ₀ when the module is gone
    for label in ("module removal", "module removal, then fine-tune lr 0.01", "replacement, then fine-tune lr 0.1"):
        assert rows[label]["lineage_found"] and rows[label]["combined_found"], (label, rows[label])
    # Distill seeds its student with 0, the victim's own *public* seed: the two share θ₀ and lineage
    # says so (why `freqprint embed` seeds from the secret; docs/security.md)
    assert rows["distillation into a fresh student (same arch, no module)"]["lineage_found"]
    md = attack_bench_markdown(res)  # every attack is a row of the report (its layout is the report's business)
    assert "**combined**" in md and all(f"| {label} |" in md for label in rows), md
