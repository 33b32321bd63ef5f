"""``bench scale --which million``: one suspect matched against a registry of a million keys
(docs/benchmarks.md §12g).

The registry holds one real key, ``reg-0`` (registered with :meth:`KeyStore.add_key` and its
secret, its body stored), and ``n − 1`` synthetic keys: real W₀ draws of the same shape from
secrets ``reg-1``, ``reg-2``, … (a 32-filter module on 16 channels, as §12b), sketched in batches
and written as index rows (entry, shortlist vector, channel sketch) with the registry's own
``_insert``.  Their bodies are not written: a million key files would take 270 GB here.  A key
whose body is fetched (a screen candidate) is regenerated from its secret instead, as a hub would
fetch it from object storage, and counted (``bodies_fetched``): a synthetic key fetched is a false
candidate.  Their commitments are placeholders (``synthetic-i``), and the secret check that
``registry add`` runs per key (3 ms, §12b) is skipped: it is paid once per key at registration, not
per match.

Measured, each in this run: the time to open the registry (its shortlist vectors into memory), to
match the derived suspect of §12b (``reg-0``'s owner with its filters and blocks permuted) and an
unrelated one (median of 3), what each found, how many keys reached the channel score and the full
test; the registry's bytes per key by table (SQLite's ``dbstat``), the vectors' bytes in memory;
and a miss-rate sweep: :data:`DRAWS` derived suspects per noise level (the owner permuted with
another seed, then Gaussian noise of σ·std on every weight), matched at a million keys
(shortlist) and by the registry of ``reg-0`` alone (the channel score of every key: the screen
without shortlist), beside the full test's verdict.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from freqprint_bench.report import median_seconds

__all__ = ["bench_million", "million_markdown"]

NOISE = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)
REWRITE_NOISE = (0.0, 0.4)  # each rewrite of :data:`freqprint_bench.rewrites.REWRITES` on top of this noise
DRAWS = 4  # suspects per noise level: the owner permuted with another seed, another noise draw


def _registry_class():
    from freqprint.errors import FreqprintError
    from freqprint.scan import KeyStore

    class SyntheticBodies(KeyStore):
        """A registry whose synthetic keys' bodies are regenerated from their secrets on fetch."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.fetched: list[str] = []

        def _body(self, key_id: int) -> tuple[bytes, bytes | None]:
            try:
                return super()._body(key_id)
            except FreqprintError:
                from freqprint_bench.scale import _synthetic_key

                name, d, c = self.db.execute("SELECT name, filters, channels FROM keys WHERE id=?", (key_id,)).fetchone()
                self.fetched.append(name)
                return _synthetic_key(int(name.split("-")[1]), d, c).to_bytes(), None

    return SyntheticBodies


