"""A thief who wants `lineage-tree` to call the original his child (docs/security.md, "Lineage
trees"): X = P − s·max|W|·u·vᵀ on every MLP matrix of the original P, u and v with four ones each
(a rank-1, sparse — heavy-tailed — change).  P is then a low-rank update of X, and the update's
side is read from kurtosis (step 6 of `freqprint.verification.tree`): X is put above P.

Second, a half-depth student S of a public teacher T: X = S + t·(T_even − S), T's even blocks
(S's initialisation) mixed in by a fraction t.  X is nearer to the teacher's line, and the anchor
cue (step 5) puts X between T and S.

Third, three uploads that make the original a task-arithmetic merge of two of them (0.24.0, step
4): A and B two sparse rank-1 changes of P (as the first forgery), O = A + B − P.  Then
P = A + B − O exactly, and each spike adds heavy tails, so the cues read O first and P last.

    .venv/bin/python scripts/tree_forgery.py     # 18 s on 2 cores (0.24.0); output benchmarks/cpu/tree-forgery.txt
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from freqprint.verification.tree import lineage_tree
from test_lineage_tree import _student
from test_parent_lineage import even_blocks, new, state, train

base = train(new(0), 200, seed=0)
original = state(base)
child = state(train(copy.deepcopy(base), 20, seed=1, lr=1e-3))
g = torch.Generator().manual_seed(9)


def spike(w: torch.Tensor, scale: float) -> torch.Tensor:
    u, v = torch.zeros(w.shape[0]), torch.zeros(w.shape[1])
    u[torch.randperm(w.shape[0], generator=g)[:4]] = 1.0
    v[torch.randperm(w.shape[1], generator=g)[:4]] = 1.0
    return w - scale * float(w.abs().max()) * torch.outer(u, v)


for scale in (0.05, 0.5, 2.0):
    thief = {k: (spike(w, scale) if "mlp" in k and w.dim() == 2 else w.clone()) for k, w in original.items()}
    change = sum(float((thief[k] - original[k]).norm()) for k in original) / sum(float(w.norm()) for w in original.values())
    t = lineage_tree({"original": original, "thief": thief, "child": child}, units=64)
    print(f"s = {scale}: ‖X − P‖/‖P‖ = {change:.4f}; parents {t.parents}; roots {t.roots}")

student = state(_student(original))
even = even_blocks(original)
for t in (0.001, 0.01, 0.1):
    thief = {k: student[k] + t * (even[k] - student[k]) for k in student}
    change = sum(float((thief[k] - student[k]).norm()) for k in student) / sum(float(w.norm()) for w in student.values())
    t_ = lineage_tree({"teacher": original, "student": student, "thief": thief}, units=64)
    print(f"t = {t}: ‖X − S‖/‖S‖ = {change:.4f}; parents {t_.parents}; roots {t_.roots}")

for scale in (0.05, 0.5):
    a = {k: (spike(w, scale) if "mlp" in k and w.dim() == 2 else w.clone()) for k, w in original.items()}
    b = {k: (spike(w, scale) if "mlp" in k and w.dim() == 2 else w.clone()) for k, w in original.items()}
    o = {k: a[k] + b[k] - original[k] for k in original}
    change = sum(float((a[k] - original[k]).norm()) for k in original) / sum(float(w.norm()) for w in original.values())
    t_ = lineage_tree({"original": original, "A": a, "B": b, "O": o, "child": child}, units=64)
    print(
        f"task arithmetic, s = {scale}: ‖A − P‖/‖P‖ = {change:.4f}; parents {t_.parents}; "
        f"origins {t_.detail['task_arithmetic']}; roots {t_.roots}"
    )
