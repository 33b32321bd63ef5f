"""Far negatives no manifest holds, against a regression claim: does the probe floor hold on
data nobody imagined when it was set?

``freqprint metav bench --tasks regression`` measures the verdict on the far families of its own
manifest (shuffled targets, BMI, breast-cancer's first block).  This script builds others, each
ten standardised features → one standardised value, none in any split of any manifest:

* ``wine``: scikit-learn's wine, columns 1–10 → alcohol (column 0);
* ``digits``: scikit-learn's digits, its ten highest-variance pixels → the digit;
* ``breast-cancer-b``: breast-cancer's *second* block of ten features → the 21st;
* ``diabetes-age`` / ``diabetes-s5``: the owner's patients predicting their age or their serum
  triglycerides (s5, the feature most correlated with disease progression), the target taking
  that column (as the manifest's BMI family does for BMI);
* ``random-function``: the owner's own features → tanh(x·w) for a random w (another task on the
  very inputs the source sees);

five models each (the manifest's far architectures and a wide MLP; 30 epochs, Adam, lr 0.003 as
the manifest's), each also served rounded to 0.25 and 0.5: 90 answers.  Per family it prints how
many the claim accuses with the probe floor (a regressor's is on closeness; the verdict) and without it (V ≥ λ and p ≤ α),
and the range of V and of the closeness.  Seeds come from the names (CRC-32).

Usage::

    python scripts/metav_regression_outsiders.py bench-results/metav/metav-regression.safetensors
"""

from __future__ import annotations

import argparse
import zlib

import numpy as np
import torch

from freqprint.data import ArrayDataset
from freqprint.metav import load_claim
from freqprint.metav.artefact import clopper_pearson_upper
from freqprint.metav.tasks import create_task

ARCHS = ("mlp", "mlp-tanh", "mlp-deep", "mlp-wide", "mlp")
SERVED = (None, 0.25, 0.5)


def _std(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a, dtype=np.float64)
    return torch.tensor((a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), 1.0), dtype=torch.float32)


def datasets() -> dict[str, ArrayDataset]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    w = load_wine().data
    out["wine"] = (_std(w[:, 1:11]), _std(w[:, 0]))
    d = load_digits()
    cols = np.argsort(-d.data.var(0))[:10]
    out["digits"] = (_std(d.data[:, cols]), _std(d.target.astype(float)))
    b = load_breast_cancer().data
    out["breast-cancer-b"] = (_std(b[:, 10:20]), _std(b[:, 20]))
    dia = load_diabetes()
    x, y = _std(dia.data), _std(dia.target)
    for name, col in (("diabetes-age", 0), ("diabetes-s5", 8)):
        xi = x.clone()
        xi[:, col] = y
        out[name] = (xi, x[:, col].clone())
    g = torch.Generator().manual_seed(zlib.crc32(b"random-function"))
    out["random-function"] = (x, _std(torch.tanh(x @ torch.randn(10, generator=g)).numpy()))
    return {k: ArrayDataset(xs, ys, ["value"], k, {"source": "sklearn.datasets"}) for k, (xs, ys) in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claim", help="a regression claim of format 4 (with a probe floor)")
    args = ap.parse_args()
    mv, _ = load_claim(args.claim)
    assert mv.task.kind == "regression" and mv.floor is not None and mv.floor.probe_floor is not None
    task = create_task("regression")
    print(
        f"claim: λ {mv.threshold:.3f}, α {mv.floor.alpha:g}, probe floor (closeness) {mv.floor.probe_floor:.3f} "
        f"({mv.floor.floor_quantile:g} quantile of {mv.floor.probe_positives} train/val positives)"
    )
    print("family | answers | accused (verdict) | accused without the floor | V range | closeness range")
    total = accused = accused_without = 0
    for name, data in datasets().items():
        rows = []
        for i, arch in enumerate(ARCHS):
            seed = zlib.crc32(f"{name}-{i}".encode()) % 100_000
            model, _ = task.build(arch, seed)
            model = task.fit(model, data, 30, 0.003, seed).eval()
            for step in SERVED:

                def answer(x: torch.Tensor, m=model, s=step) -> torch.Tensor:
                    with torch.no_grad():
                        raw = task.outputs(m, x)
                    return raw if s is None else task.obfuscate(raw, "round", step=s)

                rows.append(mv.verdict(answer))
        n = len(rows)
        a = sum(v.derived for v in rows)
        b = sum(v.score >= v.threshold and v.p_value <= v.alpha for v in rows)
        s = [v.score for v in rows]
        c = [v.closeness for v in rows]
        print(f"{name} | {n} | {a} | {b} | {min(s):.3f}–{max(s):.3f} | {min(c):.3f}–{max(c):.3f}")
        total, accused, accused_without = total + n, accused + a, accused_without + b
    print(
        f"all | {total} | {accused} (95 % upper bound {clopper_pearson_upper(accused, total):.3f}) | "
        f"{accused_without} (95 % upper bound {clopper_pearson_upper(accused_without, total):.3f}) | |"
    )


if __name__ == "__main__":
    main()
