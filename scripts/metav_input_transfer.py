"""Do a classifier's students inherit its answers on *chosen* inputs?  Two recipe-free statistics,
measured on the classification ensemble of ``freqprint metav bench`` (a negative result).

A suspect's statistic is the share of M chosen inputs on which its label (argmax of what it
serves: logits, probabilities, a label) equals the source's label ``y_i``.  A test suspect's
p-value is its conformal rank among the 249 reference answers, ``(1 + #{ref ≥ s}) / 250``;
"top" counts the suspects above every reference answer (p = 0.004, what a Bonferroni split of
α = 0.01 between two channels would need).  The inputs:

* **adversarial** (Lukas et al., ICLR 2021, conferrable adversarial examples): M = 100 natural
  images of the owner's data with random target labels ``t ≠`` the source's, L∞ PGD (40 steps of
  0.01, radius ε) on ``CE(source, t)``, and for the *conferrable* variant also
  ``+ mean_s CE(s, t) − mean_i log(1 − mean_r p_r(t))`` over the train split's students (s) and
  owner-data independents (r); ``y_i = t_i``;
* **natural**: 20,000 Fashion-MNIST training images that neither the owner's nor the thief's split
  holds; ``y_i`` the source's label; ranked by conferrability ``a_s·(1 − a_r)`` (a_s: share of the
  train split's students that agree with the source, a_r: of its owner-data independents and their
  variants), the top k per source label (balanced: a constant answer scores 1/10) or overall.

Usage (the ensemble cache that ``freqprint metav bench`` fills)::

    python scripts/metav_input_transfer.py --cache .cache/freqprint/metav
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
import torch
import torch.nn.functional as F

import freqprint.metav.ensemble as ensemble
from freqprint.data import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    ensemble.quality = lambda task, model, data: None  # not needed here; saves minutes
    ens = ensemble.build_ensemble(ensemble.default_manifest("classification", "quick"), args.cache)
    task, data, src = ens.task, ens.data, ens.source
    split = collections.defaultdict(list)
    for m in ens.members:
        split[m.entry.split].append(m)
    students = [m for m in split["train"] if m.label and m.entry.op == "distill"]
    close = [
        m
        for m in split["train"]
        if not m.label and m.entry.op not in ("output", "null") and m.entry.family.startswith(("indep", "neg"))
    ]
    print(f"{len(ens.members)} models; train split: {len(students)} students, {len(close)} owner-data independents and variants")

    def labels(member, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return task.probabilities(member.query(x)).argmax(1)

    def report(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        stat = lambda m: float((labels(m, x) == y).float().mean())
        ref = np.array([stat(m) for m in split["reference"]])
        print(f"\n== {name}: M = {len(y)}, source {stat(src):.3f}; reference median {np.median(ref):.3f}, max {ref.max():.3f}")
        fams = collections.defaultdict(list)
        for m in split["test"]:
            s = stat(m)
            fams[(m.label, m.entry.family)].append((s, (1 + (ref >= s).sum()) / (len(ref) + 1)))
        total = collections.Counter()
        for (lab, fam), rows in sorted(fams.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            s, p = np.array([a for a, _ in rows]), np.array([b for _, b in rows])
            top = int((p <= 0.005).sum())
            group = "students" if fam.startswith("kd ") else ("derived" if lab else "negatives")
            total[group] += top
            total[group + " n"] += len(rows)
            if lab or top:
                print(
                    f"  {'+' if lab else '-'} {fam:30s} n {len(rows):3d}  top {top:3d}  statistic {np.median(s):.3f} [{s.min():.3f}, {s.max():.3f}]"
                )
        print(
            f"  held-out students {total['students']}/{total['students n']}, other derived {total['derived']}/{total['derived n']}, "
            f"negatives accused {total['negatives']}/{total['negatives n']}",
            flush=True,
        )

    # adversarial inputs
    g = torch.Generator().manual_seed(0)
    x0 = data.owner.images[torch.randperm(len(data.owner.images), generator=g)[:100]].float()
    target = (labels(src, x0) + torch.randint(1, 10, (len(x0),), generator=g)) % 10

    def pgd(eps: float, conferrable: bool) -> torch.Tensor:
        x = x0.clone().requires_grad_(True)
        for _ in range(40):
            loss = F.cross_entropy(task.outputs(src.model, x), target)
            if conferrable:
                loss = loss + sum(F.cross_entropy(task.outputs(m.model, x), target) for m in students) / len(students)
                pr = torch.stack([F.softmax(task.outputs(m.model, x), 1)[torch.arange(len(x)), target] for m in close]).mean(0)
                loss = loss - torch.log1p(-pr.clamp(max=0.999)).mean()
            (grad,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x -= 0.01 * grad.sign()
                x.copy_(torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 1))
        return x.detach()

    for eps in (0.1, 0.2):
        for conf in (False, True):
            report(f"adversarial, {'conferrable' if conf else 'source only'}, eps {eps}", pgd(eps, conf), target)

    # natural inputs
    full = load_dataset("fashion-mnist", "train")
    unused = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))[12000:32000]  # after the owner's and thief's
    pool = full.images[unused].float()
    y = labels(src, pool)
    a_s = torch.stack([labels(m, pool) == y for m in students]).float().mean(0)
    a_r = torch.stack([labels(m, pool) == y for m in close]).float().mean(0)
    conf = a_s * (1 - a_r)

    def balanced(k: int) -> torch.Tensor:
        ids = [torch.nonzero(y == c)[:, 0] for c in range(10)]
        return torch.cat([i[torch.argsort(-conf[i], stable=True)[: k // 10]] for i in ids])

    for k in (300, 1000):
        sel = balanced(k)
        report(f"natural, conferrable, balanced, top {k}", pool[sel], y[sel])
    sel = torch.argsort(-conf, stable=True)[:500]
    report("natural, conferrable, unbalanced, top 500", pool[sel], y[sel])
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
