"""Parent lineage (`freqprint lineage`, :mod:`freqprint.verification.parent`) on tiny Llama decoders
built and trained in the test on a seeded Markov chain of tokens (nothing is downloaded):
derivatives found, the decoder's symmetry group found by the matched units only, independent
same-config models not found, the unit-order bound checked against simulated permutations, and
the CLI's exit codes.  Skipped where ``transformers`` is not installed."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import run

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from freqprint.attacks import Compose, DecoderPermutation, DecoderRotation, NormScaling, Prune  # noqa: E402
from freqprint.errors import InvalidArgument, NoMaterial  # noqa: E402
from freqprint.io.gguf import save_gguf  # noqa: E402
from freqprint.verification.parent import MATCH_FRACTION, log_fixed_tail, parent_lineage, read_decoder  # noqa: E402

VOCAB = 64


def config(layers: int = 4, hidden: int = 64) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )


def markov(seed: int, n: int = 64, length: int = 24) -> torch.Tensor:
    """Token sequences from a fixed sparse Markov chain (seeded): something to learn."""
    g = torch.Generator().manual_seed(1234)
    nxt = torch.randint(0, VOCAB, (VOCAB, 3), generator=g)
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, length, dtype=torch.long)
    x[:, 0] = torch.randint(0, VOCAB, (n,), generator=g)
    for t in range(1, length):
        x[:, t] = nxt[x[:, t - 1], torch.randint(0, 3, (n,), generator=g)]
    return x


def train(
    model: LlamaForCausalLM, steps: int, seed: int, lr: float = 3e-3, teacher: LlamaForCausalLM | None = None
) -> LlamaForCausalLM:
    """AdamW on the Markov text: next-token loss, or with ``teacher`` distillation on its logits (KL)."""
    data = markov(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for s in range(steps):
        x = data[(s * 8) % 64 : (s * 8) % 64 + 8]
        logits = model(input_ids=x).logits
        if teacher is None:
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
        else:
            with torch.no_grad():
                target = teacher(input_ids=x).logits.log_softmax(-1)
            loss = torch.nn.functional.kl_div(logits.log_softmax(-1), target, log_target=True, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def new(seed: int, **kw) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(config(**kw)).eval()


def state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}


def even_blocks(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict's even blocks renumbered 0, 1, …: a half-depth student's initialisation."""
    keep = {}
    for k, v in sd.items():
        if ".layers." in k:
            b = int(k.split(".layers.")[1].split(".")[0])
            if b % 2:
                continue
            k = k.replace(f".layers.{b}.", f".layers.{b // 2}.")
        keep[k] = v
    return keep


@pytest.fixture(scope="module")
def family():
    parent = train(new(0), 40, seed=0)
    child = train(copy.deepcopy(parent), 20, seed=1, lr=1e-3)
    independent = train(new(7), 40, seed=0)  # same config, same data, another seed
    return parent, child, independent


def test_a_fine_tuned_child_and_its_exports_are_found_by_the_unit_order(family, tmp_path):
    parent, child, _ = family
    rep = parent_lineage(parent, child, units=64)
    assert rep.found and rep.basis == "unit order"
    assert rep.log10_p < -50 and rep.fixed[0] >= 0.9 * rep.fixed[1]
    save_gguf(state(child), tmp_path / "child.gguf", "Q4_0")
    pruned = Prune(rate=0.3)(copy.deepcopy(child))
    for suspect in (tmp_path / "child.gguf", state(pruned)):
        r = parent_lineage(state(parent), suspect, units=64)
        assert r.found and r.log10_p < -50, r.summary()
    # the direction does not matter to the test: the child as parent finds the parent
    assert parent_lineage(child, parent, units=64).found


def test_the_decoder_symmetry_group_defeats_the_unit_order_but_not_the_matched_units(family):
    parent, child, _ = family
    moved = Compose([NormScaling(seed=1), DecoderPermutation(seed=1), DecoderRotation(seed=2)])(child)
    x = markov(9)[:2]
    with torch.no_grad():  # the same function
        assert torch.allclose(moved(input_ids=x).logits, child(input_ids=x).logits, atol=1e-3)
    rep = parent_lineage(parent, moved, units=64)
    assert rep.log10_p > -3, "a random permutation leaves the exact test nothing"
    assert rep.found and rep.basis == "matched units" and rep.matched >= MATCH_FRACTION
    assert rep.alignment_residual < 0.5  # the rotation is undone through the shared vocabulary
    # a rotation alone keeps the unit order: the exact p-value still holds
    assert parent_lineage(parent, DecoderRotation(seed=3)(child), units=64).basis == "unit order"


