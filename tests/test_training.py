"""Training, checkpoints and the device option."""

from __future__ import annotations

import pytest
import torch

from freqprint import FreqprintError, create_model, load_model, save_model
from freqprint.data import load_dataset
from freqprint.training import TrainConfig, evaluate, resolve_device, train


def test_train_learns_and_checkpoint_round_trips(fashion_dir, tmp_path):
    tr = load_dataset("fashion-mnist", "train", root=fashion_dir)
    te = load_dataset("fashion-mnist", "test", root=fashion_dir)
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    before = evaluate(model, te)
    saved = []
    r = train(
        model,
        tr,
        TrainConfig(epochs=2, lr=0.05, batch_size=64),
        eval_data=te,
        progress=False,
        checkpoint=lambda m, e: saved.append(e),
    )
    assert saved == [1, 2] and len(r.history) == 2
    assert r.final_accuracy > max(0.5, before + 0.2)
    recipe = {
        "model": "smallcnn",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": 8},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "pseudo_class": False,
        "fingerprint": None,
    }
    path = save_model(model, tmp_path / "m.safetensors", recipe)
    back, rec = load_model(path)
    assert rec.to_dict() == {**recipe, "version": 1}  # written with its version
    x = te.images[:8]
    torch.testing.assert_close(back.eval()(x), model.eval()(x))
    wrong = dict(recipe, kwargs=dict(recipe["kwargs"], width=16))
    with pytest.raises(FreqprintError, match="shape"):
        load_model(path, recipe=wrong)


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(FreqprintError, match="no CUDA"):
            resolve_device("cuda")


def test_alexnet_init_keeps_the_signal_alive():
    """Without BatchNorm, PyTorch's default init shrank AlexNet's activations ~15x by conv5 and
    SGD stayed at chance on Fashion-MNIST; the Kaiming init keeps them within a small factor."""
    torch.manual_seed(0)
    m = create_model("alexnet", num_classes=10, in_channels=1, width=0.25)
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        h = m.pool(torch.relu(m.conv1(x)))
        first = float(h.std())
        h = m.pool(torch.relu(m.conv2(h)))
        for conv in (m.conv3, m.conv4, m.conv5):
            h = torch.relu(conv(h))
    assert float(h.std()) > first / 3
