"""Staged vs exhaustive verification on the tracing benchmark's pairs (docs/benchmarks.md §12a).

Scores every (source, suspect) pair of ``freqprint bench tracing --profile quick --method ours``
twice — with ``verify``'s staged default and with ``exhaustive=True`` (the full search alone, as
before issue 13) — and writes verdict agreement, the p-values of both, and the scoring time of
each.  It reuses that benchmark's model cache (``.cache/freqprint``), training it first if absent.

    python scripts/compare_stages.py [OUT.json]
"""

from __future__ import annotations

import functools
import json
import sys
import time

import freqprint.methods.ours as methods
from freqprint import verify
from freqprint.methods import create_methods
from freqprint_bench.tracing import run_tracing


def main(out: str = "benchmarks/cpu/stages-tracing.json") -> None:
    res, seconds = {}, {}
    for mode in ("staged", "exhaustive"):
        methods.verify = functools.partial(verify, exhaustive=(mode == "exhaustive"))  # what FrequencyFingerprint.score calls
        t0 = time.time()
        r = run_tracing(create_methods("ours"), "quick", log=lambda m: None)
        seconds[mode] = time.time() - t0
        res[mode] = {(p["source"], p["suspect"]): p for p in r["methods"]["ours"]["pairs"]}
    methods.verify = verify
    keys = sorted(res["staged"])
    pairs = [
        {
            "source": k[0],
            "suspect": k[1],
            "label": res["staged"][k]["label"],
            "staged_neg_log10_p": res["staged"][k]["neg_log10_p"],
            "exhaustive_neg_log10_p": res["exhaustive"][k]["neg_log10_p"],
            "staged_found": res["staged"][k]["found"],
            "exhaustive_found": res["exhaustive"][k]["found"],
        }
        for k in keys
    ]
    summary = {
        "pairs": len(pairs),
        "verdicts_agree": sum(p["staged_found"] == p["exhaustive_found"] for p in pairs),
        "derived": sum(p["label"] for p in pairs),
        "max_p_gap_decades": max(p["exhaustive_neg_log10_p"] - p["staged_neg_log10_p"] for p in pairs),
        "seconds_staged": seconds["staged"],
        "seconds_exhaustive": seconds["exhaustive"],
    }
    with open(out, "w") as f:
        json.dump({"summary": summary, "pairs": pairs}, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