def _fill(reg, n: int, filters: int, channels: int, log, batch: int = 4096) -> float:
    """Rows for synthetic keys ``reg-1 … reg-(n−1)`` (module docstring); returns seconds."""
    from freqprint.fingerprint import initial_weight
    from freqprint.scan.sketch import basis_from_json, block_dims, channel_sketch, encode_sketch, sketch_vectors

    layer, basis = reg.db.execute("SELECT layer, basis FROM keys WHERE name='reg-0'").fetchone()
    b = basis_from_json(basis)
    added = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    t0 = time.perf_counter()
    for lo in range(1, n, batch):
        ids = range(lo, min(n, lo + batch))
        w = torch.stack([initial_weight(f"reg-{i}", "conv2", filters, channels, 3) for i in ids])
        exact = channel_sketch(w, b)
        sk = encode_sketch(exact, block_dims(b))  # as KeyStore.add_key stores them
        vec = sketch_vectors(exact, b, filters, channels).to(torch.float16)
        for i, s, v in zip(ids, sk.numpy(), vec.numpy()):
            fields = (f"reg-{i}", "key", f"synthetic-{i}", layer, filters, channels, 3, basis, 1, 0, added, "verified")
            reg._insert(fields, s.tobytes(), v.tobytes(), None)
        reg.commit()
        if (lo // batch) % 25 == 0:
            log(f"million: {ids[-1] + 1:,} keys, {time.perf_counter() - t0:.0f} s")
    return time.perf_counter() - t0


def _noisy(sd: dict[str, torch.Tensor], sigma: float, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in sd.items():
        if v.is_floating_point() and v.dim() >= 2 and sigma > 0:
            v = v + sigma * v.std() * torch.randn(v.shape, generator=g)
        out[k] = v.contiguous()
    return out


def _tally(hits: dict[str, int], reg, one, key, sd: dict[str, torch.Tensor]) -> None:
    """One derived suspect counted: the full test, the registry of ``reg-0`` alone (every key
    scored), the million-key registry (shortlist), a wrong key matched, synthetic bodies fetched."""
    from freqprint.verification.verifier import verify

    reg.fetched.clear()
    found = [m.key for m in reg.match(sd).found]
    hits["verify"] += verify(key, sd, describe=False).found
    hits["screen"] += bool(one.match(sd).found)
    hits["million"] += found == ["reg-0"]
    hits["wrong"] += any(k != "reg-0" for k in found)
    hits["bodies_fetched"] += len(reg.fetched)


def _rewrite_sweep(reg, one, owner, key, log) -> list[dict[str, Any]]:
    """Per rewrite of :mod:`freqprint_bench.rewrites` (each of :data:`REWRITE_NOISE`) and for
    fine-tuning: :data:`DRAWS` derived suspects (the owner permuted with another seed, noised,
    rewritten; or fine-tuned with another seed), counted as the noise sweep counts them."""
    from freqprint_bench.rewrites import REWRITES, fine_tuned
    from freqprint_bench.scale import _derived

    cases: list[tuple[str, float, Any]] = [(n, s, f) for n, f in REWRITES.items() for s in REWRITE_NOISE]
    cases.append(("fine-tuned: 1 epoch of SGD on 2,000 Fashion-MNIST images", 0.0, None))
    out = []
    for name, sigma, f in cases:
        hits = {"verify": 0, "screen": 0, "million": 0, "bodies_fetched": 0, "wrong": 0}
        for draw in range(DRAWS):
            model = _derived(owner, seed=1 + draw)
            if f is None:
                model = fine_tuned(model, seed=draw)
            sd = _noisy({k: v.contiguous() for k, v in model.state_dict().items()}, sigma, seed=1000 * draw + int(sigma * 100))
            if f is not None:
                sd = f(sd, torch.Generator().manual_seed(draw))
            _tally(hits, reg, one, key, sd)
        out.append({"rewrite": name, "sigma": sigma, "draws": DRAWS, **hits})
        log(f"million rewrite {out[-1]}")
    return out


def bench_million(work: Path, n: int = 1_000_000, filters: int = 32, channels: int = 16, log=print) -> dict[str, Any]:
    from freqprint.scan import KeyStore
    from freqprint.scan.sketch import SHORTLIST, VECTOR_DIMS
    from freqprint_bench.scale import _derived, _owner, _synthetic_key

    owner = _owner("reg-0", channels, filters)
    derived_sd = {k: v.contiguous() for k, v in _derived(owner).state_dict().items()}
    derived, unrelated = work / "m-derived.safetensors", work / "m-unrelated.safetensors"
    save_file(derived_sd, str(derived))
    save_file({k: v.contiguous() for k, v in _owner("not-registered", channels, filters).state_dict().items()}, str(unrelated))
    key = _synthetic_key(0, filters, channels)
    db, small = work / "million.db", work / "one.db"
    for p in (db, small):
        p.unlink(missing_ok=True)
        with KeyStore(p) as reg:
            reg.add_key(key, key.to_bytes(), "reg-0", secret="reg-0")
    cls = _registry_class()
    with cls(db) as reg:
        build_s = _fill(reg, n, filters, channels, log)
    t0 = time.perf_counter()
    reg = cls(db, create=False)
    reg.groups()
    open_s = time.perf_counter() - t0
    res = {"derived": reg.match(derived), "unrelated": reg.match(unrelated)}
    row: dict[str, Any] = {"keys": len(reg), "build_s": build_s, "open_s": open_s}
    for name, path in (("derived", derived), ("unrelated", unrelated)):
        row[f"{name}_s"] = median_seconds(partial(reg.match, path), 3)
        r = res[name]
        row[name] = {
            "found": [m.key for m in r.found],
            "log10_p_registry": [m.log10_p_registry for m in r.found],
            "screened": r.screened,
            "shortlisted": r.shortlisted,
            "tested": r.tested,
        }
    sweep = []
    with KeyStore(small, create=False) as one:
        for sigma in NOISE:
            hits = {"verify": 0, "screen": 0, "million": 0, "bodies_fetched": 0, "wrong": 0}
            for draw in range(DRAWS):
                base = {k: v.contiguous() for k, v in _derived(owner, seed=1 + draw).state_dict().items()}
                sd = _noisy(base, sigma, seed=1000 * draw + int(sigma * 100))
                _tally(hits, reg, one, key, sd)
            sweep.append({"sigma": sigma, "draws": DRAWS, **hits})
            log(f"million sweep {sweep[-1]}")
        rewrites = _rewrite_sweep(reg, one, owner, key, log)
    tables = dict(reg.db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    reg.close()
    index = sum(v for k, v in tables.items() if k != "bodies")
    result = {
        "rows": [row],
        "bytes_per_key": {k: v / n for k, v in sorted(tables.items())},
        "index_bytes_per_key": index / n,
        "vector_bytes_in_memory_per_key": 4 * sum(VECTOR_DIMS),
        "body_bytes_reg0": len(key.to_bytes()),
        "file_gb": db.stat().st_size / 2**30,
        "shortlist": SHORTLIST,
        "sweep": sweep,
        "rewrites": rewrites,
        "key_shape": [filters, channels, 3, 3],
        "goal": "< 1 s per suspect at 1,000,000 keys; <= 10 KB of index per key",
        "threads": torch.get_num_threads(),
    }
    log(f"million {json.dumps({k: v for k, v in result.items() if k not in ('sweep', 'rewrites')}, default=str)}")
    db.unlink()
    small.unlink()
    return result


def million_markdown(m: dict[str, Any]) -> list[str]:
    r = m["rows"][0]
    out = [
        f"## one suspect against {r['keys']:,} keys (goal: {m['goal']})",
        "",
        "| suspect | s | found | log10 p (registry) | keys screened / shortlisted / fully tested |",
        "|---|---|---|---|---|",
    ]
    for name in ("derived", "unrelated"):
        x = r[name]
        out.append(
            f"| {name} | {r[f'{name}_s']:.3f} | {', '.join(x['found']) or '-'} | "
            f"{', '.join(f'{p:.1f}' for p in x['log10_p_registry']) or '-'} | {x['screened']:,} / {x['shortlisted']:,} / {x['tested']} |"
        )
    out += [
        "",
        f"Opening (vectors into memory) {r['open_s']:.1f} s; building the synthetic rows {r['build_s']:.0f} s; "
        f"file {m['file_gb']:.2f} GB.  Index bytes per key {m['index_bytes_per_key']:.0f} "
        f"({', '.join(f'{k} {v:.0f}' for k, v in m['bytes_per_key'].items())}); vectors in memory "
        f"{m['vector_bytes_in_memory_per_key']} B per key; a key body (reg-0) {m['body_bytes_reg0']:,} B, stored apart.",
        "",
        f"| noise σ | full test | screen, every key scored | {r['keys']:,} keys | another key matched | synthetic bodies fetched |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {x['sigma']} | {x['verify']}/{x['draws']} | {x['screen']}/{x['draws']} | {x['million']}/{x['draws']} | {x['wrong']} | "
        f"{x['bodies_fetched']} |"
        for x in m["sweep"]
    ]
    if m.get("rewrites"):
        out += [
            "",
            f"| rewrite | noise σ | full test | screen, every key scored | {r['keys']:,} keys | another key matched | synthetic bodies fetched |",
            "|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['rewrite']} | {x['sigma']} | {x['verify']}/{x['draws']} | {x['screen']}/{x['draws']} | {x['million']}/{x['draws']} | "
            f"{x['wrong']} | {x['bodies_fetched']} |"
            for x in m["rewrites"]
        ]
    out.append("")
    return out
