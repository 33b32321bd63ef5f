"""How a claim's replicate route reads its replicates, and how many it needs (docs/benchmarks.md §13).

The route (:mod:`freqprint.stats.floor`) compares a suspect's closeness to the source with its
closeness to K replicates of the source.  This script rescores the test split of a claim's own
manifest with the claim's first K replicates, for each K given, three ways:

* ``source frame, reference rank``: the first design, measured and replaced — every candidate
  read in the source's frame (the source itself with no alignment error), the margin ranked among
  the reference answers' margins, no exact rank;
* ``anchor frame, reference rank``: every candidate and the suspect read in the anchor's frame
  (the claim's reading), the margin's reference rank alone;
* ``the route``: the claim's — the anchor's frame, ``max(p₁, p_m, p_r)`` with p_r the source's
  exact rank among the K + 1 draws (which reaches α/2 only when K + 1 ≥ 2/α);

each gated like the claim (probe floor) and joined to V's route at α/2, beside the claim's verdict.

Usage (the claim of ``freqprint metav bench --tasks generation``; models from its cache)::

    python scripts/metav_replicates.py bench-results/metav/metav-generation.safetensors 19 99 199
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import time

import numpy as np

from freqprint.metav import load_claim
from freqprint.metav.ensemble import Manifest, build_ensemble
from freqprint.stats.floor import closeness, conformal_pvalue, replicate_rank
from freqprint_bench.metav import population


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claim")
    ap.add_argument("k", type=int, nargs="+", help="numbers of replicates to rescore with (at most the claim's)")
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    a = ap.parse_args()
    mv, meta = load_claim(a.claim)
    f = mv.floor
    assert f is not None and f.replicates, "a claim with replicates (format 6, a generation claim)"
    ens = build_ensemble(Manifest.from_dict(meta["manifest"]), a.cache, splits=("test", "reference", "replicate"))
    src = f.probe_answers.double().numpy()
    # the first design: every replicate read in the source's frame, as a suspect is
    reps = ens.split("replicate")[1:]  # the first is the anchor
    in_src = np.stack([mv._answers(m.query, f.probes)[1].half().double().numpy() for m in reps])

    def readings(m) -> tuple[np.ndarray, np.ndarray]:
        x = mv._answers(m.query, f.probes)[1].double().numpy()
        old = np.array([closeness(x, src)] + [closeness(x, r) for r in in_src])
        return old, mv.replicate_statistics(m.query)

    ref = [readings(m) for m in ens.split("reference")]
    ref_m = {
        (k, j): np.array([r[j][0] - r[j][1 : k + 1].max() for r in ref]) for k in a.k for j in (0, 1)
    }  # j = 0: the source's frame, 1: the anchor's
    if f.replicates in a.k:  # the claim's own margins, recomputed
        assert np.allclose(np.sort(ref_m[(f.replicates, 1)]), np.sort(f.margins.numpy()))
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for m in ens.split("test"):
        v = mv.verdict(m.query)
        old, new = readings(m)
        half = v.alpha / 2
        floor_ok = v.probe_floor is None or (v.probe_statistic is not None and v.probe_statistic >= v.probe_floor)
        by_v = v.score >= v.threshold and max(v.p_agreement, v.p_reference, v.p_closeness) <= half  # ranked at α/2
        c = counts[f"{'+' if m.label else '−'} {population(m)}"]
        c["n"] += 1
        c["the claim"] += v.derived
        c["V's route at α/2"] += floor_ok and by_v
        for k in a.k:
            pm_old = conformal_pvalue(old[0] - old[1 : k + 1].max(), ref_m[(k, 0)])
            margin, pr = replicate_rank(new[: k + 1])
            pm = conformal_pvalue(margin, ref_m[(k, 1)])
            c[f"K = {k}: source frame, reference rank"] += floor_ok and (by_v or max(v.p_agreement, pm_old) <= half)
            c[f"K = {k}: anchor frame, reference rank"] += floor_ok and (by_v or max(v.p_agreement, pm) <= half)
            c[f"K = {k}: the route"] += floor_ok and (by_v or max(v.p_agreement, pm, pr) <= half)
    # the route's cost, in this run: the claim's verdict with and without its replicates
    alone = copy.copy(mv)
    alone.floor = dataclasses.replace(f, candidates=None, margins=None, replicate_frame=None)
    test = ens.split("test")
    cost = {}
    for name, claim in (("with the route", mv), ("V's route alone", alone)):
        t0 = time.perf_counter()
        for m in test:
            claim.verdict(m.query)
        cost[name] = (time.perf_counter() - t0) / len(test)
    cols = list(next(iter(counts.values())))
    print(f"claim {a.claim}: {f.replicates} replicates, {len(ref)} reference answers, α {f.alpha:g} (each route at α/2)")
    print("| population | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for pop in sorted(counts):
        print(f"| {pop} | " + " | ".join(str(counts[pop][c]) for c in cols) + " |")
    with_route, without = cost.values()
    print(
        f"a verdict in-process over the {len(test)} test suspects: "
        + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in cost.items())
        + f" (ratio {with_route / without:.2f})"
    )


if __name__ == "__main__":
    main()