def test_independent_models_of_the_same_config_are_not_derived(family):
    parent, _, independent = family
    for other in (independent, new(11)):
        rep = parent_lineage(parent, other, units=64)
        assert not rep.found, rep.summary()
        assert rep.log10_p > -3 and rep.matched < 0.2


def test_the_unit_order_bound_holds_for_uniform_permutations():
    """P[≥ k of m sampled points fixed by a uniform permutation of n] ≤ C(m, k)(n−k)!/n!: the
    tier-1 null, checked against 20,000 simulated permutations."""
    rng = np.random.default_rng(0)
    n, m, trials = 40, 20, 20000
    counts = np.array([(rng.permutation(n)[:m] == np.arange(m)).sum() for _ in range(trials)])
    for k in range(1, 5):
        assert (counts >= k).mean() <= math.exp(log_fixed_tail(k, m, n)) + 3 * math.sqrt(0.25 / trials)
    assert log_fixed_tail(0, m, n) == 0.0 and log_fixed_tail(m + 1, m, n) == -math.inf
    assert log_fixed_tail(m, m, n) < -40  # every sampled unit in place: about n^-m


def test_a_half_depth_student_is_compared_block_to_block_and_other_widths_are_not_comparable(family):
    parent, _, _ = family
    small = new(3, layers=2)
    small.load_state_dict(even_blocks(parent.state_dict()))
    rep = parent_lineage(parent, small, units=64)
    assert rep.found and {b.suspect_block for b in rep.blocks} == {0, 1}
    wide = new(4, hidden=96)
    rep = parent_lineage(parent, wide)
    assert not rep.found and "widths differ" in rep.reason


def test_what_is_not_a_decoder_is_refused(family):
    parent, _, _ = family
    with pytest.raises(NoMaterial, match="no Llama-style decoder"):
        read_decoder({"conv.weight": torch.randn(8, 3, 3, 3)})
    with pytest.raises(InvalidArgument):
        parent_lineage(parent, parent, alpha=0)
    with pytest.raises(InvalidArgument):
        parent_lineage(parent, parent, units=0)


def d_found(out: str) -> float:
    """The unit-order p-value's log10 the table printed (``p = 1e-12.3``)."""
    import re

    m = re.search(r"p = 1e(-[0-9.]+)", out)
    assert m, out
    return float(m.group(1))


def test_the_cli_exit_codes_and_json(family, tmp_path, monkeypatch, capsys):
    parent, child, independent = family
    for name, m in (("parent", parent), ("child", child), ("independent", independent)):
        save_file(state(m), tmp_path / f"{name}.safetensors")
    save_gguf(state(child), tmp_path / "child.gguf", "Q8_0")
    code, out, err = run(
        ["lineage", tmp_path / "parent.safetensors", tmp_path / "child.gguf", "--units", "64", "--report", tmp_path / "r"],
        monkeypatch,
        capsys,
    )
    assert code == 0 and "DERIVED" in out and "unit order" in out, out + err
    # the evidence report: a GGUF's digest, the per-block picture, the exact p-value's sentence
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["verdict"] == "derived" and doc["command"] == "lineage" and abs(doc["log10_p"] - d_found(out)) < 0.051
    assert [i["role"] for i in doc["inputs"]] == ["parent", "suspect"] and doc["inputs"][1]["path"].endswith("child.gguf")
    blocks = doc["channels"][0]["figures"][0]["data"]
    assert len(blocks["fixed"]) == 4 and min(blocks["fixed"]) > 0.5 and "<svg" in (tmp_path / "r.html").read_text()
    args = ["lineage", tmp_path / "parent.safetensors", tmp_path / "independent.safetensors", "--json"]
    code, out, err = run(args, monkeypatch, capsys)
    assert code == 1, out + err
    d = json.loads(out)
    assert d["found"] is False and d["basis"] == "" and len(d["blocks"]) == 4 and "seconds" not in d
    assert run(args, monkeypatch, capsys)[1] == out  # deterministic
    save_file({"conv.weight": torch.randn(8, 3, 3, 3)}, tmp_path / "cnn.safetensors")
    code, out, err = run(["lineage", tmp_path / "parent.safetensors", tmp_path / "cnn.safetensors"], monkeypatch, capsys)
    assert code == 2 and err.strip().startswith("error:") and len(err.strip().splitlines()) == 1, err


