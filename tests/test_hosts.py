"""Host kinds beyond the CNN that need no ``transformers``: the token grid, the core never importing
the extra, the bottleneck ResNet-50, the transposed-grid rewrite, and the fortunes text loader."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from freqprint.attacks import GridTranspose, relayout_state_dict
from freqprint.data.text import load_fortunes, read_fortune_file
from freqprint.errors import FreqprintError
from freqprint.fingerprint import FingerprintConfig, attach, detach, token_grid
from freqprint.models import create_model, default_target
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify


def test_core_never_imports_transformers_and_hf_says_what_to_install():
    code = (
        "import sys; import freqprint, freqprint.cli, freqprint_bench.transformers, freqprint.data.text; "
        "assert 'transformers' not in sys.modules, 'core imported transformers'; "
        "sys.modules['transformers'] = None\n"
        "try:\n import freqprint.hf\nexcept freqprint.FreqprintError as e:\n print('ERR', e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERR freqprint.hf needs the transformers extra" in out.stdout


def test_bench_transformers_without_the_extra_is_one_error_line(tmp_path):
    code = (
        "import sys; sys.modules['transformers'] = None; sys.argv = ['freqprint', 'bench', 'transformers', '--family', 'vit', "
        f"'--out', {str(tmp_path / 'x.json')!r}]; from freqprint.cli import main; main()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("error: freqprint.hf needs the transformers extra") and out.stderr.count("\n") == 1


def test_token_grid_is_the_smallest_square_or_the_given_grid():
    assert token_grid(196) == (14, 14) and token_grid(197, prefix=1) == (14, 14)
    assert token_grid(10) == (4, 4) and token_grid(64) == (8, 8) and token_grid(65) == (9, 9)
    assert token_grid(10, grid=(2, 5)) == (2, 5)
    with pytest.raises(FreqprintError, match="cannot hold"):
        token_grid(11, grid=(2, 5))
    with pytest.raises(FreqprintError, match="nothing to lay out"):
        token_grid(1, prefix=1)


def test_resnet50_is_a_bottleneck_net_with_the_module_at_the_second_blocks_3x3():
    m = create_model("resnet50", num_classes=10, in_channels=1, width=0.125)
    assert default_target("resnet50") == "layer1.1.conv2" and m.layer1[1].conv2.kernel_size == (3, 3)
    assert [len(m.layer1), len(m.layer2), len(m.layer3), len(m.layer4)] == [3, 4, 6, 3]
    assert m.layer1[1].conv3.out_channels == 4 * m.layer1[1].conv2.out_channels
    fp = attach(m, FingerprintConfig(target="layer1.1.conv2", secret="r50"), torch.rand(2, 1, 28, 28))
    assert fp.grid_size == (28, 28) and fp.in_channels == 8
    assert verify(extract(m), m).found


def test_grid_transpose_is_exact_and_found():
    m = create_model("smallcnn", num_classes=10, in_channels=1, width=32).eval()
    attach(m, FingerprintConfig(target="conv2", secret="gt"), torch.rand(2, 1, 28, 28))
    with torch.no_grad():
        m.conv2.fingerprint.proj.weight.mul_(30)  # a module that matters to the output
    x = torch.rand(4, 1, 28, 28)
    stolen = GridTranspose()(m)
    assert torch.allclose(m(x), stolen(x), atol=1e-5)
    assert not torch.allclose(m(x), detach(copy.deepcopy(m))(x), atol=1e-3)  # and the module matters to the output
    key = extract(m)
    rep = verify(key, stolen)
    assert rep.found and rep.layout == "OIHW·T"
    # the same kernels under every other symmetry of the square, stored under another name
    sd = {k: v.detach() for k, v in m.state_dict().items()}
    for layout in ("T", "rot90"):
        assert verify(key, relayout_state_dict(sd, layout)).found


# ---------------------------------------------------------------------------------------------
# the text data and the benchmark, end to end on small files the test writes


def write_fortunes(root: Path, per: int = 30) -> Path:
    words = {
        "computers": "kernel compiler byte",
        "people": "mother friend neighbour",
        "politics": "senate vote party",
        "science": "atom quantum cell",
    }
    for topic, w in words.items():
        (root / topic).write_text("\n%\n".join(f"{w} number {i} {w.split()[i % 3]}" for i in range(per)) + "\n%\n")
    for lang, sub in (("de", "de"), ("it", "it"), ("es", "es")):
        (root / sub).mkdir()
        (root / sub / "sprueche").write_bytes("\n%\n".join(f"{lang} satz {i} über ñ" for i in range(per)).encode("latin-1"))
    (root / "computers.dat").write_bytes(b"\x00\x01index")  # strfile index: skipped
    return root


def test_fortune_files_are_parsed_balanced_and_split(tmp_path):
    root = write_fortunes(tmp_path)
    assert read_fortune_file(root / "de" / "sprueche")[1] == "de satz 1 über ñ"  # Latin-1 read as such
    tr, te = (
        load_fortunes("fortunes-topic", "train", root, per_class=20),
        load_fortunes("fortunes-topic", "test", root, per_class=20),
    )
    assert tr.classes == ["computers", "people", "politics", "science"] and tr.labels.bincount().tolist() == [16] * 4
    assert len(te) == 16 and not set(tr.texts) & set(te.texts)
    lang = load_fortunes("fortunes-language", "train", root, per_class=20)
    assert lang.classes == ["en", "de", "it", "es"] and lang.labels.bincount().tolist() == [16] * 4
    (root / "bad").write_bytes(b"abc\x00def")  # a binary file among the English ones: one clear error
    with pytest.raises(FreqprintError, match="bad is not a fortune text file"):
        load_fortunes("fortunes-language", root=root)
    (root / "bad").unlink()
    with pytest.raises(FreqprintError, match="unknown text task"):
        load_fortunes("fortunes-x", root=root)
    shutil.rmtree(root / "it")
    with pytest.raises(FreqprintError, match="fortunes-it"):
        load_fortunes("fortunes-language", root=root)


def test_rotated_channel_test_keeps_its_null_and_finds_a_rotation():
    """The second test of the verifier (channels mixed by an orthogonal Q, fitted on half the key
    filters, tested on the other half): conservative on independent kernels, and it undoes Q."""
    import math

    from freqprint.stats.align import unit
    from freqprint.stats.spectral import kernel_basis
    from freqprint.verification.verifier import _rotation_test

    _, gain = kernel_basis((14, 14), 3, 1, include_dc=False)
    blocks = {"visible": (gain >= 0.1).nonzero().squeeze(1), "hidden": (gain < 0.1).nonzero().squeeze(1)}
    g = torch.Generator().manual_seed(0)
    logps = []
    for _ in range(150):
        zk, zs = (
            torch.randn(48, 16, 9, generator=g, dtype=torch.float64),
            torch.randn(48, 16, 9, generator=g, dtype=torch.float64),
        )
        logps.append(_rotation_test(zk, zs, {b: unit(zk[..., i]) for b, i in blocks.items()}, blocks, None)[0] / math.log(10))
    assert sum(lp <= -1 for lp in logps) <= 15 * 1.0 and min(logps) > -3  # P[p <= 0.1] <= 0.1, with room
    zk = torch.randn(48, 16, 9, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    perm = torch.randperm(48, generator=g)
    zs = torch.einsum("ec,dck->dek", q, zk)[perm] * torch.rand(48, 1, 1, generator=g, dtype=torch.float64).add(0.5)
    zs = zs + 0.05 * zs.std() * torch.randn(zs.shape, generator=g, dtype=torch.float64)  # and some drift
    logp, _, zu, fit, _ = _rotation_test(zk, zs, {b: unit(zk[..., i]) for b, i in blocks.items()}, blocks, None)
    assert logp / math.log(10) < -20 and torch.equal(perm[fit.match], torch.arange(48))


def test_bench_transformers_set_overrides_are_checked(monkeypatch, capsys):
    from cli_helpers import run

    for item, msg in (
        ("ft_epochs=0", "ft_epochs needs a value like 1"),
        ("nope=1", "write FIELD=VALUE"),
        ("vit_patches=[2.5]", "vit_patches needs a value like [2, 4]"),
        ('lrs="a"', "lrs needs a value like"),
    ):
        code, _, err = run(["bench", "transformers", "--set", item], monkeypatch, capsys)
        assert code == 2 and err.startswith("error: --set") and msg in err and err.count("\n") == 1
