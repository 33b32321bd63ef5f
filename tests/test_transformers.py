"""The fingerprint on Hugging Face Transformer layers: tiny random ViT and BERT built in the test
(no network), the Trainer integration, and the benchmark end to end on small files.  Skipped, not
failed, where ``transformers`` is not installed."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import run

transformers = pytest.importorskip("transformers")
from transformers import BertConfig, BertForSequenceClassification, ViTConfig, ViTForImageClassification  # noqa: E402

from freqprint.attacks import (  # noqa: E402
    GridTranspose,
    ModulePermutation,
    ModuleScaling,
    Overwrite,
    RemoveModule,
    create_attack,
    relayout_state_dict,
)
from freqprint.errors import FreqprintError  # noqa: E402
from freqprint.fingerprint import FingerprintConfig, FingerprintedTokens, attach, detach, find_fingerprint_modules  # noqa: E402
from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class  # noqa: E402
from freqprint.hf import FingerprintTrainer, default_prefix_tokens, load_text_classifier, replace_classifier, transformer_layers  # noqa: E402
from freqprint.models import create_model  # noqa: E402
from freqprint.verification.key import extract  # noqa: E402
from freqprint.verification.verifier import verify  # noqa: E402
from test_hosts import write_fortunes  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Hugging Face models (tiny, random, built in the test: nothing is downloaded)


def tiny_vit(seed: int = 0, patch: int = 4) -> ViTForImageClassification:
    torch.manual_seed(seed)
    return ViTForImageClassification(
        ViTConfig(
            image_size=28,
            patch_size=patch,
            num_channels=1,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=10,
        )
    ).eval()


def tiny_bert(seed: int = 0, vocab: int = 120) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=3,
            max_position_embeddings=64,
        )
    ).eval()


def fingerprinted_vit(secret: str, seed: int = 0) -> tuple[ViTForImageClassification, torch.Tensor]:
    m = tiny_vit(seed)
    x = torch.rand(2, 1, 28, 28)
    attach(
        m,
        FingerprintConfig(target=transformer_layers(m)[0], secret=secret, filters=256, prefix_tokens=default_prefix_tokens(m)),
        {"pixel_values": x},
    )
    return m, x


def test_vit_attach_lays_patch_tokens_on_the_grid_and_leaves_the_class_token():
    m, x = fingerprinted_vit("vit owner")
    name = transformer_layers(m)[0]
    wrapper = m.get_submodule(name)
    assert isinstance(wrapper, FingerprintedTokens) and wrapper.prefix == 1
    assert wrapper.fingerprint.grid_size == (7, 7) and wrapper.fingerprint.in_channels == 32
    assert f"{name}.fingerprint.weight" in m.state_dict() and f"{name}.base.attention.q_proj.weight" in m.state_dict()
    h = torch.randn(3, 50, 32)
    with torch.no_grad():
        base, full = wrapper.base(h), wrapper(h)
        z = wrapper.fingerprint(wrapper.module_input(h))  # [B, H, 7, 7]
    assert torch.equal(full[:, 0], base[:, 0])  # the class token is left alone
    expect = base[:, 1:] + z.permute(0, 2, 3, 1).reshape(3, 49, 32)
    assert torch.allclose(full[:, 1:], expect, atol=1e-6)
    # row-major: token 1 + 7·i + j is grid cell (i, j)
    assert torch.equal(wrapper.module_input(h)[:, :, 2, 3], h[:, 1 + 7 * 2 + 3])
    with pytest.raises(FreqprintError, match="do not fit"):
        wrapper(torch.randn(1, 51, 32))
    assert m(pixel_values=x).logits.shape == (2, 10)


def test_vit_verify_attacks_and_an_independent_model():
    owner, _ = fingerprinted_vit("vit owner")
    key = extract(owner)
    assert key.grid == (7, 7) and key.channels == 32
    assert verify(key, owner).found
    other, _ = fingerprinted_vit("someone else", seed=1)
    rep = verify(key, other)
    assert not rep.found and rep.log10_p > -3
    for attack in (
        ModulePermutation(seed=3),
        ModuleScaling(a=10.0),
        ModuleScaling(a=0.1),
        GridTranspose(),
        create_attack("dummy-filters(extra=64)"),
    ):
        assert verify(key, attack(owner)).found, attack.name
    sd = {k: v.detach() for k, v in owner.state_dict().items()}
    for layout in ("HWIO", "flat", "bf16", "rot90"):
        assert verify(key, relayout_state_dict(sd, layout)).found, layout
    assert not verify(key, Overwrite(kind="replace", seed=5)(owner)).found
    gone = verify(key, RemoveModule()(owner))  # nothing module-shaped left: a verdict, not a refusal
    assert not gone.found and gone.layers_searched == 0


def test_residual_stream_permutation_is_covered_by_the_channel_search():
    """A thief permutes the hidden units of the whole residual stream (LayerNorm allows no other
    mixing): the module's input channels and its outputs are permuted with it."""
    owner, _ = fingerprinted_vit("vit owner")
    key = extract(owner)
    perm = torch.randperm(32, generator=torch.Generator().manual_seed(4))
    sd = {k: v.detach().clone() for k, v in owner.state_dict().items()}
    w = sd[f"{transformer_layers(owner)[0]}.fingerprint.weight"]
    sd[f"{transformer_layers(owner)[0]}.fingerprint.weight"] = w[:, perm]
    rep = verify(key, sd)
    assert rep.found and rep.channels_permuted


