"""Which teacher?  A suspect's answers against the source's and against replicates of the source.

The held-out students of ``freqprint metav bench`` are caught rarely (§13).  Is that V's failure,
or is there nothing in their answers that points at the source rather than at another model of
the same recipe?  This script measures the second question with a test whose null needs no
model of V's imagination: train K **replicates** of the source — its manifest entry (recipe,
data, epochs, learning rate, its own fingerprint module) with other seeds — and, for each test
suspect s of the default manifest and a similarity statistic t, rank the source among the K + 1
candidates {source, replicate₁, …, replicate_K}:

    p = (1 + #{k : t(s, replicate_k) ≥ t(s, source)}) / (K + 1)

If s does not depend on the source's training randomness (it was not made from the source), the
source and the replicates are exchangeable draws of one recipe, independent of s, so the source's
rank is uniform and ``P(p ≤ u) ≤ u`` exactly (ties counted against the source).  A student that
carries *its* teacher's idiosyncrasies ranks the source first, p = 1/(K + 1).

Statistics, each symmetric in the candidates (so the rank stays exchangeable), on the first
``--inputs`` images or rows of the owner's test data (natural inputs, answers through
``Task.closeness_features``: row-centred log-probabilities for a classifier):

* ``closeness``  — the correlation of the suspect's features with the candidate's
  (:func:`freqprint.stats.floor.closeness`);
* ``residual``   — the correlation of the suspect's features minus the candidates' mean with the
  candidate's minus the mean of the other K (what only that candidate does);
* a generator's candidates are each read in the suspect's latent frame first
  (:meth:`~freqprint.metav.tasks.Task.canonical`: the prior is rotation-invariant, and every
  replicate has a frame of its own), so every statistic compares them in one frame;
* classification also ``label`` — the share of inputs with the candidate's top label — and
  ``label-odd`` — that share on the inputs where the candidate's top label is not the other K's
  majority (the candidate's own mistakes and quirks).

The rank is exact over draws of the source, not for the owner's one source: suspects that
resemble "any model of the task" share that one draw's typicality (docs/benchmarks.md §13
measures how many far models it puts at p ≤ 0.05).  ``--reference`` also ranks each suspect's
**margin** ``t(s, source) − max_k t(s, replicate_k)`` among the reference split's margins, a
per-claim conformal p like the verdict's reference rank; ``--claim`` (with ``--reference``) reads
a claim of the same manifest (``freqprint metav bench`` writes one per task) and reports the
closeness's margin gated like a verdict — the claim's agreement test at α and its probe floor —
alone at α = 0.01, and joined to the claim's verdict with α split in two (each at 0.005: the
union's error is at most the sum).

Usage (replicates and suspects go to the model cache; a classification replicate takes about
15 s on 2 cores)::

    python scripts/metav_teacher_rank.py --task classification --replicates 99
    python scripts/metav_teacher_rank.py --task generation --reference \
        --claim bench-results/metav/metav-generation.safetensors
"""

from __future__ import annotations

import argparse
import collections
import time
from dataclasses import replace

import numpy as np
import torch

from freqprint.metav import MetaV, Verdict, load_claim
from freqprint.metav.ensemble import Manifest, build_ensemble, default_manifest
from freqprint.stats.floor import closeness, conformal_pvalue
from freqprint_bench.metav import population


def manifest(kind: str, replicates: int, seed_base: int) -> Manifest:
    """The default manifest without its panel (the test split's ancestors come along) and K replicates of
    the source in the panel split."""
    base = default_manifest(kind, "quick")
    src = base.entries[0]
    assert src.role == "source"
    reps = [
        replace(src, name=f"replicate-{i}", role="panel", family="replicate", split="panel", seed=seed_base + i)
        for i in range(replicates)
    ]
    return Manifest(base.task, [e for e in base.entries if e.split != "panel"] + reps, "custom")


