"""Far negatives and a README-reader's zero-cost rewrites against `verify` (docs/security.md, "What the
fingerprint survives").  Run: .venv/bin/python scripts/cheap_rewrites.py"""

import torch

from freqprint import FingerprintConfig, attach, create_model, extract, verify

torch.manual_seed(0)
own = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
attach(own, FingerprintConfig(target="conv2", secret="alice", filters=16), torch.zeros(1, 1, 28, 28))
key = extract(own, secret="alice")
sd = {k: v.clone() for k, v in own.state_dict().items()}
w = sd["conv2.fingerprint.weight"]


def show(name, s):
    try:
        r = verify(key, s)
        print(f"{name:45s} found={r.found} log10p={r.log10_p:.1f}")
    except Exception as e:
        print(f"{name:45s} {type(e).__name__}: {str(e)[:90]}")


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
n = torch.randn_like(w) * 3 * w.norm() / w.numel() ** 0.5
show("channels duplicated, split [W+N, -N]", {**sd, "conv2.fingerprint.weight": torch.cat([w + n, -n], 1)})
