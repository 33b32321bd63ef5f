"""A thief against step 9 of `freqprint.verification.tree` (docs/security.md, "Lineage trees"):
his fine-tune T of the owner's model A (itself a fine-tune of a public P), on other text, put
under A by the tree; he adds Gaussian noise to every projection matrix, r times the norm of his
own change, and asks the tree again.  Step 9 reads a difference's shape: noise raises both the
effective rank and (against his smaller change from A than from P) the excess kurtosis of T − A
more than of T − P, and T goes under P, A's sibling; `lineage` (the pair test) is asked too.  Tiny Llama decoders of the tests
(Markov text), 6 s on 2 cores.

    .venv/bin/python scripts/tree_sibling_attack.py
    # output benchmarks/cpu/tree-sibling-attack.txt (0.36.0's tree code on the same models:
    # PYTHONPATH=<a 0.36.0 checkout>/src, benchmarks/cpu/tree-sibling-attack-0.36.txt)
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import freqprint.verification.tree as tree_code
from freqprint.verification.parent import parent_lineage
from freqprint.verification.tree import lineage_tree
from test_parent_lineage import new, state, train  # the tests' tiny decoders and Markov text


def main() -> None:
    p = train(new(0), 200, seed=0)
    a = train(copy.deepcopy(p), 20, seed=1, lr=1e-3)  # the owner's fine-tune of a public model
    t = state(train(copy.deepcopy(a), 40, seed=3, lr=2e-3))  # the thief's, on other text
    sa = state(a)
    mats = [k for k, v in t.items() if v.dim() == 2 and (".mlp." in k or ".self_attn." in k)]
    change = float(torch.cat([(t[k] - sa[k]).flatten() for k in mats]).norm())
    step9 = "with" if hasattr(tree_code, "_siblings") else "without"
    print(f"tree code {step9} step 9 (siblings); the thief's change ‖T − A‖ = {change:.4f}")
    g = torch.Generator().manual_seed(0)
    for r in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0):
        noise = {k: torch.randn(t[k].shape, generator=g) for k in mats}
        scale = r * change / float(torch.cat([n.flatten() for n in noise.values()]).norm())
        thief = {k: v + scale * noise[k] if k in noise else v.clone() for k, v in t.items()}
        tree = lineage_tree({"P": state(p), "A": sa, "T": thief}, units=64)
        d = tree.distances["T"]
        la, lp = parent_lineage(sa, thief), parent_lineage(state(p), thief)
        print(
            f"noise {r:.2f} × his change: T under {' + '.join(tree.parents['T']) or 'no parent'}"
            f"  (d(T, A) {d['A']:.4f}, d(T, P) {d['P']:.4f}); lineage: from A {la.found} (log10 p {la.log10_p:.0f}),"
            f" from P {lp.found} (log10 p {lp.log10_p:.0f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
