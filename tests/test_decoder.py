"""The fingerprint on a causal decoder (a tiny random-init Llama built in the test: nothing is
downloaded): each token's features on their own grid, causality, incremental decoding, the
next-token loss with L_attack, GGUF exports, and the negatives of the same config.  Skipped,
not failed, where ``transformers`` is not installed."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import run

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from freqprint.attacks import ModulePermutation, ModuleScaling, RemoveModule  # noqa: E402
from freqprint.errors import FreqprintError, InvalidArgument  # noqa: E402
from freqprint.fingerprint import (  # noqa: E402
    CausalLMFingerprintLoss,
    FingerprintConfig,
    FingerprintedFeatures,
    attach,
    detach,
    feature_grid,
    is_causal_lm,
)
from freqprint.io.gguf import read_header, save_gguf  # noqa: E402
from freqprint.verification.key import extract  # noqa: E402
from freqprint.verification.verifier import verify  # noqa: E402

VOCAB, LENGTH = 96, 16


def tiny_llama(seed: int = 0, hidden: int = 128) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(cfg).eval()


def ids(seed: int = 0, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, LENGTH), generator=torch.Generator().manual_seed(seed))


def fingerprinted(secret: str = "owner", seed: int = 0, filters: int = 64) -> LlamaForCausalLM:
    model = tiny_llama(seed)
    attach(model, FingerprintConfig(target="model.layers.1", secret=secret, filters=filters), {"input_ids": ids()})
    with torch.no_grad():
        model.model.layers[1].fingerprint.proj.weight.mul_(20)  # a module that matters to the output
    return model


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def test_a_causal_lm_gets_the_features_layout_and_the_grid_divides_the_width():
    model = fingerprinted()
    assert is_causal_lm(model)
    wrapper = model.model.layers[1]
    assert isinstance(wrapper, FingerprintedFeatures)
    assert tuple(wrapper.fingerprint.weight.shape) == (64, 8, 3, 3) and wrapper.fingerprint.grid_size == (4, 4)  # 128 = 8·4·4
    assert feature_grid(576) == (36, 4, 4)  # SmolLM2
    assert feature_grid(576, (6, 6)) == (16, 6, 6)
    with pytest.raises(FreqprintError, match="does not divide"):
        feature_grid(576, (5, 5))
    with pytest.raises(FreqprintError, match="no square factor"):
        feature_grid(2 * 3 * 5 * 7)
    with pytest.raises(InvalidArgument):
        FingerprintConfig(target="x", layout="tokens", feature_grid=(4, 4))
    with pytest.raises(InvalidArgument):
        FingerprintConfig(target="x", layout="diagonal")
    with pytest.raises(FreqprintError, match="causal decoder"):
        attach(tiny_llama(), FingerprintConfig(target="model.layers.0", token_grid=(4, 4)), {"input_ids": ids()})


def test_no_output_depends_on_a_later_token_and_the_module_matters():
    model = fingerprinted()
    x = ids()
    y = ids(1)
    y[:, :9] = x[:, :9]  # the same first 9 tokens, different later ones
    with torch.no_grad():
        a, b = model(input_ids=x).logits, model(input_ids=y).logits
        assert torch.equal(a[:, :9], b[:, :9])  # bitwise: nothing after t reaches t
        assert (a[:, 9:] - b[:, 9:]).abs().max() > 1e-3
        plain = RemoveModule()(model)(input_ids=x).logits
        assert (a - plain).abs().max() > 1e-2  # the module changes the function
    # the token-grid layout, forced on the same decoder, is not causal: the reason for the features layout
    forced = tiny_llama()
    attach(forced, FingerprintConfig(target="model.layers.1", secret="s", filters=64, layout="tokens"), {"input_ids": x}, 1.0)
    with torch.no_grad():
        forced.model.layers[1].fingerprint.proj.weight.mul_(20)
        a, b = forced(input_ids=x).logits, forced(input_ids=y).logits
    assert (a[:, :9] - b[:, :9]).abs().max() > 1e-4


@pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated")
def test_incremental_decoding_with_the_cache_equals_the_full_pass():
    model = fingerprinted()
    x = ids(batch=1)
    with torch.no_grad():
        full = model(input_ids=x).logits
        out = model(input_ids=x[:, :10], use_cache=True)
        steps = [out.logits]
        cache = out.past_key_values
        for t in range(10, LENGTH):
            out = model(input_ids=x[:, t : t + 1], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(out.logits)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-4)


def test_next_token_loss_trains_the_decoder_and_the_fingerprint_stays(tmp_path):
    model = fingerprinted()
    key = extract(model, secret="owner")
    crit = CausalLMFingerprintLoss(weight=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    x = ids(2, batch=8)
    mask = torch.ones_like(x)
    mask[0, 12:] = 0
    batch = {"input_ids": x, "attention_mask": mask}
    first = None
    for _ in range(30):
        loss, parts = crit(model, batch, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = parts if first is None else first
    assert parts["ce"] < first["ce"] - 0.5  # it learns the batch
    assert parts["attack"] > 0  # the perturbed pass ran, toward the uniform answer (log V at best)
    assert parts["attack"] >= torch.log(torch.tensor(float(VOCAB))) - 1e-4
    model.eval()
    rep = verify(key, state(model))
    assert rep.found and rep.log10_p < -30, rep.log10_p
    with pytest.raises(FreqprintError, match=r"logits \[B, L, V\]"):
        crit(model, batch, x[:, 0])


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0"])
def test_gguf_exports_of_the_decoder_are_found_and_the_negatives_are_not(tmp_path, qtype, monkeypatch, capsys):
    model = fingerprinted()
    key = extract(model, secret="owner")
    key.save(tmp_path / "owner.key")
    sd = state(model)
    save_gguf(sd, tmp_path / "owner.gguf", qtype)
    code, out, err = run(["verify", tmp_path / "owner.key", tmp_path / "owner.gguf"], monkeypatch, capsys)
    assert code == 0 and "FOUND" in out, err
    flat = {**sd, key.layer: sd[key.layer].reshape(-1)}  # the module's kernels quantized too: 64·8·9 = 144 blocks
    save_gguf(flat, tmp_path / "flat.gguf", qtype)
    assert read_header(tmp_path / "flat.gguf").tensors[key.layer].type_name == qtype
    assert verify(key, tmp_path / "flat.gguf").log10_p < -30
    # the module's own symmetries, then GGUF
    moved = ModulePermutation(seed=3)(ModuleScaling(a=4.0)(model))
    save_gguf(state(moved), tmp_path / "moved.gguf", qtype)
    assert verify(key, tmp_path / "moved.gguf").log10_p < -30
    # negatives of the same config: random init without a module, another owner's module, the
    # owner's model with its module removed
    negatives = {
        "plain": state(tiny_llama(5)),
        "other owner": state(fingerprinted("someone else", seed=6)),
        "removed": state(RemoveModule()(model)),
    }
    for name, neg in negatives.items():
        save_gguf(neg, tmp_path / "neg.gguf", qtype)
        code, out, err = run(["verify", tmp_path / "owner.key", tmp_path / "neg.gguf"], monkeypatch, capsys)
        assert code == 1 and "not found" in out, (name, out, err)


def test_trace_answers_for_a_decoder_trained_elsewhere(tmp_path, monkeypatch, capsys):
    """An owner file freqprint did not write (a Hugging Face state dict): `trace` runs the
    fingerprint channel (the key extracted from the owner's module, or given), and says that
    lineage needs a recipe instead of refusing the owner outright."""
    model = fingerprinted()
    save_file(state(model), str(tmp_path / "owner.safetensors"))
    save_gguf(state(model), tmp_path / "suspect.gguf", "Q8_0")
    save_gguf(state(fingerprinted("someone else", seed=6)), tmp_path / "other.gguf", "Q8_0")
    owner, suspect, other = tmp_path / "owner.safetensors", tmp_path / "suspect.gguf", tmp_path / "other.gguf"
    code, out, err = run(["trace", owner, suspect, "--no-lineage", "--secret", "owner"], monkeypatch, capsys)
    assert code == 0 and "DERIVED" in out, err
    code, out, err = run(["trace", owner, other, "--no-lineage", "--secret", "owner"], monkeypatch, capsys)
    assert code == 1 and "not derived" in out, err
    code, out, err = run(["trace", owner, suspect], monkeypatch, capsys)
    assert code == 2 and "no freqprint recipe" in err and "--no-lineage" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "attack",
    [
        "rotate-decoder(seed=1)",
        "rotate-decoder(seed=2,mode=full)",
        "permute-decoder(seed=1)",
        "scale-norms(seed=1)",
        "compose",
    ],
)
def test_the_decoders_symmetries_are_exact_and_found(attack):
    """The decoder's own group (residual rotation with RMSNorm folded, head and MLP-unit
    permutations, per-channel scaling through RMSNorm): the logits are unchanged and the key
    finds the module.  A rotation the module absorbs mixes its kernels over their channels; any
    other rotation leaves them as they were and is stored beside the module."""
    from freqprint.attacks import Compose, DecoderPermutation, DecoderRotation, NormScaling, RotatedFeatures, create_attack

    model = fingerprinted()
    with torch.no_grad():  # gains away from 1, so that folding them matters
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(len(name)))
    key = extract(model, secret="owner")
    if attack == "compose":
        thief = Compose([NormScaling(seed=2), DecoderPermutation(seed=2), DecoderRotation(seed=3)])
    else:
        thief = create_attack(attack)
    stolen = thief(model)
    x = ids(3)
    with torch.no_grad():
        ref, got = model(input_ids=x).logits, stolen(input_ids=x).logits
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()
    sd = state(stolen)
    same_w = torch.equal(sd[key.layer], state(model)[key.layer])
    rep = verify(key, sd)
    assert rep.found and rep.log10_p < -30, (attack, rep.log10_p)
    if attack.startswith("rotate-decoder(seed=1") or attack == "compose":
        assert not same_w  # the module absorbed the rotation: its kernels are mixed over channels
        assert rep.stage == "rotation" and rep.score is not None and rep.score > 0.95  # the rotated-channel test undid it
    else:
        assert same_w and rep.stage == "diagonal"
    if "full" in attack:
        assert isinstance(stolen.model.layers[1], RotatedFeatures) and "model.layers.1.rotation" in sd
    if attack != "permute-decoder(seed=1)":  # the head was untied: the final norm's gain is in it
        assert not torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"])


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")
def test_lora_merged_and_unmerged_is_found():
    """LoRA through ``peft`` on the attention and MLP projections, trained: the merged model and
    the unmerged PeftModel (its names under ``base_model.model.``, the base layers wrapped) are
    both found; the adapter alone holds no module."""
    peft = pytest.importorskip("peft")

    model = fingerprinted()
    key = extract(model, secret="owner")
    lora = peft.get_peft_model(
        fingerprinted(), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"], lora_dropout=0.0)
    )
    opt = torch.optim.Adam([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    x = ids(1, batch=8)
    first = None
    for _ in range(10):
        loss = lora(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first  # the adapter learned
    unmerged = state(lora)
    assert "base_model.model.model.layers.1.fingerprint.weight" in unmerged
    rep = verify(key, unmerged)
    assert rep.found and rep.log10_p < -30
    assert rep.stage == "diagonal" and rep.fitted == 1  # the key's layer under peft's prefix: decided first
    adapter = {k: v for k, v in unmerged.items() if "lora_" in k}
    assert adapter and not verify(key, adapter).found
    merged = lora.merge_and_unload()
    sd = state(merged)
    assert not any("lora_" in k for k in sd)
    assert not torch.equal(sd["model.layers.0.self_attn.q_proj.weight"], state(model)["model.layers.0.self_attn.q_proj.weight"])
    rep = verify(key, sd)
    assert rep.found and rep.log10_p < -30


def test_decoder_symmetries_refuse_other_models():
    from freqprint.attacks import DecoderRotation
    from freqprint.errors import NotApplicable
    from freqprint.models import create_model

    with pytest.raises(NotApplicable, match="Llama"):
        DecoderRotation()(create_model("smallcnn"))
    with pytest.raises(InvalidArgument, match="mode"):
        DecoderRotation(mode="half")


def test_detach_restores_the_decoder_and_safetensors_verify(tmp_path):
    model = fingerprinted()
    key = extract(model, secret="owner")
    save_file(state(model), str(tmp_path / "m.safetensors"))
    assert verify(key, tmp_path / "m.safetensors").found
    x = ids()
    detach(model)
    assert type(model.model.layers[1]).__name__ == "LlamaDecoderLayer"
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, tiny_llama()(input_ids=x).logits)


def test_fingerprint_trainer_fine_tunes_a_decoder_with_the_next_token_loss(tmp_path):
    """The Hugging Face Trainer with the causal-LM loss: labels are the input ids (what a language
    modelling collator gives), the loss falls, and the key still finds the module."""
    from transformers import TrainingArguments

    from freqprint.hf import FingerprintTrainer

    model = fingerprinted()
    key = extract(model, secret="owner")
    x = ids(4, batch=16)
    rows = [{"input_ids": r, "attention_mask": torch.ones_like(r), "labels": r} for r in x]
    args = TrainingArguments(
        str(tmp_path),
        per_device_train_batch_size=8,
        num_train_epochs=8,
        learning_rate=3e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_strategy="no",
        disable_tqdm=True,
    )
    trainer = FingerprintTrainer(model=model, args=args, train_dataset=rows, fingerprint_loss=CausalLMFingerprintLoss(weight=0.1))
    trainer.train()
    parts = trainer.fingerprint_parts
    assert len(parts) == 16 and parts[-1]["ce"] < parts[0]["ce"] - 0.5 and all(p["attack"] > 0 for p in parts)
    assert verify(key, state(model.eval())).log10_p < -30
