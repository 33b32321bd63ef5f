"""Time one "not found" verify of an unrelated full-width ResNet-18 (docs/benchmarks.md §4, §12a).

The same pair as ``bench scale``'s ResNet-18 cost row: an owner with a module on
``layer1.1.conv2`` (secret "resnet-owner", seed 0) and an unrelated model (secret
"resnet-other", seed 1).  To compare two versions, run it against each checkout, e.g.

    git worktree add /tmp/old 315b253 && PYTHONPATH=/tmp/old/src python scripts/time_unrelated_resnet.py
    python scripts/time_unrelated_resnet.py
"""

import time

import torch

from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.models import create_model
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify


def build(secret: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = create_model("resnet18", num_classes=10, in_channels=1, width=1.0).eval()
    attach(m, FingerprintConfig(target="layer1.1.conv2", secret=secret), torch.zeros(2, 1, 28, 28))
    return m


if __name__ == "__main__":
    torch.set_num_threads(2)
    key = extract(build("resnet-owner", 0), secret="resnet-owner")
    other = {k: v.detach().clone() for k, v in build("resnet-other", 1).state_dict().items()}
    t0 = time.perf_counter()
    rep = verify(key, other)
    print(
        f"unrelated ResNet-18: {time.perf_counter() - t0:.2f} s, {rep.fitted} of {rep.layers_searched} readings aligned, "
        f"p = 10^{rep.log10_p:.1f}"
    )
