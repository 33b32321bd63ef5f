"""Widening and factorisation chained, in every order, against lineage (issue 25's last open
member): per host, θ₀ perturbed as a stand-in for training (0.5·std of Gaussian noise per tensor),
rewritten exactly, then traced by lineage as stored and with every tensor renamed.  The same
rewrites of far negatives must stay unfound: an untrained network of another seed, and a network
whose every weight is the same constant (widening is left out there: every row of a constant
tensor is a copy of every other).

    .venv/bin/python scripts/widen_factorise.py [--hosts smallcnn resnet18]

Prints one row per (host, rewrite): lineage's log10 p, seconds, and the readings it paid for.
"""

from __future__ import annotations

import argparse
import copy
import random
import time

import torch

from freqprint import OwnerInit, lineage
from freqprint.attacks import Compose, Factorize, Widen
from freqprint.verification.backbone import regenerate_init

REWRITES = {
    "as left": lambda: None,
    "widen ×2 (r = 3)": lambda: Widen(noise=3.0),
    "factorise both sides": lambda: Factorize(sides=2),
    "widen, then factorise both sides": lambda: Compose([Widen(noise=3.0), Factorize(sides=2)]),
    "factorise both sides, then widen": lambda: Compose([Factorize(sides=2), Widen(noise=3.0)]),
    "widen, then factorise the output side": lambda: Compose([Widen(noise=3.0), Factorize(sides=1)]),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", nargs="+", default=["smallcnn", "resnet18"])
    args = ap.parse_args()
    torch.manual_seed(0)
    print("| host | rewrite | names | lineage p | seconds | readings paid |")
    print("|---|---|---|---|---|---|")
    for host in args.hosts:
        kwargs = {"width": 32 if host == "smallcnn" else 0.25}
        init = OwnerInit(host, kwargs, 1234, False)
        net = regenerate_init(host, kwargs, 1234).eval()
        other = regenerate_init(host, kwargs, 99).eval()  # far negatives: another θ₀, and constant weights
        flat = copy.deepcopy(net)
        with torch.no_grad():
            for p in net.parameters():
                if p.numel() > 1:
                    p.add_(0.5 * p.std() * torch.randn_like(p))
            for p in flat.parameters():
                p.fill_(0.01)
        suspects = [(label, net, make) for label, make in REWRITES.items()]
        suspects += [(f"unrelated (other seed): {label}", other, make) for label, make in REWRITES.items()]
        suspects += [(f"constant weights: {label}", flat, make) for label, make in REWRITES.items() if "widen" not in label]
        for label, base, make in suspects:
            attack = make()
            model = copy.deepcopy(base) if attack is None else attack(copy.deepcopy(base))
            items = list(model.state_dict().items())
            random.Random(0).shuffle(items)
            for names, sd in (
                ("as stored", {k: v.detach().clone() for k, v in items}),
                ("renamed", {f"t{i:03d}": v.detach().clone() for i, (_, v) in enumerate(items)}),
            ):
                t = time.perf_counter()
                rep = lineage(init, sd)
                dt = time.perf_counter() - t
                paid = sum(layer.candidates for layer in rep.layers)
                print(f"| {host} | {label} | {names} | 1e{rep.log10_p:.1f} | {dt:.2f} | {paid} |", flush=True)


if __name__ == "__main__":
    main()