def test_residual_rotation_is_exact_and_the_rotated_channel_test_finds_it():
    from freqprint.attacks import ResidualRotation

    owner, x = fingerprinted_vit("vit owner")
    with torch.no_grad():
        owner.vit.layers[0].fingerprint.proj.weight.mul_(30)  # a module that matters to the output
        for n, p in owner.named_parameters():
            if "layernorm" in n:  # LayerNorm scales that are not 1, so folding them matters
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))))
    key = extract(owner)
    stolen = ResidualRotation(seed=1)(owner)
    assert torch.allclose(owner(pixel_values=x).logits, stolen(pixel_values=x).logits, atol=1e-5)
    w0, w1 = owner.vit.layers[0].fingerprint.weight, stolen.vit.layers[0].fingerprint.weight
    assert (w0 - w1).norm() > 0.5 * w0.norm()  # the stored kernels really are mixed
    rep = verify(key, stolen)
    assert rep.found and rep.block.endswith("+rotation") and rep.mean_cosine > 0.99
    assert min(rep.log10_p_blocks.values()) > -3  # the permuted-channel test alone does not find it
    # composed with the module's own symmetries and a relayout
    sd = {k: v.detach() for k, v in ModulePermutation(seed=2)(ModuleScaling(a=3.0)(stolen)).state_dict().items()}
    assert verify(key, relayout_state_dict(sd, "HWIO")).found
    with pytest.raises(Exception, match="ViTForImageClassification"):
        ResidualRotation()(tiny_bert())


def test_bert_padding_lengths_and_masks():
    m = tiny_bert()
    ids = torch.randint(5, 120, (2, 10))
    am = torch.ones(2, 10, dtype=torch.long)
    am[1, 7:] = 0
    fp = attach(
        m, FingerprintConfig(target="bert.encoder.layer.0", secret="bert owner"), {"input_ids": ids, "attention_mask": am}
    )
    assert fp.grid_size == (4, 4) and default_prefix_tokens(m) == 0  # 10 tokens: the smallest square holding them
    with torch.no_grad():
        m.bert.encoder.layer[0].fingerprint.proj.weight.mul_(50)
        y = m(input_ids=ids, attention_mask=am).logits
        # more padding: the same logits (masked tokens are zeroed before the module reads them)
        ids2, am2 = (
            torch.cat([ids, torch.zeros(2, 6, dtype=torch.long)], 1),
            torch.cat([am, torch.zeros(2, 6, dtype=torch.long)], 1),
        )
        assert torch.allclose(m(input_ids=ids2, attention_mask=am2).logits, y, atol=1e-5)
        # shorter sequences are zero-padded onto the grid; longer ones are refused
        assert m(input_ids=ids[:, :5]).logits.shape == (2, 3)
        with pytest.raises(FreqprintError, match="do not fit"):
            m(input_ids=torch.randint(5, 120, (1, 17)))
        # the module reads the mask: garbage in the padded positions does not change the output
        ids3 = ids.clone()
        ids3[1, 7:] = 99
        assert torch.allclose(m(input_ids=ids3, attention_mask=am).logits, y, atol=1e-5)


