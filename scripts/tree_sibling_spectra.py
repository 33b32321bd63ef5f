"""Can a weight difference's shape tell a sibling from a child where its length cannot? (docs/benchmarks.md §14e)

`lineage-tree` takes a fine-tune for its sibling's child when the two were trained on correlated
text (``scripts/tree_sibling_angles.py``: no reading of the aligned distances separates them).
A fine-tune's change is one optimiser run from its parent; the difference between two siblings
is two runs, one of them undone.  If a single run left a signature — a low effective rank (Adam
steps sum gradients of a few directions), light tails, a bounded largest step — then for a
triangle P (parent), S (an SFT model) and v (an SFT model nearer to S than to P) the difference
v − S would carry it when S is v's parent (a chain P → S → v) and not when S is v's sibling
(P → S, P → v).  This script measures three such shapes on the stored weights of the bench's
random trees (fine-tunes keep their parent's basis): per projection matrix of every block, the
effective rank exp(H(σ²/Σσ²)) / min(shape), the excess kurtosis and max|Δ|/std of Δ, averaged,
for Δ = v − S and Δ = v − P, over every such triangle with d(v, S) < d(v, P) — the ones the
distance gets wrong when S is a sibling.

    .venv/bin/python scripts/tree_sibling_spectra.py --cache .cache/tree-rescore 2026-2044
    # output benchmarks/cpu/tree-sibling-spectra.txt
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file
from tree_rescore import seeds  # the script beside this one

MATS = (
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
)


def shapes(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float] | None:
    """Length and the three shapes of ``a − b`` over the projection matrices (None: another basis or shape)."""
    er, ku, mx, sq = [], [], [], 0.0
    for k in a:
        if not any(m in k for m in MATS):
            continue
        if k not in b or a[k].shape != b[k].shape:
            return None
        d = a[k].double() - b[k].double()
        s = torch.linalg.svdvals(d)
        if float(s.sum()) == 0.0:
            continue
        p = s**2 / (s**2).sum()
        er.append(math.exp(-float((p * torch.log(p.clamp_min(1e-300))).sum())) / min(d.shape))
        z = d.flatten() - d.mean()
        ku.append(float((z**4).mean() / (z**2).mean() ** 2) - 3)
        mx.append(float(z.abs().max() / z.std()))
        sq += float((d**2).sum())
    if not er:
        return None
    return {"d": math.sqrt(sq), "er": sum(er) / len(er), "ku": sum(ku) / len(ku), "mx": sum(mx) / len(mx)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="+", help="seeds or ranges whose models are under --cache")
    ap.add_argument("--cache", type=Path, required=True)
    a = ap.parse_args()
    rows = []
    for seed in seeds(a.seeds):
        folder = a.cache / str(seed)
        meta = json.loads((folder / "meta.json").read_text())
        sd = {n: load_file(str(folder / m["file"])) for n, m in meta.items() if m["file"].endswith(".safetensors")}
        sft = {n for n, m in meta.items() if m["kind"].startswith("SFT") and n in sd}
        for v in sorted(sft):
            (par,) = meta[v]["parents"]
            cases = [("sibling", s, par) for s in sorted(sft - {v}) if meta[s]["parents"] == [par]]
            if par in sft and meta[par]["parents"] and meta[par]["parents"][0] in sd:
                cases.append(("child", par, meta[par]["parents"][0]))
            for rel, s, p in cases:
                if p not in sd:
                    continue
                vs, vp = shapes(sd[v], sd[s]), shapes(sd[v], sd[p])
                if vs is None or vp is None or vs["d"] >= vp["d"]:
                    continue
                rows.append((seed, v, rel, vs["d"] / vp["d"], {k: vs[k] - vp[k] for k in ("er", "ku", "mx")}))
    print("triangles P, S, v (S, v fine-tunes) with d(v, S) < d(v, P): is S v's parent ('child': a chain) or its sibling?")
    print("columns: shape of v − S minus shape of v − P (a single run from S should make it smaller)")
    for seed, v, rel, ratio, diff in sorted(rows, key=lambda r: (r[2], r[3])):
        print(
            f"{seed} {v:>9} S is v's {rel:<7} d(v,S)/d(v,P) {ratio:.3f}  eff. rank {diff['er']:+.4f}  kurtosis {diff['ku']:+.3f}  max/std {diff['mx']:+.3f}"
        )
    for rel in ("child", "sibling"):
        sel = [r[4] for r in rows if r[2] == rel]
        if sel:
            print(
                f"S is v's {rel}: {len(sel)} triangles; "
                + "; ".join(
                    f"{name} {min(x[k] for x in sel):+.4f} to {max(x[k] for x in sel):+.4f}, below 0 in {sum(x[k] < 0 for x in sel)}"
                    for k, name in (("er", "eff. rank"), ("ku", "kurtosis"), ("mx", "max/std"))
                )  # fmt: skip
            )


if __name__ == "__main__":
    main()
