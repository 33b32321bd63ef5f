"""What the canonical reading costs a verdict (issue 25's cost goals), measured against an older
checkout in one run: each side runs in its own interpreter, alternately, ``--rounds`` times.

    git worktree add /tmp/old e8aa519
    .venv/bin/python scripts/time_canonical.py --old /tmp/old/src

Suspects (full-width ResNet-18, module on layer1.1.conv2, as ``scripts/time_unrelated_resnet.py``):
the owner's model as left (safetensors file; the verdict a derived model gets), and an unrelated
model (the not-found path, every reading searched).  Per side and suspect: the median over rounds
of the median of 5 in-process calls (the owner) or of one call (the unrelated model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, {scripts!r})
from time_unrelated_resnet import build
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify
from safetensors.torch import save_file
torch.set_num_threads(2)
key = extract(build("resnet-owner", 0), secret="resnet-owner")
own = {tmp!r} + "/owner.safetensors"
other = {tmp!r} + "/other.safetensors"
save_file({{k: v.detach().clone().contiguous() for k, v in build("resnet-owner", 0).state_dict().items()}}, own)
save_file({{k: v.detach().clone().contiguous() for k, v in build("resnet-other", 1).state_dict().items()}}, other)
verify(key, own)
ts = []
for _ in range(5):
    t = time.perf_counter(); r = verify(key, own, describe=False); ts.append(time.perf_counter() - t)
t = time.perf_counter(); u = verify(key, other); tu = time.perf_counter() - t
print(json.dumps({{"owner": statistics.median(ts), "owner_p": r.log10_p, "unrelated": tu, "unrelated_p": u.log10_p, "readings": u.layers_searched}}))
"""


def alternate(code: str, old: str, rounds: int) -> dict[str, list[dict]]:
    """Run ``code`` (which prints one JSON line last) in a fresh interpreter per side — ``old``
    (a src/ folder) and this checkout's src/ — alternately, ``rounds`` times; the JSON per side."""
    sides = {"old": old, "new": str(Path(__file__).resolve().parent.parent / "src")}
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    for _ in range(rounds):
        for side, src in sides.items():
            env = {**os.environ, "PYTHONPATH": src}
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="src/ folder of the older checkout")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        runs = alternate(CHILD.format(scripts=str(here), tmp=tmp), args.old, args.rounds)
    print("| side | owner as left: verdict ms | p | unrelated: verdict s | p | readings |")
    print("|---|---|---|---|---|---|")
    for side, rs in runs.items():
        print(
            f"| {side} | {1000 * statistics.median(r['owner'] for r in rs):.1f} | 1e{rs[0]['owner_p']:.1f} | "
            f"{statistics.median(r['unrelated'] for r in rs):.2f} | 1e{rs[0]['unrelated_p']:.1f} | {rs[0]['readings']} |"
        )
    o = statistics.median(r["owner"] for r in runs["new"]) / statistics.median(r["owner"] for r in runs["old"])
    u = statistics.median(r["unrelated"] for r in runs["new"]) / statistics.median(r["unrelated"] for r in runs["old"])
    print(f"\nnew / old: owner as left ×{o:.2f}, unrelated ×{u:.2f} ({args.rounds} alternating rounds)")


if __name__ == "__main__":
    main()
