"""A registry's index bytes per key for keys of several channel counts (docs/benchmarks.md §12g).

    .venv/bin/python scripts/registry_size.py > benchmarks/cpu/registry-size.txt   # about 2 min on 2 cores

Per channel count C: one real key (``reg-0``, 32 filters × C channels, body stored) and 19,999
synthetic rows of W₀ draws of the same shape written as ``bench scale --which million`` writes
them (:func:`freqprint_bench.million._fill`: entry, shortlist vector, channel sketch, no body).
Printed: SQLite's ``dbstat`` bytes per key for the index (every table but ``bodies``) and for
the ``keys`` and ``sketches`` tables, and the stored sketch's size from its shape
(:func:`freqprint.scan.sketch.sketch_bytes`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from freqprint.scan import KeyStore
from freqprint.scan.sketch import basis_from_json, block_dims, sketch_bytes
from freqprint_bench.million import _fill
from freqprint_bench.scale import _synthetic_key

N, FILTERS = 20_000, 32


def main() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        for channels in (16, 64, 128):
            path = Path(tmp) / f"c{channels}.db"
            key = _synthetic_key(0, FILTERS, channels)
            with KeyStore(path) as reg:
                reg.add_key(key, key.to_bytes(), "reg-0", secret="reg-0")
                _fill(reg, N, FILTERS, channels, log=lambda _: None)
                tables = dict(reg.db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
                b = basis_from_json(reg.db.execute("SELECT basis FROM keys WHERE name='reg-0'").fetchone()[0])
            index = sum(v for k, v in tables.items() if k != "bodies") / N
            print(
                f"C = {channels:3d}: index {index:,.0f} B per key (keys {tables['keys'] / N:,.0f}, sketches "
                f"{tables['sketches'] / N:,.0f}); a sketch is {sketch_bytes(b, channels):,} B "
                f"({channels} × (2 × {block_dims(b)[0]} + {block_dims(b)[1]}))"
            )


if __name__ == "__main__":
    main()
