"""Where the anchor cue's ratio falls for co-students and for a student and its fine-tune.

The anchor cue (``freqprint.verification.tree``, step 5) orders two members u, v of one depth and
basis, shallower than another member, by ``r = (a_v² − a_u²)/d(u, v)²`` with ``a`` a member's
distance to the nearest deeper member: a fine-tune F of a student S adds an independent change,
so ``r ≈ 1`` from S to F; it speaks when ``|r| > ANCHOR_CUE`` (0.25).  Two co-students (students
of one teacher, or of near-identical ones) should give ``r`` near 0 — then the cue is silent and
the tree charges the co-student event.

For each seed the random trees of ``bench lineage --which trees --seed SEED`` are rebuilt (the
same generator) and each true family's tree computed; every pair the cue could read (same depth
and basis, shallower than another member, no exact cue, not copies) is printed with its truth:
``ancestor`` (r signed so that the true order is positive; ``direct`` when parent and child),
``co-students`` (two half-depth students, neither derived from the other; |r|) or ``other``
(siblings and cousins; |r|).  docs/benchmarks.md §14e.

Usage::

    python scripts/tree_anchor_ratios.py 2039 2029 2031 ... | grep ^RATIO > benchmarks/cpu/tree-anchor-ratios.txt
"""

from __future__ import annotations

import itertools
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import freqprint.verification.tree as tree
import freqprint_bench.lineage as bench

TRUTH: dict[str, list[str]] = {}
SEED = 0
_anchor = tree._anchor_cues


def _ancestors(n: str) -> set[str]:
    out: set[str] = set()
    for p in TRUTH.get(n, ()):
        out |= {p} | _ancestors(p)
    return out


def _spy(members: Any, dist: Any, cues: Any) -> Any:
    out = _anchor(members, dist, cues)
    deepest = max(m.distinct for m in members)
    anchor = {
        m.name: min((dist[(m.name, w.name)] for w in members if w.distinct > m.distinct), default=math.inf) for m in members
    }
    for u, v in itertools.combinations(members, 2):
        if u.distinct == v.distinct < deepest and tree._same_basis(u, v) and cues[(u.name, v.name)][1] in ("kurtosis", ""):
            d = dist[(u.name, v.name)]
            if d <= tree.COPY:
                continue
            r = (anchor[v.name] ** 2 - anchor[u.name] ** 2) / d**2  # > 0: v later
            if u.name in _ancestors(v.name):
                rel, shown = "ancestor", r
            elif v.name in _ancestors(u.name):
                rel, shown = "ancestor", -r
            elif "half-depth" in u.name and "half-depth" in v.name:
                rel, shown = "co-students", abs(r)
            else:
                rel, shown = "other", abs(r)
            direct = u.name in TRUTH.get(v.name, ()) or v.name in TRUTH.get(u.name, ())
            print(f"RATIO {SEED} {rel}{' direct' if direct else ''} {shown:+.3f} {u.name} {v.name} d={d:.4f}", flush=True)
    return out


def _families(nodes: Any, names: list[str], log: Any, found: Any = None) -> dict[str, Any]:
    TRUTH.update({n: nodes[n].parents for n in names})
    for r in sorted({n.split("/")[0] for n in names}):
        tree.lineage_tree({n: nodes[n].source for n in names if n.split("/")[0] == r})
    return {"rows": []}


tree._anchor_cues = _spy
bench._tree_recovery = _families
for SEED in map(int, sys.argv[1:]):
    TRUTH.clear()
    with tempfile.TemporaryDirectory() as d:
        bench.run_trees(Path(d), seed=SEED)