def test_deepcopy_keeps_the_mask_hook_on_the_copy_and_detach_removes_it():
    m = tiny_bert()
    ids = torch.randint(5, 120, (2, 9))
    attach(m, FingerprintConfig(target="bert.encoder.layer.1", secret="s"), {"input_ids": ids})
    c = copy.deepcopy(m)
    am = torch.ones(2, 9, dtype=torch.long)
    c(input_ids=ids, attention_mask=am)
    assert c.bert.encoder.layer[1]._mask is not None and m.bert.encoder.layer[1]._mask is None
    detach(c)
    assert not find_fingerprint_modules(c) and len(c._forward_pre_hooks) == 0 and len(m._forward_pre_hooks) == 1
    assert m(input_ids=ids).logits.shape == (2, 3)


def test_trainer_integration_trains_with_l_attack_and_the_fingerprint_survives(tmp_path):
    from transformers import TrainingArguments

    m = tiny_bert()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 120, (96, 16), generator=g)
    y = (ids[:, 1] % 3).long()
    am = torch.ones_like(ids)
    attach(
        m, FingerprintConfig(target="bert.encoder.layer.0", secret="trainer"), {"input_ids": ids[:2], "attention_mask": am[:2]}
    )
    add_pseudo_class(m)
    key = extract(m)

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids)

        def __getitem__(self, i):
            return {"input_ids": ids[i], "attention_mask": am[i], "labels": y[i]}

    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_train_epochs=2,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    before = {k: v.clone() for k, v in m.state_dict().items()}
    trainer = FingerprintTrainer(model=m, args=args, train_dataset=Data(), fingerprint_loss=FingerprintLoss(3, weight=0.5))
    trainer.train()
    assert len(trainer.fingerprint_parts) == 12 and all(p["attack"] > 0 for p in trainer.fingerprint_parts)
    moved = [k for k, v in m.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any("fingerprint.proj" in k for k in moved) and any("classifier" in k for k in moved)
    rep = verify(key, m)
    assert rep.found and rep.mean_cosine > 0.9
    # a thief's new head: no pseudo class, the fingerprint still there; and the module's own rewrites
    m.eval()  # the Trainer leaves it in training mode (dropout)
    replace_classifier(m, 5)
    assert m(input_ids=ids[:2]).logits.shape == (2, 5) and verify(key, m).found
    for attack in (ModulePermutation(seed=1), ModuleScaling(a=0.2), GridTranspose()):
        stolen = attack(m)
        assert torch.allclose(
            stolen(input_ids=ids[:4], attention_mask=am[:4]).logits, m(input_ids=ids[:4], attention_mask=am[:4]).logits, atol=1e-4
        ), attack.name
        assert verify(key, stolen).found, attack.name


def test_safetensors_file_and_cli_verify_on_a_bert(tmp_path, monkeypatch, capsys):
    m = tiny_bert()
    attach(m, FingerprintConfig(target="bert.encoder.layer.1", secret="file"), {"input_ids": torch.randint(5, 120, (1, 25))})
    path = tmp_path / "bert.safetensors"
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    code, out, err = run(["extract", path, "--out", tmp_path / "bert.key", "--secret", "file"], monkeypatch, capsys)
    assert code == 0, err
    code, out, err = run(["verify", tmp_path / "bert.key", path], monkeypatch, capsys)
    assert code == 0 and "FOUND" in out and "key without W₀" not in out  # anchored to the secret's W₀
    code, out, err = run(["extract", path, "--out", tmp_path / "x.key", "--secret", "not the owner"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: the secret does not seed the module")
    other = tiny_bert(seed=3)
    attach(other, FingerprintConfig(target="bert.encoder.layer.1", secret="other"), {"input_ids": torch.randint(5, 120, (1, 25))})
    save_file({k: v.detach().contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "other.safetensors"))
    code, out, err = run(["verify", tmp_path / "bert.key", tmp_path / "other.safetensors"], monkeypatch, capsys)
    assert code == 1 and "not found" in out


def test_token_config_round_trips_through_a_recipe():
    cfg = FingerprintConfig(target="vit.layers.1", secret="s", prefix_tokens=1, token_grid=(7, 7))
    again = FingerprintConfig(**json.loads(json.dumps(cfg.to_dict())))
    assert again.token_grid == (7, 7) and again.prefix_tokens == 1 and again.secret is None
    with pytest.raises(FreqprintError, match="prefix_tokens"):
        FingerprintConfig(target="x", prefix_tokens=-1)


def test_attach_errors_on_transformers():
    m = tiny_bert()
    ids = {"input_ids": torch.randint(5, 120, (1, 9))}
    with pytest.raises(FreqprintError, match="Transformer layers are: bert.encoder.layer.0"):
        attach(m, FingerprintConfig(target="bert.encoder.layer.9", secret="s"), ids)
    with pytest.raises(FreqprintError, match="not an nn.Conv2d, nor a layer mapping tokens"):
        attach(m, FingerprintConfig(target="bert.encoder.layer.0.intermediate.dense", secret="s"), ids)
    attach(m, FingerprintConfig(target="bert.encoder.layer.0", secret="s"), ids)
    with pytest.raises(FreqprintError, match="already carries"):
        attach(m, FingerprintConfig(target="bert.encoder.layer.0", secret="s"), ids)
    with pytest.raises(FreqprintError, match="Transformer layers only"):
        attach(
            create_model("smallcnn", num_classes=10, in_channels=1, width=32),
            FingerprintConfig(target="conv2", secret="s", prefix_tokens=1),
            torch.rand(1, 1, 28, 28),
        )


def write_bert_folder(path: Path) -> Path:
    """A tiny random BERT and its WordPiece tokenizer, saved as a Hugging Face model folder."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
        set(
            "kernel compiler byte mother friend neighbour senate vote party atom quantum cell number de it es satz über ñ".split()
            + [str(i) for i in range(40)]
        )
    )
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(str(path))
    tiny_bert(vocab=len(vocab)).save_pretrained(str(path))
    return path


def test_load_text_classifier_reads_a_local_folder_only(tmp_path):
    folder = write_bert_folder(tmp_path / "bert")
    model, tok = load_text_classifier(folder, num_labels=4)
    assert model.classifier.out_features == 4 and tok("atom vote")["input_ids"][0] == tok.cls_token_id
    with pytest.raises(FreqprintError, match="not a Hugging Face model folder"):
        load_text_classifier(tmp_path, 4)


def test_bench_transformers_end_to_end_on_small_files(tmp_path, fashion_dir, digits_dir, monkeypatch, capsys):
    data = tmp_path / "data"
    shutil.copytree(fashion_dir, data)
    shutil.copytree(digits_dir / "src", data / "src")
    (tmp_path / "fortunes").mkdir()
    fortunes = write_fortunes(tmp_path / "fortunes")
    folder = write_bert_folder(tmp_path / "bert")
    out = tmp_path / "t.json"
    args = [
        "bench",
        "transformers",
        "--family",
        "vit",
        "--family",
        "bert",
        "--family",
        "resnet50",
        "--data-root",
        data,
        "--fortunes-root",
        fortunes,
        "--bert-folder",
        folder,
        "--out",
        out,
    ]
    from freqprint_bench import transformers as bt

    small = bt.TransformersProfile(
        vit_patches=(7,),
        vit_hidden=32,
        vit_depth=2,
        vit_heads=2,
        vit_train=128,
        vit_epochs=1,
        digits_train=128,
        test_limit=64,
        bert_per_class=20,
        bert_epochs=1,
        bert_max_length=16,
        resnet_width=0.125,
        resnet_train=128,
        resnet_epochs=1,
        lrs=(1e-2, 1e-4),
        adam_lrs=(1e-4,),
        batch=32,
    )
    monkeypatch.setitem(bt.PROFILES, "tiny", small)
    code, stdout, err = run([*args, "--profile", "tiny"], monkeypatch, capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert [r["family"] for r in res["results"]] == ["vit", "bert", "resnet50"]
    assert [r["grid"] for r in res["results"]] == ["4x4", "4x4", "28x28"]
    for r in res["results"]:
        assert [(x["optimizer"], x["lr"]) for x in r["finetuned"]] == [("sgd", 1e-2), ("sgd", 1e-4), ("adamw", 1e-4)]
        assert all(x["found"] and 0 <= x["tau_score"] <= 1 for x in r["finetuned"])
        assert not r["independent"]["found"]
    assert "Table A" in stdout and "Table B" in stdout and "| ResNet-50 (CIFAR-100) | — | paper | 0.823 | 0.938 |" in stdout
    code, _, err = run([*args[:-2], "--out", out, "--profile", "nope"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: unknown profile")
