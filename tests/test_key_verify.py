"""Key round trip, and verification against function-preserving attacks, renaming, pruning and
unrelated models (Theorems 3.5/3.6 plus the input-channel gap the paper leaves open).  The
rewrites a knowing thief has beyond these are in ``test_reparam.py``."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file

from freqprint import FingerprintConfig, FingerprintKey, FreqprintError, attach, create_model, extract, save_model, verify


def fingerprinted(secret: str = "alice", filters: int = 32, width: int = 8, seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=width).eval()
    attach(model, FingerprintConfig(target="conv2", secret=secret, filters=filters), torch.zeros(1, 1, 28, 28))
    return model


def test_key_round_trip_and_commitment(tmp_path):
    model = fingerprinted()
    key = extract(model)
    assert key.spectra.shape == (32, 8, len(key.frequencies)) and sum(key.multiplicity) == 108  # |S'| for 28x28
    assert len(key.commitment) == 64 and key.created and key.merge == "relu"
    p = key.save(tmp_path / "k.key")
    back = FingerprintKey.load(p)
    assert back.commitment == key.commitment and back.layer == "conv2.fingerprint.weight" and back.grid == (28, 28)
    torch.testing.assert_close(back.spectra, key.spectra)
    torch.testing.assert_close(back.kernels(), model.conv2.fingerprint.weight.detach().double())
    # tampering with the stored spectra breaks the commitment
    from safetensors.torch import load_file, safe_open

    tensors = load_file(str(p))
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata()
    tensors["spectra_real"][0, 0, 0] += 1.0
    save_file(tensors, str(tmp_path / "bad.key"), metadata=meta)
    with pytest.raises(FreqprintError, match="commitment"):
        FingerprintKey.load(tmp_path / "bad.key")


def test_extract_from_checkpoint_file_matches_model(tmp_path):
    model = fingerprinted()
    path = save_model(model, tmp_path / "m.safetensors", {"model": "smallcnn"})
    torch.testing.assert_close(extract(path).spectra, extract(model).spectra)
    plain = create_model("smallcnn", width=8)
    save_model(plain, tmp_path / "plain.safetensors", {"model": "smallcnn"})
    with pytest.raises(FreqprintError, match="no fingerprint module"):
        extract(tmp_path / "plain.safetensors")


def test_self_verification_and_unrelated_model():
    model = fingerprinted("alice")
    key = extract(model)
    rep = verify(key, model)
    # C = 8 channels, D = D' = 32: t is chosen so that p1 = 2·32·bound(t) <= 0.01; all 32 filters hit
    from freqprint.stats.null import auto_hit_threshold, hit_probability

    t = auto_hit_threshold(3, 8, 32)
    assert rep.hit_cosine == t and hit_probability(t, 3, 8, 32) <= 0.01 < hit_probability(t - 0.05, 3, 8, 32)
    assert rep.found and rep.score == 1.0 and rep.hits == 32 and rep.log10_p < -15
    other = fingerprinted("bob", seed=1)
    rep2 = verify(key, other)
    assert not rep2.found and rep2.score == 0.0 and rep2.hits == 0 and rep2.log10_p == 0.0


def _module_attack(model, a: float, perm: torch.Tensor):
    """Scale the module's W, b by a and P by 1/a, permute its filters (and P's inputs): same function."""
    fp = model.get_submodule("conv2.fingerprint")
    with torch.no_grad():
        fp.weight.copy_(a * fp.weight[perm])
        if fp.bias is not None:
            fp.bias.copy_(a * fp.bias[perm])
        fp.proj.weight.copy_(fp.proj.weight[:, perm] / a)


def _channel_attack(model, perm: torch.Tensor):
    """Permute conv1's output channels (with bn1) and the input channels of conv2 *and* of the module."""
    with torch.no_grad():
        model.conv1.weight.copy_(model.conv1.weight[perm])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(model.bn1, name).copy_(getattr(model.bn1, name)[perm])
        host = model.get_submodule("conv2")
        host.base.weight.copy_(host.base.weight[:, perm])
        host.fingerprint.weight.copy_(host.fingerprint.weight[:, perm])


