"""Peak memory and time of the hostile inputs of docs/security.md "Hostile files", each in a fresh process.

    .venv/bin/python scripts/hostile_memory.py [--key-mb 245]

Each row runs ``freqprint ...`` in its own interpreter and reports its exit code, its first stderr
line, its own peak resident size (``VmHWM``, which starts afresh at ``execve``, unlike
``ru_maxrss``) and its wall time; ``reference`` is ``extract`` of
a small ordinary model, the floor every row pays (Python, torch, the CLI).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cli_helpers import run_measured, sparse_safetensors


def measure(args: list, tmp: Path, timeout: float = 600) -> dict:
    t = time.perf_counter()
    rc, _, err, peak = run_measured(args, tmp, timeout=timeout)
    return {
        "rc": rc,
        "seconds": round(time.perf_counter() - t, 2),
        "peak_mb": round(peak),
        "stderr": (err.strip().splitlines() or [""])[-1][:110],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--key-mb", type=float, default=245, help="size of the large key given to registry add")
    a = ap.parse_args()
    from freqprint import extract

    torch.manual_seed(0)
    module = {
        "conv2.fingerprint.weight": torch.randn(16, 8, 3, 3) * 0.1,
        "conv2.fingerprint.grid": torch.tensor([28, 28, 3, 1, 1]),
    }
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        save_file(module, str(tmp / "plain.safetensors"))
        rows["reference: extract, 16x8 module on 28x28"] = measure(
            ["extract", tmp / "plain.safetensors", "--out", tmp / "k.key"], tmp
        )
        sparse_safetensors(tmp / "sparse.safetensors", module, "aaa.zeros", 1 << 30)
        rows["extract beside a 1 GiB all-zero tensor"] = measure(
            ["extract", tmp / "sparse.safetensors", "--out", tmp / "k.key"], tmp
        )
        save_file({**module, "conv2.fingerprint.grid": torch.tensor([4096, 4096, 3, 1, 1])}, str(tmp / "grid.safetensors"))
        rows["extract, grid buffer 4096x4096"] = measure(["extract", tmp / "grid.safetensors", "--out", tmp / "k.key"], tmp)
        rows["study, grid buffer 4096x4096"] = measure(["study", tmp / "grid.safetensors", tmp / "grid.safetensors"], tmp)
        save_file({**module, "conv2.fingerprint.grid": torch.tensor([1024, 1024, 3, 1, 1])}, str(tmp / "g1024.safetensors"))
        rows["study, grid buffer 1024x1024 (the largest allowed)"] = measure(
            ["study", tmp / "g1024.safetensors", tmp / "g1024.safetensors"], tmp
        )
        # a key of about --key-mb: D = 256 filters, C = 512 channels, S′ of a grid chosen to fit
        grid = max(8, int(a.key_mb * 2**20 / (8 * 256 * 512) / 2))
        big = extract(
            {"h.fingerprint.weight": torch.randn(256, 512, 3, 3) * 0.1, "h.fingerprint.grid": torch.tensor([grid, grid, 3, 1, 1])}
        )
        big.save(tmp / "big.key")
        mb = (tmp / "big.key").stat().st_size / 2**20
        rows[f"registry add, a {mb:.0f} MB key"] = measure(
            ["registry", "add", tmp / "big.key", "-r", tmp / "r.db", "--allow-bare"], tmp
        )
        # the same key anchored at a secret's W₀: registry add checks it and stores the anchored key
        from freqprint.fingerprint import initial_weight

        w0 = initial_weight("big secret", "h", 256, 512, 3)
        sd = {"h.fingerprint.weight": w0, "h.fingerprint.grid": torch.tensor([grid, grid, 3, 1, 1])}
        extract(sd, secret="big secret").save(tmp / "anchored.key")
        (tmp / "secret.txt").write_text("big secret\n")
        mb = (tmp / "anchored.key").stat().st_size / 2**20
        rows[f"registry add with the secret, a {mb:.0f} MB anchored key"] = measure(
            ["registry", "add", tmp / "anchored.key", "-r", tmp / "r2.db", "--secret-file", tmp / "secret.txt"], tmp
        )
        rows["secret file /dev/zero"] = measure(
            ["extract", tmp / "plain.safetensors", "--out", tmp / "k.key", "--secret-file", "/dev/zero"], tmp
        )
        os.mkfifo(tmp / "fifo")
        rows["secret file: a FIFO nobody writes"] = measure(
            ["extract", tmp / "plain.safetensors", "--out", tmp / "k.key", "--secret-file", tmp / "fifo"], tmp, timeout=60
        )
    print("| input | exit | peak RSS (MB) | seconds | last stderr line |\n|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['rc']} | {r['peak_mb']} | {r['seconds']} | {r['stderr']} |")


if __name__ == "__main__":
    main()
