"""How far from θ₀ the segment map still reads a mixed layer back (docs/benchmarks.md §8b): per
host, θ₀ moved by Gaussian noise of ``s``·std per tensor (a stand-in for training; the mean
per-kernel cosine to θ₀ is printed, trained models sit at 0.87 after the structural bench's
1 epoch and 0.54–0.58 after the demo's 3), then every k×k conv mixed on both channel sides —
``Factorize(sides=2, split=2)`` (orthogonal maps, two 1×1 convs per side) and a file with Q, P of
condition number 10 stored as three 1×1 maps per side — and traced by lineage.  An unrelated
network (another seed) mixed the same way is the far negative.

    .venv/bin/python scripts/segment_drift.py [--hosts smallcnn resnet18]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from freqprint import OwnerInit, lineage
from freqprint.attacks import Factorize
from freqprint.verification.backbone import regenerate_init
from freqprint_bench.structural import mixed_segments

NOISE = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def kernel_cosine(a: nn.Module, b: nn.Module) -> float:
    cos = []
    for (_, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        if x.ndim == 4 and x.shape[2] >= 2:
            cos.append(torch.nn.functional.cosine_similarity(x.flatten(2), y.flatten(2), dim=2).mean())
    return float(torch.stack(cos).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", nargs="+", default=["smallcnn", "resnet18"])
    args = ap.parse_args()
    print(
        "| host | noise (·std) | kernel cosine to θ₀ | split factorisation | cond 10, 3 maps per side | unrelated, split | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    for host in args.hosts:
        kwargs = {"width": 32 if host == "smallcnn" else 0.25}
        init = OwnerInit(host, kwargs, 1234, False)
        theta0 = regenerate_init(host, kwargs, 1234).eval()
        other = regenerate_init(host, kwargs, 99).eval()
        for s in NOISE:
            torch.manual_seed(0)
            net = copy.deepcopy(theta0)
            with torch.no_grad():
                for p in net.parameters():
                    if p.numel() > 1:
                        p.add_(s * p.std() * torch.randn_like(p))
            t = time.perf_counter()
            split = lineage(init, Factorize(sides=2, split=2, seed=4)(copy.deepcopy(net))).log10_p
            cond = lineage(init, mixed_segments(net, 3, 10.0, seed=5)).log10_p
            far = lineage(init, Factorize(sides=2, split=2, seed=4)(copy.deepcopy(other))).log10_p
            dt = time.perf_counter() - t
            print(
                f"| {host} | {s} | {kernel_cosine(theta0, net):.2f} | 1e{split:.1f} | 1e{cond:.1f} | 1e{far:.1f} | {dt:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
