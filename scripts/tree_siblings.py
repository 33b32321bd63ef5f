"""Can the weights tell a sibling from a continuation?  (docs/benchmarks.md §14e)

`lineage-tree`'s held-out misses are fine-tunes put under a sibling trained on the same text.
This measures whether the endpoints carry the difference at all.  From a root P (the bench's tiny
decoder, 400 steps on English), per repetition:

- S1 = P fine-tuned ``short`` steps on a text A;
- **sibling** S2 = P fine-tuned ``short + more`` steps on A (another batch order) — its parent is P;
- **continuation** C = S1 fine-tuned ``more`` further steps on A (a fresh optimizer) — its parent
  is S1;
- and, as a control, a sibling fine-tuned on another text B.

For S2 and C alike it prints d(x, S1) / d(x, P) (below 1: S1 looks like the parent), the excess
kurtosis of the update from each candidate, and the parent `lineage_tree` picks among {P, S1, x}.
If the sibling's and the continuation's numbers overlap, no rule on these statistics separates
them: the miss is a property of the endpoints, not of the tree's rules.

A second table checks the low-rank rule's two premises on a merged LoRA of P (r = 4, 100 steps
on A, as the bench makes them): the rank ``_low_rank`` reads between it and P (and, for
contrast, between P and S2, and between S1 and the LoRA — 0 means "not an exact low-rank
update"), and whether it is flatter than P (the excess kurtosis of the stored MLP weights), which
orients the pair.

A third table prices ``MERGE_RESIDUAL`` (step 4 of ``freqprint.verification.tree``): the
residual of the best linear-merge fit, relative to the nearest other model, for S1 against
(P, S2) — a fine-tune near the line between its parent and a same-text sibling, which must *not*
read as a merge — and for true merges of these models stored in float32, float16 and bfloat16.

    .venv/bin/python scripts/tree_siblings.py [--reps 4]
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import torch

from freqprint.data.text import load_fortunes
from freqprint.verification.tree import _low_rank, _mean, lineage_tree
from freqprint_bench.lineage import _byte_batches, _lora_merged, _new, _state, _tiny_config, _train


def _kurtosis(x: torch.Tensor) -> float:
    c = x - x.mean()
    return float(c.pow(4).mean() / c.square().mean() ** 2 - 3)


def _update(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float]:
    """‖b − a‖ over the blocks' projections, and the excess kurtosis of b − a."""
    keys = [k for k in a if "layers" in k and k.endswith("proj.weight")]
    d = torch.cat([(b[k] - a[k]).double().flatten() for k in keys])
    return float(d.norm()), _kurtosis(d)


def _merge_ratio(models: dict[str, dict[str, torch.Tensor]], m: str, p: str, q: str) -> tuple[float, float]:
    """(α, r / nearest) of ``m`` as ``α·p + (1 − α)·q`` in the tree's coordinates (its step 4)."""
    from freqprint.verification import tree as t

    dev = torch.device("cpu")
    ref = t.read_decoder(models[p])
    frame = t._frame(ref, 192, 0, dev)
    ref_norm = {b: float(r.double().square().sum()) for b, r in enumerate(frame[1])}
    x = {n: t._flat(t._member(n, ref, t.read_decoder(sd), frame, dev).blocks).double() for n, sd in models.items()}
    scale = sum(ref_norm.values())
    d = x[p] - x[q]
    alpha = float((x[m] - x[q]) @ d / (d @ d))
    r = float((x[m] - x[q] - alpha * d).norm()) / scale**0.5
    nearest = min(float((x[m] - x[n]).norm()) / scale**0.5 for n in models if n != m)
    return alpha, r / nearest


