"""A thief's cheapest black-box evasion of MetaV's floor, priced: serve a derived classifier's
probabilities mixed with noise, p' = (1 − e)·p + e·q (q a random distribution, the same for the
same input), and see where the verdict turns and what the API's accuracy is then.

Usage (a classification claim and a derived model file, e.g. from scripts/metav_outsiders.py)::

    python scripts/metav_noisy_api.py CLAIM SUSPECT.safetensors
"""

from __future__ import annotations

import argparse
import hashlib

import torch

from freqprint.data import load_dataset
from freqprint.io.checkpoint import load_model
from freqprint.metav import load_claim


def noisy(model: torch.nn.Module, e: float):
    def answer(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            p = torch.softmax(model(x)[:, :10], 1)
        out = []
        for row, pr in zip(x.reshape(len(x), -1), p):
            g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(row.numpy().tobytes()).digest()[:6], "little"))
            q = -torch.log(torch.rand(10, generator=g))  # exponential draws: q is uniform on the simplex
            out.append((1 - e) * pr + e * q / q.sum())
        return torch.stack(out)

    return answer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claim")
    ap.add_argument("suspect")
    args = ap.parse_args()
    mv, _ = load_claim(args.claim)
    model, _ = load_model(args.suspect)
    model.eval()
    test = load_dataset("fashion-mnist", "test")
    x, y = test.images[:2000], test.labels[:2000]
    for e in (0.0, 0.3, 0.5, 0.7, 0.85, 0.95):
        api = noisy(model, e)
        v = mv.verdict(api)
        acc = float((api(x).argmax(1) == y).float().mean())
        print(
            f"e = {e:.2f}: API accuracy {acc:.3f}; V {v.score:.3f}, agreement {v.agreement:.3f} (p {v.p_agreement:.2g}), "
            f"reference rank p {v.p_reference:.2g}: {'DERIVED' if v.derived else 'not derived'}"
        )


if __name__ == "__main__":
    main()
