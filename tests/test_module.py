from __future__ import annotations

import pytest
import torch

import freqprint
from freqprint import FingerprintConfig, FreqprintError, attach, create_model, detach, find_fingerprint_modules
from freqprint.fingerprint import FingerprintedConv, FingerprintModule, secret_seed


@pytest.mark.parametrize("merge", ["relu", "linear"])
def test_fft_forward_equals_spatial_circular_conv_and_gradients(merge):
    a = FingerprintModule(5, 7, (12, 10), filters=9, secret="s", merge=merge).double()
    b = FingerprintModule(5, 7, (12, 10), filters=9, secret="s", implementation="spatial", merge=merge).double()
    with torch.no_grad():
        a.proj.weight.normal_()
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 5, 12, 10, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a(x, out_size=(6, 5)), b(x, out_size=(6, 5)), rtol=1e-10, atol=1e-12)
    a(x).square().sum().backward()
    b(x).square().sum().backward()
    torch.testing.assert_close(a.weight.grad, b.weight.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(a.proj.weight.grad, b.proj.weight.grad, rtol=1e-9, atol=1e-12)
    if merge == "linear":
        torch.testing.assert_close(a.bias.grad, b.bias.grad, rtol=1e-9, atol=1e-12)
    else:  # the ReLU merge: no conv bias, and the output stays in the low band
        assert a.bias is None
        f = torch.fft.fft2(a(x)).abs()
        assert f[..., 2:-1, :].max() < 1e-9 and f[..., :, 2:-1].max() < 1e-9


def test_secret_derivation_is_deterministic_and_keyed():
    m1 = FingerprintModule(4, 4, (8, 8), filters=6, secret="alice", context="conv2")
    m2 = FingerprintModule(4, 4, (8, 8), filters=6, secret="alice", context="conv2")
    m3 = FingerprintModule(4, 4, (8, 8), filters=6, secret="bob", context="conv2")
    torch.testing.assert_close(m1.weight, m2.weight)
    assert not torch.allclose(m1.weight, m3.weight)
    assert secret_seed("alice", "a") != secret_seed("alice", "b")
    # i.i.d. Gaussian with std 1/sqrt(C K^2): the verifier's null model relies on it
    big = FingerprintModule(16, 4, (8, 8), filters=256, secret="x")
    assert abs(big.weight.std().item() * (16 * 9) ** 0.5 - 1) < 0.05


@pytest.mark.parametrize(
    "name,kwargs,target,shape",
    [
        ("smallcnn", {"num_classes": 10, "in_channels": 1, "width": 8}, "conv2", (2, 1, 28, 28)),
        ("resnet18", {"num_classes": 10, "in_channels": 3, "width": 0.125}, "layer1.1.conv2", (2, 3, 32, 32)),
        ("resnet18", {"num_classes": 10, "in_channels": 3, "width": 0.125}, "layer2.0.conv1", (2, 3, 32, 32)),  # strided host
        ("alexnet", {"num_classes": 10, "in_channels": 3, "width": 0.125}, "conv3", (2, 3, 32, 32)),
    ],
)
def test_attach_detach_on_registered_models(name, kwargs, target, shape):
    model = create_model(name, **kwargs).eval()
    x = torch.randn(*shape)
    before = model(x)
    fp = attach(model, FingerprintConfig(target=target, secret="s", filters=16), x)
    assert isinstance(model.get_submodule(target), FingerprintedConv)
    assert [n for n, _ in find_fingerprint_modules(model)] == [target]
    host_in = fp.grid_size
    assert fp.weight.shape == (16, fp.in_channels, 3, 3) and min(host_in) >= 8
    after = model(x)
    assert after.shape == before.shape and not torch.allclose(after, before)
    assert f"{target}.fingerprint.weight" in model.state_dict()
    detach(model)
    torch.testing.assert_close(model(x), before)
    assert find_fingerprint_modules(model) == []


def test_attach_errors_are_clear():
    model = create_model("smallcnn", width=4)
    x = torch.randn(1, 1, 28, 28)
    with pytest.raises(FreqprintError, match="no module named 'convX'"):
        attach(model, FingerprintConfig(target="convX"), x)
    with pytest.raises(FreqprintError, match="could never reach"):  # conv1 sees 1 grayscale channel
        attach(model, FingerprintConfig(target="conv1"), x)
    with pytest.raises(FreqprintError, match="not an nn.Conv2d"):
        attach(model, FingerprintConfig(target="bn1"), x)
    attach(model, FingerprintConfig(target="conv2"), x)
    with pytest.raises(FreqprintError, match="already carries"):
        attach(model, FingerprintConfig(target="conv2"), x)
    with pytest.raises(FreqprintError, match="carries no fingerprint"):
        detach(model, "conv3")
    with pytest.raises(FreqprintError, match="expects input"):
        model.get_submodule("conv2").fingerprint(torch.randn(1, 4, 14, 14))


def test_public_api_names():
    for name in ("revised_dft", "invariant_frequencies", "attach", "detach", "extract", "verify", "FingerprintConfig"):
        assert hasattr(freqprint, name)


def test_best_possible_p_value_grows_with_channels():
    from freqprint.stats.null import best_log10_p

    assert best_log10_p(1, 256) == 0.0  # one 3-dim kernel per filter: too little to beat 2·256 suspect filters
    # per-kernel cosines: each kernel brings its own dimensions, so even C = 2 carries evidence
    assert best_log10_p(2, 256) < -6
    assert best_log10_p(8, 256) < -100 and best_log10_p(32, 256) <= best_log10_p(8, 256)
