"""A thief's free rewrites against step 4's shape exemption (docs/security.md, benchmarks §14e):
the test's fine-tune F of a 0.7/0.3 merge of P and P's pruning, uploaded as is, permuted,
scaled + permuted + rotated, widened with split weights, or as GGUF Q8_0 — where the tree puts
F — and the same family beside two far negatives (an untrained decoder, one trained from scratch
on other text).  Tiny decoders of the tests.

    .venv/bin/python scripts/tree_merge_attack.py
    # 0.38.0: about 11 s on 2 cores; output benchmarks/cpu/tree-merge-attack.txt
"""

import copy
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from freqprint.attacks import Compose, DecoderPermutation, DecoderRotation, NormScaling, Prune
from freqprint.io.gguf import save_gguf
from freqprint.verification.tree import lineage_tree
from test_lineage_tree import _model
from test_parent_lineage import new, state, train, widen

tmp = pathlib.Path(tempfile.mkdtemp())
p = train(new(0), 200, seed=0)
sp = state(p)
pruned = state(Prune(rate=0.3)(copy.deepcopy(p)))
merge = {k: 0.7 * sp[k] + 0.3 * pruned[k] for k in sp}
fm = train(_model(merge), 20, seed=0, lr=1e-3)
base = {"P": sp, "pruned": pruned, "merge": merge}
rewrites = {
    "plain": state(fm),
    "perm+scale+rot": state(
        Compose([NormScaling(seed=1), DecoderPermutation(seed=1), DecoderRotation(seed=2)])(copy.deepcopy(fm))
    ),
    "perm": state(DecoderPermutation(seed=3)(copy.deepcopy(fm))),
    "widen": state(widen(copy.deepcopy(fm))),
    "Q8_0": save_gguf(state(fm), tmp / "f.gguf", "Q8_0"),
}
for name, f in rewrites.items():
    tr = lineage_tree(base | {"F": f}, units=64)
    print(f"{name:16s} F <- {tr.parents['F']}  roots {tr.roots}  families {len(tr.families)}")
# far negatives: untrained, other text from scratch, constant-ish (all zeros MLP?)
far = {"untrained": state(new(5)), "other-text": state(train(new(6), 200, seed=3))}
tr = lineage_tree(base | {"F": state(fm)} | far, units=64)
print("with far negatives:", tr.families, "F <-", tr.parents["F"], "roots", tr.roots)
