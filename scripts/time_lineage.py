"""What lineage's not-found path costs, against an older checkout in one run: an unrelated
full-width ResNet-18 (``scripts/time_unrelated_resnet.py``'s "resnet-other", seed 1) traced
against the θ₀ of another seed — every layer fits its candidates and finds nothing.  Each side
runs in its own interpreter, alternately, ``--rounds`` times; the median per side.

    git worktree add /tmp/prev d16e00c
    .venv/bin/python scripts/time_lineage.py --old /tmp/prev/src
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from time_canonical import alternate  # this folder is on sys.path when the script runs

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {scripts!r})
from time_unrelated_resnet import build
from freqprint import OwnerInit, lineage
torch.set_num_threads(2)
suspect = {{k: v.detach().clone() for k, v in build("resnet-other", 1).state_dict().items()}}
init = OwnerInit("resnet18", {{"num_classes": 10, "in_channels": 1, "width": 1.0}}, 0, True)
t = time.perf_counter(); r = lineage(init, suspect); dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "log10_p": r.log10_p, "fitted": sum(x.fitted for x in r.layers), "paid": sum(x.candidates for x in r.layers)}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="src/ folder of the older checkout")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    runs = alternate(CHILD.format(scripts=str(Path(__file__).resolve().parent)), args.old, args.rounds)
    print("| side | lineage, unrelated full-width ResNet-18: s | p | fits | readings paid |")
    print("|---|---|---|---|---|")
    for side, rs in runs.items():
        r = rs[0]
        print(
            f"| {side} | {statistics.median(x['seconds'] for x in rs):.1f} | 1e{r['log10_p']:.1f} | {r['fitted']} | {r['paid']} |"
        )
    ratio = statistics.median(x["seconds"] for x in runs["new"]) / statistics.median(x["seconds"] for x in runs["old"])
    print(f"\nnew / old: ×{ratio:.2f} ({args.rounds} alternating round{'s' if args.rounds > 1 else ''})")


if __name__ == "__main__":
    main()
