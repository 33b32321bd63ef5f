"""The same verdicts under an older checkout and this one: how a change moves reported p-values.

    git worktree add /tmp/old e8aa519
    .venv/bin/python scripts/verdicts_before_after.py --old /tmp/old/src --key demo-output/owner.key \
        demo-output/{owner,finetuned,independent,thief,plain}.safetensors

Prints, per suspect, ``verify``'s log₁₀ p and the number of readings it paid for, on each side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys
from freqprint.verification.verifier import verify
out = {}
for s in sys.argv[2:]:
    r = verify(sys.argv[1], s)
    out[s] = [r.log10_p, r.layers_searched, r.layer]
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="src/ folder of the older checkout")
    ap.add_argument("--key", required=True)
    ap.add_argument("suspects", nargs="+")
    args = ap.parse_args()
    new = str(Path(__file__).resolve().parent.parent / "src")
    res = {}
    for side, src in (("old", args.old), ("new", new)):
        env = {**os.environ, "PYTHONPATH": src}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.key, *args.suspects], env=env, capture_output=True, text=True, check=True
        )
        res[side] = json.loads(out.stdout.strip().splitlines()[-1])
    print("| suspect | old: log10 p / readings | new: log10 p / readings | shift (decades) | new reading |")
    print("|---|---|---|---|---|")
    for s in args.suspects:
        o, n = res["old"][s], res["new"][s]
        print(f"| {Path(s).name} | {o[0]:.1f} / {o[1]} | {n[0]:.1f} / {n[1]} | {n[0] - o[0]:+.2f} | {n[2]} |")


if __name__ == "__main__":
    main()
