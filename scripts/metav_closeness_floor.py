"""A closeness floor set on positives only: would it stop regression's far accusations?

``freqprint metav bench --tasks regression`` accuses 7 of its 189 far negatives (models predicting
BMI from the other diabetes features, and rounded APIs of them) with V ≈ 0.995, while their
closeness to the source on the 256 natural probe inputs is 0.79–0.83 and every positive the
verdict catches is at 0.914 or more.  A gate that does not learn the far data: accuse only a
suspect whose closeness reaches the q-quantile of the closeness of the claim's *training and
validation positives* (their answers, the owner's own derivatives; no negative enters it).  This
script rebuilds the regression benchmark's ensemble (from the cache) and its claim (same
manifest and seed), computes the train/val positives' closeness, and prints, per floor, the
test verdicts per population with and without the gate.  docs/benchmarks.md §13.

Usage::

    python scripts/metav_closeness_floor.py [--cache .cache/freqprint/metav]
"""

from __future__ import annotations

import argparse

import numpy as np

import freqprint_bench.metav as bench
from freqprint.metav.ensemble import build_ensemble, default_manifest
from freqprint.metav.trainer import fit_claim, metav_configs

QUANTILES = (0.0, 0.01, 0.05, 0.10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    args = ap.parse_args()
    kind = "regression"
    ens = build_ensemble(default_manifest(kind, "quick"), args.cache, log=lambda s: None)
    cfg = metav_configs("quick")[kind]
    mv = fit_claim(ens, cfg, 0.01, lambda s: None)
    fit_pos = [m for s in ("train", "val") for m in ens.split(s) if m.label == 1]
    close_fit = np.array([mv.verdict(m.query).closeness for m in fit_pos])
    print(
        f"claim: λ {mv.threshold:.3f}; {len(fit_pos)} train/val positives, closeness {close_fit.min():.3f}–{close_fit.max():.3f}"
    )
    test = ens.split("test")
    rows = {m.name: mv.verdict(m.query) for m in test}
    pops: dict[str, list] = {}
    for m in test:
        pops.setdefault(f"{'+' if m.label else '-'} {bench.population(m)}", []).append(m)
    for q in (None, *QUANTILES):
        floor = -np.inf if q is None else float(np.quantile(close_fit, q))
        head = "no floor" if q is None else f"floor = {q:.0%} quantile of train/val positives = {floor:.3f}"
        parts = []
        for pop, ms in sorted(pops.items()):
            derived = sum(rows[m.name].derived and rows[m.name].closeness >= floor for m in ms)
            right = derived if pop.startswith("+") else len(ms) - derived
            parts.append(f"{pop}: {right}/{len(ms)}")
        print(f"{head}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