def test_a_seeded_delta_tells_the_owners_fine_tune_from_an_independent_one_of_the_same_base(family):
    """The shared-base question: the owner's fine-tune of a public base carries a secret-seeded
    delta (σ = 0.02 here: this tiny model has 98 k MLP weights and moves 24 % in 20 steps, and z
    grows as σ·√N over the move); a thief's copy of it (fine-tuned again, every symmetry applied, GGUF) is found with an
    exact p-value, an independent fine-tune of the same base is not, under any secret."""
    from freqprint.verification.delta import delta_lineage, seed_delta

    base, _, _ = family
    owner = train(seed_delta(copy.deepcopy(base), "owner secret", 0.02), 20, seed=1, lr=1e-3)
    thief = Compose([NormScaling(seed=1), DecoderPermutation(seed=1), DecoderRotation(seed=2)])(
        train(copy.deepcopy(owner), 10, seed=3, lr=1e-3)
    )
    sibling = train(copy.deepcopy(base), 20, seed=1, lr=1e-3)  # the same base, the same data, no delta
    assert parent_lineage(base, sibling, units=64).found  # lineage alone cannot tell them apart
    for suspect in (owner, thief):
        rep = delta_lineage(base, suspect, "owner secret")
        assert rep.found and rep.log10_p < -20, rep.summary()
    zs = [delta_lineage(base, sibling, f"secret {i}").z for i in range(30)] + [delta_lineage(base, owner, "another").z]
    assert max(abs(z) for z in zs) < 5, zs  # N(0, 1) under H0': |z| > 5 has probability 6e-7
    assert not delta_lineage(base, sibling, "owner secret").found
    rep = delta_lineage(base, state(base), "owner secret")
    assert not rep.found and rep.reason  # nothing moved: no change to test


def test_the_cli_with_the_owners_secret_and_trace_with_the_parent_channel(family, tmp_path, monkeypatch, capsys):
    from freqprint.verification.delta import seed_delta
    from freqprint.verification.provenance import trace

    base, _, _ = family
    owner = train(seed_delta(copy.deepcopy(base), "owner secret", 0.02), 20, seed=1, lr=1e-3)
    sibling = train(copy.deepcopy(base), 20, seed=1, lr=1e-3)
    for name, m in (("base", base), ("owner", owner), ("sibling", sibling)):
        save_file(state(m), tmp_path / f"{name}.safetensors")
    (tmp_path / "secret").write_text("owner secret")
    common = ["--secret-file", tmp_path / "secret", "--scale", "0.02"]
    code, out, err = run(["lineage", tmp_path / "base.safetensors", tmp_path / "owner.safetensors", *common], monkeypatch, capsys)
    assert code == 0 and "CARRIES THE OWNER'S DELTA" in out, out + err
    code, out, err = run(
        [
            "lineage",
            tmp_path / "base.safetensors",
            tmp_path / "sibling.safetensors",
            *common,
            "--json",
            "--report",
            tmp_path / "sibling",
        ],
        monkeypatch,
        capsys,
    )
    d = json.loads(out)
    assert code == 1 and d["found"] is True and d["delta"]["found"] is False, "related by the base, not by the owner's delta"
    # its report: the verdict is the delta's, the shared base is said, the secret file is not digested
    doc = json.loads((tmp_path / "sibling.json").read_text())
    assert doc["verdict"] == "not derived" and [c["name"] for c in doc["channels"]] == ["owner's delta", "parent lineage"]
    assert doc["channels"][1]["found"] is True and any("shares its lineage" in x for x in doc["limitations"])
    assert [i["role"] for i in doc["inputs"]] == ["parent", "suspect"] and "owner secret" not in (
        tmp_path / "sibling.html"
    ).read_text()
    # trace: the released weights as a channel, combined by Bonferroni with its exact p only
    rep = trace(tmp_path / "sibling.safetensors", parent=tmp_path / "owner.safetensors")
    assert rep.found and rep.channel("parent").ran and rep.channel("parent").log10_p < -50
    from freqprint.report import from_trace

    ev = from_trace(rep, inputs=[], reproduce="freqprint trace", environment={})  # the parent channel's picture
    blocks = next(c for c in ev.channels if c.name == "parent").figures[0].data
    assert ev.verdict == "derived" and len(blocks["fixed"]) == 4 and min(blocks["fixed"]) > 0.5
    assert not rep.channel("fingerprint").ran and not rep.channel("lineage").ran
    other = trace(new(21), parent=tmp_path / "owner.safetensors")
    assert not other.found and other.channel("parent").log10_p > -3


