"""Claim bundles: a genuine key is accepted after real training, forged keys are rejected, and the
secret-anchored verdict is not fooled by a chimera key (docs/security.md, the false-claim protocol)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file

from freqprint import FingerprintConfig, FingerprintKey, FreqprintError, attach, create_model, extract
from freqprint.fingerprint import initial_weight
from freqprint.stats.spectral import kernel_basis
from freqprint.verification.claim import ClaimBundle, block_agreement, check_claim, create_claim, initial_key
from freqprint.verification.verifier import VISIBLE_GAIN, verify


def fingerprinted(secret: str, seed: int = 0, filters: int = 32, width: int = 8):
    torch.manual_seed(seed)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=width).eval()
    attach(model, FingerprintConfig(target="conv2", secret=secret, filters=filters), torch.zeros(1, 1, 28, 28))
    return model


@pytest.fixture(scope="module")
def trained(fashion_dir):
    """The owner's model after real training with L_CE + L_attack (synthetic 10-class images)."""
    from freqprint.data import load_dataset
    from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
    from freqprint.training import TrainConfig, train

    model = fingerprinted("alice")
    add_pseudo_class(model)
    train(
        model,
        load_dataset("fashion-mnist", "train", root=fashion_dir),
        TrainConfig(epochs=2, lr=0.05, batch_size=64),
        criterion=FingerprintLoss(10),
    )
    return model.eval()


def test_initial_weight_is_what_attach_draws():
    model = fingerprinted("alice", filters=16)
    w0 = initial_weight("alice", "conv2", 16, model.conv2.fingerprint.in_channels, 3)
    assert torch.equal(w0, model.conv2.fingerprint.weight.detach())
    assert not torch.equal(w0, initial_weight("alice", "conv1", 16, model.conv2.fingerprint.in_channels, 3))


def test_genuine_claim_round_trip_after_training(trained, tmp_path):
    bundle = create_claim(trained, "alice")
    path = bundle.save(tmp_path / "alice.claim")
    back = ClaimBundle.load(path)
    assert back.commitment == bundle.commitment and back.key.commitment == bundle.key.commitment
    assert FingerprintKey.load(path).commitment == bundle.key.commitment  # a bundle is also a key file
    rep = check_claim(path, "alice", suspect=trained)
    assert rep.genuine and rep.secret_matches, rep.reason
    assert rep.blocks["hidden"].mean_cosine > 0.98 and rep.blocks["hidden"].log10_p < -30
    assert rep.suspect is not None and rep.suspect["found"]
    json.dumps(rep.to_dict(), allow_nan=False)  # finite numbers only: the report is evidence
    wrong = check_claim(path, "mallory")
    assert not wrong.genuine and not wrong.secret_matches
    with pytest.raises(FreqprintError, match="did not seed"):
        create_claim(trained, "mallory")


def test_tampered_bundle_is_refused(trained, tmp_path):
    path = create_claim(trained, "alice").save(tmp_path / "a.claim")
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    claim = json.loads(meta["freqprint.claim"])
    claim["created"] = "2001-01-01T00:00:00+00:00"  # backdating without recomputing the commitment
    save_file(tensors, str(tmp_path / "b.claim"), metadata={**meta, "freqprint.claim": json.dumps(claim)})
    with pytest.raises(FreqprintError, match="commitment"):
        ClaimBundle.load(tmp_path / "b.claim")
    # ... and recomputing it changes the commitment, which no longer matches the published one
    back = ClaimBundle.load(path)
    back.created = claim["created"]
    assert back.compute_commitment() != create_claim(trained, "alice").commitment


def _forge(real: ClaimBundle, key: FingerprintKey) -> ClaimBundle:
    """A bundle around ``key`` that reuses the honest claimant's secret commitment."""
    b = ClaimBundle(key=key, host="conv2", salt=real.salt, secret_commitment=real.secret_commitment, created="2001-01-01")
    b.commitment = b.compute_commitment()
    return b


def test_forged_keys_are_rejected(trained):
    real = create_claim(trained, "alice")
    innocent = fingerprinted("bob", seed=1)
    forged = _forge(real, extract(innocent))  # someone else's model, claimed under alice's secret
    assert verify(forged.key, innocent).found  # the forged key alone would "find" the innocent model...
    rep = check_claim(forged, "alice", suspect=innocent)
    assert not rep.genuine and rep.blocks["hidden"].log10_p > -3  # ...the claim check refuses it
    assert rep.suspect is not None and not rep.suspect["found"]

    # a key built from a plain conv layer (a model that never had a module)
    plain = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    w = plain.conv2.weight.detach()
    k = extract(trained)
    fake = FingerprintKey(
        layer=k.layer,
        grid=k.grid,
        kernel_size=3,
        radius=1,
        frequency_set=k.frequency_set,
        frequencies=k.frequencies,
        multiplicity=k.multiplicity,
        spectra=k.spectra[: w.shape[0], : w.shape[1]],
        weights=w,
        merge=k.merge,
    )
    fake.commitment = fake.compute_commitment()
    assert not check_claim(_forge(real, fake), "alice").genuine


def test_chimera_key_passes_the_key_check_but_not_the_anchored_verdict(trained):
    """A claimant who knows the secret keeps W₀'s hidden block and copies an innocent model's
    visible block: the key check cannot tell (by design it allows training to move the visible
    block), the key "finds" the innocent model, and only the verdict against W₀ itself is right."""
    real = create_claim(trained, "alice")
    innocent = fingerprinted("bob", seed=1)
    k = real.key
    v, gain = kernel_basis(k.grid, 3, 1, include_dc=False)
    vis = gain >= VISIBLE_GAIN
    z_own = k.kernels().reshape(k.filters, k.channels, 9) @ v
    z_inn = innocent.conv2.fingerprint.weight.detach().double().reshape(k.filters, k.channels, 9) @ v
    z = torch.where(vis, z_inn, z_own)
    chim = FingerprintKey(
        layer=k.layer,
        grid=k.grid,
        kernel_size=3,
        radius=1,
        frequency_set=k.frequency_set,
        frequencies=k.frequencies,
        multiplicity=k.multiplicity,
        spectra=k.spectra,
        weights=(z @ v.T).reshape(k.weights.shape).float(),
        merge=k.merge,
    )
    chim.commitment = chim.compute_commitment()
    forged = _forge(real, chim)
    rep = check_claim(forged, "alice", suspect=innocent)
    assert rep.genuine  # the documented limit of a key-only check
    assert verify(chim, innocent).found and verify(chim, innocent).block == "visible"
    assert rep.suspect is not None and not rep.suspect["found"]  # the secret-anchored verdict is not fooled
    assert check_claim(real, "alice", suspect=trained).suspect["found"]


def test_block_agreement_null_is_honest():
    """Unrelated key and W₀: the per-block p-values are uniform-or-larger (checked at 5 %)."""
    k = extract(fingerprinted("alice", filters=16))
    small = 0
    for i in range(200):
        w0 = initial_weight(f"s{i}", "conv2", 16, k.channels, 3)
        b = block_agreement(k.kernels(), w0, k)
        small += sum(x.log10_p <= -2 for x in b.values())  # P ≤ 0.01 each, 400 tests
    assert small <= 12  # E ≤ 4; Binomial(400, 0.01) ≥ 13 has probability < 1e-3


def test_initial_key_matches_the_claimed_layer(trained):
    real = create_claim(trained, "alice")
    k0 = initial_key(real.key, "alice")
    assert k0.layer == real.key.layer and torch.equal(k0.weights, initial_weight("alice", "conv2", 32, k0.channels, 3))
