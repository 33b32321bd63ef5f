"""The owner's workflows from Python (``freqprint.embed``, ``freqprint.fit_plain``): what the CLI's
``embed`` and ``train`` run."""

from __future__ import annotations

import pytest
import torch

import freqprint
from freqprint.data import load_dataset
from freqprint.errors import InvalidArgument
from freqprint.training import TrainConfig


@pytest.fixture(scope="module")
def data(fashion_dir):
    return load_dataset("fashion-mnist", "train", root=fashion_dir, limit=600), load_dataset(
        "fashion-mnist", "test", root=fashion_dir
    )


def test_embed_writes_the_model_its_key_and_how_theta0_was_seeded(data, tmp_path):
    tr, te = data
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=64)
    fp = freqprint.FingerprintConfig(target="conv2", secret="alice", filters=16)
    res = freqprint.embed(tmp_path / "o.safetensors", tr, te, fp, width=8, config=cfg, key=tmp_path / "o.key", progress=False)
    assert res.path.is_file() and res.key_path is not None and res.key is not None and res.key.anchored
    assert res.recipe["init"] == {"scheme": "secret", "index": 0} and res.recipe["pseudo_class"] and 0 <= res.accuracy <= 1
    assert "secret" not in res.recipe["fingerprint"]
    assert freqprint.verify(res.key_path, res.path).found
    # θ₀ and the module both come from the secret: the same call makes the same model
    again = freqprint.embed(tmp_path / "o2.safetensors", tr, te, fp, width=8, config=cfg, progress=False)
    for (k, a), (_, b) in zip(res.model.state_dict().items(), again.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    with pytest.raises(InvalidArgument, match="secret"):
        freqprint.embed(tmp_path / "x.safetensors", tr, te, freqprint.FingerprintConfig(target="conv2"), width=8, config=cfg)
    with pytest.raises(InvalidArgument, match="already carries"):
        freqprint.embed(tmp_path / "x.safetensors", tr, te, fp, init=res.path, config=cfg, progress=False)


def test_fit_plain_records_its_public_seed_and_embed_can_start_from_it(data, tmp_path):
    tr, te = data
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=64, seed=3)
    plain = freqprint.fit_plain(tmp_path / "p.safetensors", tr, te, width=8, config=cfg, progress=False)
    assert plain.recipe["init"] == {"scheme": "seed", "seed": 3} and plain.key is None and plain.recipe["fingerprint"] is None
    fp = freqprint.FingerprintConfig(target="conv2", secret="alice", filters=16)
    late = freqprint.embed(
        tmp_path / "late.safetensors", tr, te, fp, init=plain.path, config=cfg, key=tmp_path / "l.key", progress=False
    )
    assert late.recipe["init"] == {"scheme": "seed", "seed": 3} and freqprint.verify(late.key_path, late.path).found