def test_a_registry_of_released_parents_and_a_scan_of_uploads(family, tmp_path, monkeypatch, capsys):
    """`registry add-parent` stores a sketch (not the file); `scan` reports every upload derived
    from a registered parent — GGUF and permuted copies included — and nothing else."""
    parent, child, independent = family
    save_file(state(parent), tmp_path / "parent.safetensors")
    up = tmp_path / "uploads"
    up.mkdir()
    save_gguf(state(child), up / "child-Q4_0.gguf", "Q4_0")
    moved = Compose([DecoderPermutation(seed=4), DecoderRotation(seed=5)])(child)
    save_file(state(moved), up / "moved.safetensors")
    save_file(state(independent), up / "independent.safetensors")
    save_file({"conv.weight": torch.randn(8, 3, 3, 3)}, up / "cnn.safetensors")
    reg = tmp_path / "reg.db"
    code, out, err = run(
        ["registry", "add-parent", tmp_path / "parent.safetensors", "-r", reg, "--name", "base-v1"], monkeypatch, capsys
    )
    assert code == 0 and "added parent base-v1" in out, out + err
    code, out, err = run(["registry", "list", "-r", reg, "--parents", "--json"], monkeypatch, capsys)
    (entry,) = json.loads(out)
    assert entry["name"] == "base-v1" and entry["blocks"] == 4 and len(entry["digest"]) == 64
    assert entry["sketch_bytes"] < (tmp_path / "parent.safetensors").stat().st_size
    code, out, err = run(["scan", up, "-r", reg, "-o", tmp_path / "scan.jsonl"], monkeypatch, capsys)
    assert code == 0, out + err
    recs = {Path(r["path"]).name: r for r in map(json.loads, (tmp_path / "scan.jsonl").read_text().splitlines())}
    assert recs["child-Q4_0.gguf"]["status"] == "match"
    assert recs["child-Q4_0.gguf"]["derived_from"][0]["basis"] == "unit order"
    assert recs["moved.safetensors"]["derived_from"][0]["basis"] == "matched units"
    assert recs["independent.safetensors"]["status"] == "none" and recs["cnn.safetensors"]["status"] == "none"
    assert "derived: " in out and "from parent base-v1" in out
    code, out, err = run(["registry", "rm", "base-v1", "-r", reg], monkeypatch, capsys)
    assert code == 0 and run(["registry", "list", "-r", reg, "--parents", "--json"], monkeypatch, capsys)[1].strip() == "[]"


def test_trace_with_the_released_weights_finds_a_copy_whose_fingerprint_module_was_removed(family):
    """The decoder thief's cheapest move against the fingerprint — deleting the module — leaves
    the MLPs as they were: the parent channel of ``trace`` finds the copy at an exact p."""
    from freqprint.attacks import RemoveModule
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.verification.key import extract
    from freqprint.verification.provenance import trace

    owner = copy.deepcopy(family[1])
    attach(owner, FingerprintConfig(target="model.layers.1", secret="owner", filters=16), {"input_ids": markov(5)[:2]})
    key = extract(owner, secret="owner")
    stolen = RemoveModule()(owner)
    rep = trace(state(stolen), key=key, parent=state(owner))
    assert rep.channel("fingerprint").log10_p == 0.0  # the module is gone
    assert rep.found and rep.channel("parent").found and rep.channel("parent").log10_p < -50


