"""The registry's shortlist at a million keys: one float32 product with torch (what
``scan.sketch.shortlist_scores`` does) against FAISS's flat inner-product index, on the same random
vectors.  docs/benchmarks.md §12g quotes the output.

    .venv/bin/python scripts/time_flat_index.py      # FAISS rows only where faiss-cpu is installed

Sizes are those of §12g: 1,000,000 keys of 320 coordinates (64 + 256), 32 queries (4 readings × 8 symmetries
of the square), a shortlist of 1,024.  Medians of 3 after a warm-up, in one process.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

N, P, Q, K = 1_000_000, 320, 32, 1024


def median(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    g = np.random.default_rng(0)
    x = g.standard_normal((N, P), dtype=np.float32)
    q = g.standard_normal((Q, P), dtype=np.float32)
    xt, qt = torch.from_numpy(x), torch.from_numpy(q)
    rows = {"torch: product, max over queries, top-k": median(lambda: (xt @ qt.T).amax(1).topk(K))}
    try:
        import faiss
    except ImportError:
        print("faiss not installed: torch only")
    else:
        faiss.omp_set_num_threads(torch.get_num_threads())
        index = faiss.IndexFlatIP(P)
        index.add(x)
        rows["faiss IndexFlatIP.search, k per query"] = median(lambda: index.search(q, K))
        rows[f"faiss {faiss.__version__} IndexFlatIP.search, k = 1"] = median(lambda: index.search(q, 1))
    print(f"{N:,} vectors x {P}, {Q} queries, shortlist {K}, {torch.get_num_threads()} threads")
    for name, s in rows.items():
        print(f"  {name}: {s:.3f} s")


if __name__ == "__main__":
    main()
