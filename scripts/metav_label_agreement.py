"""A candidate floor statistic for classification, measured: top-1 label agreement with the source.

The 0.29 closeness floor (row-centred log-probabilities) loses label-only APIs and is evaded by
mixing noise into the probabilities at no cost in accuracy (docs/benchmarks.md §13).  This prints,
for the classification claim of `freqprint metav bench` (it needs a floor only for its probes),
the share of the claim's 256 natural probes on which a suspect's top label is the source's: the
5 % quantile over the train/val positives, its range per test population and per reference family,
and the test derivatives' under probability mixing (scripts/metav_floor_price.py's noise).
Not adopted yet.

Usage::

    python scripts/metav_label_agreement.py   # reads bench-results/metav/metav-classification.safetensors
"""

import sys

import numpy as np
import torch

sys.path.insert(0, "scripts")
from metav_floor_price import noisy

import freqprint_bench.metav as bench
from freqprint.metav import load_claim
from freqprint.metav.ensemble import build_ensemble, default_manifest

mv, _ = load_claim("bench-results/metav/metav-classification.safetensors")
ens = build_ensemble(default_manifest("classification", "quick"), ".cache/freqprint/metav", log=lambda s: None)
P = mv.floor.probes
with torch.no_grad():
    src = ens.task.probabilities(ens.source.query(P)).argmax(1)


def agree(q):
    with torch.no_grad():
        return float((ens.task.probabilities(q(P).float()).argmax(1) == src).float().mean())


fit = [agree(m.query) for s in ("train", "val") for m in ens.split(s) if m.label == 1]
print("train/val positives: agreement 5% quantile", np.quantile(fit, 0.05), "min", min(fit))
pops = {}
for m in ens.split("test"):
    pops.setdefault(("+" if m.label else "-") + bench.population(m), []).append(agree(m.query))
for k, v in pops.items():
    print(k, len(v), "min", round(min(v), 3), "5%", round(float(np.quantile(v, 0.05)), 3), "max", round(max(v), 3))
ref = {}
for m in ens.split("reference"):
    ref.setdefault(m.entry.family, []).append(agree(m.query))
for k, v in sorted(ref.items(), key=lambda kv: -max(kv[1])):
    print("  ref", k, round(min(v), 3), round(max(v), 3))
der = [m for m in ens.split("test") if m.label == 1 and not bench.population(m).startswith("students")]
for e in (0.0, 0.3, 0.5, 0.7, 0.85):
    a = [agree(noisy(ens.task, m.query, e, 1.0)) for m in der]
    print("mixing", e, "derivatives' agreement median", round(float(np.median(a)), 3), "min", round(min(a), 3))
