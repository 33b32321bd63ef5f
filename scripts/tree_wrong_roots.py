"""The wrong roots of 0.37.0's held-out trees (docs/benchmarks.md §14e): in seeds 2056, 2062 and
2064 a short fine-tune of a linear merge, on the roots' own English text, is taken for its
family's root.  For each, its family's tree alone (the pairs taken as related), the stored
weights' excess kurtosis of the root, the fine-tune and the merge (step 5's direction cue: the
heavier-tailed comes first) and the fine-tune's nearest members (the merge-hub rule: a merge is
a parent only of a member twice as near to it as to any other).  Models from
``scripts/tree_rescore.py``'s cache.

    .venv/bin/python scripts/tree_wrong_roots.py --cache .cache/tree-rescore
    # 0.37.0: 85 s on 2 cores shared with a test run; output benchmarks/cpu/tree-wrong-roots.txt
    # 0.38.0 puts all three roots right (step 4's shape exemption): rerun, it prints the true roots
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tree_rescore import load_nodes  # the script beside this one

from freqprint.verification.tree import lineage_tree

CASES = (("2056", "T2", "T2/5-sft"), ("2062", "T1", "T1/7-sft"), ("2064", "T0", "T0/4-sft"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    a = ap.parse_args()
    for seed, root, fine in CASES:
        nodes = load_nodes(a.cache / seed)
        fam = [n for n in nodes if n.split("/")[0] == root]
        tree = lineage_tree({n: nodes[n].source for n in fam}, related=[(x, y) for x in fam for y in fam if x < y])
        kurt = {n: s["excess_kurtosis"] for n, s in tree.detail["stored"].items()}
        (merge,) = nodes[fine].parents
        near = sorted(tree.distances[fine].items(), key=lambda e: e[1])[:3]
        print(
            f"seed {seed}: {fine} ({nodes[fine].kind}), a child of {merge}; the tree's root "
            f"{tree.roots[0]}, {root} under {' + '.join(tree.parents[root]) or 'nothing'}; excess kurtosis: "
            f"root {kurt[root]:.4f}, fine-tune {kurt[fine]:.4f}, merge {kurt[merge]:.4f}; nearest to the "
            f"fine-tune: " + ", ".join(f"{n} {d:.4f}" for n, d in near),
            flush=True,
        )


if __name__ == "__main__":
    main()