@pytest.mark.parametrize("a", [10.0, 100.0, 0.1])
def test_scaling_and_permutations_preserve_function_and_score(a):
    model = fingerprinted()
    key = extract(model)
    x = torch.rand(4, 1, 28, 28)
    ref = model(x)
    g = torch.Generator().manual_seed(3)
    attacked = copy.deepcopy(model)
    _module_attack(attacked, a, torch.randperm(32, generator=g))
    _channel_attack(attacked, torch.randperm(8, generator=g))
    torch.testing.assert_close(attacked(x), ref, rtol=1e-4, atol=1e-4)
    rep = verify(key, attacked)
    assert rep.found and rep.score == pytest.approx(1.0) and rep.mean_cosine == pytest.approx(1.0, abs=1e-5)
    assert rep.channels_permuted
    # without the channel search the permuted inputs defeat the paper's score and the test
    plain = verify(key, attacked, align_channels=False)
    assert plain.score < 0.05 and not plain.found


def test_renamed_layer_is_found_by_search_and_pruned_filters(tmp_path):
    model = fingerprinted()
    key = extract(model)
    sd = {k.replace("conv2.fingerprint", "block.extra"): v.clone() for k, v in model.state_dict().items()}
    sd["block.extra.weight"] = sd["block.extra.weight"][:20]  # a thief keeps only 20 of 32 filters
    save_file(sd, str(tmp_path / "renamed.safetensors"))
    rep = verify(key, tmp_path / "renamed.safetensors")
    # found there, or in the pieces joined with it (io.canonical.piece_groups): both name it
    assert rep.found and "block.extra.weight" in rep.layer and rep.layers_searched >= 2
    assert rep.hits == 20 and rep.score == pytest.approx(20 / 32)


def test_nan_weights_and_wrong_architecture_are_errors(tmp_path):
    model = fingerprinted()
    key = extract(model)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["conv3.weight"][0, 0, 0, 0] = float("nan")  # a NaN where nothing is compared cannot block verification
    assert verify(key, sd).found
    sd["conv2.fingerprint.weight"][0, 0, 0, 0] = float("nan")  # ... where the key points, it is an error
    with pytest.raises(FreqprintError, match="NaN"):
        verify(key, sd)
    other = create_model("resnet18", width=0.25)  # 3x3 convs, searched by content: an honest p = 1
    rep = verify(key, other)
    assert not rep.found and rep.log10_p == 0.0 and rep.layers_searched > 5
    none = verify(key, {"fc.weight": torch.randn(10, 7), "fc.bias": torch.randn(10)})  # nothing reads as 3x3 filters
    assert not none.found and none.log10_p == 0.0 and none.layers_searched == 0 and "wrong architecture" in none.extra["reason"]


def test_few_channels_many_filters_are_still_detectable():
    """C = 8, D = 256: a low t would make the union bound over 256 suspect filters p1 >= 1 (never
    found); the data-independent choice of t keeps the test powerful."""
    from freqprint.stats.null import auto_hit_threshold, hit_probability

    assert hit_probability(0.3, 3, 8, 256) >= 1
    t = auto_hit_threshold(3, 8, 256)
    assert hit_probability(t, 3, 8, 256) <= 0.01
    model = fingerprinted(filters=256)
    rep = verify(extract(model), model)
    assert rep.found and rep.hit_cosine == t and rep.log10_p < -100


def test_keys_anchored_to_the_secrets_initial_kernels(tmp_path):
    """extract(secret=) stores W₀ and the verifier decides against it; the commitment covers it; a
    secret that did not seed the module is refused; the trained kernels still describe."""
    import pytest
    import torch

    from freqprint.errors import FreqprintError
    from freqprint.fingerprint import FingerprintConfig, attach, initial_weight
    from freqprint.models import create_model
    from freqprint.verification.key import FingerprintKey, extract
    from freqprint.verification.verifier import verify

    m = create_model("smallcnn", num_classes=10, in_channels=1, width=32)
    fp = attach(m, FingerprintConfig(target="conv2", secret="anchor owner"), torch.rand(2, 1, 28, 28))
    with torch.no_grad():
        fp.weight.add_(
            0.3 * fp.weight.std() * torch.randn(fp.weight.shape, generator=torch.Generator().manual_seed(1))
        )  # "trained"
    key = extract(m, secret="anchor owner")
    assert key.anchored and torch.equal(key.anchor, initial_weight("anchor owner", "conv2", 256, 32, 3))
    assert not torch.equal(key.decision_kernels().float(), key.kernels().float())
    key.save(tmp_path / "k.key")
    again = FingerprintKey.load(tmp_path / "k.key")
    assert again.anchored and torch.equal(again.anchor, key.anchor) and again.commitment == key.commitment
    rep = verify(again, m)
    assert rep.found and rep.anchored and "key without W₀" not in rep.summary()
    assert "key without W₀" in verify(extract(m), m).summary()
    with pytest.raises(FreqprintError, match="does not seed the module"):
        extract(m, secret="someone else")
    # the commitment covers the anchor: swap it for other kernels and the key is refused
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "k.key"))
    with safe_open(str(tmp_path / "k.key"), "pt") as f:
        meta = f.metadata()
    tensors["anchor"] = torch.randn_like(tensors["anchor"])
    save_file(tensors, str(tmp_path / "forged.key"), metadata=meta)
    with pytest.raises(FreqprintError, match="commitment"):
        FingerprintKey.load(tmp_path / "forged.key")