def candidates(cands: torch.Tensor) -> dict[str, np.ndarray]:
    """What the statistics need of the candidates' features ``[K + 1, n, d]``, computed once."""
    c = cands.double().numpy()
    total = c.sum(0)
    out = {"feats": c, "mean": total / len(c), "residual": (len(c) * c - total) / (len(c) - 1)}
    labels = c.argmax(2)  # [K + 1, n]
    counts = np.stack([(labels == k).sum(0) for k in range(c.shape[2])], 1)  # [n, d]
    others = counts[None] - (labels[..., None] == np.arange(c.shape[2]))  # the other K's votes
    out["labels"] = labels
    out["odd"] = labels != others.argmax(2)  # where a candidate's label is not the others' majority
    return out


def statistics(kind: str, suspect: torch.Tensor, c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every statistic of the suspect's features ``[n, d]`` against each candidate."""
    s = suspect.double().numpy()
    out: dict[str, list[float]] = collections.defaultdict(list)
    s_res = s - c["mean"]
    s_lab = s.argmax(1)
    for m in range(len(c["feats"])):
        out["closeness"].append(closeness(s, c["feats"][m]))
        out["residual"].append(closeness(s_res, c["residual"][m]))
        if kind == "classification":
            lab, odd = c["labels"][m], c["odd"][m]
            out["label"].append(float((s_lab == lab).mean()))
            out["label-odd"].append(float((s_lab[odd] == lab[odd]).mean()) if odd.any() else 0.0)
    return {k: np.asarray(v) for k, v in out.items()}


def _margins(stats: list[dict[str, np.ndarray]]) -> dict[str, list[float]]:
    """Each statistic's margin of the source over the best replicate, per suspect."""
    out: dict[str, list[float]] = collections.defaultdict(list)
    for st in stats:
        for k, t in st.items():
            out[k].append(float(t[0] - t[1:].max()))
    return out


def _gated(mv: MetaV, query, p_margin: float) -> dict[str, bool]:
    """The claim's verdict, the margin's conformal p gated like a verdict (agreement test, probe
    floor) at α, and the two joined with α split in two (the claim's verdict at α/2)."""
    v = mv.verdict(query)
    half = mv.verdict(query, alpha=v.alpha / 2)

    def gate(w: Verdict) -> bool:
        return w.p_agreement <= w.alpha and (w.probe_floor is None or (w.probe_statistic or 0.0) >= w.probe_floor)

    return {
        "verdict": v.derived,
        "gated margin": gate(v) and p_margin <= v.alpha,
        "joined": half.derived or (gate(half) and p_margin <= half.alpha),
    }


def rank_p(t: np.ndarray) -> float:
    """The source's (index 0) rank p-value among the candidates, ties against the source."""
    return conformal_pvalue(float(t[0]), t[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="classification", choices=("classification", "regression", "generation"))
    ap.add_argument("--replicates", type=int, default=99)
    ap.add_argument("--seed-base", type=int, default=2_000_000)
    ap.add_argument("--inputs", type=int, default=2000)
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    ap.add_argument("--reference", action="store_true", help="also rank each margin among the reference split's")
    ap.add_argument("--claim", help="a claim of the same manifest: the margin gated like its verdict, and joined to it")
    a = ap.parse_args()
    if a.claim and not a.reference:
        ap.error("--claim needs --reference")
    mv = load_claim(a.claim)[0] if a.claim else None
    t0 = time.time()
    ens = build_ensemble(
        manifest(a.task, a.replicates, a.seed_base),
        a.cache,
        splits=("test", "panel", "reference") if a.reference else ("test", "panel"),
        log=lambda s: print(s, flush=True),
    )
    print(f"built in {time.time() - t0:.0f} s ({ens.trained} trained)", flush=True)
    task = ens.task
    data = ens.data.test
    x = data.images if hasattr(data, "images") else data[0]
    x = x[: a.inputs]

    def feats(q) -> torch.Tensor:
        with torch.no_grad():
            return task.closeness_features(q(x).float())

    reps = [m for m in ens.members if m.entry.family == "replicate"]
    queries = [ens.source.query] + [m.query for m in reps]
    cands = candidates(torch.stack([feats(q) for q in queries]))
    K = len(reps)
    rows: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    verdicts: dict[str, list[dict[str, bool]]] = collections.defaultdict(list)

    def score(m) -> dict[str, np.ndarray]:
        c = cands
        mine = task.frame(m.query)
        if mine is not None:  # a generator: every candidate read in the suspect's latent frame
            c = candidates(torch.stack([feats(task.canonical(q, mine)) for q in queries]))
        return statistics(a.task, feats(m.query), c)

    # the margin t(s, source) − max_k t(s, replicate_k), ranked among the reference split's margins
    margins = {k: np.array(v) for k, v in _margins([score(m) for m in ens.split("reference")]).items()} if a.reference else {}
    for m in ens.split("test"):
        st = score(m)
        key = f"{'+' if m.label else '−'} {population(m)} | {m.entry.family}"
        row = {k: rank_p(v) for k, v in st.items()}
        for k, v in (_margins([st]) if margins else {}).items():
            row[f"{k} margin, conformal"] = conformal_pvalue(v[0], margins[k])
        if mv is not None:
            verdicts[key].append(_gated(mv, m.query, row["closeness margin, conformal"]))
        rows[key].append(row)
    names = list(next(iter(rows.values()))[0])
    print(f"\n{a.task}: {K} replicates of the source (seeds from {a.seed_base}); {len(x)} natural test inputs; ")
    print(f"p = rank of the source among the {K + 1} candidates; 'top' = p = 1/{K + 1} = {1 / (K + 1):.3f}")
    if margins:
        n_ref = len(next(iter(margins.values())))
        print(
            f"'margin, conformal': the margin over the best replicate ranked among the {n_ref} reference answers' (cells: p ≤ 0.01, p ≤ 0.05, median)"
        )
    print()
    print("| population | family | n | " + " | ".join(f"{s}: top, p ≤ 0.05, median p" for s in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for key in sorted(rows):
        pop, fam = key.split(" | ")
        r = rows[key]
        cells = []
        for s in names:
            p = np.array([x[s] for x in r])
            if "conformal" in s:
                cells.append(f"{int((p <= 0.01).sum())}, {int((p <= 0.05).sum())}, {np.median(p):.2f}")
            else:
                cells.append(f"{int((p <= 1 / (K + 1) + 1e-12).sum())}, {int((p <= 0.05).sum())}, {np.median(p):.2f}")
        print(f"| {pop} | {fam} | {len(r)} | " + " | ".join(cells) + " |")
    print("\nby population:")
    for pop in sorted({k.split(" | ")[0] for k in rows}):
        allp = [x for k, v in rows.items() if k.startswith(pop + " |") for x in v]
        cells = []
        for s in names:
            p = np.array([x[s] for x in allp])
            top = int((p <= (0.01 if "conformal" in s else 1 / (K + 1)) + 1e-12).sum())
            cells.append(f"{s}: {'≤0.01' if 'conformal' in s else 'top'} {top}, ≤0.05 {int((p <= 0.05).sum())}")
        print(f"  {pop} (n = {len(allp)}): " + "; ".join(cells))
    if verdicts:
        print(f"\nthe claim {a.claim}: its verdict; the closeness's margin (conformal) gated by the claim's agreement test")
        print("and probe floor, at α = 0.01; the verdict and the gated margin each at 0.005, joined (derived by either)")
        for pop in sorted({k.split(" | ")[0] for k in verdicts}):
            vs = [x for k, v in verdicts.items() if k.startswith(pop + " |") for x in v]
            print(f"  {pop} (n = {len(vs)}): " + "; ".join(f"{c} {sum(x[c] for x in vs)}" for c in vs[0]))
        for key in sorted(verdicts):
            vs = verdicts[key]
            if any(any(x.values()) for x in vs):
                print(f"    {key} (n = {len(vs)}): " + "; ".join(f"{c} {sum(x[c] for x in vs)}" for c in vs[0]))
    print(f"\n{time.time() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
