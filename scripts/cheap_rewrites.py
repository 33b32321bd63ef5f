"""Far negatives and a README-reader's zero-cost rewrites against `verify` (docs/security.md, "What the
fingerprint survives").  Run: .venv/bin/python scripts/cheap_rewrites.py [--registry]

With ``--registry`` each row also says what a registry matches: one holding only the owner's key
(the screen scores every key), and one holding it among 200 other keys of its shape whose
shortlist keeps the top 4 per block (``SHORTLIST = 8``; a million keys keep the top 512 per block,
docs/benchmarks.md §12g)."""

import sys
import tempfile
from pathlib import Path

import torch

import freqprint.scan.store as store_mod
from freqprint import FingerprintConfig, attach, create_model, extract, verify
from freqprint.scan import KeyStore
from freqprint_bench.scale import _synthetic_key

torch.manual_seed(0)
own = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
attach(own, FingerprintConfig(target="conv2", secret="alice", filters=16), torch.zeros(1, 1, 28, 28))
key = extract(own, secret="alice")
sd = {k: v.clone() for k, v in own.state_dict().items()}
w = sd["conv2.fingerprint.weight"]


REGISTRIES = []
if "--registry" in sys.argv:
    store_mod.SHORTLIST = 8
    tmp = Path(tempfile.mkdtemp())
    key.save(tmp / "alice.key")
    for name, others in (("one", 0), ("big", 200)):
        reg = KeyStore(tmp / f"{name}.db")
        reg.add(tmp / "alice.key", secret="alice")
        for i in range(others):
            k = _synthetic_key(i, key.filters, key.channels)
            reg.add_key(k, k.to_bytes(), f"reg-{i}", secret=f"reg-{i}", commit=False)
        reg.commit()
        REGISTRIES.append(reg)


def show(name, s):
    try:
        r = verify(key, s)
        line = f"{name:45s} found={r.found} log10p={r.log10_p:.1f}"
    except Exception as e:
        line = f"{name:45s} {type(e).__name__}: {str(e)[:90]}"
    for label, reg in zip(("registry of 1", "of 201, shortlisted"), REGISTRIES):
        try:
            m = reg.match(s)
            line += f"  | {label}: {', '.join(x.key for x in m.found) or '-'}"
        except Exception as e:
            line += f"  | {label}: {type(e).__name__}"
    print(line)


show("owner", sd)
show("untrained smallcnn, no module", create_model("smallcnn", num_classes=10, in_channels=1, width=8).state_dict())
u = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
attach(u, FingerprintConfig(target="conv2", secret="bob", filters=16), torch.zeros(1, 1, 28, 28))
show("untrained, module from another secret", u.state_dict())
show("module weight all zeros", {**sd, "conv2.fingerprint.weight": torch.zeros_like(w)})
show("module weight all ones", {**sd, "conv2.fingerprint.weight": torch.ones_like(w)})
show("every tensor constant 0.1", {k: torch.full_like(v, 0.1) if v.is_floating_point() else v for k, v in sd.items()})
show("resnet18 untrained", create_model("resnet18", num_classes=10, in_channels=1, width=0.25).state_dict())
# thief rewrites with no accuracy cost
p = torch.randperm(w.shape[0])
s = torch.rand(w.shape[0]) * 9 + 0.1
show("filters permuted + scaled", {**sd, "conv2.fingerprint.weight": w[p] * s[:, None, None, None]})
show("stored 5x5, zero padded", {**sd, "conv2.fingerprint.weight": torch.nn.functional.pad(w, (1, 1, 1, 1))})
sc = w.abs().max() / 127
show(
    "stored int8 + scale",
    {**sd, "conv2.fingerprint.weight": torch.round(w / sc).to(torch.int8), "conv2.fingerprint.scale": sc.reshape(1)},
)
show(
    "split in two halves of filters",
    {**{k: v for k, v in sd.items() if k != "conv2.fingerprint.weight"}, "a.weight": w[:8].clone(), "b.weight": w[8:].clone()},
)
pruned = w.clone()
pruned[0] = 0  # one filter pruned; renamed, so only the gate decides whether it is aligned
show(
    "one filter zeroed, module renamed", {**{k: v for k, v in sd.items() if k != "conv2.fingerprint.weight"}, "x.weight": pruned}
)
n = torch.randn_like(w) * 3 * w.norm() / w.numel() ** 0.5
show("module alone [W+N, -N] (producer not duplicated)", {**sd, "conv2.fingerprint.weight": torch.cat([w + n, -n], 1)})
# the exact rewrite: conv1's channels (and bn1's entries) stored twice, every reader split over the copy pair
wide = dict(sd)
for k in ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"):
    wide[k] = torch.cat([sd[k], sd[k]])
for k in ("conv2.base.weight", "conv2.fingerprint.weight"):
    nk = torch.randn_like(sd[k]) * 3 * sd[k].norm() / sd[k].numel() ** 0.5
    wide[k] = torch.cat([sd[k] + nk, -nk], 1)
show("channels duplicated, readers split [W+N, -N]", wide)

# storage re-encodings, read back by freqprint.io.canonical (scales under names no format uses
# are not needed: the per-kernel cosines ignore any positive scale per kernel), and far negatives
s_f = w.abs().amax((1, 2, 3)) / 127
show(
    "int8, per-filter scale under an unknown name",
    {**sd, "conv2.fingerprint.weight": torch.round(w / s_f[:, None, None, None]).to(torch.int8), "q.s": s_f},
)
s_dc = w.abs().amax((2, 3)) / 127
show(
    "int8, per-kernel scale under an unknown name",
    {**sd, "conv2.fingerprint.weight": torch.round(w / s_dc[:, :, None, None]).to(torch.int8), "q.s": s_dc},
)
show(
    "uint8, zero point 100 under an unknown name",
    {**sd, "conv2.fingerprint.weight": (torch.round(w / s_f.max()) + 100).clamp(0, 255).to(torch.uint8)},
)
show("7x7 zero padded", {**sd, "conv2.fingerprint.weight": torch.nn.functional.pad(w, (2, 2, 2, 2))})
show("5x5 padded off-centre (0,2,2,0)", {**sd, "conv2.fingerprint.weight": torch.nn.functional.pad(w, (0, 2, 2, 0))})
show(
    "HWIO layout + int8 per-filter",
    {**sd, "conv2.fingerprint.weight": torch.round(w / s_f[:, None, None, None]).to(torch.int8).permute(2, 3, 1, 0).contiguous()},
)
show("float8 e5m2", {**sd, "conv2.fingerprint.weight": w.to(torch.float8_e5m2)})
# far negatives
show(
    "untrained resnet18 stored int8",
    {
        k: (v * 50).round().clamp(-127, 127).to(torch.int8) if v.ndim == 4 else v
        for k, v in create_model("resnet18", num_classes=10, in_channels=1, width=0.25).state_dict().items()
    },
)
show(
    "every weight uint8 128 (constant)",
    {k: torch.full(v.shape, 128, dtype=torch.uint8) if v.ndim == 4 else v for k, v in sd.items()},
)
show(
    "random int8 everywhere",
    {k: torch.randint(-127, 127, v.shape, dtype=torch.int8) if v.ndim == 4 else v for k, v in sd.items()},
)
show("random 7x7 tensors everywhere", {k: torch.randn(v.shape[0], v.shape[1], 7, 7) if v.ndim == 4 else v for k, v in sd.items()})