def test_the_lineage_benchmark_runs_at_toy_scale(family, tmp_path):
    """`bench lineage`'s evaluation, tree and delta sweep on the test's models (the benchmark
    itself trains on the fortunes for minutes)."""
    from freqprint_bench.lineage import Node, _evaluate, delta_markdown, lineage_markdown, run_delta

    parent, child, independent = family
    save_gguf(state(child), tmp_path / "child.gguf", "Q8_0")
    nodes = {
        "P": Node("P", state(parent)),
        "P/child": Node("P/child", state(child), ["P"]),
        "P/child/Q8_0": Node("P/child/Q8_0", tmp_path / "child.gguf", ["P/child"]),
        "ind": Node("ind", state(independent)),
    }
    res = _evaluate(nodes, 32, lambda _: None, ["P", "P/child", "P/child/Q8_0"])
    s = res["summary"]
    assert s["pairs"] == 12 and s["lineage_pairs"] == 6 and s["tpr"] == 1.0 and s["false_matches"] == 0
    tree = s["tree"]
    assert tree["children"] == 2 and tree["families_correct"] and "### run" in lineage_markdown({"run": res})
    assert next(r for r in tree["rows"] if r["model"] == "P/child/Q8_0")["correct"]  # the quantization cue
    batches = [markov(s)[:8] for s in range(4)]
    d = run_delta(parent, batches, batches, batches[:1], (0.05,), 3, 1e-3, 2, 3, tmp_path, lambda _: None)
    assert d["null"]["pairs"] == 6 and set(d["threshold"]) >= {"owner's release", "GGUF Q4_0"}
    d["config"] = {"model": "toy", "mlp_weights": 1, "steps": 3}
    assert "seeded delta" in "\n".join(delta_markdown("delta", d))


def test_hostile_decoders_are_refused_or_decided_without_a_bug(family, tmp_path):
    parent, _, _ = family
    sd = state(parent)
    bad = {k: v.clone() for k, v in sd.items()}
    bad["model.layers.0.mlp.gate_proj.weight"] = torch.randn(3, 4, 5)  # not a matrix
    with pytest.raises(NoMaterial, match="not made of matrices"):
        read_decoder(bad)
    nan = {k: v.clone() for k, v in sd.items()}
    for k in nan:
        if "mlp" in k or "embed" in k:
            nan[k].fill_(float("nan"))
    rep = parent_lineage(parent, nan, units=32)
    assert not rep.found and math.isfinite(rep.log10_p)
    wide = {k: v for k, v in sd.items()}
    wide["model.layers.0.post_attention_layernorm.weight"] = torch.ones(7)  # a gain of the wrong length: not folded
    assert parent_lineage(parent, wide, units=32).found


def widen(model: LlamaForCausalLM, k: int = 16) -> LlamaForCausalLM:
    """A thief's zero-cost widening: k units of every MLP split in two, the down column shared out."""
    cfg = copy.deepcopy(model.config)
    cfg.intermediate_size += k
    wide = LlamaForCausalLM(cfg).eval()
    sd = {}
    for key, v in model.state_dict().items():
        if "gate_proj" in key or "up_proj" in key:
            v = torch.cat([v, v[:k]], 0)
        elif "down_proj" in key:
            v = torch.cat([v, v[:, :k] / 2], 1)
            v[:, :k] /= 2
        sd[key] = v
    wide.load_state_dict(sd)
    return wide


def test_widened_mlps_are_merged_back_for_both_tests(family):
    """Splitting units (the function unchanged) once set the unit-order p to 1 and made the delta
    test refuse the suspect: split units are merged back before either test reads them."""
    from freqprint.verification.delta import delta_lineage, seed_delta

    base, child, independent = family
    wide = widen(child)
    x = markov(9)[:2]
    with torch.no_grad():
        assert torch.allclose(wide(input_ids=x).logits, child(input_ids=x).logits, atol=1e-4)
    rep = parent_lineage(base, wide, units=64)
    assert rep.found and rep.basis == "unit order" and rep.log10_p < -50
    owner = train(seed_delta(copy.deepcopy(base), "owner secret", 0.02), 20, seed=1, lr=1e-3)
    assert delta_lineage(base, widen(owner), "owner secret").log10_p < -20
    assert not parent_lineage(base, widen(independent), units=64).found