def _members(models: dict[str, dict[str, torch.Tensor]], ref: str) -> dict[str, Any]:
    from freqprint.verification import tree as t

    dev = torch.device("cpu")
    dec = t.read_decoder(models[ref])
    frame = t._frame(dec, 192, 0, dev)
    return {n: t._member(n, dec, t.read_decoder(sd), frame, dev) for n, sd in models.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--short", type=int, default=150)
    ap.add_argument("--more", type=int, default=250)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    cfg = _tiny_config()
    topic = load_fortunes("fortunes-topic", "train", per_class=600).texts
    lang = load_fortunes("fortunes-language", "train", per_class=600)
    text_a = _byte_batches(topic[len(topic) // 2 :], 64, 16, 12)  # the bench's "half the English"
    text_b = _byte_batches([t for t, y in zip(lang.texts, lang.labels) if y != 0], 64, 16, 11)  # de/it/es
    root = _state(_train(_new(cfg, 3000), _byte_batches(topic, 64, 16, 10), 400, 3e-3, seed=3000))

    def tune(sd: dict[str, torch.Tensor], data: list[torch.Tensor], steps: int, seed: int) -> dict[str, torch.Tensor]:
        m = _new(cfg, 0)
        m.load_state_dict(copy.deepcopy(sd))
        return _state(_train(m, data, steps, args.lr, seed=seed))

    print(f"root P: 400 steps on English; S1: {args.short} steps at {args.lr:g} on half the English")
    print("| rep | x | true parent | d(x,S1)/d(x,P) | kurtosis of x−P | kurtosis of x−S1 | tree's parent |")
    print("|---|---|---|---|---|---|---|")
    tally: dict[str, list[int]] = {}
    ratios: list[tuple[int, str, tuple[float, float]]] = []
    lows: list[tuple[int, int, int, int, float, float]] = []
    for rep in range(args.reps):
        s1 = tune(root, text_a, args.short, 100 + rep)
        cases = {
            "sibling, same text": (tune(root, text_a, args.short + args.more, 200 + rep), "P"),
            "continuation": (tune(s1, text_a, args.more, 300 + rep), "S1"),
            "sibling, other text": (tune(root, text_b, args.short + args.more, 400 + rep), "P"),
        }
        for name, (x, truth) in cases.items():
            dp, kp = _update(root, x)
            ds, ks = _update(s1, x)
            tree = lineage_tree({"P": root, "S1": s1, "x": x}, units=192)
            got = tree.parents["x"]
            ok = got == [truth]
            c = tally.setdefault(name, [0, 0])
            c[0] += ok
            c[1] += 1
            print(
                f"| {rep} | {name} | {truth} | {ds / dp:.3f} | {kp:.3f} | {ks:.3f} | {'+'.join(got) or '(root)'}{'' if ok else ' ✗'} |"
            )
        s2 = cases["sibling, same text"][0]
        m = _new(cfg, 0)
        m.load_state_dict(copy.deepcopy(root))
        lora = _lora_merged(m, text_a, 100, 3e-3, seed=500 + rep)
        mem = _members({"P": root, "S1": s1, "S2": s2, "LoRA": lora}, "P")
        lows.append(
            (
                rep,
                _low_rank(mem["P"], mem["LoRA"]),
                _low_rank(mem["P"], mem["S2"]),
                _low_rank(mem["S1"], mem["LoRA"]),
                _mean(mem["P"].kurtosis),
                _mean(mem["LoRA"].kurtosis),
            )
        )
        ratios.append((rep, "S1 against (P, S2): not a merge", _merge_ratio({"P": root, "S1": s1, "S2": s2}, "S1", "P", "S2")))
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            for w, (a, b) in ((0.7, ("P", "S1")), (0.5, ("S1", "S2"))):
                named = {"P": root, "S1": s1, "S2": s2}
                merge = {k: (w * named[a][k] + (1 - w) * named[b][k]).to(dtype).float() for k in root}
                ratios.append(
                    (rep, f"merge {w:g}·{a} + {1 - w:g}·{b}, {str(dtype)[6:]}", _merge_ratio({**named, "M": merge}, "M", a, b))
                )
    print()
    for name, (ok, n) in tally.items():
        print(f"{name}: tree right {ok}/{n}")
    print("\n| rep | rank LoRA − P | rank S2 − P | rank LoRA − S1 | excess kurtosis P → LoRA |\n|---|---|---|---|---|")
    for rep, a, b, c, kp, kl in lows:
        print(f"| {rep} | {a} | {b} | {c} | {kp:.4f} → {kl:.4f}{'' if kl < kp else ' (heavier)'} |")
    print("\n| rep | model | α | merge residual / nearest |\n|---|---|---|---|")
    for rep, name, (alpha, ratio) in ratios:
        print(f"| {rep} | {name} | {alpha:.3f} | {ratio:.4f} |")


if __name__ == "__main__":
    main()
