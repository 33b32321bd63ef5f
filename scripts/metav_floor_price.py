"""The thief's price for evading MetaV's probe floor with noise on a derivative's answers.

The probe floor (``freqprint.metav.core``, 0.29; on by default from 0.30) accuses only a suspect whose answers on
natural inputs agree with the source's as much as most of the owner's own derivatives do (the
task's probe statistic: label agreement for a classifier, closeness for a regressor).  A thief who
knows that adds noise to every answer his API gives (he cannot tell the claim's natural probes
from his users' queries), which lowers the statistic, and hopes V and the agreement test still
fire while the floor withholds the verdict.  This script takes the test derivatives (weights,
APIs, the ensemble's KD; not the held-out students) that the claim calls derived, serves each
through noise of growing strength, and prints per strength how many are still derived with the
floor and without it (V ≥ λ and p ≤ α alone), their probe statistic, and what the noisy API is worth:
R² (regression) or accuracy (classification) on the task's test set; for a generator, the
PSNR of the noisy images against the same model's clean ones (dB; what the thief's users lose).

Noise: regression and generation, ``y + s·σ·ε`` (σ the source's output spread on the test
set, ε standard normal; a generator's pixels clipped to [0, 1]); classification, ``(1 − e)·p + e·q`` (q uniform on the simplex).  ε and q are drawn from
the input's bytes, so an input gets the same answer every time it is asked.

Usage::

    python scripts/metav_floor_price.py --task regression --claim bench-results/metav/metav-regression.safetensors
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import torch

import freqprint_bench.metav as bench
from freqprint.metav import load_claim
from freqprint.metav.ensemble import build_ensemble, default_manifest, quality

LEVELS = {
    "regression": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5),
    "classification": (0.0, 0.3, 0.5, 0.7, 0.85, 0.95),
    "generation": (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
}


def _generator(row: torch.Tensor) -> torch.Generator:
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(row.numpy().tobytes()).digest()[:6], "little"))


def noisy(task, query, level: float, sigma: float):
    def answer(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            raw = query(x).float()
        if level == 0:
            return raw
        rows = x.detach().cpu().float().reshape(len(x), -1)
        if task.kind in ("regression", "generation"):
            eps = torch.stack([torch.randn(raw.shape[1:], generator=_generator(r)) for r in rows])
            out = raw + level * sigma * eps
            return out.clamp(0, 1) if task.kind == "generation" else out
        p = task.probabilities(raw)
        q = torch.stack([-torch.log(torch.rand(p.shape[1], generator=_generator(r))) for r in rows])
        return (1 - level) * p + level * q / q.sum(1, keepdim=True)

    return answer


def psnr(api, query, z: torch.Tensor) -> float:
    """A generator API's PSNR against the clean images of the model behind it (dB, pixels in [0, 1])."""
    with torch.no_grad():
        mse = float(((api(z).float() - query(z).float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1 / mse))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=sorted(LEVELS), default="regression")
    ap.add_argument("--claim", required=True, help="the claim `freqprint metav bench` wrote for this task")
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    args = ap.parse_args()
    mv, _ = load_claim(args.claim)
    assert mv.floor is not None and mv.floor.probe_floor is not None, "a claim with a probe floor (format 4)"
    ens = build_ensemble(default_manifest(args.task, "quick"), args.cache, log=lambda s: None)
    task, test_data = ens.task, ens.data.test
    with torch.no_grad():
        sigma = float(ens.source.query(test_data.images).float().std())
    pos = [m for m in ens.split("test") if m.label == 1 and not bench.population(m).startswith("students")]
    caught = [m for m in pos if mv.verdict(m.query).derived]
    print(
        f"{args.task}: λ {mv.threshold:.3f}, probe floor ({task.probe_statistic_name}) {mv.floor.probe_floor:.3f} "
        f"(the {mv.floor.floor_quantile:g} quantile of {mv.floor.probe_positives} train/val positives); "
        f"{len(caught)} of {len(pos)} test derivatives derived without noise; source's output spread σ {sigma:.3f}"
    )
    name = "e (mixing weight)" if args.task == "classification" else "s (noise sd / σ)"
    print(
        f"{name} | derived with floor | derived without floor | probe statistic median [min, max] | API quality median [min, max]"
    )
    for level in LEVELS[args.task]:
        with_floor = without = 0
        close, qual = [], []
        for m in caught:
            api = noisy(task, m.query, level, sigma)
            v = mv.verdict(api)
            with_floor += v.derived
            without += v.score >= v.threshold and v.p_value <= v.alpha
            close.append(v.probe_statistic)
            qual.append(quality(task, api, test_data) if task.kind != "generation" else psnr(api, m.query, test_data.images))
        c, q = np.array(close), np.array(qual)
        print(
            f"{level:g} | {with_floor}/{len(caught)} | {without}/{len(caught)} | "
            f"{np.median(c):.3f} [{c.min():.3f}, {c.max():.3f}] | {np.median(q):.3f} [{q.min():.3f}, {q.max():.3f}]"
        )


if __name__ == "__main__":
    main()
