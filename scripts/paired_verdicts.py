"""A not-found path timed against a baseline commit, in alternating pairs: the SmolLM2 verdict, or
the registry screen of an unrelated full-width ResNet-18 (``--what screen``).

This machine's speed drifts by 20 % and more over minutes, so two runs of ``bench gate`` at
different times do not compare two codes.  Here two worker processes, one importing the
baseline's ``src`` (``git archive REV src`` into a temporary folder) and one this checkout's,
each hold the key and time one verdict at a time (``verify(key, file, describe=False)``, the file
opened anew), alternated in ABBA order so that both see the same machine.  Printed: each side's
median and minimum, and the median of the per-pair ratios (this checkout / baseline) with its
quartiles; each verdict's outcome (found, readings searched, readings aligned) must agree.

``--what screen``: the files of ``bench scale --which cost-resnet18`` (an owner's key registered
with its secret, an unrelated ResNet-18 of another seed and secret) are written once by this
checkout into a temporary folder; each side opens the registry, matches once (its per-process
set-up: the decoys' sketches), then times ``KeyStore.match`` of the unrelated file, whose outcome
(the keys found) must agree.

Usage::

    python scripts/paired_verdicts.py --baseline 3564586 --pairs 16
    python scripts/paired_verdicts.py --baseline 25c1e92 --pairs 16 --what screen
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def screen_files(work: Path) -> tuple[Path, Path]:
    """The registry (the owner's key, registered with its secret) and the unrelated suspect of
    ``bench scale --which cost-resnet18``, written into ``work``."""
    from freqprint.io.checkpoint import save_model
    from freqprint.scan import KeyStore
    from freqprint.verification.key import extract
    from freqprint_bench.probe import resnet_owner

    key = extract(resnet_owner("resnet-owner", 0), secret="resnet-owner")
    with KeyStore(work / "resnet.db") as reg:
        reg.add(key.save(work / "resnet.key"), name="owner", secret="resnet-owner")
    suspect = save_model(resnet_owner("resnet-other", 1), work / "resnet-independent.safetensors", {"model": "resnet18"})
    return work / "resnet.db", suspect


def screen_worker(db: Path, suspect: Path) -> None:
    """One side of ``--what screen``: the registry once, a warm-up match, then one timed match per
    line read; prints seconds and the keys found."""
    from freqprint.scan import KeyStore

    reg = KeyStore(db, create=False)
    reg.match(suspect)  # the process's set-up
    print("ready", flush=True)
    for _ in sys.stdin:
        t = time.perf_counter()
        res = reg.match(suspect)
        print(f"{time.perf_counter() - t:.4f} found={[m.key for m in res.found]}", flush=True)


def worker(threads: int, what: str, files: list[str]) -> None:
    """One side: the key once, then one verdict per line read; prints seconds and the outcome."""
    import torch

    torch.set_num_threads(threads)
    if what == "screen":
        screen_worker(Path(files[0]), Path(files[1]))
        return
    from freqprint.verification.verifier import verify
    from freqprint_bench.gate import smollm2_key
    from freqprint_bench.llm import smollm2_gguf

    path = smollm2_gguf()
    key = smollm2_key(path)
    verify(key, path, describe=False)  # warm-up
    print("ready", flush=True)
    for _ in sys.stdin:
        t = time.perf_counter()
        rep = verify(key, path, describe=False)
        print(f"{time.perf_counter() - t:.4f} {rep.found} {rep.layers_searched} {rep.fitted}", flush=True)


def _start(src: Path, threads: int, what: str, files: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    p = subprocess.Popen(
        [sys.executable, __file__, "--worker", "--threads", str(threads), "--what", what, *files],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready", "a worker failed to start"
    return p


def _one(p: subprocess.Popen[str]) -> tuple[float, str]:
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write("go\n")
    p.stdin.flush()
    seconds, *outcome = p.stdout.readline().split()
    return float(seconds), " ".join(outcome)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="a commit of this repository (required)")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--what", choices=("smollm2", "screen"), default="smollm2")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads, args.what, args.files)
        return
    if not args.baseline:
        ap.error("--baseline is required")
    with tempfile.TemporaryDirectory() as tmp:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "src"], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(tar)) as t:
            t.extractall(tmp, filter="data")
        files = [str(f) for f in screen_files(Path(tmp))] if args.what == "screen" else []
        base = _start(Path(tmp) / "src", args.threads, args.what, files)
        this = _start(ROOT / "src", args.threads, args.what, files)
        a: list[float] = []
        b: list[float] = []
        for i in range(args.pairs):
            order = (base, this) if i % 4 in (0, 3) else (this, base)  # ABBA
            got = {p: _one(p) for p in order}
            (ta, oa), (tb, ob) = got[base], got[this]
            if oa != ob:
                raise SystemExit(f"pair {i + 1}: the verdicts differ: baseline {oa}, this checkout {ob}")
            a.append(ta)
            b.append(tb)
        for p in (base, this):
            assert p.stdin is not None
            p.stdin.close()
            p.wait()
    r = [y / x for x, y in zip(a, b, strict=True)]
    q = statistics.quantiles(r, n=4)
    if args.what == "screen":
        print(f"registry screen of an unrelated full-width ResNet-18 ({ob}), {args.pairs} pairs on {args.threads} threads")
        print(f"baseline {args.baseline}: median {statistics.median(a) * 1e3:.1f} ms, min {min(a) * 1e3:.1f} ms")
        print(f"this checkout: median {statistics.median(b) * 1e3:.1f} ms, min {min(b) * 1e3:.1f} ms")
    else:
        print(f"SmolLM2 not-found verdict ({ob}: found, readings, aligned), {args.pairs} pairs on {args.threads} threads")
        print(f"baseline {args.baseline}: median {statistics.median(a):.2f} s, min {min(a):.2f} s")
        print(f"this checkout: median {statistics.median(b):.2f} s, min {min(b):.2f} s")
    print(f"this / baseline, per pair: median {statistics.median(r):.3f} (quartiles {q[0]:.3f}, {q[2]:.3f})")


if __name__ == "__main__":
    main()