def test_the_keys_layer_under_a_wrappers_prefix_is_tried_first():
    """A state dict saved from a wrapper (DDP's ``module.``, torch.compile's ``_orig_mod.``) holds
    the key's layer under a prefix: the early path takes it, with the same count paid, so the
    verdict is the unprefixed one's; an innocent's prefixed file stays not found."""
    model = fingerprinted("prefix", filters=64, width=16)
    key = extract(model, secret="prefix")
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    plain = verify(key, sd)
    for prefix in ("module.", "_orig_mod.module."):
        rep = verify(key, {prefix + k: v for k, v in sd.items()})
        assert rep.found and rep.stage == plain.stage == "diagonal" and rep.fitted == 1
        assert rep.log10_p == plain.log10_p and rep.layer == prefix + key.layer
    other = fingerprinted("someone else", filters=64, width=16, seed=1).state_dict()
    assert not verify(key, {"module." + k: v for k, v in other.items()}).found


def test_staged_alignment_stops_early_and_never_reports_a_smaller_p_than_the_full_search():
    """verify aligns in stages of growing cost and stops at the first whose p decides (module
    docstring, "Stages").  Stopping early may only make the reported p larger: with alpha so small
    that nothing decides early, every stage runs, and that exhaustive p is never above it."""
    from freqprint.attacks import Compose, ModulePermutation
    from freqprint.attacks.equivariance import BlockPermutation

    model = fingerprinted("stages", filters=64, width=16)
    key = extract(model, secret="stages")
    finetuned = copy.deepcopy(model)
    with torch.no_grad():
        finetuned.conv2.fingerprint.weight.add_(0.05 * torch.randn_like(finetuned.conv2.fingerprint.weight))
    permuted = Compose([BlockPermutation(seed=3), ModulePermutation(seed=3)])(finetuned)
    other = fingerprinted("someone else", filters=64, width=16, seed=1)
    for suspect, first_stage in ((finetuned, "diagonal"), (permuted, "one pass")):
        fast = verify(key, suspect)
        every_stage = verify(key, suspect, alpha=1e-300)
        old_search = verify(key, suspect, exhaustive=True)  # the full search alone, as before the stages
        assert fast.found and fast.stage == first_stage and old_search.found and old_search.stage == "full"
        assert every_stage.log10_p <= min(fast.log10_p, old_search.log10_p) + 1e-9
    assert not verify(key, other).found and verify(key, other).log10_p == verify(key, other, alpha=1e-300).log10_p
    assert not verify(key, other, exhaustive=True).found
    # a verdict without the description: same decision, no τ-score
    bare = verify(key, permuted, describe=False)
    assert bare.score is None and bare.mean_cosine is None and bare.log10_p == verify(key, permuted).log10_p
    assert "τ-score" not in bare.summary() and "FOUND" in bare.summary()


def test_the_key_side_cache_follows_edits_of_the_key():
    """The key's half of the comparison is computed once per key object; an edit of its kernels
    (in place, or a new tensor) is seen by the next verify."""
    model = fingerprinted("cache")
    key = extract(model, secret="cache")
    assert verify(key, model).found
    with torch.no_grad():
        key.anchor.copy_(torch.randn_like(key.anchor))  # in place: the version counter moves
    assert not verify(key, model).found
    key.anchor = extract(model, secret="cache").anchor  # a new tensor object
    assert verify(key, model).found


def test_reading_shapes_lists_exactly_what_readings_makes():
    """Candidates are listed from shapes alone; the list must match the tensors' readings."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from freqprint.stats.align import read_as, reading_shapes, readings

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.integers(1, 12), min_size=1, max_size=4), st.integers(1, 4), st.sampled_from([1, 3, 5]))
    def check(shape, c, k):
        t = torch.arange(float(torch.tensor(shape).prod())).reshape(shape)
        made = readings(t, c, k)
        assert [(lab, tuple(w.shape)) for lab, w in made] == reading_shapes(tuple(shape), c, k)
        for lab, w in made:
            assert torch.equal(read_as(t, lab, c, k), w)

    check()
